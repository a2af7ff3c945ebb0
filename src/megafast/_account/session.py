"""Logging in (v1, v2, ephemeral, two-factor) and saved sessions.

Nothing here logs or raises with a password, a key or a session id in the text.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._wire.api import ApiClient
from .._wire.codec import b64_bytes, b64encode, bytes_to_words, words_to_bytes
from .._wire.rsa import rsa_decrypt_mpi, rsa_encrypt_key, sid_from_csid
from ..errors import (
    IntegrityError,
    LoginError,
    NotFoundError,
    TwoFactorRequiredError,
    UnexpectedAnswerError,
    ValidationError,
)
from ..transfer._atomic import write_private_file

__all__ = [
    "Credentials",
    "login_user",
    "login_ephemeral",
    "MfaSource",
    "SESSION_FORMAT",
    "rsa_decrypt_mpi",
    "rsa_encrypt_key",
]

SESSION_FORMAT = "megafast-session-1"

MfaSource = str | int | Callable[[], str] | None


@dataclass
class Credentials:
    """What a logged-in client holds: session id, master key (16 bytes), the account's handle
    and email, and the plaintext RSA private key (the MPIs p, q, d, u) when it has one."""

    sid: str
    master_key: bytes
    user_handle: str | None = None
    email: str | None = None
    privk: bytes | None = None
    ephemeral: bool = False

    def __repr__(self) -> str:  # never show keys
        return f"Credentials(user_handle={self.user_handle!r}, ephemeral={self.ephemeral})"

    # -- saved sessions ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict holding the secrets needed to resume without the password."""
        return {
            "format": SESSION_FORMAT,
            "sid": self.sid,
            "master_key": b64encode(self.master_key),
            "user_handle": self.user_handle,
            "email": self.email,
            "privk": b64encode(self.privk) if self.privk else None,
            "ephemeral": self.ephemeral,
        }

    @classmethod
    def load(cls, session: str | dict[str, Any] | os.PathLike[str]) -> Credentials:
        """:meth:`from_saved` of JSON text, a dict, or a file written by :meth:`save` (a path
        or a str that does not start with ``{``)."""
        if isinstance(session, os.PathLike) or (
            isinstance(session, str) and not session.lstrip().startswith("{")
        ):
            try:
                with open(session, encoding="utf-8") as fh:
                    session = fh.read()
            except OSError as exc:
                raise ValidationError(f"cannot read the session file: {exc.strerror}") from None
        return cls.from_saved(session)

    @classmethod
    def from_saved(cls, data: str | bytes | dict[str, Any]) -> Credentials:
        """Read a session made by :meth:`to_dict` (a dict or its JSON text)."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError:
                raise ValidationError(
                    "a saved session must be JSON made by dump_session()"
                ) from None
        if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
            raise ValidationError("not a megafast session (see Mega.dump_session)")
        sid, mk = data.get("sid"), data.get("master_key")
        master_key = b64_bytes(mk) if isinstance(mk, str) else None
        if not isinstance(sid, str) or not sid or master_key is None or len(master_key) != 16:
            raise ValidationError("the saved session is damaged (sid or master key)")
        privk_text = data.get("privk")
        privk = b64_bytes(privk_text) if isinstance(privk_text, str) else None
        return cls(
            sid=sid,
            master_key=master_key,
            user_handle=data.get("user_handle")
            if isinstance(data.get("user_handle"), str)
            else None,
            email=data.get("email") if isinstance(data.get("email"), str) else None,
            privk=privk,
            ephemeral=bool(data.get("ephemeral")),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the session to ``path`` with mode 0600 (created or replaced atomically)."""
        write_private_file(path, json.dumps(self.to_dict()).encode("utf-8"))

    # -- RSA ---------------------------------------------------------------------------------
    def rsa_decrypt(self, data: bytes) -> bytes | None:
        """RSA-decrypt an MPI (as MEGA sends ``csid`` and long keys); the plaintext without
        MEGA's two leading bytes, or ``None`` when it cannot be decrypted."""
        if not self.privk:
            return None
        try:
            return rsa_decrypt_mpi(data, self.privk)
        except (ValueError, IndexError):
            return None


def _mfa_code(mfa: MfaSource) -> str | None:
    if mfa is None:
        return None
    code = mfa() if callable(mfa) else mfa
    if code is None:
        return None
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < 1_000_000:
        text = f"{code:06d}"  # 012345 given as a number keeps its leading zero
    else:
        text = str(code).strip().replace(" ", "")
    if not text.isdigit() or len(text) != 6:
        raise ValidationError("a two-factor code is 6 digits")
    return text


def login_user(api: ApiClient, email: str, password: str, mfa: MfaSource = None) -> Credentials:
    """Log in with email and password (v1 or v2 account, two-factor when needed)."""
    from ..crypto import derive_v2, prepare_key, stringhash

    if not isinstance(email, str) or not email.strip():
        raise ValidationError("an email address is needed to log in")
    if not isinstance(password, str):
        raise ValidationError("the password must be a str")
    email = email.strip().lower()
    try:
        pre = api.request({"a": "us0", "user": email})
    except NotFoundError:
        raise LoginError(-9, "wrong email or password") from None
    if not isinstance(pre, dict):
        raise UnexpectedAnswerError("unexpected answer to us0")
    version = pre.get("v", 1)
    if version == 2:
        salt = b64_bytes(pre["s"]) if isinstance(pre.get("s"), str) else None
        if not salt:
            raise UnexpectedAnswerError("a v2 account without a salt")
        pwkey, uh = derive_v2(password, salt)
        pwkey = bytes(pwkey)
    elif version == 1:
        pwkey = words_to_bytes(prepare_key(password))
        # str arguments use MEGA's web-client conversion (right for non-ASCII text)
        uh = stringhash(email, pwkey)
    else:
        raise UnexpectedAnswerError(f"unknown account version {version!r}")

    command: dict[str, Any] = {"a": "us", "user": email, "uh": uh}
    # a code given as a value goes with the first try; a callback is asked only when needed
    if mfa is not None and not callable(mfa):
        command["mfa"] = _mfa_code(mfa)
    answer = _us(api, command)
    if answer == -26:
        if "mfa" in command:
            raise TwoFactorRequiredError(-26, "the two-factor code was not accepted")
        if mfa is None:
            raise TwoFactorRequiredError(
                -26,
                "this account uses two-factor authentication: "
                "pass mfa='123456' (or a callable returning the code) to login()",
            )
        command["mfa"] = _mfa_code(mfa)
        answer = _us(api, command)
        if answer == -26:
            raise TwoFactorRequiredError(-26, "the two-factor code was not accepted")
    creds = _finish(answer, pwkey)
    creds.email = email
    return creds


def _us(api: ApiClient, command: dict[str, Any]) -> Any:
    result = api.batch([command])[0]
    if result == -9:
        raise LoginError(-9, "wrong email or password")
    if "mfa" in command and result in (-5, -26):
        # MEGA answers a wrong two-factor code with EFAILED
        raise TwoFactorRequiredError(result, "the two-factor code was not accepted")
    if isinstance(result, int) and result < 0 and result != -26:
        from ..errors import error_for_code

        raise error_for_code(result)
    return result


def _finish(answer: Any, pwkey: bytes) -> Credentials:
    """The credentials in a ``us`` answer, whose master key ``k`` is encrypted with ``pwkey``."""
    from ..crypto import decrypt_key, encrypt_key

    if not isinstance(answer, dict) or not isinstance(answer.get("k"), str):
        raise UnexpectedAnswerError("unexpected answer to us")
    enc_master = b64_bytes(answer["k"])
    if enc_master is None or len(enc_master) != 16:
        raise IntegrityError("the server sent a damaged master key")
    master_key = words_to_bytes(decrypt_key(bytes_to_words(enc_master), bytes_to_words(pwkey)))
    if isinstance(answer.get("csid"), str):
        privk_enc = b64_bytes(answer.get("privk") or "")
        if not privk_enc or len(privk_enc) % 16:
            raise IntegrityError("the server sent a damaged private key")
        privk = words_to_bytes(decrypt_key(bytes_to_words(privk_enc), bytes_to_words(master_key)))
        if b64_bytes(answer["csid"]) is None:
            raise IntegrityError("the server sent a damaged session id")
        try:
            sid = sid_from_csid(answer["csid"], privk)
        except ValueError:
            raise IntegrityError("the session id does not decrypt with the account key") from None
        return Credentials(sid=sid, master_key=master_key, user_handle=answer.get("u"), privk=privk)
    if isinstance(answer.get("tsid"), str):
        tsid = b64_bytes(answer["tsid"])
        if tsid is None or len(tsid) != 32:
            raise IntegrityError("the server sent a damaged temporary session id")
        check = words_to_bytes(encrypt_key(bytes_to_words(tsid[:16]), bytes_to_words(master_key)))
        if check != tsid[16:]:
            raise IntegrityError("the temporary session does not match the master key")
        return Credentials(
            sid=answer["tsid"], master_key=master_key, user_handle=answer.get("u"), ephemeral=True
        )
    raise UnexpectedAnswerError("the login answer has neither csid nor tsid")


def login_ephemeral(api: ApiClient) -> Credentials:
    """Create an anonymous (ephemeral) account and log in to it; keys from ``secrets``."""
    from ..crypto import encrypt_key

    master_key = secrets.token_bytes(16)
    pwkey = secrets.token_bytes(16)
    challenge = secrets.token_bytes(16)
    enc_master = words_to_bytes(encrypt_key(bytes_to_words(master_key), bytes_to_words(pwkey)))
    ts = challenge + words_to_bytes(
        encrypt_key(bytes_to_words(challenge), bytes_to_words(master_key))
    )
    handle = api.request({"a": "up", "k": b64encode(enc_master), "ts": b64encode(ts)})
    if not isinstance(handle, str):
        raise UnexpectedAnswerError("unexpected answer to up")
    creds = _finish(api.request({"a": "us", "user": handle}), pwkey)
    if creds.user_handle is None:
        creds.user_handle = handle
    return creds
