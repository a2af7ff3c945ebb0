"""The one adapter between the mount/HTTP front ends and the client (issue 20, stage A).

Everything the front ends ask of MEGA goes through :class:`Backend`: the tree (an account's
Cloud Drive or a public folder link, through :class:`megafast.fs._engine.Engine`, which
already holds one client under one lock), file sources for the reader, and the write
operations (upload, mkdir, move, rename, rubbish, destroy). It also follows the account's
changes: :meth:`Backend.start_watching` reads ``/sc`` on a thread of its own and applies the
action packets to the client's tree under the engine's lock, then tells the front end which
handles changed (for kernel cache invalidation). When the core of issue 19 lands, only this
module changes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._tree.nodestore import NodeStore, StoreError
from ..errors import MegaError, ValidationError
from ..fs._engine import Engine
from ..transfer import TransferConfig
from ._cache import DiskCache, MemoryCache
from ._reader import Fetcher, RemoteFile
from ._tree import TreeView, fingerprint_with_mtime

__all__ = ["Backend", "Changes"]

log = logging.getLogger("megafast.mount")
#: Seconds the account's storage figures are reused for ``statfs``.
STORAGE_SECONDS = 30.0


@dataclass(frozen=True)
class Changes:
    """What a batch of action packets changed: the handles named (new, moved, renamed,
    deleted), and whether the whole tree was listed again."""

    handles: tuple[str, ...]
    reload: bool = False


class Backend:
    """One client (an account, or a public folder link when ``link`` is given) seen as a
    tree of display paths, with a shared reader (see the module doc).

    ``memory_cache`` and ``disk_cache`` are byte caps; ``cache_dir`` enables the disk cache.
    """

    def __init__(
        self,
        mega: Any,
        link: str | None = None,
        *,
        config: TransferConfig | None = None,
        memory_cache: int = 64 << 20,
        cache_dir: str | os.PathLike[str] | None = None,
        disk_cache: int = 1 << 30,
        root: str | None = None,
    ) -> None:
        self.mega = mega
        self.engine = Engine(mega, link)
        self.lock = self.engine.lock
        self._root = root
        self.view = TreeView(self._tree, self.lock)
        # a read or an upload over the transfer quota fails at once (an errno) instead of
        # waiting for the quota to come back: a process reading a file must not hang
        base = config or mega.options.get("transfer") or TransferConfig()
        self.config = dataclasses.replace(base, wait_on_quota=False)
        self._storage: tuple[float, tuple[int, int] | None] | None = None
        disk = DiskCache(cache_dir, disk_cache) if cache_dir is not None else None
        self.fetcher = Fetcher(mega.http, self.config, MemoryCache(memory_cache), disk)
        self._watch_thread: threading.Thread | None = None
        self._channel: Any = None
        if mega.options.get("transfer") is None:
            mega.options["transfer"] = self.config

    @property
    def read_only(self) -> bool:
        """True for public links."""
        return self.engine.read_only

    def _tree(self) -> tuple[NodeStore, str]:
        tree, root = self.engine.tree()
        return tree.store, self._root or root

    def select_root(self, handle: str) -> None:
        """Serve the folder ``handle`` as the root."""
        self._root = handle
        self.view.changed()

    def load(self) -> None:
        """Load the tree now (a login's listing or a warm start from the node cache)."""
        with self.lock:
            self.engine.tree()

    # -- reading --------------------------------------------------------------------------
    def node(self, handle: str) -> dict[str, Any] | None:
        with self.lock:
            tree, _ = self.engine.tree()
            return tree.nodes.get(handle)

    def remote_file(self, handle: str) -> RemoteFile:
        """The shared reader state of the file ``handle`` (WrongKeyError when it cannot be
        decrypted); no request is made until bytes are read."""
        node = self.node(handle)
        if node is None or node.get("t") != 0:
            raise ValidationError("not a file")
        src = self.engine.read_source(node)
        engine = self.engine
        urls: list[Callable[[bool], str]] = []

        def get_url(refresh: bool) -> str:
            if not urls:
                urls.append(engine.url_source(src))
                return urls[0](False)
            return urls[0](refresh)

        return self.fetcher.file(handle, src.size, src.key, get_url)

    # -- writing --------------------------------------------------------------------------
    def upload(self, path: str, parent: str, name: str, mtime: float) -> str:
        """Upload the local file ``path`` as ``name`` into ``parent`` with ``mtime``
        (seconds; in MEGA's fingerprint); returns the new node's handle."""
        os.utime(path, (mtime, mtime))
        node = self.engine.upload(path, None, parent, name)
        self.view.changed()
        return str(node["h"])

    def set_mtime(self, handle: str, mtime: int) -> None:
        """Set a file's mtime (seconds): its fingerprint attribute ``c`` is rewritten."""
        from .._account import nodeops as _nodeops

        self._writable()
        with self.lock:
            tree, _ = self.engine.tree()
            node = tree.nodes.get(handle)
            if node is None or node.get("t") != 0 or not isinstance(node.get("a"), dict):
                return
            attrs = dict(node["a"])
            c = fingerprint_with_mtime(attrs.get("c"), mtime)
            if c is None or c == attrs.get("c"):
                return
            attrs["c"] = c
            self.mega._request(
                {
                    "a": "a",
                    "attr": _nodeops.encrypt_attrs(attrs, node["k"]),
                    "key": _nodeops.wrap_key(self.mega, node["key"]),
                    "n": handle,
                    "i": self.mega.request_id,
                }
            )
            tree.set_attributes(handle, attrs)
            self.view.changed()

    def mkdir(self, parent: str, name: str) -> str:
        with self.lock:
            node = self.engine.mkdir(parent, name)
            self.view.changed()
            return str(node["h"])

    def move(self, handle: str, parent: str, name: str | None) -> None:
        """Move ``handle`` into ``parent`` (a server move), renamed to ``name`` when given."""
        self._writable()
        with self.lock:
            store, _ = self._tree()
            if store.parent_of(handle) != parent:
                self.mega.move(handle, parent)
            if name is not None and store.name_of(handle) != name:
                self.mega.rename(handle, name)
            self.view.changed()

    def remove(self, handle: str, *, permanent: bool) -> None:
        """Move ``handle`` to the Rubbish Bin, or with ``permanent`` delete it for good."""
        self._writable()
        with self.lock:
            if permanent:
                self.engine.destroy(handle)
            else:
                self.mega.delete(handle)
            self.view.changed()

    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError("a public link is read-only")

    def storage(self) -> tuple[int, int] | None:
        """(used, total) bytes of the account, or None when unknown; asked at most every
        :data:`STORAGE_SECONDS` seconds (``df`` and file managers ask often)."""
        if self.read_only:
            return None
        cached = self._storage
        if cached is not None and time.monotonic() - cached[0] < STORAGE_SECONDS:
            return cached[1]
        result: tuple[int, int] | None = None
        try:
            with self.lock:
                space = self.mega.get_storage_space()
            used, total = space.get("used"), space.get("total")
            if isinstance(used, int) and isinstance(total, int):
                result = (used, total)
        except MegaError:
            result = None
        self._storage = (time.monotonic(), result)
        return result

    # -- following changes ----------------------------------------------------------------
    def start_watching(self, on_changes: Callable[[Changes], None]) -> None:
        """Follow the account's changes (``/sc``) on a daemon thread; nothing for links."""
        if self.read_only or self._watch_thread is not None:
            return
        from .._tree.watch import ScChannel
        from .._wire.api import new_http_session

        with self.lock:
            store, _ = self._tree()
            sid = self.mega.sid
            if sid is None:
                return
            channel = ScChannel(self.mega.api_url, sid, store.sn or "", http=new_http_session(2))
        self._channel = channel
        self._watch_thread = threading.Thread(
            target=self._watch, args=(channel, on_changes), daemon=True, name="megafast-mount-sc"
        )
        self._watch_thread.start()

    def _watch(self, channel: Any, on_changes: Callable[[Changes], None]) -> None:
        from .._tree.watch import SnTooOld, apply_packet

        while not channel.stop_event.is_set():
            try:
                with self.lock:
                    channel.sn = self._tree()[0].sn or channel.sn
                packets, _ = channel.poll(wait=True)
            except SnTooOld:
                self._reload(on_changes)
                continue
            except MegaError as exc:
                log.warning("following changes failed (%s); retrying in 5 s", exc)
                channel.stop_event.wait(5)
                continue
            if not packets:
                continue
            handles: list[str] = []
            try:
                with self.lock:
                    store, _ = self._tree()
                    keyring = self.mega._live.keyring
                    for packet in packets:
                        for event in apply_packet(store, keyring, packet, self.mega.request_id):
                            if event.handle:
                                handles.append(event.handle)
                    store.sn = channel.sn
                    self.view.changed()
            except StoreError as exc:
                log.warning("a change could not be applied (%s): listing everything again", exc)
                self._reload(on_changes)
                continue
            on_changes(Changes(tuple(dict.fromkeys(handles))))

    def _reload(self, on_changes: Callable[[Changes], None]) -> None:
        try:
            with self.lock:
                self.engine.refresh()
                self.engine.tree()
                self.view.changed()
        except MegaError as exc:
            log.warning("listing the tree again failed: %s", exc)
            return
        on_changes(Changes((), reload=True))

    def close(self) -> None:
        """Stop following changes and close the reader's connections."""
        if self._channel is not None:
            self._channel.close()
        self.fetcher.close()
