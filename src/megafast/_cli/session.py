"""The session store: one JSON file in the user's config directory, mode 0600.

Only what resumes a session is stored (the API URL, the email and the client's session
state); never the password.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["config_dir", "session_path", "load_session", "save_session", "delete_session"]

SESSION_FILE = "session.json"
_FORMAT = 1


def config_dir() -> Path:
    """``$MEGAFAST_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/megafast``, else ``~/.config/megafast``."""
    explicit = os.environ.get("MEGAFAST_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "megafast"
    return Path.home() / ".config" / "megafast"


def session_path() -> Path:
    return config_dir() / SESSION_FILE


def load_session() -> dict[str, Any] | None:
    """The stored session, or None when there is none (a damaged file counts as none)."""
    try:
        with open(session_path(), encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT or "session" not in data:
        return None
    return data


def save_session(api_url: str, email: str | None, session: Any) -> Path:
    """Write the session atomically; the file is created with mode 0600, its folder 0700."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {"format": _FORMAT, "api_url": api_url, "email": email, "session": session}
    payload = json.dumps(record, indent=1).encode("utf-8")
    target = directory / SESSION_FILE
    temporary = directory / f".{SESSION_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # Created 0600 from the start: the session is never readable by others, not even briefly.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target


def delete_session() -> bool:
    """Remove the stored session; True when there was one."""
    try:
        os.unlink(session_path())
    except FileNotFoundError:
        return False
    return True
