"""The state file of one sync pair (local folder, account, remote folder): what both sides
looked like when they last agreed, so that the next run can tell who changed and skip
reading files whose size and mtime did not move.

One JSON file, mode 0600, replaced atomically (written beside, fsynced, renamed), in
the ``sync`` folder of megafast's state folder (see :func:`default_state_dir`). The state only
speeds decisions up and tells deletions and conflicts apart: every decision is checked
against the real content (fingerprint and size), so a state file lost or a run killed
between a change and the save that records it makes the next run compare, never guess.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..transfer._atomic import write_private_file

__all__ = ["Agreement", "SyncState", "default_state_dir", "state_path"]

_VERSION = 1


@dataclass(frozen=True)
class Agreement:
    """A file both sides held the same: local size and mtime (ns), the ``c`` they shared,
    and the remote handle."""

    size: int
    mtime_ns: int
    c: str
    handle: str

    def to_json(self) -> list[Any]:
        return [self.size, self.mtime_ns, self.c, self.handle]

    @classmethod
    def from_json(cls, value: Any) -> Agreement | None:
        try:
            size, mtime_ns, c, handle = value
        except (TypeError, ValueError):
            return None
        if type(size) is int and type(mtime_ns) is int and type(c) is str and type(handle) is str:
            return cls(size, mtime_ns, c, handle)
        return None


def default_state_dir() -> Path:
    """``sync/`` in megafast's state folder (``$MEGAFAST_STATE_DIR``, else
    ``$XDG_STATE_HOME/megafast``, else ``~/.local/state/megafast``)."""
    from ..transfer._sidecar import state_dir

    return state_dir() / "sync"


def state_path(
    state_dir: Path, api_url: str, account: str, remote_root: str, local_root: Path
) -> Path:
    """The state file of one pair: server, account, remote folder handle, local folder."""
    from ..transfer._sidecar import digest

    name = digest("megafast-sync-v1", api_url, account, remote_root, os.fsencode(local_root))
    return state_dir / f"{name[:32]}.json"


@dataclass
class SyncState:
    path: Path
    files: dict[str, Agreement] = field(default_factory=dict)
    keep: set[str] = field(default_factory=set)  # conflict copies: never deleted by the sync
    note: str | None = None  # why an existing state file was not used
    dirty: bool = False  # changed since loaded (by more than the actions, which save anyway)

    @classmethod
    def load(cls, path: Path) -> SyncState:
        """The state at ``path``; an empty one when there is none. A file that is not ours
        (not a regular file, unreadable, other version, damaged) is not used: the run then
        compares everything, and says why in ``note``."""
        state = cls(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return state
        except OSError as exc:
            state.note = f"state file {path} not used: {exc.strerror}"
            return state
        try:
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise ValueError("not a regular file")
                data = json.loads(handle.read())
            if not isinstance(data, dict) or data.get("version") != _VERSION:
                raise ValueError("unknown format")
            files = data.get("files")
            keep = data.get("keep")
            if not isinstance(files, dict) or not isinstance(keep, list):
                raise ValueError("unknown format")
            for rel, value in files.items():
                entry = Agreement.from_json(value)
                if isinstance(rel, str) and entry is not None:
                    state.files[rel] = entry
            state.keep = {k for k in keep if isinstance(k, str)}
        except (OSError, ValueError) as exc:
            state.files.clear()
            state.keep.clear()
            state.note = f"state file {path} not used ({exc}); everything is compared"
        return state

    def save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        payload = {
            "version": _VERSION,
            "files": {rel: entry.to_json() for rel, entry in self.files.items()},
            "keep": sorted(self.keep),
        }
        write_private_file(self.path, json.dumps(payload, separators=(",", ":")).encode())
