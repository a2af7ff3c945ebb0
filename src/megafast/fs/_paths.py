"""Paths of the ``mega://`` filesystem: how MEGA node names become path components.

A path is the ``/``-separated list of node names from the filesystem's root (the Cloud
Drive, or the top of a public folder link), with no leading or trailing ``/``. MEGA node names
may contain ``/`` (other clients allow it), so each name is escaped into a path component:

- ``%`` becomes ``%25``, ``/`` becomes ``%2F``, and the control characters (``\x00`` to
  ``\x1f`` and ``\x7f``) become ``%00`` to ``%1F`` and ``%7F`` (hex digits in either case are
  read back);
- a name that is exactly ``.`` or ``..`` becomes ``%2E`` or ``%2E%2E``, so that a hostile
  shared folder cannot make a local copy climb out of its target directory.

Every other character stays as it is; a ``%`` followed by anything else is literal.
"""

from __future__ import annotations

import re

__all__ = ["escape_name", "unescape_name", "split_path", "join_path", "PROTOCOL"]

PROTOCOL = "mega"

_ESCAPE_RE = re.compile(r"[%/\x00-\x1f\x7f]")
_UNESCAPE_RE = re.compile(r"%(25|2[fF]|[01][0-9A-Fa-f]|7[fF])")
_DOTS = {".": "%2E", "..": "%2E%2E"}
_UNDOTS = {v: k for k, v in _DOTS.items()}


def escape_name(name: str) -> str:
    """The path component for the MEGA node name ``name``."""
    if name in _DOTS:
        return _DOTS[name]
    return _ESCAPE_RE.sub(lambda m: f"%{ord(m.group()):02X}", name)


def unescape_name(component: str) -> str:
    """The MEGA node name a path component stands for (the inverse of :func:`escape_name`)."""
    if component.upper() in _UNDOTS:
        return _UNDOTS[component.upper()]
    return _UNESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), component)


def strip_path(path: str) -> str:
    """``path`` without ``mega://``/``mega::`` and without outer or repeated ``/``."""
    for prefix in (PROTOCOL + "://", PROTOCOL + "::"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    return "/".join(part for part in path.split("/") if part)


def split_path(path: str) -> list[str]:
    """The node names along a stripped path (``""`` is the root: no names)."""
    return [unescape_name(part) for part in path.split("/") if part]


def join_path(parent: str, name: str) -> str:
    """The path of the node ``name`` inside the folder at path ``parent``."""
    component = escape_name(name)
    return f"{parent}/{component}" if parent else component
