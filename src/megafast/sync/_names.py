"""Names that cannot cross from one side to the other, and conflict names."""

from __future__ import annotations

import time

from ..transfer._localnames import safe_local_name

__all__ = ["local_name_problem", "remote_name_problem", "conflict_name", "is_conflict_name"]

_NAME_MAX = 255  # bytes, the usual file-system limit for one name
_CONFLICT_MARK = " (conflict "


def local_name_problem(name: str) -> str | None:
    """Why a local name cannot be stored on MEGA (None when it can): MEGA's names are
    Unicode text, so a name that is not valid UTF-8 has no MEGA spelling."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "name is not valid UTF-8 (MEGA names are Unicode text)"
    return None


def remote_name_problem(name: object) -> str | None:
    """Why a remote name cannot exist as a local file name (None when it can): megafast's
    one rule for remote names on disk (``safe_local_name``) must leave it unchanged, since a
    sync never renames, and it must fit a file system's name length."""
    if not isinstance(name, str) or not name:
        return "the remote node has no name"
    if safe_local_name(name) != name:
        return (
            "the name cannot be a local file name (a separator, a control character, "
            "surrounding spaces, '.' or '..')"
        )
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not valid Unicode"
    if len(encoded) > _NAME_MAX:
        return f"the name is longer than {_NAME_MAX} bytes"
    return None


def conflict_name(name: str, now: float | None = None) -> str:
    """``report.pdf`` -> ``report (conflict 2026-12-01 140501).pdf``."""
    stamp = time.strftime("%Y-%m-%d %H%M%S", time.gmtime(time.time() if now is None else now))
    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        return f"{stem}{_CONFLICT_MARK}{stamp}).{ext}"
    return f"{name}{_CONFLICT_MARK}{stamp})"


def is_conflict_name(name: str) -> bool:
    return _CONFLICT_MARK in name
