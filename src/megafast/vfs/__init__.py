"""What the mount and the HTTP server share: the tree as display paths, the streaming
verified reader, its memory and disk caches, and the spool of written files."""

from __future__ import annotations

from ._backend import Backend, Changes
from ._cache import DiskCache, MemoryCache
from ._reader import Fetcher, RemoteFile, Stream
from ._spool import PendingUpload, Spool
from ._tree import Entry, TreeView, display_names

__all__ = [
    "Backend",
    "Changes",
    "DiskCache",
    "MemoryCache",
    "Fetcher",
    "RemoteFile",
    "Stream",
    "PendingUpload",
    "Spool",
    "Entry",
    "TreeView",
    "display_names",
]
