"""Remote names as local names: the one rule for every place that writes a node's name to disk."""

from __future__ import annotations

import re

__all__ = ["safe_local_name"]

# Path separators (both, on every system: a name made on Windows must not climb on POSIX)
# and control characters, NUL included.
_UNSAFE = re.compile(r"[/\\\x00-\x1f]")


def safe_local_name(name: str) -> str:
    """``name`` (a node's name from the server, so hostile) as one local path component.

    Separators and control characters become ``_``, surrounding whitespace goes, and a
    result that would be empty, ``.`` or ``..`` gets a ``_`` in front: the result never
    names another directory, and joining it to a folder never leaves that folder.
    """
    cleaned = _UNSAFE.sub("_", name).strip()
    if cleaned in ("", ".", ".."):
        cleaned = "_" + cleaned
    return cleaned
