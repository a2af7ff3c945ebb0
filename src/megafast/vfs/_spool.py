"""Written files before they reach MEGA: private spool files and the queue of uploads.

A file opened for writing is spooled to a private temporary file (folder 0700, file 0600)
and uploaded when it is closed. Until its upload succeeds it is listed in ``queue.json``
(0600, replaced atomically) beside the spool files, so that an upload not finished at
unmount -- or interrupted by a crash -- is retried on the next mount and reported.
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

__all__ = ["Spool", "PendingUpload"]


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
    """The spool folder ``folder`` (created 0700) and its upload queue."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self._queue = self.folder / "queue.json"
        self._lock = threading.Lock()

    def new_file(self) -> tuple[int, str]:
        """A new empty spool file (0600): its descriptor (read-write) and path."""
        fd, path = tempfile.mkstemp(prefix="spool-", dir=self.folder)
        return fd, path

    def discard(self, path: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)

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

    def dequeue(self, item: PendingUpload) -> None:
        """The upload succeeded: drop it from the queue (the spool file stays)."""
        with self._lock:
            self._write([i for i in self._read() if i.ident != item.ident])
