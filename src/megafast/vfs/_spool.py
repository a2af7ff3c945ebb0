"""Written files before they reach MEGA: private spool files and the queue of uploads.

A file opened for writing is spooled to a private temporary file (folder 0700, file 0600)
and uploaded when it is closed. Until its upload succeeds it is listed in ``queue.json``
(0600, replaced atomically) beside the spool files, so that an upload not finished at
unmount -- or interrupted by a crash -- is retried on the next mount and reported.

The space of big spool files is used again: once a file is uploaded, its spool file (at least
``KEEP_MIN`` bytes) is kept, up to ``keep`` bytes in all, and the next big file written is
spooled over it (:meth:`Spool.reuse`) instead of into newly allocated pages. Writing over
pages a file already has costs a copy; new pages cost the kernel's allocation and zeroing
too, which on a virtual machine whose freed memory goes back to the host is most of the
time of a write. Kept files are deleted at unmount, when space runs short, and by the next
mount if the mount stopped first.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Spool", "PendingUpload", "KEEP_DEFAULT", "KEEP_MIN"]

#: Bytes of spool files kept for reuse, by default.
KEEP_DEFAULT = 1 << 30
#: Smaller spool files are deleted, never kept.
KEEP_MIN = 8 << 20


@dataclass(frozen=True)
class PendingUpload:
    """One upload waiting: its spool file's name, target folder handle, node name, mtime
    (seconds) and the node it replaces (its handle, or None)."""

    ident: str
    spool: str
    parent: str
    name: str
    mtime: float
    replaces: str | None = None


class Spool:
    """The spool folder ``folder`` (created 0700), its upload queue, and up to ``keep``
    bytes of spool files kept for reuse."""

    def __init__(self, folder: str | os.PathLike[str], keep: int = KEEP_DEFAULT) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self._queue = self.folder / "queue.json"
        self._lock = threading.Lock()
        self.keep = keep
        self._kept: list[tuple[str, int]] = []  # (path, size), oldest first
        for path in self.folder.glob("kept-*"):  # an earlier mount's
            self.discard(str(path))

    def new_file(self) -> tuple[int, str]:
        """A new empty spool file (0600): its descriptor (read-write) and path."""
        fd, path = tempfile.mkstemp(prefix="spool-", dir=self.folder)
        return fd, path

    def discard(self, path: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)

    # -- spool files kept for reuse -------------------------------------------------------
    def recycle(self, path: str) -> None:
        """A spool file no longer needed: kept for reuse when it holds at least ``KEEP_MIN``
        bytes, the kept files stay within ``keep`` bytes and its filesystem has as much
        space free again; else deleted."""
        with self._lock:
            try:
                size = os.stat(path).st_size
                fs = os.statvfs(self.folder)
                held = sum(n for _, n in self._kept)
                if (
                    size >= KEEP_MIN
                    and held + size <= self.keep
                    and size <= fs.f_bavail * fs.f_frsize
                ):
                    kept = str(self.folder / f"kept-{uuid.uuid4().hex}")
                    os.rename(path, kept)
                    self._kept.append((kept, size))
                    return
            except OSError:
                pass
        self.discard(path)

    def reuse(self, size: int) -> tuple[int, str, int] | None:
        """A kept spool file for a file expected to be ``size`` bytes, or None: the
        smallest of at least that size, else the biggest, cut to at most ``size`` bytes.
        Returns its descriptor (read-write), its new path and its length. Its bytes are an
        earlier file's: the caller reads only what it wrote."""
        with self._lock:
            if not self._kept:
                return None
            fits = [k for k in self._kept if k[1] >= size]
            pick = min(fits, key=lambda k: k[1]) if fits else max(self._kept, key=lambda k: k[1])
            self._kept.remove(pick)
        path = str(self.folder / f"spool-{uuid.uuid4().hex}")
        try:
            os.rename(pick[0], path)
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            self.discard(pick[0])
            self.discard(path)
            return None
        try:
            if pick[1] > size:
                os.ftruncate(fd, size)
        except OSError:
            os.close(fd)
            self.discard(path)
            return None
        return fd, path, min(pick[1], size)

    def drop_kept(self) -> int:
        """Delete the kept spool files; returns the bytes they held."""
        with self._lock:
            kept, self._kept = self._kept, []
        for path, _ in kept:
            self.discard(path)
        return sum(n for _, n in kept)

    # -- the queue ------------------------------------------------------------------------
    def pending(self) -> list[PendingUpload]:
        """The uploads waiting (a damaged queue file reads as empty, kept aside)."""
        with self._lock:
            return self._read()

    def _read(self) -> list[PendingUpload]:
        try:
            items = json.loads(self._queue.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                self._queue.replace(self._queue.with_suffix(".damaged"))
            return []
        out = []
        for item in items if isinstance(items, list) else ():
            try:
                out.append(PendingUpload(**item))
            except TypeError:
                continue
        return out

    def _write(self, items: list[PendingUpload]) -> None:
        tmp = self._queue.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump([asdict(i) for i in items], f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._queue)

    def enqueue(
        self, spool: str, parent: str, name: str, mtime: float, replaces: str | None
    ) -> PendingUpload:
        item = PendingUpload(uuid.uuid4().hex, spool, parent, name, mtime, replaces)
        with self._lock:
            items = [i for i in self._read() if i.spool != spool]
            items.append(item)
            self._write(items)
        return item

    def forget(self, spool: str) -> None:
        """Drop the queued uploads of spool file ``spool`` (its file was removed)."""
        with self._lock:
            items = self._read()
            if any(i.spool == spool for i in items):
                self._write([i for i in items if i.spool != spool])

    def dequeue(self, item: PendingUpload) -> None:
        """The upload succeeded: drop it from the queue (the spool file stays)."""
        with self._lock:
            self._write([i for i in self._read() if i.ident != item.ident])
