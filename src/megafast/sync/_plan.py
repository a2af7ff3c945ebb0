"""Deciding what a sync does: compare the source side, the destination side and the state.

Content decides (size and MEGA's fingerprint: CRC samples plus mtime within 2 s). The size
and mtime recorded in the state are only a pre-check: a file whose size, mtime and remote
node all equal the state's is not read again; anything else is read and compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._content import Fingerprint, mac_matches, parse_fingerprint, read_fingerprint
from ._local import LocalFile, LocalScan
from ._remote import RemoteIndex, RemoteScan, node_c
from ._report import Action
from ._state import Agreement, SyncState

__all__ = ["Plan", "plan_sync"]

Node = dict[str, Any]


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    agreed: dict[str, Agreement] = field(default_factory=dict)  # found equal: recorded as is
    unchanged: int = 0


def _covered(rel: str, paths: set[str] | dict[str, Any]) -> bool:
    """Whether ``rel`` or a folder above it is in ``paths``."""
    while rel:
        if rel in paths:
            return True
        rel = rel.rpartition("/")[0]
    return False


def _depth(rel: str) -> int:
    return rel.count("/")


@dataclass
class _Planner:
    direction: str
    root: Path
    local: LocalScan
    remote: RemoteScan
    index: RemoteIndex
    state: SyncState
    delete: bool
    plan: Plan = field(default_factory=Plan)
    local_cs: dict[str, tuple[str, Fingerprint]] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)  # sources a move takes away

    # -- reading the local side ----------------------------------------------------------
    def local_c(self, rel: str) -> tuple[str, Fingerprint] | None:
        """The local file's ``c`` (read now, once), or None when it cannot be read (skipped)."""
        if rel in self.local_cs:
            return self.local_cs[rel]
        try:
            c, st = read_fingerprint(self.root.joinpath(*rel.split("/")))
        except OSError as exc:
            self.plan.skipped[rel] = f"cannot read: {exc.strerror or exc}"
            return None
        fp = parse_fingerprint(c)
        assert fp is not None
        self.local.files[rel] = LocalFile(st.st_size, st.st_mtime_ns)
        self.local_cs[rel] = (c, fp)
        return c, fp

    def unchanged(self, rel: str, lf: LocalFile, node: Node | None) -> bool:
        """The fast pre-check: both sides as the state recorded them (no read)."""
        known = self.state.files.get(rel)
        return (
            known is not None
            and node is not None
            and (lf.size, lf.mtime_ns) == (known.size, known.mtime_ns)
            and node["h"] == known.handle
            and (node_c(node) or "") == known.c
        )

    def agree(self, rel: str, lf: LocalFile, node: Node) -> None:
        self.plan.agreed[rel] = Agreement(lf.size, lf.mtime_ns, node_c(node) or "", node["h"])

    def changes(self, rel: str, lf: LocalFile, fp: Fingerprint, node: Node) -> tuple[bool, bool]:
        """(local changed, remote changed) since the state's agreement (True without one)."""
        known = self.state.files.get(rel)
        if known is None:
            return True, True
        was = parse_fingerprint(known.c)
        local_changed = was is None or lf.size != known.size or not was.same(fp)
        remote_changed = (node_c(node) or "") != known.c or node.get("s") != known.size
        return local_changed, remote_changed

    def compare(self, rel: str, lf: LocalFile, node: Node) -> str | None:
        """'same', 'mtime' (same content, other mtime), 'differ', or None (unreadable)."""
        got = self.local_c(rel)
        if got is None:
            return None
        lf = self.local.files[rel]
        fp_r = parse_fingerprint(node_c(node))
        if node.get("s") != lf.size:
            return "differ"
        if fp_r is None:
            # no fingerprint on the remote file (another client's upload): the MAC decides;
            # going up, the remote file then gets its fingerprint ("mtime")
            if not mac_matches(self.root.joinpath(*rel.split("/")), node):
                return "differ"
            return "mtime" if self.direction == "up" else "same"
        if fp_r.same(got[1]):
            return "same"
        return "mtime" if fp_r.crc == got[1].crc else "differ"

    def both(
        self, rel: str, lf: LocalFile, node: Node
    ) -> tuple[str, LocalFile, str, Fingerprint, bool] | None:
        """A path both sides hold: ``(kind, local file, local c, its fingerprint, local
        changed)`` with kind "same" (nothing to do; counted, and recorded when the state
        did not say so), "touch" (same content, other mtime), "conflict" (both changed
        since the state's agreement) or "change"; None when the local file cannot be read."""
        if self.unchanged(rel, lf, node):
            self.plan.unchanged += 1
            return "same", lf, "", Fingerprint(b"", 0), False
        verdict = self.compare(rel, lf, node)
        if verdict is None:
            return None
        lf = self.local.files[rel]
        c, fp = self.local_cs[rel]
        if verdict == "same":
            self.agree(rel, lf, node)
            self.plan.unchanged += 1
            return "same", lf, c, fp, False
        if verdict == "mtime":
            return "touch", lf, c, fp, False
        local_changed, remote_changed = self.changes(rel, lf, fp, node)
        if local_changed and remote_changed and rel in self.state.files:
            return "conflict", lf, c, fp, True
        return "change", lf, c, fp, local_changed

    def add(self, kind: str, rel: str, size: int = 0, **extra: Any) -> Action:
        action = Action(kind, rel, size, **extra)
        known = self.local.files.get(rel) if extra.get("local_c") else None
        if known is not None:  # what the local file looked like when local_c was read
            action.local_stat = (known.size, known.mtime_ns)
        self.plan.actions.append(action)
        return action

    # -- shared steps --------------------------------------------------------------------
    def protected(self, rel: str) -> bool:
        """Never delete what was skipped on either side, nor conflict copies we made."""
        return (
            _covered(rel, self.local.skipped)
            or _covered(rel, self.remote.skipped)
            or _covered(rel, self.plan.skipped)
            or rel in self.state.keep
        )

    def deletions(self, extra_files: dict[str, Any], extra_dirs: set[str] | dict[str, str]) -> None:
        """Delete destination files and folders the source does not have (``--delete``)."""
        gone_dirs = sorted((d for d in extra_dirs if d and not self.protected(d)), key=_depth)
        tops: set[str] = set()
        for d in gone_dirs:
            if _covered(d.rpartition("/")[0], tops):
                continue
            inside = [f for f in self.claimed if f.startswith(d + "/")]
            kept = [k for k in self.state.keep if k.startswith(d + "/")]
            if inside or kept or any(_covered(s, {d}) for s in self.plan.skipped):
                continue  # a move still takes a file from it, or it holds something kept
            tops.add(d)
            self.add("delete", d, is_dir=True)
        for rel, item in sorted(extra_files.items()):
            if rel in self.claimed or self.protected(rel) or _covered(rel, tops):
                continue
            size = item.size if isinstance(item, LocalFile) else int(item.get("s") or 0)
            self.add("delete", rel, size, node=item if isinstance(item, dict) else None)


# ------------------------------------------------------------------------------------------
# up: local -> MEGA
# ------------------------------------------------------------------------------------------
def _plan_up(p: _Planner) -> None:
    local, remote = p.local, p.remote
    for d in sorted(local.dirs - remote.dirs.keys(), key=_depth):
        if _covered(d, remote.files):
            p.plan.skipped[d] = "a remote file has this folder's name"
            continue
        p.add("mkdir", d)
    gone = {r: n for r, n in remote.files.items() if r not in local.files}
    for rel in sorted(local.files):
        lf = local.files[rel]
        node = remote.files.get(rel)
        if rel in remote.dirs or _covered(rel.rpartition("/")[0], p.plan.skipped):
            p.plan.skipped.setdefault(rel, "a remote folder has this name")
            continue
        if node is not None:
            both = p.both(rel, lf, node)
            if both is None:
                continue
            kind, lf, c, fp, _ = both
            if kind in ("touch", "conflict"):
                p.add(kind, rel, lf.size, local_c=c, node=node)
            elif kind == "change":
                _send(p, rel, lf, c, fp, node)
            continue
        got = p.local_c(rel)
        if got is None:
            continue
        lf = local.files[rel]
        c, fp = got
        if p.delete:
            moved = _rename_source(p, rel, lf, c, fp, gone)
            if moved is not None:
                p.claimed.add(moved)
                p.add("move", rel, lf.size, source=moved, local_c=c, node=gone[moved])
                continue
        _send(p, rel, lf, c, fp, None)
    if p.delete:
        p.deletions(gone, {d: h for d, h in remote.dirs.items() if d not in local.dirs})


def _rename_source(
    p: _Planner, rel: str, lf: LocalFile, c: str, fp: Fingerprint, gone: dict[str, Node]
) -> str | None:
    """A destination file that is going away and holds this content: the file was renamed
    or moved on the source side. Its state entry must show the same fingerprint (then no
    byte needs reading) or its CRC samples and size must match (the MAC is checked later)."""
    best: str | None = None
    for node in p.index.same_content(lf.size, fp):
        for old, gone_node in gone.items():
            if gone_node["h"] == node["h"] and old not in p.claimed and not p.protected(old):
                known = p.state.files.get(old)
                if known is not None and known.c == c:
                    return old
                best = best or old
    return best


def _send(p: _Planner, rel: str, lf: LocalFile, c: str, fp: Fingerprint, node: Node | None) -> None:
    kind = "version" if node is not None else "upload"
    candidates = [
        n for n in p.index.same_content(lf.size, fp) if node is None or n["h"] != node["h"]
    ]
    if candidates:
        p.add(
            "copy",
            rel,
            lf.size,
            source=candidates[0]["h"],
            local_c=c,
            node=node,
            source_node=candidates[0],
            detail="replaces" if node is not None else "",
        )
    else:
        p.add(kind, rel, lf.size, local_c=c, node=node)


# ------------------------------------------------------------------------------------------
# down: MEGA -> local
# ------------------------------------------------------------------------------------------
def _plan_down(p: _Planner) -> None:
    local, remote = p.local, p.remote
    for d in sorted(remote.dirs.keys() - local.dirs - {""}, key=_depth):
        if _covered(d, local.files):
            p.plan.skipped[d] = "a local file has this folder's name"
            continue
        p.add("mkdir", d)
    gone = {r: f for r, f in local.files.items() if r not in remote.files}
    # local content known without reading: unchanged files the state describes
    known_local: dict[tuple[int, bytes], list[str]] = {}
    for rel, have in local.files.items():
        known = p.state.files.get(rel)
        fp = parse_fingerprint(known.c) if known else None
        if known and fp and (have.size, have.mtime_ns) == (known.size, known.mtime_ns):
            known_local.setdefault((have.size, fp.crc), []).append(rel)
    for rel in sorted(remote.files):
        node = remote.files[rel]
        size = int(node.get("s") or 0)
        found = local.files.get(rel)
        if rel in local.dirs or _covered(rel.rpartition("/")[0], p.plan.skipped):
            p.plan.skipped.setdefault(rel, "a local folder has this name")
            continue
        if found is not None:
            both = p.both(rel, found, node)
            if both is None:
                continue
            kind, _, c, _, local_changed = both
            if kind in ("touch", "conflict"):
                p.add(kind, rel, size, node=node, local_c=c)
            elif kind == "change":
                p.add(
                    "version",
                    rel,
                    size,
                    node=node,
                    local_c=c if local_changed else None,
                    detail="the local file goes to the trash" if local_changed else "",
                )
            continue
        fp_r = parse_fingerprint(node_c(node))
        sources = known_local.get((size, fp_r.crc), []) if fp_r else []
        moved = (
            next(
                (s for s in sources if s in gone and s not in p.claimed and not p.protected(s)),
                None,
            )
            if p.delete
            else None
        )
        if moved is not None:
            p.claimed.add(moved)
            p.add("move", rel, size, source=moved, node=node)
        elif sources:
            p.add("copy", rel, size, source=sources[0], node=node)
        else:
            p.add("download", rel, size, node=node)
    if p.delete:
        p.deletions(gone, {d for d in local.dirs if d not in remote.dirs})


def plan_sync(
    direction: str,
    root: Path,
    local: LocalScan,
    remote: RemoteScan,
    index: RemoteIndex,
    state: SyncState,
    *,
    delete: bool,
) -> Plan:
    """What to do to make the destination match the source (``direction`` "up" or "down")."""
    planner = _Planner(direction, root, local, remote, index, state, delete)
    (_plan_up if direction == "up" else _plan_down)(planner)
    return planner.plan
