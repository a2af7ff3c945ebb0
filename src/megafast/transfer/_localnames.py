"""Remote names as local names: the one rule for every place that writes a node's name to disk.

:func:`safe_local_name` makes one name safe; :func:`unique_names` makes the names of one
folder's entries distinct. A MEGA folder may hold two files of the same name, a file and a
folder of the same name, or names that become equal once made safe. On disk they need
distinct names: the first (in listing order) keeps its name and each later one gets
``name (1).ext``, ``name (2).ext``... (:func:`numbered`), as MEGA's own apps do. A name that
starts with another entry's name plus :data:`HELPER_MARK` (how megafast's helper files of a
download are called: part file, sidecar) also gives way, so that no download's helper file can
take another entry's place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

__all__ = ["HELPER_MARK", "numbered", "safe_local_name", "unique_names"]

#: What follows a download's name in the names of its helper files.
HELPER_MARK = ".megafast-part"

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


def numbered(name: str, n: int) -> str:
    """``name`` with `` (n)`` before its extension: ``a.txt`` -> ``a (1).txt``; a leading dot
    is not an extension (``.bashrc (1)``)."""
    path = PurePosixPath(name)
    suffix = path.suffix if path.stem else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    return f"{stem} ({n}){suffix}"


def _owners(name: str) -> Iterable[str]:
    """The names whose helper files could be called ``name``."""
    i = name.find(HELPER_MARK)
    while i > 0:
        yield name[:i]
        i = name.find(HELPER_MARK, i + 1)


def unique_names(names: Sequence[str]) -> list[str]:
    """Distinct local names for ``names`` (the entries of one folder, in listing order).

    A name keeps itself unless an earlier entry has it or it is a helper file's name of
    another entry; then it becomes the first ``numbered(name, n)`` (n = 1, 2, ...) that is
    no entry's name, no entry's helper file name, and has no entry as its helper file.
    """
    everything = set(names)
    result: list[str] = []
    moved: list[int] = []
    kept: set[str] = set()
    for i, name in enumerate(names):
        if name in kept or any(owner in everything for owner in _owners(name)):
            moved.append(i)
        else:
            kept.add(name)
        result.append(name)
    if not moved:
        return result
    blocked = set(everything)
    owners = {owner for name in everything for owner in _owners(name)}
    next_n: dict[str, int] = {}
    for i in moved:
        name = names[i]
        n = next_n.get(name, 1)
        candidate = numbered(name, n)
        while (
            candidate in blocked
            or candidate in owners
            or any(owner in blocked for owner in _owners(candidate))
        ):
            n += 1
            candidate = numbered(name, n)
        next_n[name] = n + 1
        blocked.add(candidate)
        owners.update(_owners(candidate))
        result[i] = candidate
    return result
