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

from ..errors import IntegrityError
from ..transfer._atomic import write_private_file

__all__ = ["Agreement", "StateFileError", "SyncState", "default_state_dir", "state_path"]

_VERSION = 1


class StateFileError(IntegrityError):
    """A two-way sync's state file cannot be trusted (damaged, truncated, not a regular
    file, not the user's own or readable by others): the run stops rather than taking it
    as "nothing was agreed" (which could delete or resurrect files)."""


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
    state_dir: Path,
    api_url: str,
    account: str,
    remote_root: str,
    local_root: Path,
    kind: str = "megafast-sync-v1",
) -> Path:
    """The state file of one pair: server, account, remote folder handle, local folder
    (``kind``: one-way and two-way pairs keep separate files)."""
    from ..transfer._sidecar import digest

    name = digest(kind, api_url, account, remote_root, os.fsencode(local_root))
    return state_dir / f"{name[:32]}.json"


@dataclass
class SyncState:
    path: Path
    files: dict[str, Agreement] = field(default_factory=dict)
    keep: set[str] = field(default_factory=set)  # conflict copies: never deleted by the sync
    dirs: set[str] = field(default_factory=set)  # folders both sides held (two-way)
    existed: bool = False  # a state file was found and used
    meta: dict[str, str] = field(default_factory=dict)  # backups: the snapshot it describes
    note: str | None = None  # why an existing state file was not used
    dirty: bool = False  # changed since loaded (by more than the actions, which save anyway)

    @classmethod
    def load(cls, path: Path, strict: bool = False) -> SyncState:
        """The state at ``path``; an empty one when there is none. A file that is not ours
        (not a regular file, unreadable, other version, damaged) is not used: the run then
        compares everything, and says why in ``note``; with ``strict`` (two-way sync) it
        raises :class:`StateFileError` instead, and a file owned by another user or
        readable by others is refused too."""
        state = cls(path)
        try:
            state._read(path, strict)
        except StateFileError:
            raise
        except (OSError, ValueError) as exc:
            state.files.clear()
            state.keep.clear()
            state.dirs.clear()
            if strict:
                raise StateFileError(
                    f"the sync state file {path} cannot be used ({exc}); nothing was changed. "
                    "Move it away and run with --resync to merge both sides again "
                    "(nothing is deleted by a resync)"
                ) from None
            state.note = f"state file {path} not used ({exc}); everything is compared"
        return state

    def _read(self, path: Path, strict: bool) -> None:
        state = self
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            if strict and os.path.lexists(path):
                raise ValueError("a dangling symbolic link") from None
            return
        except OSError as exc:
            if strict:
                raise ValueError(exc.strerror or str(exc)) from None
            state.note = f"state file {path} not used: {exc.strerror}"
            return
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ValueError("not a regular file")
            if strict and hasattr(os, "geteuid") and st.st_uid != os.geteuid():
                raise ValueError("owned by another user")
            if strict and st.st_mode & 0o077:
                raise ValueError(f"mode {stat.S_IMODE(st.st_mode):o}: others may write it")
            try:
                data = json.loads(handle.read())
            except (ValueError, UnicodeDecodeError):
                raise ValueError("damaged or truncated") from None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise ValueError("unknown format")
        files = data.get("files")
        keep = data.get("keep")
        dirs = data.get("dirs", [])
        if not isinstance(files, dict) or not isinstance(keep, list):
            raise ValueError("unknown format")
        if not isinstance(dirs, list):
            raise ValueError("unknown format")
        for rel, value in files.items():
            entry = Agreement.from_json(value)
            if isinstance(rel, str) and entry is not None:
                state.files[rel] = entry
            elif strict:
                raise ValueError(f"a damaged entry for {rel!r}")
        state.keep = {k for k in keep if isinstance(k, str)}
        state.dirs = {d for d in dirs if isinstance(d, str)}
        meta = data.get("meta", {})
        if isinstance(meta, dict):
            state.meta = {k: v for k, v in meta.items() if isinstance(v, str)}
        if strict and data.get("count", len(files)) != len(files):
            raise ValueError("truncated: fewer entries than it was written with")
        state.existed = True

    def save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        payload = {
            "version": _VERSION,
            "files": {rel: entry.to_json() for rel, entry in self.files.items()},
            "keep": sorted(self.keep),
            "count": len(self.files),
        }
        if self.dirs:
            payload["dirs"] = sorted(self.dirs)
        if self.meta:
            payload["meta"] = dict(self.meta)
        write_private_file(self.path, json.dumps(payload, separators=(",", ":")).encode())
