"""What the ``mega://`` filesystem asks of megafast: one client, its node tree and transfers.

:class:`Engine` wraps one :class:`~megafast.Mega` (an account, a public folder link or a
public file link) with a lock. The API client and the node tree are not thread-safe, so every
API command and every look at the tree happens under the lock; the bytes of transfers move
outside it, through :mod:`megafast.transfer`, so threads (Dask's among them) transfer in
parallel. The filesystem instances of one process that use the same session share one engine
(:func:`shared_engine`): one login and one tree per process, not per task or per thread.

The layers below the facade are used only in this module: the client's core (``mega.core``:
its requests and its tree), :mod:`megafast._account.sources` for ``g`` and public links,
:mod:`megafast._account.nodeops` for node creation.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .._account import nodeops as _nodeops
from .._account import sources as _sources
from .._tree.nodes import NodeTree
from .._wire.codec import fold, words_to_bytes
from .._wire.links import PublicLink, parse_link
from ..errors import UnexpectedAnswerError, ValidationError, WrongKeyError
from ..media._remote import start_pictures

if TYPE_CHECKING:
    from ..transfer import TransferManager

__all__ = ["Engine", "shared_engine", "ReadSource"]

ProgressFn = Callable[[int, int], None]
#: Handle of the synthetic root folder holding the file of a public file link.
FILE_LINK_ROOT = "<file-link>"


@dataclass(frozen=True)
class ReadSource:
    """One file to read: the client's :class:`~megafast._account.sources.FileSource` (its ``g``
    command, public folder and key; it keeps the last ``g`` answer) and the size in bytes."""

    file: _sources.FileSource
    size: int

    @property
    def key(self) -> tuple[int, ...]:
        return self.file.key


class Engine:
    """One MEGA view (account, public folder or public file) shared by filesystem instances."""

    def __init__(self, mega: Any, link: str | None = None) -> None:
        self.mega = mega
        self.lock = threading.RLock()
        self._link: PublicLink | None = parse_link(link) if link else None
        self._public_tree: NodeTree | None = None
        self._public_root: str | None = None

    @property
    def folder(self) -> str | None:
        """The public handle of a public folder link (requests about its nodes carry it)."""
        return self._link.handle if self._link is not None and self._link.kind == "folder" else None

    @property
    def read_only(self) -> bool:
        """True for public links: nothing can be written through them."""
        return self._link is not None

    # -- the tree -------------------------------------------------------------------------
    def tree(self) -> tuple[NodeTree, str]:
        """The node tree and the handle of the filesystem's root (call under :attr:`lock`)."""
        if self._link is None:
            core = self.mega.core
            return core.tree(), core.root_id
        if self._public_tree is None:
            self._load_public()
        assert self._public_tree is not None and self._public_root is not None
        return self._public_tree, self._public_root

    def refresh(self) -> None:
        """Fetch the tree again (a public one on its next use)."""
        with self.lock:
            if self._link is None:
                self.mega.refresh()
            else:
                self._public_tree = None

    def link_file(self) -> dict[str, Any]:
        """The file node of a public file link (ValidationError for other views)."""
        with self.lock:
            tree, root = self.tree()
            files = [n for n in tree.child_nodes(root) if n.get("t") == 0]
        if self._link is None or self._link.kind != "file" or len(files) != 1:
            raise ValidationError("only public file links can be used as paths")
        return files[0]

    def _load_public(self) -> None:
        link = self._link
        assert link is not None
        if link.kind == "folder":
            tree = _sources.public_folder_tree(self.mega.core, link)
            root = _sources.public_root(tree, link)
            if root.get("undecryptable") or "key" not in root:
                raise WrongKeyError("the key does not decrypt this folder (wrong key?)")
            self._public_tree, self._public_root = tree, root["h"]
            return
        # a file link: a synthetic folder holding the one file, under its own name
        data = self.mega.core.request({"a": "g", "p": link.handle, "ssm": 1})
        if not isinstance(data, dict) or not isinstance(data.get("s"), int):
            raise UnexpectedAnswerError("g gave no file size")
        key = link.key_a32()
        attrs = _sources.decrypt_at(data.get("at", ""), key)  # WrongKeyError before any byte
        if not isinstance(attrs.get("n"), str) or not attrs["n"]:
            raise WrongKeyError("the file link's attributes have no name")
        tree = NodeTree()
        tree.store.put(FILE_LINK_ROOT, None, 1, "", 0, 0, bytes(16), "")
        attrs_json = json.dumps(attrs, separators=(",", ":")).encode()
        tree.store.put(
            link.handle,
            FILE_LINK_ROOT,
            0,
            "",
            data["s"],
            0,
            words_to_bytes(key),
            attrs["n"],
            attrs_json,
        )
        if isinstance(data.get("fa"), str):  # the file's thumbnail and preview
            tree.store.set_extra(link.handle, "fa", data["fa"])
        self._public_tree, self._public_root = tree, FILE_LINK_ROOT

    # -- reading --------------------------------------------------------------------------
    def read_source(self, node: dict[str, Any]) -> ReadSource:
        """How to fetch the file ``node`` (WrongKeyError when it cannot be decrypted)."""
        link = self._link
        if link is not None and link.kind == "file":
            file = _sources.link_source(link)
        else:
            folder = link.handle if link is not None else None
            file = _sources.node_source(node, folder)
        size = node.get("s")
        if type(size) is not int or size < 0:
            raise UnexpectedAnswerError("the server gave this file no valid size")
        return ReadSource(file, size)

    def url_source(self, src: ReadSource) -> Callable[[bool], str]:
        """``get_url(refresh)`` for the transfer engine; asks for the first URL now (and a
        new one, under the lock, when the engine says the last one stopped working)."""
        with self.lock:
            _sources.fetch(self.mega.core, src.file)

        def get_url(refresh: bool = False) -> str:
            if refresh:
                with self.lock:
                    _sources.fetch(self.mega.core, src.file)
            return str(src.file.answer["g"])

        return get_url

    def open_reader(
        self, src: ReadSource, window: int, get_url: Callable[[bool], str] | None = None
    ) -> Any:
        """A seekable verifying reader (:class:`~megafast.transfer.MegaReader`) whose read
        window is ``window`` bytes (at least one MAC chunk, at most the engine's 4 MiB);
        ``get_url`` from :meth:`url_source` (a new one when None)."""
        import dataclasses

        from ..transfer import TransferConfig, open_reader

        config = self._config() or TransferConfig()
        config = dataclasses.replace(config, piece_size=window)
        urls = get_url if get_url is not None else self.url_source(src)
        return open_reader(self.mega.http, urls, src.size, src.key, config=config)

    def read_all(self, src: ReadSource, progress: ProgressFn | None = None) -> bytes:
        """The whole file, fetched over parallel connections; the MAC is checked before the
        bytes are returned (:class:`~megafast.errors.IntegrityError` otherwise)."""
        sink = io.BytesIO()
        self.download_to(src, sink, progress)
        return sink.getvalue()  # shares the buffer: no second copy of a large file

    def download_to(
        self, src: ReadSource, fileobj: BinaryIO, progress: ProgressFn | None = None
    ) -> None:
        """Write the file to ``fileobj`` in order (parallel fetches); the MAC is checked at
        the end, so on IntegrityError what was written must be discarded."""
        from ..transfer import download_to_fileobj

        download_to_fileobj(
            self.mega.http,
            self.url_source(src),
            src.size,
            src.key,
            fileobj,
            config=self._config(),
            progress=progress,
        )

    def download(
        self,
        src: ReadSource,
        dest: str,
        progress: ProgressFn | None = None,
        *,
        manager: TransferManager | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Download to the local path ``dest``: parallel, resumable, replaced only once the
        MAC verified. With ``manager`` (a bulk ``get``): its pool, its batched ``g``."""
        from ..transfer import download_file

        get_url = self.url_source(src) if manager is None else _batched_url(manager, src)
        download_file(
            self.mega.http if manager is None else manager.http,
            get_url,
            src.size,
            src.key,
            dest,
            config=self._config() if manager is None else manager.config,
            progress=progress,
            resume_id=src.file.resume_id,  # as Mega.download's: either resumes the other
            shared_session=manager is not None,
            cancel=cancel,
        )

    # -- writing --------------------------------------------------------------------------
    def _writable(self) -> None:
        if self._link is not None:
            raise PermissionError("a public link is read-only")

    def upload(
        self,
        source: str | BinaryIO | Iterable[bytes],
        size: int | None,
        parent: str,
        name: str,
        *,
        mtime: float | None = None,
        progress: ProgressFn | None = None,
        confirm: Callable[[], bool] | None = None,
        manager: TransferManager | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Upload ``source`` (a local path, a binary file object or an iterable of bytes)
        as ``name`` into the folder ``parent``; returns the new node (in the tree).
        ``confirm()``, when given, is asked once the bytes are uploaded: False abandons the
        upload before the node is created. With ``manager`` (a bulk ``put``): its pool, its
        batched ``u`` and ``p``."""
        import dataclasses

        from ..crypto import fingerprint
        from ..transfer import TransferConfig, upload_file

        self._writable()
        attrs: dict[str, Any] = {"n": name}
        stamp = int(time.time() if mtime is None else mtime)
        resume_id: str | None = None
        if isinstance(source, str):
            st = os.stat(source)
            stamp = int(st.st_mtime)
            attrs["c"] = fingerprint(source, stamp)
            identity = f"{Path(source).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
            resume_id = "\0".join(
                (
                    "megafast-fsspec-upload",
                    self.mega.api_url,
                    str(self.mega.sid),
                    parent,
                    name,
                    identity,
                )
            )
        elif hasattr(source, "seek") and hasattr(source, "read"):
            attrs["c"] = fingerprint(source, stamp)  # type: ignore[arg-type]
            source.seek(0)
        config = self._config() or TransferConfig()
        if resume_id is None:
            config = dataclasses.replace(config, resume=False)

        if manager is not None:
            config = dataclasses.replace(config, wait_on_quota=False)

        def call(command: dict[str, Any]) -> Any:
            """One command: alone under the lock, or batched with the lock released."""
            if manager is None:
                with self.lock:
                    return self.mega.core.request(command)
            self.lock.release()  # held once, by the p below, or not at all (u)
            try:
                return manager.call(command)
            finally:
                self.lock.acquire()

        def get_upload_url(size: int) -> str:
            with self.lock:
                return _sources.checked_u_answer(call({"a": "u", "s": size}))

        http = self.mega.http if manager is None else manager.http
        pictures = None
        if isinstance(source, str):  # a local image or video: its thumbnail and preview
            pictures = start_pictures(source, self.mega.options.get("thumbnails"))

        def batch(commands: list[dict[str, Any]]) -> list[Any]:
            if manager is not None:
                return manager.batch(commands)
            with self.lock:
                return self.mega._batch(commands)  # type: ignore[no-any-return]

        result = upload_file(
            http,
            get_upload_url,
            source,
            size,
            config=config,
            progress=progress,
            resume_id=resume_id,
            shared_session=manager is not None,
            cancel=cancel,
        )
        if confirm is not None and not confirm():
            raise ValidationError("the upload was abandoned before its file was created")
        key = tuple(result.key)
        item = {"h": result.token, "t": 0, "a": _nodeops.encrypt_attrs(attrs, key)}
        fa = pictures.store(batch, http, words_to_bytes(fold(key))) if pictures else None
        if fa:
            item["fa"] = fa
        with self.lock:
            return self._created(_nodeops.put_node(self.mega.core, parent, item, key, call=call))

    def mkdir(self, parent: str, name: str) -> dict[str, Any]:
        """Create the folder ``name`` in ``parent`` (call under :attr:`lock`)."""
        self._writable()
        return self._created(_nodeops.mkdir(self.mega.core, name, parent))

    def destroy(self, handle: str) -> None:
        """Delete the node ``handle`` and everything below it for good (never the root)."""
        self._writable()
        with self.lock:
            if handle == self.tree()[1]:
                raise PermissionError(errno.EPERM, "the root cannot be removed")
            self.mega.destroy(handle)

    def copy(
        self, node: dict[str, Any], parent: str, name: str, public_handle: str | None = None
    ) -> dict[str, Any]:
        """Copy the file ``node`` into ``parent`` as ``name`` on the server (a ``p`` command
        naming the source: its handle, or the ``public_handle`` of a public file link, which
        imports it); the copy keeps the key and fingerprint. Call under the lock."""
        self._writable()
        attrs = dict(node["a"])
        attrs["n"] = name
        key = tuple(node["key"])
        source = {"ph": public_handle} if public_handle else {"h": node["h"]}
        item = {**source, "t": 0, "a": _nodeops.encrypt_attrs(attrs, key)}
        return self._created(_nodeops.put_node(self.mega.core, parent, item, key))

    def public_file_handle(self) -> str | None:
        """The public handle when this engine is a public file link, else None."""
        link = self._link
        return link.handle if link is not None and link.kind == "file" else None

    def _created(self, answer: Any) -> dict[str, Any]:
        nodes = answer.get("f") if isinstance(answer, dict) else None
        handle = (
            nodes[0].get("h")
            if isinstance(nodes, list) and nodes and isinstance(nodes[0], dict)
            else None
        )
        tree, _ = self.tree()
        node = tree.nodes.get(handle) if isinstance(handle, str) else None
        if node is None:
            raise UnexpectedAnswerError("the server did not return the new node")
        return node

    def _config(self) -> Any:
        return self.mega.options.get("transfer")


def _batched_url(manager: TransferManager, src: ReadSource) -> Callable[[bool], str]:
    """``get_url(refresh)`` asking ``g`` through the manager's batcher (a bulk ``get``)."""
    command = dict(src.file.command)
    if manager.host.api_url.startswith("https:"):
        command["ssl"] = 2

    def get_url(refresh: bool = False) -> str:
        if refresh or not src.file.answer:
            answer = _sources.checked_g_answer(manager.call(command))
            if answer.get("s") != src.size:
                raise ValidationError(
                    f"the size in the answer to g ({answer.get('s')!r}) is not the listing's"
                    f" ({src.size})"
                )
            src.file.answer = answer
        return str(src.file.answer["g"])

    return get_url


_ENGINES: dict[tuple[int, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def shared_engine(identity: str, factory: Callable[[], Engine]) -> Engine:
    """The engine of this process for ``identity`` (a digest is kept, never the secret),
    made by ``factory`` the first time."""
    key = (os.getpid(), hashlib.sha256(identity.encode("utf-8")).hexdigest())
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = factory()
            _ENGINES[key] = engine
        return engine


def forget_engine(identity: str) -> None:
    """Drop the shared engine for ``identity`` (after a logout)."""
    key = (os.getpid(), hashlib.sha256(identity.encode("utf-8")).hexdigest())
    with _ENGINES_LOCK:
        _ENGINES.pop(key, None)


def check_name(name: str) -> str:
    """A name this filesystem may create (MEGA and megafast refuse ``/`` in new names)."""
    if not name or "/" in name or "\x00" in name:
        raise ValidationError(f"cannot create a node named {name!r}: names hold no '/' or NUL")
    return name
