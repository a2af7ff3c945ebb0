"""Resume sidecars: small JSON files written atomically with mode 0600.

They hold key material (upload keys, chunk MACs), so they are private to the user and are
deleted when the transfer succeeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TransferError
from ._local import create_private

if TYPE_CHECKING:
    from ._plan import ChunkMap

__all__ = [
    "write_sidecar",
    "read_sidecar",
    "remove_quietly",
    "state_dir",
    "digest",
    "lock_exclusive",
    "chunk_state",
    "claimed_chunks",
]

SIDECAR_VERSION = 1


def write_sidecar(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically: a new file (``O_EXCL | O_NOFOLLOW``,
    mode 0600) under a random temporary name, renamed over ``path`` (a rename replaces a
    link planted at ``path``; it never writes through it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    payload = json.dumps({"version": SIDECAR_VERSION, **data}, separators=(",", ":")).encode()
    fd = create_private(tmp, os.O_WRONLY)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar at ``path``, or None when it is missing, not a regular file of ours,
    unreadable or of another version."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                return None
            data = json.loads(f.read(1 << 26))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("version") != SIDECAR_VERSION:
        return None
    return data


def chunk_state(
    chunks: ChunkMap, macs: dict[int, bytes], done: set[int], claimed: dict[int, bytes]
) -> dict[str, Any]:
    """A sidecar's ``done`` intervals and ``chunk_macs``: the chunks in ``done`` with their
    MACs from ``macs``, plus ``claimed`` (chunk start -> MAC) from an earlier run."""
    entries = {c: macs[c] for c in done}
    entries.update(claimed)
    return {
        "done": chunks.to_intervals(entries),
        "chunk_macs": {str(c): m.hex() for c, m in entries.items()},
    }


def claimed_chunks(chunks: ChunkMap, state: dict[str, Any]) -> dict[int, bytes]:
    """The chunks a sidecar written by :func:`chunk_state` lists as done, each with the
    16-byte MAC it claims (one without a MAC is left out). KeyError, TypeError, ValueError
    or AttributeError when the sidecar is damaged."""
    starts = chunks.from_intervals(state["done"])
    macs = {int(k): bytes.fromhex(v) for k, v in state["chunk_macs"].items()}
    return {c: macs[c] for c in starts if len(macs.get(c, b"")) == 16}


def remove_quietly(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def state_dir() -> Path:
    """Where upload sidecars live: ``$MEGAFAST_STATE_DIR``, else ``$XDG_STATE_HOME/megafast``,
    else ``~/.local/state/megafast`` (created with mode 0700)."""
    base = os.environ.get("MEGAFAST_STATE_DIR")
    if base:
        path = Path(base)
    else:
        xdg = os.environ.get("XDG_STATE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".local" / "state") / "megafast"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def digest(*parts: bytes | str) -> str:
    """A hex SHA-256 over ``parts`` (length-prefixed), for ids that must not reveal keys."""
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else bytes(part)
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return h.hexdigest()


def lock_exclusive(fd: int, what: str) -> None:
    """Take an advisory lock on ``fd`` (released when it is closed, or the process dies);
    TransferError when another transfer holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise TransferError(f"another transfer of {what} is running") from None
    except OSError:
        pass  # file systems without locks: go on unlocked
