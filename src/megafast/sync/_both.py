"""Two-way sync: :class:`TwoWaySync` plans with :func:`~._twoway.plan_two_way` and carries
the plan out with the one-way executor, once per side (``up`` actions change MEGA, ``down``
actions the local folder), sharing one state and one report.

Safety, as rclone bisync has it: a run that would delete more than ``max_delete`` percent
of either side's files (those in the last agreed state) stops before changing anything
(:class:`SyncSafetyError`) unless ``force``; a missing local folder or remote folder is
never taken as "everything was deleted" (an error while a state exists), and neither is a
side that is empty while the state remembers files (an unmounted disk) unless ``force``.
The state file is read strictly (:class:`~._state.StateFileError` when it is damaged,
truncated, or not the user's own); ``resync`` starts over from no state (merge, nothing
deleted).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import SourceNotFoundError, ValidationError
from ._exec import Executor
from ._ignore import IgnoreRules
from ._local import LocalScan, LocalTree, scan_local, temp_target
from ._remote import RemoteIndex, RemoteOps, RemoteScan, mark_changed, refresh_if_changed
from ._report import SyncReport
from ._state import SyncState, default_state_dir, state_path
from ._transfers import ManagerTransfers, Transfers
from ._twoway import TwoWayPlan, plan_two_way

__all__ = ["SyncSafetyError", "TwoWaySync", "case_insensitive"]

STATE_KIND = "megafast-bisync-v1"
MAX_PASSES = 3  # a pass that made conflict copies is followed by one that carries them over


class SyncSafetyError(ValidationError):
    """A two-way run stopped before changing anything: it would delete too much, or a side
    looks empty or unreachable. The message says what and how to go on (``force``)."""


def case_insensitive(root: Path) -> bool:
    """Whether the file system holding ``root`` treats names that differ only in case as
    one (the root's own name looked up in another case; else a probe file made and
    removed)."""
    name = root.name
    if name.swapcase() != name:
        try:
            return os.path.samestat(os.stat(root), os.stat(root.with_name(name.swapcase())))
        except OSError:
            return False
    probe = root / f".megafast-case-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    os.close(fd)
    try:
        return os.path.lexists(root / probe.name.upper())
    finally:
        os.unlink(probe)


class TwoWaySync:
    """A two-way sync pair: changes on either side since the last agreed state go to the
    other. Options as :class:`~megafast.sync.Sync` (``delete_permanently``, ``versions``,
    ``exclude``/``include``/``patterns``, ``state_dir``, ``transfers``, ``config``,
    ``progress``, ``thumbnails``), plus ``max_delete`` (percent, default 50), ``force`` and ``resync``;
    ``case_insensitive``: whether the local disk ignores case (None: found out)."""

    def __init__(
        self,
        mega: Any,
        local: str | os.PathLike[str],
        remote: str,
        *,
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
        max_delete: float = 50.0,
        force: bool = False,
        resync: bool = False,
        case_insensitive: bool | None = None,
    ) -> None:
        if not isinstance(remote, str) or not remote.strip():
            raise ValidationError("the remote folder is a path such as '/backups/photos'")
        if not 0 <= max_delete <= 100:
            raise ValidationError("max_delete is a percentage from 0 to 100")
        self.mega = mega
        self.local = Path(local).expanduser()
        self.remote = "/" + remote.strip().strip("/")
        self.delete_permanently = delete_permanently
        self.versions = versions
        self.patterns: list[tuple[str, str]] = [("exclude", p) for p in exclude]
        self.patterns += [("include", p) for p in include]
        self.patterns += list(patterns)
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.transfers: Transfers = transfers or ManagerTransfers(mega, config)
        self.progress = progress
        self.thumbnails = thumbnails
        self.max_delete = max_delete
        self.force = force
        self.resync = resync
        self.case_insensitive = case_insensitive

    # -- the two roots ------------------------------------------------------------------
    def _remote_root(self, create: bool) -> str | None:
        if self.remote == "/":
            return str(self.mega.root_id)
        path = self.remote.strip("/")
        handle = self.mega.find_path_descriptor(path)
        if handle is not None:
            return str(handle)
        found = self.mega.find(path, exclude_deleted=True)
        if found is not None:
            raise SyncSafetyError(f"{self.remote} on MEGA is a file, not a folder; nothing changed")
        if not create:
            return None
        made = self.mega.create_folder(path)
        return str(made[path.rpartition("/")[2]])

    def _open_state(self, root: Path) -> SyncState:
        """The pair's state, keyed by the remote folder's path (so a remote folder that
        went missing is noticed) and the local folder."""
        path = state_path(
            self.state_dir, self.mega.api_url, str(self.mega.root_id), self.remote, root, STATE_KIND
        )
        if self.resync:
            return SyncState(path)
        return SyncState.load(path, strict=True)

    def _state_for_missing(self, what: str) -> None:
        raise SyncSafetyError(
            f"{what} is missing but this pair has synced before: it is not taken as "
            "everything deleted (an unmounted disk, a moved folder?); nothing changed. "
            "Bring it back, or start over with resync (--resync), which deletes nothing"
        )

    # -- running ------------------------------------------------------------------------
    def run(self, dry_run: bool = False) -> SyncReport:
        """Plan both sides and (unless ``dry_run``) carry the plan out; a run that made
        conflict copies carries them to the other side in a second pass."""
        started = time.monotonic()
        report: SyncReport | None = None
        for _ in range(MAX_PASSES):
            report, again = self._pass(dry_run, report)
            if dry_run or not again:
                break
        assert report is not None
        report.seconds = time.monotonic() - started
        return report

    def _pass(self, dry_run: bool, report: SyncReport | None) -> tuple[SyncReport, bool]:
        refresh_if_changed(self.mega)
        local_exists = self.local.is_dir()
        if not local_exists and os.path.lexists(self.local):
            raise SourceNotFoundError(f"{self.local} is not a folder")
        root = Path(os.path.realpath(self.local))
        state = self._open_state(root)
        remote_root = self._remote_root(create=False)
        if state.existed and not local_exists:
            self._state_for_missing(f"the local folder {root}")
        if state.existed and remote_root is None:
            self._state_for_missing(f"the MEGA folder {self.remote}")
        if not dry_run:
            root.mkdir(parents=True, exist_ok=True)
            remote_root = remote_root or self._remote_root(create=True)
        if report is None:
            report = SyncReport("both", str(root), self.remote, dry_run=dry_run)
        there = root.is_dir()
        rules = IgnoreRules.build(root if there else None, self.patterns)
        local = scan_local(root, rules) if there else LocalScan()
        index = RemoteIndex.of(self.mega)
        remote = index.scan(remote_root, rules) if remote_root else RemoteScan()
        if self.case_insensitive is None and there:
            self.case_insensitive = case_insensitive(root)
        plan = plan_two_way(
            root, local, remote, index, state, case_insensitive=bool(self.case_insensitive)
        )
        self._check(plan, state, local.files or local.dirs, remote.files or len(remote.dirs) > 1)
        report.skipped.update({**local.skipped, **remote.skipped, **plan.skipped})
        report.notes += [n for n in (*remote.notes, *plan.notes) if n and n not in report.notes]
        report.files_unchanged = plan.unchanged
        if dry_run:
            report.actions = plan.actions
            return report, False
        assert remote_root is not None
        self._clear_temps(root, local.temps, plan)
        self._execute(root, remote.dirs, plan, state, report, local.files, remote.files)
        return report, any(a.kind == "conflict" for a in plan.actions)

    def _clear_temps(self, root: Path, temps: list[str], plan: TwoWayPlan) -> None:
        """Remove what killed downloads left that no download of this run resumes."""
        fetching = {a.path for a in plan.actions if a.side == "down" and a.node is not None}
        tree = LocalTree(root)
        for rel in temps:
            target = temp_target(rel)
            if target not in fetching:
                tree.clear_temp_files(tree.path(target), all_files=True)

    def _check(self, plan: TwoWayPlan, state: SyncState, local_any: Any, remote_any: Any) -> None:
        if self.force or not state.files:
            return
        known = len(state.files)
        for side, present, deleting in (
            ("local folder", local_any, plan.local_deletions),
            ("MEGA folder", remote_any, plan.remote_deletions),
        ):
            if not present:
                raise SyncSafetyError(
                    f"the {side} is empty but {known} files were agreed before: not taken "
                    "as everything deleted (an unmounted disk?); nothing changed. "
                    "Run with force (--force) if it really was emptied"
                )
            if deleting and deleting * 100 > self.max_delete * known:
                raise SyncSafetyError(
                    f"this run would delete {deleting} of {known} files in the {side} "
                    f"(more than {self.max_delete:g}%); nothing changed. Check what happened, "
                    "then run with force (--force) or a higher max_delete (--max-delete PCT)"
                )

    def _execute(
        self,
        root: Path,
        remote_dirs: dict[str, str],
        plan: TwoWayPlan,
        state: SyncState,
        report: SyncReport,
        local_files: Any,
        remote_files: Any,
    ) -> None:
        state.files.update(plan.agreed)
        gone = [r for r in state.files if r not in local_files and r not in remote_files]
        for rel in gone:
            del state.files[rel]
        dirs = set(plan.dirs)
        dirs.update(a.path for a in plan.actions if a.kind == "mkdir")
        dirs -= {a.path for a in plan.actions if a.kind == "delete" and a.is_dir}
        # saved when anything moved (a re-run with nothing to do writes nothing)
        state.dirty = bool(plan.agreed or gone or dirs != state.dirs or not state.existed)
        state.dirs = dirs
        tree = LocalTree(root, permanent_delete=self.delete_permanently)
        ups = [a for a in plan.actions if a.side == "up"]
        downs = [a for a in plan.actions if a.side == "down"]
        scan_dirs = dict(remote_dirs)
        changed = False
        try:
            for direction, actions in (("up", ups), ("down", downs)):
                executor = Executor(
                    direction,
                    tree,
                    RemoteOps(self.mega, versions=self.versions, thumbnails=self.thumbnails),
                    self.transfers,
                    state,
                    report,
                    scan_dirs,
                    self.progress,
                )
                try:
                    executor.run(actions)
                finally:
                    changed = changed or executor.remote_changed
                    scan_dirs = executor.dirs
                state.dirty = False
        finally:
            if changed:
                mark_changed(self.mega)
