"""Password logins of the ``mega://`` filesystem: one per process and set of credentials."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ValidationError

__all__ = ["login_once", "forget_login"]

_LOGINS: dict[str, str] = {}
_LOGINS_LOCK = threading.Lock()
_LOGIN_KEY = secrets.token_bytes(32)


def _login_key(api_url: str, email: str, password: str) -> str:
    """A keyed digest naming one login of this process (the password itself is not kept)."""
    text = "\0".join((api_url, email.lower(), password)).encode("utf-8")
    return hmac.new(_LOGIN_KEY, text, hashlib.sha256).hexdigest()


def login_once(
    new_mega: Callable[[], Any], email: str, password: str | None, mfa: Any
) -> tuple[str, Any]:
    """``(session, client)`` for ``email``: the first call in this process logs in with
    ``new_mega()`` and returns the client; later ones (fsspec makes one filesystem per thread)
    return the same session and None. The password is not kept, only a keyed digest."""
    if password is None:
        raise ValidationError("a password is needed with an email")
    mega = new_mega()
    key = _login_key(str(mega.api_url), email, password)
    with _LOGINS_LOCK:
        session = _LOGINS.get(key)
        if session is not None:
            return session, None
        mega.login(email, password, mfa=mfa)
        session = mega.dump_session()
        _LOGINS[key] = session
        return session, mega


def forget_login(session: str) -> None:
    """Forget the logins that gave ``session`` (after a logout)."""
    with _LOGINS_LOCK:
        for key in [k for k, v in _LOGINS.items() if v == session]:
            del _LOGINS[key]
