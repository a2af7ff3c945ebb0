"""Upload jobs: whole local trees and single files into the account, through a
:class:`~megafast.transfer._manager.TransferManager` (downloads: :mod:`.downloadjobs`).

Uploads: the local folders are walked first and created remotely one depth level per round
trip (one ``p`` per parent folder, carrying all its new sub-folders); then the files of each
folder are read lazily from disk and queued. Symlinks and special files are listed in
``result.ignored``. A name already taken remotely by another file makes the new one
``name (1).ext`` (listed in ``result.renamed``); a remote file of the same name, size and
fingerprint ``c`` means the file is already there (skipped).
"""

from __future__ import annotations

import os
import stat
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._wire.codec import words_to_bytes
from ..errors import (
    DestinationError,
    RequestError,
    SourceNotFoundError,
    UnexpectedAnswerError,
    ValidationError,
)
from ..media._remote import PendingPictures, start_pictures
from ..media._remote import store_ahead as _store_ahead
from ..transfer._localnames import numbered
from ..transfer._manager import FileProgress, SkipTransfer, TransferManager, TransferResult
from ..transfer._upload import upload_file
from .core import Core
from .nodeops import encrypt_attrs, folder_handle, wrap_key
from .shares import keys_for_new_node
from .sources import checked_u_answer
from .transfers import _file_identity, _resume_id

if TYPE_CHECKING:
    from .._tree.nodes import NodeTree

_MAX_SUFFIX = 10000


def core_of(manager: TransferManager) -> Core:
    """The account core a manager works for (the host that handed it these jobs)."""
    host = manager.host
    if not isinstance(host, Core):
        raise ValidationError("the account's tree jobs run only for a manager of that account")
    return host


# ---------------------------------------------------------------------------------------------
# uploads
# ---------------------------------------------------------------------------------------------
class _UploadTree:
    """Shared state of one tree upload (the remote tree is read and updated under a lock)."""

    def __init__(self, manager: TransferManager, result: TransferResult) -> None:
        self.manager = manager
        self.core = core_of(manager)
        self.tree: NodeTree = self.core.tree()
        self.result = result
        self.lock = threading.Lock()
        self.claimed: set[tuple[str, str]] = set()  # names chosen by files still in flight
        self.top = Path()  # the resolved local top folder
        self.problems: dict[str, str] = {}  # local folder -> why it has no remote folder
        self.pictures = False  # make thumbnails and previews (megafast.media)

    def new_node_command(
        self, parent: str, items: list[dict[str, Any]], keys: list[tuple[int, ...]]
    ) -> dict[str, Any]:
        """A ``p`` for ``items`` (without ``k``) under ``parent``, with share keys (``cr``)."""
        nodes = [{**item, "k": wrap_key(self.core, k)} for item, k in zip(items, keys, strict=True)]
        command: dict[str, Any] = {"a": "p", "t": parent, "n": nodes, "i": self.core.request_id}
        shares: list[str] = []
        names: list[str] = []
        triples: list[Any] = []
        for item, key in zip(items, keys, strict=True):
            with self.lock:  # it walks the tree, which other workers add to
                cr = keys_for_new_node(self.core, parent, key, item["h"])
            if cr is None:
                continue
            shares, _, own = cr
            names.append(item["h"])
            for i in range(0, len(own), 3):
                triples += [own[i], len(names) - 1, own[i + 2]]
        if shares:
            command["cr"] = [shares, names, triples]
        return command

    def add_nodes(self, answer: Any) -> list[str]:
        """The handles of the nodes a ``p`` made, after adding them to the client's tree."""
        nodes = answer.get("f") if isinstance(answer, dict) else None
        if not isinstance(nodes, list):
            raise UnexpectedAnswerError("p gave no new nodes")
        keyring = self.core.keyring
        if keyring is not None:
            with self.lock:  # copies: the answer stays as the server sent it
                self.tree.add_nodes([dict(n) for n in nodes if isinstance(n, dict)], keyring)
        return [str(n.get("h")) for n in nodes if isinstance(n, dict)]


def _walk_folders(top: Path, result: TransferResult) -> list[list[str]]:
    """The local sub-folders of ``top`` by depth: ``levels[d]`` holds relative POSIX paths.
    Symlinked folders are not followed (listed in ``result.ignored``)."""
    levels: list[list[str]] = [["."]]
    while levels[-1]:
        below: list[str] = []
        for rel in levels[-1]:
            try:
                entries = sorted(os.scandir(top / rel), key=lambda e: e.name)
            except OSError as exc:
                result.ignored.append((rel, f"cannot list: {exc.strerror}"))
                continue
            for entry in entries:
                child = entry.name if rel == "." else f"{rel}/{entry.name}"
                if entry.is_symlink() and entry.is_dir():
                    result.ignored.append((child, "symlink (not followed)"))
                elif entry.is_dir(follow_symlinks=False):
                    below.append(child)
        levels.append(below)
    return levels[:-1]


def _make_folders(up: _UploadTree, levels: list[list[str]], top_parent: str, top_name: str) -> None:
    """Create missing remote folders, one batch per depth level (one ``p`` per parent)."""
    from ..crypto import random_key

    folders = up.result.folders
    for level in levels:
        wanted: dict[str, list[tuple[str, str]]] = defaultdict(list)  # parent -> [(rel, name)]
        for rel in level:
            if rel == ".":
                parent, name = top_parent, top_name
            else:
                head, _, name = rel.rpartition("/")
                parent = folders.get(head or ".", "")
                if not parent:
                    up.problems[rel] = up.problems.get(head or ".", "folder not created")
                    continue
            existing = next(
                (c for c in up.tree.children_named(parent, name) if c.get("t") == 1), None
            )
            if existing is not None:
                folders[rel] = existing["h"]
            else:
                wanted[parent].append((rel, name))
        pending: list[tuple[list[str], Future[Any]]] = []
        for parent, entries in wanted.items():
            keys = [tuple(random_key(4)) for _ in entries]
            items = [
                {"h": f"x{i:07d}", "t": 1, "a": encrypt_attrs({"n": name}, key)}
                for i, ((_, name), key) in enumerate(zip(entries, keys, strict=True))
            ]
            command = up.new_node_command(parent, items, keys)
            pending.append(([rel for rel, _ in entries], up.manager.batcher.submit(command)))
        for rels, future in pending:
            try:
                handles = up.add_nodes(up.manager.wait(future))
            except RequestError as exc:
                up.problems.update((rel, f"folder not created: {exc}") for rel in rels)
                continue
            folders.update(zip(rels, handles, strict=False))
            for rel in rels[len(handles) :]:
                up.problems[rel] = "folder not created: the server did not return it"
        up.result.ignored.extend((rel, up.problems[rel]) for rel in level if rel in up.problems)


class UploadJob:
    """One local file into one remote folder."""

    def __init__(self, up: _UploadTree, path: Path, rel: str, parent: str, st: os.stat_result):
        self.up = up
        self.path = path
        self.rel = rel
        self.parent = parent
        self.size = st.st_size
        self.mtime = int(st.st_mtime)
        self._url: Future[Any] | None = None
        self._pictures: PendingPictures | None = None
        self.problem: str | None = None  # why it cannot go (its folder was not created)

    def prepare(self, manager: TransferManager) -> None:
        if self.problem is None:
            self._url = manager.batcher.submit({"a": "u", "s": self.size})
            # the pictures are made ahead, while the files before this one upload (not for
            # a file that is probably there already: run() makes them if it is not)
            if self.up.pictures and not self._probably_there():
                self._pictures = start_pictures(self.path, True)

    def _probably_there(self) -> bool:
        """A remote file of this name and size is in the folder (run() checks the fingerprint)."""
        with self.up.lock:
            same = self.up.tree.children_named(self.parent, self.path.name)
            return any(n.get("t") == 0 and n.get("s") == self.size for n in same)

    def _get_upload_url(self, size: int) -> str:
        future, self._url = self._url, None
        if future is None or size != self.size:
            future = self.up.manager.batcher.submit({"a": "u", "s": size})
        return checked_u_answer(self.up.manager.wait(future))

    def _choose_name(self, fp: str) -> str:
        """The remote name: the file's own, or ``name (n).ext`` when another file has it;
        SkipTransfer when the same file (size and fingerprint) is already there."""
        up, name = self.up, self.path.name
        n = 0
        while True:
            candidate = name if n == 0 else numbered(name, n)
            same = up.tree.children_named(self.parent, candidate)
            for node in same:
                a = node.get("a")
                c = a.get("c") if isinstance(a, dict) else None
                if node.get("t") == 0 and node.get("s") == self.size and c == fp:
                    raise SkipTransfer("already uploaded (same size and fingerprint)", node["h"])
            if not same and (self.parent, candidate) not in up.claimed:
                up.claimed.add((self.parent, candidate))
                return candidate
            n += 1
            if n >= _MAX_SUFFIX:
                raise ValidationError(f"no free name for {name!r}")

    def run(self, manager: TransferManager, progress: FileProgress) -> str | None:
        from ..crypto import fingerprint

        if self.problem is not None:
            raise DestinationError(self.problem)
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            raise SourceNotFoundError(f"{self.rel} vanished after it was queued") from None
        if not stat.S_ISREG(st.st_mode):
            raise SourceNotFoundError(f"{self.rel} is no longer a regular file")
        if st.st_size != self.size:
            raise SourceNotFoundError(
                f"{self.rel} changed size after it was queued ({self.size} -> {st.st_size} bytes)"
            )
        fp = fingerprint(self.path, int(st.st_mtime))
        with self.up.lock:
            name = self._choose_name(fp)
        pictures = self._pictures or start_pictures(self.path, self.up.pictures)
        try:
            if name != self.path.name:
                with self.up.lock:
                    self.up.result.renamed.append((self.rel, name))
            # the resolved top joined with the walked path equals path.resolve() (no symlink
            # is followed below the top) without an lstat per path component
            real = self.up.top / self.rel
            resume_id = _resume_id(self.up.core, self.parent, name, _file_identity(real, st))
            done = upload_file(
                manager.http,
                self._get_upload_url,
                self.path,
                self.size,
                config=manager.config,
                progress=progress,
                resume_id=resume_id,
                shared_session=True,
                cancel=progress.cancel,
                on_key=_store_ahead(pictures, manager.batch, manager.http),
            )
            key = tuple(done.key)
            k = tuple(key[i] ^ key[i + 4] for i in range(4))
            item = {"h": done.token, "t": 0, "a": encrypt_attrs({"n": name, "c": fp}, k)}
            fa = (
                pictures.store(manager.batch, manager.http, words_to_bytes(k)) if pictures else None
            )
            if fa:
                item["fa"] = fa
            command = self.up.new_node_command(self.parent, [item], [key])
            handles = self.up.add_nodes(manager.call(command))
        finally:
            with self.up.lock:
                self.up.claimed.discard((self.parent, name))
        return handles[0] if handles else None


def _upload_jobs(up: _UploadTree, top: Path, levels: list[list[str]]) -> Iterator[UploadJob]:
    """The files of every created folder, read one folder at a time."""
    for level in levels:
        for rel in level:
            parent = up.result.folders.get(rel, "")
            try:
                entries = sorted(os.scandir(top / rel), key=lambda e: e.name)
            except OSError as exc:
                up.result.ignored.append((rel, f"cannot list: {exc.strerror}"))
                continue
            for entry in entries:
                child = entry.name if rel == "." else f"{rel}/{entry.name}"
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    up.result.ignored.append((child, f"cannot read: {exc.strerror}"))
                    continue
                if stat.S_ISLNK(st.st_mode):
                    if not entry.is_dir():  # folder links were reported by the folder walk
                        up.result.ignored.append((child, "symlink (not followed)"))
                elif stat.S_ISREG(st.st_mode):
                    job = UploadJob(up, Path(entry.path), child, parent, st)
                    job.problem = None if parent else up.problems.get(rel, "folder not created")
                    yield job
                elif not stat.S_ISDIR(st.st_mode):
                    up.result.ignored.append((child, "not a regular file"))


def upload_tree(
    manager: TransferManager,
    directory: str | os.PathLike[str],
    dest: Any = None,
    *,
    result: TransferResult | None = None,
    pictures: bool | None = None,
) -> TransferResult:
    """Upload the folder ``directory`` into ``dest`` (a folder handle or node; default: the
    Cloud Drive) like ``cp -r``; ``result.folders`` maps relative paths (``"."`` = the top) to
    remote handles, ``result.succeeded`` lists each file with its new handle (``result``: fill
    this one instead of a new one); ``pictures``: thumbnails and previews for images (None:
    the client's ``thumbnails`` option)."""
    top = Path(directory)
    if top.is_symlink() or not top.is_dir():
        raise SourceNotFoundError(f"no such folder to upload: {top}")
    core = core_of(manager)
    core.require_login()
    result = result if result is not None else TransferResult()
    up = _UploadTree(manager, result)
    up.top = top.resolve()
    up.pictures = _pictures_option(core, pictures)
    levels = _walk_folders(top, result)
    before = manager.api.stats["requests"]
    _make_folders(up, levels, folder_handle(core, dest), up.top.name or "_")
    result.api_requests += manager.api.stats["requests"] - before
    return manager.run(_upload_jobs(up, top, levels), result)


def _pictures_option(core: Core, pictures: bool | None) -> bool:
    """Thumbnails on or off: ``pictures``, else the client's ``thumbnails`` option."""
    return pictures if pictures is not None else core.options.get("thumbnails") is not False


def upload_job(manager: TransferManager, path: Path, dest: Any = None) -> UploadJob:
    """One local file as a job for :meth:`TransferManager.submit`."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise SourceNotFoundError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SourceNotFoundError(f"not a regular file (symlinks are not followed): {path}")
    core_of(manager).require_login()
    up = _UploadTree(manager, TransferResult())
    up.top = path.parent.resolve()
    up.pictures = _pictures_option(core_of(manager), None)
    return UploadJob(up, path, path.name, folder_handle(core_of(manager), dest), st)
