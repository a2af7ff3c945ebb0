"""Download jobs: remote trees and single files out of the account, through a
:class:`~megafast.transfer._manager.TransferManager` (uploads: :mod:`.treejobs`).

Folders are made locally as the remote tree is walked (parents first); files get
their URLs in batched ``g`` commands and go through the engine's ``download_file`` (part file,
MAC check, fsync, rename). Each verified file is recorded in the tree's ledger (a 0600 file
in :func:`~megafast.transfer._sidecar.state_dir`), and a re-run skips files that the ledger
knows with the same size and modification time. Two remote nodes whose local names collide get
``name (1).ext``.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    DestinationError,
    MegaError,
    ValidationError,
    WrongKeyError,
)
from ..transfer._download import download_file
from ..transfer._localnames import safe_local_name, unique_names
from ..transfer._manager import FileProgress, SkipTransfer, TransferManager, TransferResult
from ..transfer._plan import check_size
from ..transfer._sidecar import digest, state_dir
from .sources import checked_g_answer, node_size
from .treejobs import core_of

if TYPE_CHECKING:
    from .._tree.nodes import NodeTree


class TreeLedger:
    """The files of one tree download whose MAC was verified: (node, path, size, mtime)
    digests, one per line in a 0600 file, so a re-run can skip them."""

    def __init__(
        self, root_handle: str, target: Path, account: str, *, keep_open: bool = True
    ) -> None:
        name = digest("megafast-tree", account, root_handle, str(target.resolve()))[:32]
        self.path = state_dir() / f"tree-{name}.ledger"
        self.known: set[str] = set()
        try:
            with open(self.path, encoding="ascii") as f:
                self.known.update(line.strip() for line in f if line.strip())
        except (OSError, ValueError):
            pass
        self._lock = threading.Lock()
        self._fd = -1
        self._keep_open = keep_open  # False: no descriptor outlives a record()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    @staticmethod
    def entry(handle: str, path: Path, st: os.stat_result) -> str:
        return digest(handle, str(path), str(st.st_size), str(st.st_mtime_ns))[:32]

    def verified(self, handle: str, path: Path, size: int) -> bool:
        if not self.known:  # a first run: nothing to look at
            return False
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return False
        return (
            stat.S_ISREG(st.st_mode)
            and st.st_size == size
            and self.entry(handle, path, st) in self.known
        )

    def record(self, handle: str, path: Path) -> None:
        line = self.entry(handle, path, os.stat(path, follow_symlinks=False)) + "\n"
        with self._lock:
            if self._fd < 0:
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                self._fd = os.open(self.path, flags, 0o600)
                os.fchmod(self._fd, 0o600)  # it holds digests of names: private, like sidecars
            os.write(self._fd, line.encode("ascii"))
            if not self._keep_open:
                os.close(self._fd)
                self._fd = -1


class DownloadJob:
    """One remote file into one local path."""

    def __init__(
        self,
        node: dict[str, Any],
        rel: str,
        target: Path | None,
        ledger: TreeLedger,
        problem: str | None = None,
    ) -> None:
        self.node = node
        self.rel = rel
        self.target = target
        self.ledger = ledger
        self.problem = problem
        self.size = 0
        try:
            self.size = node_size(node)
        except MegaError as exc:  # a hostile listing's size: this file fails, not the tree
            self.problem = problem or str(exc)
        self.https = False
        self._g: Future[Any] | None = None
        self._manager: TransferManager | None = None
        self._already: bool | None = None  # complete per the ledger (checked when queued)

    def prepare(self, manager: TransferManager) -> None:
        self._manager = manager
        self.https = core_of(manager).api_url.startswith("https:")
        self._already = self.problem is None and self._complete()
        if self.problem is None and not self._already:
            self._g = manager.batcher.submit(self._command())

    def _command(self) -> dict[str, Any]:
        command: dict[str, Any] = {"a": "g", "g": 1, "n": self.node["h"]}
        if self.https:
            command["ssl"] = 2
        return command

    def _complete(self) -> bool:
        return self.target is not None and self.ledger.verified(
            self.node["h"], self.target, self.size
        )

    def _answer(self, refresh: bool) -> dict[str, Any]:
        future, self._g = self._g, None
        assert self._manager is not None
        if future is None or refresh:
            future = self._manager.batcher.submit(self._command())
        return checked_g_answer(self._manager.wait(future))

    def _get_url(self, refresh: bool) -> str:
        return str(self._answer(refresh)["g"])

    def _first_url(self) -> str:
        """The URL of the (prefetched) ``g``, whose size must be the listing's."""
        answer = self._answer(False)
        size = check_size(answer.get("s", 0), "the size in the answer to g")
        if size != self.size:
            raise ValidationError(
                f"the size in the answer to g ({size}) is not the listing's ({self.size})"
            )
        return str(answer["g"])

    def run(self, manager: TransferManager, progress: FileProgress) -> str | None:
        if self.problem is not None:
            raise DestinationError(self.problem)
        if "key" not in self.node or self.node.get("undecryptable"):
            raise WrongKeyError(f"{self.rel} cannot be decrypted")
        assert self.target is not None
        if self._already if self._already is not None else self._complete():
            raise SkipTransfer("already downloaded and verified", str(self.target))
        self._manager = manager
        first = [self._first_url()]

        def get_url(refresh: bool) -> str:
            return first.pop() if first and not refresh else self._get_url(True)

        path = download_file(
            manager.http,
            get_url,
            self.size,
            tuple(self.node["key"]),
            self.target,
            config=manager.config,
            progress=progress,
            resume_id=self.node["h"],
            shared_session=True,
            cancel=progress.cancel,
        )
        self.ledger.record(self.node["h"], path)
        return str(path)


def download_job(
    manager: TransferManager, file: Any, dest_path: str | os.PathLike[str] | None = None
) -> DownloadJob:
    """One file node of the account as a job for :meth:`TransferManager.submit`."""
    node = core_of(manager).node(file, "file")
    if node.get("t") != 0:
        raise ValidationError("only a file can be queued this way (use download_tree)")
    directory = Path(dest_path) if dest_path not in (None, "") else Path.cwd()
    if not directory.is_dir():
        raise DestinationError(f"the destination folder does not exist: {directory}")
    name = safe_local_name(core_of(manager).tree().name_of(node) or node["h"])
    # one ledger per destination folder for the files queued one by one
    ledger = TreeLedger("single files", directory, _account(manager), keep_open=False)
    return DownloadJob(node, name, directory / name, ledger)


def _account(manager: TransferManager) -> str:
    """Whose files these are, for the ledger's name: the server and the account (or link)."""
    creds = core_of(manager).credentials
    who = manager.folder or (creds.user_handle or creds.email or "" if creds else "")
    return f"{core_of(manager).api_url}\0{who}"


def _download_jobs(
    tree: NodeTree,
    root: dict[str, Any],
    target: Path,
    ledger: TreeLedger,
    result: TransferResult,
) -> Iterator[DownloadJob]:
    local: dict[str, Path | None] = {root["h"]: target}
    rels: dict[str, str] = {root["h"]: "."}
    problems: dict[str, str] = {}
    given: dict[str, dict[str, str]] = {}  # parent handle -> child handle -> local name
    result.folders["."] = str(target)
    for node in tree.descendants(root["h"]):
        parent = node.get("p")
        if parent not in local:
            continue  # below something that is neither a file nor a folder
        raw = tree.name_of(node) or node["h"]
        if parent not in given:  # the names of all its entries at once: unique_names's rule
            kids = [c for c in tree.child_nodes(parent) if c.get("t") in (0, 1)]
            wanted = [safe_local_name(tree.name_of(c) or c["h"]) for c in kids]
            given[parent] = dict(zip((c["h"] for c in kids), unique_names(wanted), strict=True))
        name = given[parent].get(node["h"]) or safe_local_name(raw)
        parent_path = local[parent]
        rel = name if rels[parent] == "." else f"{rels[parent]}/{name}"
        if name != raw:
            result.renamed.append((f"{rels[parent]}/{raw}".removeprefix("./"), rel))
        path = parent_path / name if parent_path is not None else None
        if node.get("t") == 1:
            rels[node["h"]] = rel
            local[node["h"]] = path
            if path is None:
                problems[node["h"]] = problems[parent]
                continue
            try:
                path.mkdir(exist_ok=True)
                if path.is_symlink() or not path.is_dir():
                    raise FileExistsError(17, "not a folder")
            except OSError as exc:
                local[node["h"]] = None
                problems[node["h"]] = f"cannot create folder {rel}: {exc.strerror}"
                result.ignored.append((rel, problems[node["h"]]))
                continue
            result.folders[rel] = str(path)
        elif node.get("t") == 0:
            yield DownloadJob(node, rel, path, ledger, problems.get(parent))


def download_tree(
    manager: TransferManager,
    tree: NodeTree,
    root: dict[str, Any],
    target: str | os.PathLike[str],
    *,
    result: TransferResult | None = None,
) -> TransferResult:
    """Download the remote folder ``root`` (a node of ``tree``) as the local folder
    ``target`` (made if missing; its parent must exist); ``result``: fill this one."""
    target = Path(target)
    for _ in tree.descendants(root["h"]):  # a listing that is no tree raises here, before
        pass  # anything is written (the jobs walk it again lazily)
    try:
        target.mkdir(exist_ok=True)
    except OSError as exc:
        raise DestinationError(f"cannot create {target}: {exc.strerror}") from None
    if target.is_symlink() or not target.is_dir():
        raise DestinationError(f"the destination is not a folder: {target}")
    ledger = TreeLedger(root["h"], target, _account(manager))
    result = result if result is not None else TransferResult()
    try:
        return manager.run(_download_jobs(tree, root, target, ledger, result), result)
    finally:
        ledger.close()
