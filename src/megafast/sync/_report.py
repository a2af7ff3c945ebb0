"""What a sync decided and did: the actions (the plan, with sizes), what was skipped and why,
what failed, conflicts and notes, and the bytes moved."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTION_KINDS", "Action", "SyncReport"]

# mkdir: folder made; upload: a new file sent; version: a changed file sent over the old one
# (kept as a version unless replacing); copy: made from content already on the other side
# (server-side copy going up, a local copy going down); move: a renamed/moved file moved on
# the other side instead of sent again; download; touch: same content, only the mtime was
# set; conflict: both sides changed, both kept; delete: to the Rubbish Bin / local trash.
ACTION_KINDS = (
    "mkdir",
    "move",
    "touch",
    "conflict",
    "copy",
    "upload",
    "version",
    "download",
    "delete",
)


@dataclass
class Action:
    kind: str
    path: str
    size: int = 0
    source: str | None = None  # copy/move: where the content comes from
    detail: str = ""
    # for the executor, not reported
    local_c: str | None = field(default=None, repr=False, compare=False)
    node: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    source_node: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    local_stat: tuple[int, int] | None = field(default=None, repr=False, compare=False)
    is_dir: bool = False
    side: str = ""  # two-way sync: "up" changes MEGA, "down" the local folder

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.kind, "path": self.path, "size": self.size}
        if self.side:
            out["side"] = "remote" if self.side == "up" else "local"
        if self.source is not None:
            out["source"] = self.source
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class SyncReport:
    direction: str  # "up" (local -> MEGA), "down" (MEGA -> local) or "both" (two-way)
    local: str
    remote: str
    dry_run: bool = False
    actions: list[Action] = field(default_factory=list)  # planned (dry run) or done
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason, not synced
    failed: dict[str, str] = field(default_factory=dict)  # path -> error, tried and failed
    conflicts: list[str] = field(default_factory=list)  # the conflict copies made
    notes: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0
    bytes_downloaded: int = 0
    bytes_copied: int = 0  # copied or moved without sending the bytes again
    files_unchanged: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing skipped and nothing failed (the CLI's exit code says so too)."""
        return not self.skipped and not self.failed

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def count(self, kind: str) -> int:
        return sum(1 for a in self.actions if a.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "local": self.local,
            "remote": self.remote,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "actions": [a.to_dict() for a in self.actions],
            "skipped": [{"path": p, "reason": r} for p, r in sorted(self.skipped.items())],
            "failed": [{"path": p, "error": r} for p, r in sorted(self.failed.items())],
            "conflicts": list(self.conflicts),
            "notes": list(self.notes),
            "bytes_uploaded": self.bytes_uploaded,
            "bytes_downloaded": self.bytes_downloaded,
            "bytes_copied": self.bytes_copied,
            "files_unchanged": self.files_unchanged,
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)
