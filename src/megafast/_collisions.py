"""Local names for the entries of one remote folder: none lost when names collide.

A MEGA folder may hold two files of the same name, a file and a folder of the same name, or
names that become equal once made safe for the local file system. On disk they need distinct
names: the first (in listing order) keeps its name and each later one gets ``name (1).ext``,
``name (2).ext``... as MEGA's own apps do. A name that starts with another entry's name plus
:data:`HELPER_MARK` (what megafast's helper files of a download are called: part file,
sidecar) also gives way, so that no download's helper file can take another entry's place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["HELPER_MARK", "numbered", "unique_names"]

#: What follows a download's name in the names of its helper files.
HELPER_MARK = ".megafast-part"


def numbered(name: str, n: int) -> str:
    """``name`` with `` (n)`` before its extension: ``a.txt`` -> ``a (1).txt``; a leading dot
    is not an extension (``.bashrc (1)``)."""
    dot = name.rfind(".")
    if dot <= 0:
        return f"{name} ({n})"
    return f"{name[:dot]} ({n}){name[dot:]}"


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
