"""The session store: one JSON file in the user's config directory, mode 0600.

Only what resumes a session is stored (the API URL, the email and the client's session
state); never the password.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..transfer._atomic import write_private_file

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
    write_private_file(target, payload)
    return target


def delete_session() -> bool:
    """Remove the stored session; True when there was one."""
    try:
        os.unlink(session_path())
    except FileNotFoundError:
        return False
    return True
