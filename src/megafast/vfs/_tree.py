"""The live node tree as a POSIX-like namespace: paths of display names, entries, listings.

A display name is a MEGA node name made into one path component by the filesystem's rule
(:func:`megafast.fs._paths.escape_name`: ``/``, control characters, ``%``, ``.`` and ``..``
escaped), then made distinct within its folder by the downloads' rule
(:func:`megafast.transfer._localnames.unique_names`: the later of two equal names becomes
``name (1).ext``). So the mount, the HTTP server, fsspec and downloads show one name each.

Listings are read from the client's :class:`~megafast._tree.nodestore.NodeStore` under the
backend's lock and kept per folder until the tree changes (:meth:`TreeView.changed`), so an
``ls`` costs no request. Paths deeper than :data:`MAX_DEPTH` are refused (a hostile tree
cannot make a lookup run long).
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from dataclasses import dataclass

from .._tree import typed
from .._tree.nodestore import NodeStore
from ..fs._paths import escape_name
from ..transfer._localnames import unique_names

__all__ = [
    "Entry",
    "TreeView",
    "display_names",
    "fingerprint_mtime",
    "fingerprint_with_mtime",
    "MAX_DEPTH",
]

#: Deepest path looked up (components); deeper paths do not exist for the mount.
MAX_DEPTH = 256
#: Folders whose display listing is kept (the rest are rebuilt from the store on use).
LISTINGS_KEPT = 512
#: Entries kept between changes of the tree (all are dropped at a change, or when full).
ENTRIES_KEPT = 200_000
#: Handles whose last display path is remembered, for kernel cache invalidation.
PATHS_KEPT = 100_000


def display_names(names: list[str]) -> list[str]:
    """The display names of one folder's entries (MEGA names, in listing order)."""
    return unique_names([escape_name(n) for n in names])


def fingerprint_mtime(c: object) -> int | None:
    """The mtime (seconds) held in a MEGA fingerprint (attribute ``c``), else None."""
    if not isinstance(c, str) or len(c) > 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(c + "=" * (-len(c) % 4))
    except ValueError:
        return None
    if len(raw) < 18 or not 1 <= raw[16] <= 8 or len(raw) < 17 + raw[16]:
        return None
    return int.from_bytes(raw[17 : 17 + raw[16]], "little")


def fingerprint_with_mtime(c: object, mtime: int) -> str | None:
    """The fingerprint ``c`` with its mtime replaced by ``mtime`` (seconds), else None."""
    if fingerprint_mtime(c) is None or mtime < 0:
        return None
    assert isinstance(c, str)
    raw = base64.urlsafe_b64decode(c + "=" * (-len(c) % 4))
    stamp = mtime.to_bytes(max(1, (mtime.bit_length() + 7) // 8), "little")
    return base64.urlsafe_b64encode(raw[:16] + bytes([len(stamp)]) + stamp).decode().rstrip("=")


@dataclass(frozen=True)
class Entry:
    """One node as the mount shows it: sizes in bytes, times in seconds since the epoch."""

    handle: str
    is_dir: bool
    size: int
    mtime: int
    ctime: int


class TreeView:
    """Paths and listings over the tree the ``source`` callable returns: ``(store, root)``.

    Call every method with ``lock`` held or not: each takes it. :meth:`changed` must be called
    after the store changed (the watcher and the write operations do)."""

    def __init__(self, source: object, lock: threading.RLock) -> None:
        self._source = source
        self.lock = lock
        self.generation = 0
        self._listings: OrderedDict[str, tuple[int, dict[str, str], list[str]]] = OrderedDict()
        self._paths: OrderedDict[str, str] = OrderedDict()
        self._entries: dict[str, Entry] = {}

    def tree(self) -> tuple[NodeStore, str]:
        store, root = self._source()  # type: ignore[operator]
        return store, root

    def changed(self) -> None:
        """The tree changed: listings are rebuilt on their next use."""
        with self.lock:
            self.generation += 1
            self._listings.clear()
            self._entries.clear()

    # -- entries --------------------------------------------------------------------------
    def entry(self, handle: str) -> Entry | None:
        with self.lock:
            cached = self._entries.get(handle)
            if cached is not None:
                return cached
            found = self._entry(handle)
            if found is not None:
                if len(self._entries) >= ENTRIES_KEPT:
                    self._entries.clear()
                self._entries[handle] = found
            return found

    def _entry(self, handle: str) -> Entry | None:
        with self.lock:
            node = typed.node(self.tree()[0], handle)
            if node is None:
                return None
            ctime = max(0, node.mtime)
            if node.is_folder:
                return Entry(handle, True, 0, ctime, ctime)
            mtime = fingerprint_mtime(node.fingerprint)
            return Entry(handle, False, max(0, node.size), ctime if mtime is None else mtime, ctime)

    def _listing(self, handle: str) -> tuple[dict[str, str], list[str]]:
        cached = self._listings.get(handle)
        if cached is not None and cached[0] == self.generation:
            self._listings.move_to_end(handle)
            return cached[1], cached[2]
        store, _root = self.tree()
        kids: list[str] = []
        names: list[str] = []
        for child in typed.children(store, handle):
            if child.name:  # undecryptable: no name to show
                kids.append(child.handle)
                names.append(child.name)
        shown = display_names(names)
        by_name = dict(zip(shown, kids, strict=True))
        self._listings[handle] = (self.generation, by_name, shown)
        while len(self._listings) > LISTINGS_KEPT:
            self._listings.popitem(last=False)
        return by_name, shown

    def listing(self, handle: str) -> list[tuple[str, str]]:
        """``(display name, handle)`` of the folder's entries, in listing order."""
        with self.lock:
            by_name, shown = self._listing(handle)
            return [(name, by_name[name]) for name in shown]

    def child(self, parent: str, display: str) -> str | None:
        with self.lock:
            return self._listing(parent)[0].get(display)

    # -- paths ----------------------------------------------------------------------------
    def root(self) -> str:
        with self.lock:
            return self.tree()[1]

    def lookup(self, path: str) -> str | None:
        """The handle at ``path`` (``/``-separated display names from the root), or None."""
        parts = [p for p in path.split("/") if p]
        if len(parts) > MAX_DEPTH:
            return None
        with self.lock:
            h: str | None = self.tree()[1]
            for part in parts:
                assert h is not None
                h = self._listing(h)[0].get(part)
                if h is None:
                    return None
            assert h is not None
            self._remember(h, "/" + "/".join(parts))
            return h

    def _remember(self, handle: str, path: str) -> None:
        self._paths[handle] = path
        self._paths.move_to_end(handle)
        while len(self._paths) > PATHS_KEPT:
            self._paths.popitem(last=False)

    def known_path(self, handle: str) -> str | None:
        """The path ``handle`` was last looked up at (before a change moved it), if any."""
        with self.lock:
            return self._paths.get(handle)

    def known_paths(self) -> list[str]:
        with self.lock:
            return list(self._paths.values())

    def path_of(self, handle: str) -> str | None:
        """The display path of ``handle`` now (None when it is not below the root)."""
        with self.lock:
            store, root = self.tree()
            parts: list[str] = []
            h: str | None = handle
            for _ in range(MAX_DEPTH + 1):
                if h == root:
                    path = "/" + "/".join(reversed(parts))
                    self._remember(handle, path)
                    return path
                node = typed.node(store, h) if h is not None else None
                parent = node.parent if node is not None else None
                if parent is None or parent not in store:
                    return None
                by_name, shown = self._listing(parent)
                name = next((n for n in shown if by_name[n] == h), None)
                if name is None:
                    return None
                parts.append(name)
                h = parent
            return None
