"""Sync between a local folder and a MEGA folder, moving only what changed: one way, or
both ways (``direction="both"``, :class:`TwoWaySync`).

``Sync(mega, local, remote, direction="up")`` makes the MEGA folder ``remote`` (a path from
the Cloud Drive, ``"/backups/photos"``) match the local folder; ``direction="down"`` makes
the local folder match MEGA. :meth:`Sync.run` returns a :class:`SyncReport`; ``sync(...)``
does both in one call. See docs/SYNC.md for the rules (what counts as changed, versions,
server-side copies, deletions, conflicts, the state file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import NodeNotFoundError, SourceNotFoundError, ValidationError
from ._backup import BackupReport, Snapshot, backup, list_snapshots, restore
from ._both import SyncSafetyError, TwoWaySync
from ._exec import Executor
from ._ignore import IGNORE_FILE, IgnoreRules
from ._local import TRASH_DIR, LocalScan, LocalTree, scan_local
from ._plan import plan_sync
from ._remote import (
    RemoteIndex,
    RemoteOps,
    RemoteScan,
    list_versions,
    mark_changed,
    refresh_if_changed,
    remove_versions,
)
from ._report import Action, SyncReport
from ._state import StateFileError, SyncState, default_state_dir, state_path
from ._transfers import EngineTransfers, ManagerTransfers, Transfers
from ._watchloop import WatchLoop, watch_pair

__all__ = [
    "IGNORE_FILE",
    "TRASH_DIR",
    "Action",
    "BackupReport",
    "Snapshot",
    "backup",
    "list_snapshots",
    "restore",
    "StateFileError",
    "Sync",
    "SyncSafetyError",
    "TwoWaySync",
    "WatchLoop",
    "watch_pair",
    "SyncReport",
    "Transfers",
    "EngineTransfers",
    "ManagerTransfers",
    "list_versions",
    "refresh_if_changed",
    "remove_versions",
    "sync",
]


class Sync:
    """A sync pair: a local folder and a MEGA folder, one way.

    ``direction``: ``"up"`` (local -> MEGA) or ``"down"`` (MEGA -> local).
    ``delete``: also delete what the source side does not have (MEGA: to the Rubbish Bin;
    local: into ``.megafast-trash/<date>/`` in the local root, or for good with
    ``delete_permanently``). ``versions``: a changed file replaces the remote one keeping
    it as a version (MEGA's ``ov``); False replaces it. ``exclude``/``include``:
    gitignore-style patterns after the root's ``.megafastignore`` (``patterns``: the same
    as ordered ``("exclude"|"include", pattern)`` pairs). ``state_dir``: where the pair's
    state file lives. ``transfers``: how bytes move (default: :class:`ManagerTransfers`, one
    transfer manager per run: many files in flight, batched commands; :class:`EngineTransfers`
    moves one file at a time).
    ``progress(done, total)``: bytes of the run's transfers. ``thumbnails``: uploaded
    images (and videos, with ffmpeg) get a thumbnail and a preview, made while they upload
    (None: the client's ``thumbnails`` option, on when Pillow is installed).
    """

    def __init__(
        self,
        mega: Any,
        local: str | os.PathLike[str],
        remote: str,
        *,
        direction: str = "up",
        delete: bool = False,
        delete_permanently: bool = False,
        versions: bool = True,
        exclude: Iterable[str] = (),
        include: Iterable[str] = (),
        patterns: Sequence[tuple[str, str]] = (),
        state_dir: str | os.PathLike[str] | None = None,
        transfers: Transfers | None = None,
        config: Any = None,
        progress: Callable[[int, int], None] | None = None,
        thumbnails: bool | None = None,
    ) -> None:
        if direction not in ("up", "down"):
            raise ValidationError(f"direction is 'up' or 'down', not {direction!r}")
        if not isinstance(remote, str) or not remote.strip():
            raise ValidationError("the remote folder is a path such as '/backups/photos'")
        self.mega = mega
        self.local = Path(local).expanduser()
        self.remote = "/" + remote.strip().strip("/")
        self.direction = direction
        self.delete = delete or delete_permanently
        self.delete_permanently = delete_permanently
        self.versions = versions
        self.patterns: list[tuple[str, str]] = [("exclude", p) for p in exclude]
        self.patterns += [("include", p) for p in include]
        self.patterns += list(patterns)
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.transfers: Transfers = transfers or ManagerTransfers(mega, config)
        self.progress = progress
        self.thumbnails = thumbnails

    def _local_root(self, dry_run: bool) -> Path | None:
        """The local folder (made when missing going down); None for a dry run down into a
        folder that does not exist yet."""
        root = self.local
        if not root.is_dir():
            if self.direction == "up" or os.path.lexists(root):
                raise SourceNotFoundError(f"no such local folder: {root}")
            if dry_run:
                return None
            root.mkdir(parents=True)
        return Path(os.path.realpath(root))

    def _remote_root(self, create: bool) -> str | None:
        """The remote folder's handle; None when it is missing and ``create`` is false
        going up (a dry run: everything would be uploaded)."""
        if self.remote == "/":
            return str(self.mega.root_id)
        handle = self.mega.find_path_descriptor(self.remote.strip("/"))
        if handle is None:
            if not create and self.direction == "up":
                return None
            if not create:
                raise NodeNotFoundError(f"no such MEGA folder: {self.remote}")
            created = self.mega.create_folder(self.remote.strip("/"))
            handle = created[self.remote.rstrip("/").rpartition("/")[2]]
        return str(handle)

    def run(self, dry_run: bool = False) -> SyncReport:
        """Compare both sides and (unless ``dry_run``) make the destination match."""
        started = time.monotonic()
        up = self.direction == "up"
        refresh_if_changed(self.mega)
        local_root = self._local_root(dry_run)
        root = local_root or Path(os.path.abspath(self.local))
        remote_root = self._remote_root(create=up and not dry_run)
        account = str(self.mega.root_id)  # the Cloud Drive handle names the account
        state = SyncState.load(
            state_path(self.state_dir, self.mega.api_url, account, remote_root or "", root)
        )
        rules = IgnoreRules.build(local_root, self.patterns)
        local = scan_local(local_root, rules) if local_root else LocalScan()
        index = RemoteIndex.of(self.mega)
        remote = index.scan(remote_root, rules) if remote_root else RemoteScan()
        plan = plan_sync(self.direction, root, local, remote, index, state, delete=self.delete)
        report = SyncReport(self.direction, str(root), self.remote, dry_run=dry_run)
        report.skipped = {**local.skipped, **remote.skipped, **plan.skipped}
        report.notes = [n for n in (state.note, *remote.notes, *plan.notes) if n]
        report.files_unchanged = plan.unchanged
        if dry_run:
            report.actions = plan.actions
            report.seconds = time.monotonic() - started
            return report
        state.files.update(plan.agreed)
        gone = [r for r in state.files if r not in local.files and r not in remote.files]
        for rel in gone:
            del state.files[rel]
        state.dirty = bool(plan.agreed or gone or state.note)
        tree = LocalTree(root, permanent_delete=self.delete_permanently)
        if not up:  # files found complete: what a download killed at its end left beside them
            for rel in plan.agreed:
                tree.clear_temp_files(tree.path(rel), all_files=True)
        executor = Executor(
            self.direction,
            tree,
            RemoteOps(self.mega, versions=self.versions, thumbnails=self.thumbnails),
            self.transfers,
            state,
            report,
            remote.dirs,
            self.progress,
        )
        try:
            executor.run(plan.actions)
        finally:
            if executor.remote_changed:
                mark_changed(self.mega)
        report.seconds = time.monotonic() - started
        return report


def sync(
    mega: Any,
    local: str | os.PathLike[str],
    remote: str,
    *,
    direction: str = "up",
    dry_run: bool = False,
    **options: Any,
) -> SyncReport:
    """One run of :class:`Sync` (same options), or of :class:`TwoWaySync` with
    ``direction="both"``; returns its report."""
    if direction == "both":
        return TwoWaySync(mega, local, remote, **options).run(dry_run=dry_run)
    return Sync(mega, local, remote, direction=direction, **options).run(dry_run=dry_run)
