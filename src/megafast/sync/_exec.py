"""Carrying out a plan. Each action is checked again just before it runs (a local file that
changed since it was read is read again; one that keeps changing is reported, never sent
half-old half-new), recorded in the state when done, and the state saved every few
seconds, so a run killed at any point leaves only what the next run re-checks.

With :class:`~megafast.sync._transfers.ManagerTransfers` the uploads, downloads and copies
(which come after every folder, move and rename) run as one transfer manager's jobs: many
files in flight, their ``u``/``g``/``p`` batched. Each handler holds the executor's lock
except while bytes move or a command waits for its answer, so the bookkeeping (state,
report, the client's node tree, local folders) is done one file at a time."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import MegaError, OverQuotaError, RequestError
from ..transfer import FileProgress, TransferCancelled, TransferManager
from ._content import ChangingFileError, mac_matches, parse_fingerprint, read_fingerprint, stat_key
from ._local import LocalTree
from ._names import conflict_name
from ._remote import RemoteOps, node_c
from ._report import Action, SyncReport
from ._state import Agreement, SyncState
from ._transfers import ManagerTransfers, Transfers

__all__ = ["Executor"]

Node = dict[str, Any]
_ORDER = {
    "mkdir": 0,
    "move": 1,
    "touch": 2,
    "conflict": 3,
    "copy": 4,
    "upload": 4,
    "version": 4,
    "download": 4,
    "delete": 5,
}
_TRANSFERS = ("upload", "version", "download", "conflict")
_PARALLEL = (3, 4)  # the _ORDER of the actions a transfer manager runs side by side
SAVE_EVERY = 2.0  # least seconds between state saves while running
SEND_TRIES = 3


def _split(rel: str) -> tuple[str, str]:
    head, _, name = rel.rpartition("/")
    return head, name


class _Step:
    """One action's byte progress, added to the run's total as it moves (a file sent again
    after it changed counts once)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.seen = 0

    def __call__(self, n: int, _total: int = 0) -> None:
        ex = self.executor
        with ex.progress_lock:
            ex.done += n - self.seen
            self.seen = n
            done = ex.done
        if ex.progress is not None:
            ex.progress(done, ex.total)


class _ActionJob:
    """One transfer action as a :class:`TransferManager` job."""

    def __init__(self, executor: Executor, action: Action) -> None:
        self.executor = executor
        self.action = action
        self.rel = action.path
        self.size = action.size

    def prepare(self, manager: TransferManager) -> None:
        pass  # its u/g are asked for when it runs, batched with the other workers'

    def run(self, manager: TransferManager, progress: FileProgress) -> str | None:
        ex = self.executor
        if isinstance(ex.transfers, ManagerTransfers):
            ex.transfers.set_cancel(progress.cancel)
        with ex.lock:
            ex.run_one(self.action, raising=(OverQuotaError, TransferCancelled))
        return None


class Executor:
    def __init__(
        self,
        direction: str,
        local: LocalTree,
        ops: RemoteOps,
        transfers: Transfers,
        state: SyncState,
        report: SyncReport,
        remote_dirs: dict[str, str],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.up = direction == "up"
        self.local = local
        self.ops = ops
        self.transfers = transfers
        self.state = state
        self.report = report
        self.dirs = dict(remote_dirs)
        self.progress = progress
        self.total = 0
        self.done = 0
        self.remote_changed = False
        self._saved = time.monotonic()
        self._save_every = SAVE_EVERY
        self.lock = threading.Lock()  # held by a handler except while bytes move
        self.progress_lock = threading.Lock()

    # -- running -----------------------------------------------------------------------
    def run(self, actions: list[Action]) -> None:
        ordered = sorted(actions, key=lambda a: _ORDER[a.kind])
        self.total = sum(a.size for a in ordered if a.kind in _TRANSFERS or a.kind == "copy")
        together = isinstance(self.transfers, ManagerTransfers)
        with self.lock:
            batch: list[Action] = []
            for action in ordered:
                if together and _ORDER[action.kind] in _PARALLEL:
                    batch.append(action)
                    continue
                if batch:
                    self._run_together(batch)
                    batch = []
                self.run_one(action)
            if batch:
                self._run_together(batch)
            if ordered or self.state.dirty:
                self.state.save()

    def run_one(self, action: Action, raising: tuple[type[BaseException], ...] = ()) -> None:
        """Carry out one action (the lock held); its failure goes into the report, except
        ``raising`` (the transfer manager's pause on quota, a cancel)."""
        handler = getattr(self, f"_{'up' if self.up else 'down'}_{action.kind}")
        try:
            handler(action)
        except raising:
            raise
        except (OSError, MegaError, ValueError) as exc:
            self.report.failed[action.path] = str(exc) or type(exc).__name__
            return
        self.report.actions.append(action)
        if time.monotonic() - self._saved > self._save_every:
            began = time.monotonic()
            self.state.save()
            self._saved = time.monotonic()
            # a large state costs time to write: never spend more than ~5% on it
            self._save_every = max(SAVE_EVERY, 20 * (self._saved - began))

    def _run_together(self, batch: list[Action]) -> None:
        """The transfer actions through one transfer manager (the lock held on entry)."""
        assert isinstance(self.transfers, ManagerTransfers)
        with self._unlocked(), self.transfers.running() as manager:
            with self.lock:
                self.ops.call, self.ops.unlocked = manager.call, self._unlocked
            try:
                result = manager.run(_ActionJob(self, a) for a in batch)
            finally:
                with self.lock:
                    self.ops.call, self.ops.unlocked = (
                        self.ops.mega._request,
                        contextlib.nullcontext,
                    )
        for outcome in (*result.failed, *result.cancelled):
            self.report.failed.setdefault(outcome.rel, outcome.reason or outcome.status)

    @contextlib.contextmanager
    def _unlocked(self) -> Iterator[None]:
        """The lock released while bytes move or a command waits for its answer."""
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()

    def _step(self) -> _Step:
        return _Step(self)

    def _record(self, rel: str, st: os.stat_result, c: str, handle: str) -> None:
        self.state.files[rel] = Agreement(st.st_size, st.st_mtime_ns, c, handle)

    def _forget(self, rel: str) -> None:
        self.state.files.pop(rel, None)
        prefix = rel + "/"
        for key in [k for k in self.state.files if k.startswith(prefix)]:
            del self.state.files[key]

    # -- up: local -> MEGA ---------------------------------------------------------------
    def _parent(self, rel: str) -> str:
        head = _split(rel)[0]
        if head not in self.dirs:
            raise MegaError(f"the remote folder {head!r} is missing")
        return self.dirs[head]

    def _up_mkdir(self, a: Action) -> None:
        self.dirs[a.path] = self.ops.mkdir(self._parent(a.path), _split(a.path)[1])
        self.remote_changed = True

    def _current_c(self, a: Action) -> tuple[str, os.stat_result]:
        """The local file's ``c`` now: the planned one while its size and mtime are as
        planned, else read again."""
        path = self.local.path(a.path)
        st = os.lstat(path)
        if a.local_c is not None and a.local_stat == stat_key(st):
            return a.local_c, st
        c, st = read_fingerprint(path)
        a.local_c, a.local_stat = c, stat_key(st)
        return c, st

    def _send(self, a: Action, replaces: str | None) -> Node:
        """Upload the local file and make its node; read again when it changed since it
        was planned, and send again when it changed while being sent (the finished upload
        is then not used)."""
        path = self.local.path(a.path)
        step = self._step()
        for _ in range(SEND_TRIES):
            c, st = self._current_c(a)
            pictures = self.ops.start_pictures(path)  # made while the file uploads
            with self._unlocked():
                result = self.transfers.upload(path, st.st_size, step)
            if stat_key(os.lstat(path)) != stat_key(st):
                continue  # changed while being sent: that upload is dropped
            name = _split(a.path)[1]
            node = self.ops.put_upload(
                self._parent(a.path), name, c, result.token, result.key, replaces, pictures
            )
            self.remote_changed = True
            self.report.bytes_uploaded += st.st_size
            step(st.st_size)
            self._record(a.path, st, c, node["h"])
            a.size = st.st_size
            return node
        raise ChangingFileError(f"{path} kept changing while it was sent; not uploaded")

    def _up_upload(self, a: Action) -> None:
        self._send(a, None)

    def _up_version(self, a: Action) -> None:
        assert a.node is not None
        self._send(a, a.node["h"])

    def _same_local(self, a: Action, node: Node) -> os.stat_result | None:
        """The local file's stat when it holds exactly ``node``'s content (full MAC read)
        and did not change while read (``a.local_c`` is then its ``c``); None otherwise."""
        path = self.local.path(a.path)
        _, before = self._current_c(a)
        if not mac_matches(path, node):
            return None
        return before if stat_key(os.lstat(path)) == stat_key(before) else None

    def _up_copy(self, a: Action) -> None:
        assert a.source_node is not None and a.local_c is not None
        replaces = a.node["h"] if a.node is not None else None
        st = self._same_local(a, a.source_node)
        if st is None:
            a.kind, a.source = "version" if replaces else "upload", None
            self._send(a, replaces)
            return
        try:
            node = self.ops.put_copy(
                self._parent(a.path), _split(a.path)[1], a.local_c, a.source_node, replaces
            )
        except RequestError as exc:
            self.report.notes.append(
                f"{a.path}: the server refused a server-side copy ({exc}); uploaded instead"
            )
            a.kind, a.source = "version" if replaces else "upload", None
            self._send(a, replaces)
            return
        self.remote_changed = True
        self.report.bytes_copied += a.size
        self._step()(a.size)
        self._record(a.path, st, a.local_c, node["h"])

    def _up_move(self, a: Action) -> None:
        assert a.node is not None and a.source is not None and a.local_c is not None
        node = a.node
        known = self.state.files.get(a.source)
        _, st = self._current_c(a)
        if known is None or known.c != a.local_c:
            checked = self._same_local(a, node)
            if checked is None:
                a.kind, a.source = "upload", None
                self._send(a, None)
                return
            st = checked
        parent = self._parent(a.path)
        if node.get("p") != parent:
            self.ops.move(node, parent)
        name = _split(a.path)[1]
        if node["a"].get("n") != name or node_c(node) != a.local_c:
            self.ops.set_attributes(node, n=name, c=a.local_c)
        self.remote_changed = True
        self.report.bytes_copied += a.size
        self._forget(a.source)
        self._record(a.path, st, a.local_c, node["h"])

    def _up_touch(self, a: Action) -> None:
        assert a.node is not None and a.local_c is not None
        st = self._same_local(a, a.node)
        if st is None:
            a.kind = "version"
            self._send(a, a.node["h"])
            return
        self.ops.set_attributes(a.node, c=a.local_c)
        self.remote_changed = True
        self._record(a.path, st, a.local_c, a.node["h"])

    def _up_conflict(self, a: Action) -> None:
        assert a.node is not None
        head, name = _split(a.path)
        other = conflict_name(name)
        self.ops.set_attributes(a.node, n=other)
        self.remote_changed = True
        kept = f"{head}/{other}" if head else other
        self.state.keep.add(kept)
        self.report.conflicts.append(kept)
        a.detail = f"both changed: the remote copy is now {other!r}"
        self._send(a, None)

    def _up_delete(self, a: Action) -> None:
        handle = self.dirs.get(a.path) if a.is_dir else (a.node or {}).get("h")
        if not isinstance(handle, str):
            raise MegaError(f"nothing to delete at {a.path!r}")
        self.ops.trash(handle)
        self.remote_changed = True
        self._forget(a.path)

    # -- down: MEGA -> local -------------------------------------------------------------
    def _down_mkdir(self, a: Action) -> None:
        self.local.ensure_dir(a.path)

    def _target(self, rel: str) -> Path:
        head, name = _split(rel)
        target = self.local.ensure_dir(head) / name
        self.local.clear_temp_files(target)
        return target

    def _finish_local(self, rel: str, target: Path, node: Node) -> os.stat_result:
        """Give the new local file the remote mtime (from ``c``, else the node's ``ts``)
        and record the agreement."""
        fp = parse_fingerprint(node_c(node))
        mtime = fp.mtime if fp is not None else int(node.get("ts") or 0)
        os.utime(target, ns=(mtime * 1_000_000_000,) * 2, follow_symlinks=False)
        self.local.clear_temp_files(target, all_files=True)
        st = os.lstat(target)
        self._record(rel, st, node_c(node) or "", node["h"])
        return st

    def _fetch(self, rel: str, target: Path, node: Node) -> None:
        step = self._step()
        with self._unlocked():
            self.transfers.download(node, target, step)
        size = int(node.get("s") or 0)
        self.report.bytes_downloaded += size
        step(size)
        self._finish_local(rel, target, node)

    def _down_download(self, a: Action) -> None:
        assert a.node is not None
        target = self._target(a.path)
        if os.path.lexists(target):
            raise MegaError(f"{target} appeared during the sync; left as it is")
        self._fetch(a.path, target, a.node)

    def _down_version(self, a: Action) -> None:
        assert a.node is not None
        target = self._target(a.path)
        moved = (
            a.local_stat is not None
            and os.path.lexists(target)
            and stat_key(os.lstat(target)) != a.local_stat
        )
        if a.local_c is not None or moved:
            self.local.preserve(a.path)  # local changes are kept in the trash
        self._fetch(a.path, target, a.node)

    def _down_conflict(self, a: Action) -> None:
        assert a.node is not None
        head, name = _split(a.path)
        other = conflict_name(name)
        kept = f"{head}/{other}" if head else other
        target = self._target(kept)
        step = self._step()
        with self._unlocked():
            self.transfers.download(a.node, target, step)
        self.report.bytes_downloaded += a.size
        step(a.size)
        fp = parse_fingerprint(node_c(a.node))
        if fp is not None:
            os.utime(target, ns=(fp.mtime * 1_000_000_000,) * 2, follow_symlinks=False)
        self.state.keep.add(kept)
        self.report.conflicts.append(kept)
        a.detail = f"both changed: the remote copy is saved as {other!r}"
        st = os.lstat(self.local.path(a.path))
        self._record(a.path, st, node_c(a.node) or "", a.node["h"])

    def _down_touch(self, a: Action) -> None:
        assert a.node is not None
        path = self.local.path(a.path)
        if self._same_local(a, a.node) is None:
            a.kind = "version"
            self.local.preserve(a.path)
            self._fetch(a.path, self._target(a.path), a.node)
            return
        self._finish_local(a.path, path, a.node)

    def _down_copy(self, a: Action) -> None:
        assert a.node is not None and a.source is not None
        source = self.local.path(a.source)
        target = self._target(a.path)
        if not mac_matches(source, a.node) or os.path.lexists(target):
            a.kind, a.source = "download", None
            self._down_download(a)
            return
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.megafast-part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            with open(source, "rb") as src, os.fdopen(os.open(temp, flags, 0o666), "wb") as dst:
                while chunk := src.read(8 << 20):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            if not mac_matches(temp, a.node):
                raise ChangingFileError(f"{source} changed while it was copied")
            os.replace(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self.report.bytes_copied += a.size
        self._finish_local(a.path, target, a.node)

    def _down_move(self, a: Action) -> None:
        assert a.node is not None and a.source is not None
        known = self.state.files.get(a.source)
        source = self.local.path(a.source)
        if (known is None or known.handle != a.node["h"]) and not mac_matches(source, a.node):
            a.kind, a.source = "download", None
            self._down_download(a)
            return
        target = self._target(a.path)
        if os.path.lexists(target):
            raise MegaError(f"{target} appeared during the sync; left as it is")
        os.rename(source, target)
        self.report.bytes_copied += a.size
        self._forget(a.source)
        self._finish_local(a.path, target, a.node)

    def _down_delete(self, a: Action) -> None:
        self.local.remove(a.path)
        self._forget(a.path)
