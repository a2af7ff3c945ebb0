"""The one adapter between the mount/HTTP/WebDAV front ends and the core (issue 20).

:class:`Backend` stands on a :class:`~megafast._account.core.Core` (an account, or a public
folder or file link read through it) and its typed nodes (:mod:`megafast._tree.typed`): the
tree as display paths (:class:`~megafast.vfs._tree.TreeView`), file sources for the shared
reader, and the write operations (upload with fingerprint and mtime, mkdir, move, rename,
Rubbish Bin, destroy, mtime). It follows the account's changes itself:
:meth:`Backend.start_watching` reads ``/sc`` on a thread of its own, applies the action
packets to the core's store under :attr:`Backend.lock`, saves the node cache now and then (the
store then matches its ``sn``) and tells the front end which handles changed.

Locking: the core's API client and its tree are not thread-safe, so every look at the tree and
every command that changes it runs under :attr:`Backend.lock`; the bytes of transfers, the
``u`` and ``g`` commands and the ``/sc`` long poll run outside it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._account import nodeops as _nodeops
from .._account import sources as _sources
from .._account.core import Core
from .._tree import typed
from .._tree.nodes import NodeTree, NodeType
from .._tree.nodestore import NodeStore, StoreError
from .._tree.typed import TreeNode
from .._wire.codec import FileKey, bytes_to_words, words_to_bytes
from .._wire.links import PublicLink, parse_link
from ..errors import MegaError, UnexpectedAnswerError, ValidationError, WrongKeyError
from ..transfer import TransferConfig, UploadResult
from ._cache import DiskCache, MemoryCache
from ._growing import GrowingFile, StreamedUpload
from ._reader import Fetcher, RemoteFile
from ._tree import TreeView, fingerprint_with_mtime

__all__ = ["Backend", "Changes"]

log = logging.getLogger("megafast.mount")
#: Seconds the account's storage figures are reused for ``statfs``.
STORAGE_SECONDS = 30.0
#: Seconds between two saves of the node cache while changes arrive.
CACHE_SAVE_SECONDS = 30.0
#: Handle of the folder that holds the file of a public file link.
FILE_LINK_ROOT = "<file-link>"


@dataclass(frozen=True)
class Changes:
    """What a batch of action packets changed: the handles named (new, moved, renamed,
    deleted), and whether the whole tree was listed again."""

    handles: tuple[str, ...]
    reload: bool = False


class Backend:
    """One core (or a front end holding one as ``.core``, such as :class:`~megafast.Mega`)
    seen as a tree of display paths, with a shared reader (see the module doc). ``link``: a
    public folder or file link to serve instead of the account (read-only).

    ``memory_cache`` and ``disk_cache`` are byte caps; ``cache_dir`` enables the disk cache.
    """

    def __init__(
        self,
        core: Any,
        link: str | None = None,
        *,
        config: TransferConfig | None = None,
        memory_cache: int = 128 << 20,
        cache_dir: str | os.PathLike[str] | None = None,
        disk_cache: int = 1 << 30,
        root: str | None = None,
    ) -> None:
        self.core: Core = getattr(core, "core", core)
        if not isinstance(self.core, Core):
            raise ValidationError("Backend needs a Core (or a Mega holding one)")
        self.lock = threading.RLock()
        self._link: PublicLink | None = parse_link(link) if link else None
        self._public: tuple[NodeTree, str] | None = None
        self._root = root
        self.view = TreeView(self._tree, self.lock)
        base = config or self.core.transfer_config or TransferConfig()
        # over the transfer quota a read fails at once (an errno), never waits for hours
        self.config = dataclasses.replace(base, wait_on_quota=False)
        disk = DiskCache(cache_dir, disk_cache) if cache_dir is not None else None
        self.fetcher = Fetcher(self.core.http, self.config, MemoryCache(memory_cache), disk)
        self._storage: tuple[float, tuple[int, int] | None] | None = None
        self._watch_thread: threading.Thread | None = None
        self._channel: Any = None
        self._saved_at = time.monotonic()
        self._unsaved = False  # packets applied since the node cache was last saved

    @property
    def read_only(self) -> bool:
        """True for public links."""
        return self._link is not None

    # -- the tree -------------------------------------------------------------------------
    def _tree(self) -> tuple[NodeStore, str]:
        """The store and the root handle (call under :attr:`lock`)."""
        if self._link is None:
            tree = self.core.tree()
            return tree.store, self._root or self.core.root()
        if self._public is None:
            self._public = self._load_public(self._link)
        tree, root = self._public
        return tree.store, self._root or root

    def _load_public(self, link: PublicLink) -> tuple[NodeTree, str]:
        if link.kind == "folder":
            tree = _sources.public_folder_tree(self.core, link)
            top = _sources.public_root(tree, link)
            if top.get("undecryptable") or "key" not in top:
                raise WrongKeyError("the key does not decrypt this folder (wrong key?)")
            return tree, str(top["h"])
        # a file link: a folder of its own holding the one file, under the file's name
        answer = self.core.request({"a": "g", "p": link.handle, "ssm": 1})
        if not isinstance(answer, dict) or type(answer.get("s")) is not int:
            raise UnexpectedAnswerError("g gave no file size")
        key = link.key_a32()
        attrs = _sources.decrypt_at(answer.get("at", ""), key)  # WrongKeyError first
        if not isinstance(attrs.get("n"), str) or not attrs["n"]:
            raise WrongKeyError("the file link's attributes have no name")
        tree = NodeTree()
        tree.store.put(FILE_LINK_ROOT, None, NodeType.FOLDER, "", 0, 0, bytes(16), "")
        tree.store.put(
            link.handle,
            FILE_LINK_ROOT,
            NodeType.FILE,
            "",
            answer["s"],
            0,
            words_to_bytes(key),
            attrs["n"],
            json.dumps(attrs, separators=(",", ":")).encode(),
        )
        return tree, FILE_LINK_ROOT

    def select_root(self, handle: str) -> None:
        """Serve the folder ``handle`` as the root."""
        self._root = handle
        self.view.changed()

    def load(self) -> None:
        """Load the tree now (the account's listing, a warm start from the node cache, or
        the public link's folder)."""
        with self.lock:
            self._tree()

    def get(self, handle: str) -> TreeNode | None:
        """The typed node ``handle``, or None."""
        with self.lock:
            return typed.node(self._tree()[0], handle)

    # -- reading --------------------------------------------------------------------------
    def remote_file(self, handle: str) -> RemoteFile:
        """The shared reader state of the file ``handle`` (WrongKeyError when it cannot be
        decrypted); the first ``g`` is asked only when bytes are read. A handle's bytes, size
        and key never change (a new version is a new node), so a file already known to the
        fetcher is returned as it is, without a look at the tree."""
        known = self.fetcher.known(handle)
        if known is not None:
            return known
        node = self.get(handle)
        if node is None or not node.is_file:
            raise ValidationError("not a file")
        if node.key is None or len(node.key) != 32:
            raise WrongKeyError("this file cannot be decrypted")
        link = self._link
        if link is not None and link.kind == "file":
            source = _sources.link_source(link)
        else:
            folder = link.handle if link is not None else None
            source = _sources.FileSource(
                {"a": "g", "g": 1, "n": handle}, folder, bytes_to_words(node.key), handle
            )
        core = self.core
        fetched: list[bool] = []

        def get_url(refresh: bool) -> str:
            if refresh or not fetched:  # g needs no look at the tree: outside the lock
                _sources.fetch(core, source)
                fetched.append(True)
            return str(source.answer["g"])

        return self.fetcher.file(handle, node.size, source.key, get_url)

    # -- writing --------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError("a public link is read-only")

    def _get_upload_url(self, size: int) -> str:
        return _sources.checked_u_answer(self.core.request({"a": "u", "s": size}))

    def upload(self, path: str, parent: str, name: str, mtime: float) -> str:
        """Upload the local file ``path`` as ``name`` into ``parent`` with ``mtime``
        (seconds; in MEGA's fingerprint); returns the new node's handle. The bytes move
        outside the lock; only the node's creation (``p``) holds it."""
        from ..crypto import fingerprint
        from ..transfer import upload_file

        self._writable()
        os.utime(path, (mtime, mtime))
        c = fingerprint(path, int(mtime))
        st = os.stat(path)
        identity = f"{Path(path).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
        resume_id = "\0".join(("megafast-mount-upload", self.core.api_url, parent, name, identity))
        result = upload_file(
            self.core.http,
            self._get_upload_url,
            path,
            st.st_size,
            config=self.config,
            resume_id=resume_id,
        )
        return self.put_uploaded(result, parent, name, c)

    def stream_upload(self, fd: int, size: int) -> StreamedUpload:
        """Start uploading the spool file ``fd`` while it is written, guessing that it ends
        at ``size`` bytes (see :mod:`megafast.vfs._growing`); :meth:`put_uploaded` makes
        the node once :meth:`StreamedUpload.result` gives it."""
        from ..transfer import upload_file

        self._writable()
        config = dataclasses.replace(self.config, resume=False)

        def run(source: GrowingFile, cancel: threading.Event) -> UploadResult:
            return upload_file(
                self.core.http, self._get_upload_url, source, config=config, cancel=cancel
            )

        return StreamedUpload(fd, size, run)

    def put_uploaded(self, result: UploadResult, parent: str, name: str, c: str) -> str:
        """Make the node of the uploaded bytes ``result`` as ``name`` in ``parent``, with
        MEGA's fingerprint ``c`` (:func:`~megafast.crypto.fingerprint`); its handle."""
        attrs = {"n": name, "c": c}
        key = FileKey.unpack(result.key).packed
        item = {
            "h": result.token,
            "t": NodeType.FILE.value,
            "a": _nodeops.encrypt_attrs(attrs, key),
        }
        with self.lock:
            answer = _nodeops.put_node(self.core, parent, item, key)
            self.view.changed()
        return _nodeops.new_handle(answer)

    def mkdir(self, parent: str, name: str) -> str:
        self._writable()
        with self.lock:
            handle = _nodeops.new_handle(_nodeops.mkdir(self.core, name, parent))
            self.view.changed()
            return handle

    def move(self, handle: str, parent: str, name: str | None) -> None:
        """Move ``handle`` into ``parent`` (a server move), renamed to ``name`` when given."""
        self._writable()
        with self.lock:
            node = self.get(handle)
            if node is None:
                raise ValidationError("no such node")
            if node.parent != parent:
                _nodeops.move(self.core, handle, parent)
            if name is not None and node.name != name:
                _nodeops.rename(self.core, handle, name)
            self.view.changed()

    def remove(self, handle: str, *, permanent: bool) -> None:
        """Move ``handle`` to the Rubbish Bin, or with ``permanent`` delete it for good."""
        self._writable()
        with self.lock:
            if handle == self._tree()[1]:
                raise PermissionError("the root cannot be removed")
            if permanent:
                _nodeops.destroy(self.core, handle)
            else:
                _nodeops.move(self.core, handle, self.core.root(NodeType.RUBBISH))
            self.view.changed()

    def set_mtime(self, handle: str, mtime: int) -> None:
        """Set a file's mtime (seconds): its fingerprint attribute ``c`` is rewritten."""
        self._writable()
        with self.lock:
            node = self.core.node(handle)
            if node.get("t") != NodeType.FILE or not isinstance(node.get("a"), dict):
                return
            attrs = dict(node["a"])
            c = fingerprint_with_mtime(attrs.get("c"), mtime)
            if c is None or c == attrs.get("c"):
                return
            attrs["c"] = c
            self.core.request(
                {
                    "a": "a",
                    "attr": _nodeops.encrypt_attrs(attrs, node["k"]),
                    "key": _nodeops.wrap_key(self.core, node["key"]),
                    "n": handle,
                    "i": self.core.request_id,
                }
            )
            self.core.tree().set_attributes(handle, attrs)
            self.view.changed()

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
            answer = self.core.request({"a": "uq", "xfer": 1, "strg": 1})
            used, total = answer.get("cstrg"), answer.get("mstrg")
            if type(used) is int and type(total) is int:
                result = (used, total)
        except (MegaError, AttributeError):
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
            sid = self.core.sid
            if sid is None:
                return
            # this thread applies every packet and saves the cache: the core's own saving
            # after a change (which reads /sc too) would apply them a second time
            self.core.tree().on_change = None
            channel = ScChannel(self.core.api_url, sid, store.sn or "", http=new_http_session(2))
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
                    keyring = self.core.keyring
                    assert keyring is not None
                    own = self.core.api_client.own_seqtags
                    for packet in packets:
                        for event in apply_packet(
                            store, keyring, packet, self.core.request_id, own
                        ):
                            if event.handle:
                                handles.append(event.handle)
                    store.sn = channel.sn
                    self.view.changed()
                    self._unsaved = True
                    self._save_cache(force=False)
            except StoreError as exc:
                log.warning("a change could not be applied (%s): listing everything again", exc)
                self._reload(on_changes)
                continue
            on_changes(Changes(tuple(dict.fromkeys(handles))))

    def _save_cache(self, force: bool) -> None:
        """Save the node cache when packets were applied since the last save (call under
        the lock, with the store matching its ``sn``): at most every
        :data:`CACHE_SAVE_SECONDS` seconds, or now with ``force``. An unchanged tree is
        never written again (a million nodes take a second to save)."""
        live = self.core.live
        if live is None or live.cache is None or not self._unsaved:
            return
        if force or time.monotonic() - self._saved_at >= CACHE_SAVE_SECONDS:
            try:
                live.cache.save(live.tree.store)
                self._unsaved = False
            except (MegaError, OSError) as exc:
                log.warning("node cache not saved: %s", exc)
            self._saved_at = time.monotonic()

    def _reload(self, on_changes: Callable[[Changes], None]) -> None:
        try:
            with self.lock:
                self.core.refresh()
                self.core.tree().on_change = None
                self.view.changed()
        except MegaError as exc:
            log.warning("listing the tree again failed: %s", exc)
            return
        on_changes(Changes((), reload=True))

    def close(self) -> None:
        """Stop following changes (saving the node cache) and close the reader."""
        if self._channel is not None:
            self._channel.close()
            with self.lock:
                self._save_cache(force=True)
        self.fetcher.close()
