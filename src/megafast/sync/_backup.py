"""Backups with history: dated snapshots on MEGA that cost nothing for unchanged files.

``backup(mega, local, remote)`` makes ``remote/<UTC stamp>/`` (``2026-12-07T041800Z``), a
full copy of the local folder: a file unchanged since the last snapshot becomes a
server-side copy of the last snapshot's node (``p`` with that node's handle and key: no
byte is sent, the snapshot is complete on its own), a changed or new file is uploaded. The
snapshot is built under a name ending in ``.partial`` and renamed when complete, so an
interrupted run never leaves something that looks like a snapshot. A state file (0600)
remembers each file's size, mtime and fingerprint in the last snapshot, so unchanged files
are not read. Retention (``keep_daily``, ``keep_weekly``): the newest snapshot of each of
the last N days / ISO weeks that have one is kept, and always the newest; the others go to
the Rubbish Bin (emptying it frees their space). Without a retention option every snapshot is kept.

``restore(mega, remote, at, local)`` downloads the newest snapshot taken at or before
``at`` (a one-way sync down: byte-identical, MAC-checked, mtimes from the fingerprints).
``list_snapshots(mega, remote)`` lists them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MegaError, NodeNotFoundError, ValidationError
from ._content import parse_fingerprint, read_fingerprint, stat_key
from ._ignore import IgnoreRules
from ._local import scan_local
from ._remote import RemoteIndex, mark_changed, refresh_if_changed
from ._snapshot import Entry, make_snapshot
from ._state import Agreement, SyncState, default_state_dir, state_path
from ._store import StoreView, account_store
from ._transfers import SYNC_WORKERS, ManagerTransfers, Transfers

__all__ = ["BackupReport", "Snapshot", "backup", "list_snapshots", "parse_when", "restore"]

STAMP = "%Y-%m-%dT%H%M%SZ"
PARTIAL = ".partial"


@dataclass(frozen=True)
class Snapshot:
    name: str
    handle: str
    when: dt.datetime  # UTC

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "handle": self.handle, "time": self.when.isoformat()}


@dataclass
class BackupReport:
    snapshot: str = ""
    files: int = 0
    uploaded: list[str] = field(default_factory=list)
    copied: int = 0  # files made as server-side copies (no bytes sent)
    bytes_uploaded: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # snapshots removed by retention
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "files": self.files,
            "uploaded": list(self.uploaded),
            "copied": self.copied,
            "bytes_uploaded": self.bytes_uploaded,
            "skipped": [{"path": p, "reason": r} for p, r in sorted(self.skipped.items())],
            "removed": list(self.removed),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
        }


def _stamp_of(name: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(name, STAMP).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def _folder(mega: Any, remote: str, create: bool) -> str | None:
    path = "/" + remote.strip().strip("/")
    if path == "/":
        raise ValidationError("a backup goes into a folder of its own, not the Cloud Drive root")
    handle = mega.find_path_descriptor(path.strip("/"))
    if handle is None and create:
        if mega.find(path.strip("/"), exclude_deleted=True) is not None:
            raise ValidationError(f"{path} on MEGA is a file, not a folder")
        made = mega.create_folder(path.strip("/"))
        handle = made[path.rpartition("/")[2]]
    return str(handle) if handle is not None else None


def list_snapshots(mega: Any, remote: str) -> list[Snapshot]:
    """The snapshots in the backup folder ``remote``, oldest first."""
    refresh_if_changed(mega)
    root = _folder(mega, remote, create=False)
    if root is None:
        raise NodeNotFoundError(f"no such MEGA folder: {remote}")
    view = StoreView(account_store(mega))
    found = []
    for slot in view.children(root):
        if view.type_at(slot) != 1:
            continue
        name = view.attrs_at(slot).get("n")
        when = _stamp_of(name) if isinstance(name, str) else None
        if when is not None:
            found.append(Snapshot(str(name), str(view.store.handles[slot]), when))
    return sorted(found, key=lambda s: s.when)


def _day(s: Snapshot) -> Any:
    return s.when.date()


def _week(s: Snapshot) -> Any:
    return tuple(s.when.isocalendar())[:2]


def _kept(snapshots: Sequence[Snapshot], daily: int | None, weekly: int | None) -> set[str]:
    """The handles retention keeps (see the module docstring)."""
    if daily is None and weekly is None:
        return {s.handle for s in snapshots}
    keep = {snapshots[-1].handle} if snapshots else set()
    for count, key in ((daily, _day), (weekly, _week)):
        if not count:
            continue
        newest: dict[Any, Snapshot] = {}
        for snap in snapshots:  # oldest first: the last one seen per period is its newest
            newest[key(snap)] = snap
        for period in sorted(newest, reverse=True)[:count]:
            keep.add(newest[period].handle)
    return keep


def _partials(mega: Any, root: str) -> list[str]:
    """Snapshot folders an interrupted run left unfinished."""
    view = StoreView(account_store(mega))
    return [
        str(view.store.handles[slot])
        for slot in view.children(root)
        if view.type_at(slot) == 1 and str(view.attrs_at(slot).get("n", "")).endswith(PARTIAL)
    ]


def backup(
    mega: Any,
    local: str | os.PathLike[str],
    remote: str,
    *,
    keep_daily: int | None = None,
    keep_weekly: int | None = None,
    exclude: Iterable[str] = (),
    state_dir: str | os.PathLike[str] | None = None,
    transfers: Transfers | None = None,
    now: dt.datetime | None = None,
) -> BackupReport:
    """One backup run (see the module docstring); returns its report."""
    started = time.monotonic()
    root = Path(os.path.realpath(Path(local).expanduser()))
    if not root.is_dir():
        raise ValidationError(f"no such local folder: {root}")
    refresh_if_changed(mega)
    backup_root = _folder(mega, remote, create=True)
    assert backup_root is not None
    when = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    name = when.strftime(STAMP)
    previous = list_snapshots(mega, remote)
    if previous and previous[-1].when >= when.replace(microsecond=0):
        raise ValidationError(f"a snapshot {previous[-1].name} exists already; try again later")
    report = BackupReport(snapshot=name)
    rules = IgnoreRules.build(root, [("exclude", p) for p in exclude])
    local_scan = scan_local(root, rules)
    report.skipped.update(local_scan.skipped)
    sdir = Path(state_dir) if state_dir is not None else default_state_dir()
    path = state_path(sdir, mega.api_url, str(mega.root_id), remote, root, "megafast-backup-v1")
    state = SyncState.load(path)
    last = RemoteIndex.of(mega).scan(previous[-1].handle, IgnoreRules()) if previous else None
    trusted = last is not None and state.meta.get("snapshot") == previous[-1].handle
    copies: dict[str, tuple[dict[str, Any], Agreement]] = {}
    sends: list[str] = []
    for rel, lf in sorted(local_scan.files.items()):
        node = last.files.get(rel) if last is not None else None
        known = state.files.get(rel) if trusted else None
        if (
            node is not None
            and known is not None
            and known.handle == node["h"]
            and (lf.size, lf.mtime_ns) == (known.size, known.mtime_ns)
        ):
            copies[rel] = (node, known)
            continue
        if node is not None:
            try:
                c, st = read_fingerprint(root.joinpath(*rel.split("/")))
            except OSError as exc:
                report.skipped[rel] = f"cannot read: {exc.strerror or exc}"
                continue
            fp_r, fp_l = parse_fingerprint((node.get("a") or {}).get("c")), parse_fingerprint(c)
            if fp_r and fp_l and fp_r.same(fp_l) and node.get("s") == st.st_size:
                copies[rel] = (node, Agreement(st.st_size, st.st_mtime_ns, c, node["h"]))
                continue
        sends.append(rel)
    unfinished = _partials(mega, backup_root)
    uploads = _upload(mega, root, sends, report, transfers or ManagerTransfers(mega))
    report.uploaded = sorted(rel for rel, *_ in uploads)
    report.copied = len(copies)
    entries = [(rel, node["h"], node["key"], agreed) for rel, (node, agreed) in copies.items()]
    new_state = SyncState(path)
    mark_changed(mega)
    handle, folder_key = make_snapshot(
        mega, backup_root, name + PARTIAL, local_scan.dirs, entries + uploads, new_state
    )
    from ._remote import RemoteOps

    RemoteOps(mega).set_attributes(
        {"h": handle, "a": {"n": name + PARTIAL}, "key": folder_key}, n=name
    )
    new_state.meta["snapshot"] = handle
    new_state.save()
    report.files = len(new_state.files)
    snapshots = [*previous, Snapshot(name, handle, when.replace(microsecond=0))]
    keep = _kept(snapshots, keep_daily, keep_weekly)
    for handle in unfinished:  # to the Rubbish Bin, as every deletion here
        mega.delete(handle)
    for snap in snapshots:
        if snap.handle not in keep:
            mega.delete(snap.handle)
            report.removed.append(snap.name)
    report.seconds = time.monotonic() - started
    return report


def _upload(
    mega: Any, root: Path, sends: list[str], report: BackupReport, transfers: Transfers
) -> list[Entry]:
    """The changed and new files' bytes, several at a time (a file that changed while it
    was sent is skipped and reported); ``(rel, token, key, agreement)`` of each sent."""
    done: list[Entry] = []

    def send(rel: str) -> Entry | str:
        path = root.joinpath(*rel.split("/"))
        try:
            c, st = read_fingerprint(path)
            result = transfers.upload(path, st.st_size, None)
            if stat_key(os.lstat(path)) != stat_key(st):
                return "changed while it was sent; not backed up"
        except (OSError, MegaError) as exc:
            return f"not backed up: {getattr(exc, 'strerror', None) or exc}"
        return rel, result.token, result.key, Agreement(st.st_size, st.st_mtime_ns, c, "")

    if not sends:
        return done
    running = transfers.running() if isinstance(transfers, ManagerTransfers) else nullcontext()
    workers = SYNC_WORKERS if isinstance(transfers, ManagerTransfers) else 1
    with running, ThreadPoolExecutor(workers) as pool:
        for rel, got in zip(sends, pool.map(send, sends), strict=True):
            if isinstance(got, str):
                report.skipped[rel] = got
            else:
                done.append(got)
                report.bytes_uploaded += got[3].size
    return done


def parse_when(text: str) -> dt.datetime:
    """``2026-12-07`` (the end of that day, UTC), ``2026-12-07T10:30`` or a full ISO time
    (UTC unless it names a zone), or a snapshot's own name."""
    stamp = _stamp_of(text.strip())
    if stamp is not None:
        return stamp
    try:
        if len(text.strip()) == 10:
            day = dt.date.fromisoformat(text.strip())
            return dt.datetime.combine(day, dt.time(23, 59, 59), dt.timezone.utc)
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"not a date or time: {text!r} (e.g. 2026-12-07 or 2026-12-07T10:30)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def restore(
    mega: Any,
    remote: str,
    at: str | dt.datetime,
    local: str | os.PathLike[str],
    *,
    state_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """Download the newest snapshot taken at or before ``at`` into ``local`` (a one-way sync
    down: byte-identical, with the files' mtimes); returns the sync's report."""
    from . import Sync

    when = at if isinstance(at, dt.datetime) else parse_when(at)
    chosen = [s for s in list_snapshots(mega, remote) if s.when <= when]
    if not chosen:
        raise NodeNotFoundError(f"no snapshot in {remote} at or before {when.isoformat()}")
    path = "/" + remote.strip().strip("/") + "/" + chosen[-1].name
    return Sync(mega, local, path, direction="down", state_dir=state_dir).run()
