"""Deciding what a two-way sync does: each side against the last agreed state.

For every path either side holds (or the state remembers):

- both sides hold it: equal content -> nothing (recorded); one side changed since the state
  -> sent to the other; both changed (or no state) -> a conflict: both kept;
- one side holds it and the state knows it: the other side deleted it. The deletion is
  applied only when this side is unchanged since the state; a changed file is sent back
  instead (a change wins over a deletion);
- one side holds it, the state does not: new. A remote node whose handle the state knows
  under another path is a remote move (the local file is renamed); a new local file whose
  content is that of a remote file going away is a local move (the node is moved). Content
  already in the account is a server-side copy; a new remote file whose content an
  unchanged local file holds (size and fingerprint, from the state: nothing is read to
  plan it) is copied from that file on the disk, its MAC checked, instead of downloaded.

Folders: the state remembers folders both sides held; one missing on one side is deleted on
the other only when nothing inside it stays. Every action carries ``side``: ``up`` changes
MEGA, ``down`` changes the local folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._content import parse_fingerprint
from ._local import LocalFile, LocalScan
from ._plan import Plan, _covered, _depth, _Planner, _rename_source, _send
from ._remote import RemoteIndex, RemoteScan, node_c
from ._state import SyncState

__all__ = ["TwoWayPlan", "plan_two_way"]

Node = dict[str, Any]


@dataclass
class TwoWayPlan(Plan):
    local_deletions: int = 0  # files deleted locally (inside deleted folders too)
    remote_deletions: int = 0
    dirs: set[str] = field(default_factory=set)  # folders both sides hold


def _under(rel: str, paths: Any) -> list[str]:
    prefix = rel + "/"
    return [p for p in paths if p.startswith(prefix)]


class _TwoWay(_Planner):
    case_insensitive: bool = False

    def side(self, side: str, kind: str, rel: str, size: int = 0, **extra: Any) -> None:
        action = self.add(kind, rel, size, **extra)
        action.side = side

    def local_unchanged(self, rel: str, lf: LocalFile) -> bool:
        known = self.state.files.get(rel)
        return known is not None and (lf.size, lf.mtime_ns) == (known.size, known.mtime_ns)

    def remote_unchanged(self, rel: str, node: Node) -> bool:
        known = self.state.files.get(rel)
        return known is not None and node["h"] == known.handle and (node_c(node) or "") == known.c

    def clash(self, rel: str) -> str | None:
        """Why a path cannot be synced as a file/folder pair (None when it can)."""
        head = rel.rpartition("/")[0]
        if _covered(head, self.plan.skipped):
            return "a folder above it was skipped"
        if rel in self.remote.dirs and rel in self.local.files:
            return "a local file and a remote folder have this name"
        if rel in self.local.dirs and rel in self.remote.files:
            if rel in self.state.dirs:
                return "the remote folder was replaced by a file; nothing below it is changed"
            return "a local folder and a remote file have this name"
        return None

    # -- a path both sides hold ---------------------------------------------------------
    def pair(self, rel: str, lf: LocalFile, node: Node) -> None:
        if self.unchanged(rel, lf, node):
            self.plan.unchanged += 1
            return
        verdict = self.compare(rel, lf, node)
        if verdict is None:
            return
        lf = self.local.files[rel]
        c, fp = self.local_cs[rel]
        size = int(node.get("s") or 0)
        if verdict == "same":
            self.agree(rel, lf, node)
            self.plan.unchanged += 1
            return
        local_changed, remote_changed = self.changes(rel, lf, fp, node)
        if verdict == "mtime":  # same bytes: the side whose mtime moved gives it
            if self.local_unchanged(rel, lf) and parse_fingerprint(node_c(node)) is not None:
                self.side("down", "touch", rel, size, node=node)
            else:
                self.side("up", "touch", rel, lf.size, local_c=c, node=node)
            return
        if local_changed and remote_changed:
            self.side("up", "conflict", rel, lf.size, local_c=c, node=node)
        elif local_changed:
            _send(self, rel, lf, c, fp, node)
            self.plan.actions[-1].side = "up"
        else:
            self.side("down", "version", rel, size, node=node)
            self.plan.actions[-1].local_stat = (lf.size, lf.mtime_ns)

    def case_problems(self) -> None:
        """On a case-insensitive local disk: remote names that another name in the same
        folder (remote or local) matches when case is ignored are skipped."""
        local, remote = self.local, self.remote
        folded: dict[str, set[str]] = {}
        for rel in (*remote.files, *remote.dirs, *local.files, *local.dirs):
            if rel:
                folded.setdefault(rel.casefold(), set()).add(rel)
        for rel in sorted({*remote.files, *remote.dirs} - {*local.files, *local.dirs, ""}):
            others = sorted(folded[rel.casefold()] - {rel})
            if others:
                self.plan.skipped[rel] = (
                    f"the local disk ignores case: {rel!r} and {others[0]!r} would be one name"
                )
                for other in others:  # the other remote name cannot come down either
                    if other in remote.files or other in remote.dirs:
                        self.plan.skipped.setdefault(other, self.plan.skipped[rel])


def plan_two_way(
    root: Path,
    local: LocalScan,
    remote: RemoteScan,
    index: RemoteIndex,
    state: SyncState,
    *,
    case_insensitive: bool = False,
) -> TwoWayPlan:
    """What to do on each side (see the module docstring)."""
    p = _TwoWay("up", root, local, remote, index, state, True, TwoWayPlan())
    p.case_insensitive = case_insensitive
    plan = p.plan
    assert isinstance(plan, TwoWayPlan)
    L, R, S = local.files, remote.files, state.files
    if p.case_insensitive:
        p.case_problems()
    for rel in sorted({*L, *R, *local.dirs, *remote.dirs}, key=_depth):
        problem = p.clash(rel)
        if problem and rel not in plan.skipped:
            plan.skipped[rel] = problem
    handles = {node["h"]: rel for rel, node in R.items()}
    by_handle = {agr.handle: rel for rel, agr in S.items()}
    up_gone: dict[str, Node] = {}  # remote files whose local copy was deleted
    down_gone: dict[str, LocalFile] = {}
    new_local: list[str] = []
    fetch: list[tuple[str, Node]] = []  # remote files to bring down (copied or downloaded)
    for rel in sorted({*L, *R}):
        if _covered(rel, plan.skipped) or _covered(rel, local.skipped):
            continue
        if _covered(rel, remote.skipped):
            continue
        lf, node = L.get(rel), R.get(rel)
        known = S.get(rel)
        if lf is not None and node is not None:
            p.pair(rel, lf, node)
        elif lf is not None:
            unchanged = known is not None and p.local_unchanged(rel, lf)
            moved_to = handles.get(known.handle) if known is not None else None
            if unchanged and moved_to is not None and moved_to not in S and moved_to not in L:
                continue  # a remote move: done from the remote side below
            if unchanged:
                down_gone[rel] = lf
            else:
                new_local.append(rel)
        elif node is not None:
            size = int(node.get("s") or 0)
            if known is not None:
                if p.remote_unchanged(rel, node):
                    up_gone[rel] = node
                else:
                    fetch.append((rel, node))
                continue
            source = by_handle.get(node["h"])
            if (
                source is not None
                and source not in R
                and source in L
                and source not in p.claimed
                and p.local_unchanged(source, L[source])
                and not _covered(source, plan.skipped)
            ):
                p.claimed.add(source)
                p.side("down", "move", rel, size, source=source, node=node)
            else:
                fetch.append((rel, node))
    _fetch(p, fetch)
    read = [(rel, got) for rel in new_local if (got := p.local_c(rel)) is not None]
    gone_cs = {S[old].c for old in up_gone if old in S}
    gone_stats = {(S[old].size, S[old].mtime_ns) for old in up_gone if old in S}

    def likeness(item: tuple[str, tuple[str, Any]]) -> int:
        lf = L[item[0]]
        return 0 if (lf.size, lf.mtime_ns) in gone_stats else 1 if item[1][0] in gone_cs else 2

    # a file with a vanished file's exact size and mtime (a rename keeps them) claims its
    # move first, then one with its fingerprint; the others become copies or uploads
    read.sort(key=likeness)
    for rel, (c, fp) in read:
        lf = L[rel]
        old = _rename_source(p, rel, lf, c, fp, up_gone)
        if old is not None:
            p.claimed.add(old)
            p.side("up", "move", rel, lf.size, source=old, local_c=c, node=up_gone.pop(old))
            continue
        _send(p, rel, lf, c, fp, None)
        plan.actions[-1].side = "up"
    _folders(p, up_gone, down_gone)
    return plan


def _fetch(p: _TwoWay, fetch: list[tuple[str, Node]]) -> None:
    """Remote files to bring down: a copy of a local file of the same size and fingerprint
    (the executor checks its MAC, and downloads when it differs), else a download. A source
    is a file unchanged on both sides since the state, so no action of this run moves or
    rewrites it."""
    known: dict[tuple[int, bytes], list[str]] = {}
    if fetch:
        for rel, lf in p.local.files.items():
            agreed = p.state.files.get(rel)
            node = p.remote.files.get(rel)
            fp = parse_fingerprint(agreed.c) if agreed is not None else None
            if (
                fp is not None
                and node is not None
                and p.local_unchanged(rel, lf)
                and p.remote_unchanged(rel, node)
            ):
                known.setdefault((lf.size, fp.crc), []).append(rel)
    for rel, node in fetch:
        size = int(node.get("s") or 0)
        fp = parse_fingerprint(node_c(node))
        found = known.get((size, fp.crc), []) if fp is not None else []
        source = next((s for s in found if s not in p.claimed), None)
        if source is not None:
            p.side("down", "copy", rel, size, source=source, node=node)
        else:
            p.side("down", "download", rel, size, node=node)


def _folders(p: _TwoWay, up_gone: dict[str, Node], down_gone: dict[str, LocalFile]) -> None:
    """Folders made, folders deleted (only when nothing inside stays), file deletions."""
    plan = p.plan
    assert isinstance(plan, TwoWayPlan)
    local, remote, state = p.local, p.remote, p.state
    plan.dirs = {d for d in local.dirs & remote.dirs.keys() if d}

    def removable(d: str, files: dict[str, Any], gone: dict[str, Any], dirs: Any) -> bool:
        if d not in state.dirs or p.protected(d) or _covered(d, plan.skipped):
            return False
        if _under(d, (*local.skipped, *remote.skipped, *plan.skipped)):
            return False
        if any(f not in gone and f not in p.claimed for f in _under(d, files)):
            return False  # a file stays in it (one moved or deleted away does not)
        return not any(s in plan.dirs or s in state.keep for s in _under(d, dirs))

    kept_up = {d for d in remote.dirs if d} - local.dirs
    kept_down = local.dirs - remote.dirs.keys()
    up_del = {d for d in kept_up if removable(d, remote.files, up_gone, remote.dirs)}
    down_del = {d for d in kept_down if removable(d, local.files, down_gone, local.dirs)}
    # a folder is removed only when every folder below it is removed too
    up_del = {d for d in up_del if all(s in up_del for s in _under(d, remote.dirs))}
    down_del = {d for d in down_del if all(s in down_del for s in _under(d, local.dirs))}
    for d in sorted(kept_down - down_del, key=_depth):
        if not _covered(d, plan.skipped):
            p.side("up", "mkdir", d)
    for d in sorted(kept_up - up_del, key=_depth):
        if not _covered(d, plan.skipped):
            p.side("down", "mkdir", d)
    for d in sorted(up_del, key=_depth):
        if not _covered(d.rpartition("/")[0], up_del):
            p.side("up", "delete", d, is_dir=True)
    for d in sorted(down_del, key=_depth):
        if not _covered(d.rpartition("/")[0], down_del):
            p.side("down", "delete", d, is_dir=True)
    for rel, node in sorted(up_gone.items()):
        if rel in p.claimed or p.protected(rel):
            continue
        plan.remote_deletions += 1
        if not _covered(rel, up_del):
            p.side("up", "delete", rel, int(node.get("s") or 0), node=node)
    for rel, lf in sorted(down_gone.items()):
        if rel in p.claimed or p.protected(rel):
            continue
        plan.local_deletions += 1
        if not _covered(rel, down_del):
            p.side("down", "delete", rel, lf.size)
