"""A file open for writing in the mount: its spool file, and the upload that may start while
it is written (:mod:`megafast.vfs._growing`).

Every write, truncate and the look a close takes at the file (its size, writes and mtime,
whether the streamed upload is the file, MEGA's fingerprint) run under the file's lock, so
the look sees no write half done. Uploads of one file run one at a time (``upload_lock``):
a write that lands while one runs makes the file dirty again, and it is uploaded again.

A file whose upload starts while it is written may be spooled over a kept spool file
(:meth:`megafast.vfs._spool.Spool.reuse`): the file is its first ``size`` bytes, and any
bytes after them (up to ``stale``) are an earlier file's. Nothing reads past ``size``; a
write past it zeroes the gap first, a truncate cuts them off, and the close cuts them off
before the file is fingerprinted or queued.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..crypto import fingerprint
from ..vfs._growing import StreamedUpload

__all__ = ["Writing", "Closing", "Streamed", "STREAM_MIN", "STREAM_MAX"]

#: A file guessed to grow to at least this many bytes is uploaded while it is written.
STREAM_MIN = 8 << 20
#: Nor is a guess above this taken (a sparse source, an ``ftruncate`` to a huge size).
STREAM_MAX = 1 << 40

#: What a write gets: any bytes-like object.
Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class Streamed:
    """A streamed upload that is the file as closed, with the file's fingerprint."""

    upload: StreamedUpload
    fingerprint: str


@dataclass(frozen=True)
class Closing:
    """What a close saw, under the file's lock: the writes so far, the mtime, and the
    streamed upload when it is the file (else None)."""

    writes: int
    mtime: float
    streamed: Streamed | None


@dataclass
class Writing:
    """A file open for writing: its spool file and where it goes."""

    fd: int
    spool: str
    parent: str
    name: str
    replaces: str | None
    mtime: float = field(default_factory=time.time)
    dirty: bool = False
    #: unlinked while open: its bytes are never uploaded (writes may go on, as POSIX allows)
    unlinked: bool = False
    opens: int = 1
    #: the upload started while the file is written, or None
    stream: StreamedUpload | None = None
    #: the guessed final size, until the first write starts the upload (or None)
    guess: int | None = None
    writes: int = 0
    #: the file's length (the spool file may hold an earlier file's bytes after it)
    size: int = 0
    #: the end of an earlier file's bytes in the spool file (0 when there are none)
    stale: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    upload_lock: threading.Lock = field(default_factory=threading.Lock)

    def write(
        self, data: Buffer, offset: int, start: Callable[[Writing, int], StreamedUpload | None]
    ) -> int:
        """Write ``data`` at ``offset`` to the spool file. The first write, at the start of
        a file with a guessed size, first starts its upload: ``start(self, size)`` (which
        may give the file a kept spool file first, :meth:`adopt`)."""
        with self.lock:
            if self.guess is not None:
                guess, self.guess = self.guess, None
                if offset == 0 and not self.writes and STREAM_MIN <= guess <= STREAM_MAX:
                    self.stream = start(self, guess)
            if offset > self.size and self.stale > self.size:
                self._zero(self.size, min(offset, self.stale))
            n = os.pwrite(self.fd, data, offset)
            self.size = max(self.size, offset + n)
            if self.stream is not None:
                self.stream.wrote(offset, n)
            self.writes += 1
            self.dirty = True
            self.mtime = time.time()
            return n

    def _zero(self, begin: int, end: int) -> None:
        block = bytes(min(end - begin, 1 << 20))
        while begin < end:
            begin += os.pwrite(self.fd, memoryview(block)[: end - begin], begin)

    def _cut_stale(self) -> None:
        """Cut an earlier file's bytes off the spool file."""
        if self.stale > self.size:
            os.ftruncate(self.fd, self.size)
        self.stale = 0

    def adopt(self, fd: int, spool: str, stale: int) -> tuple[int, str]:
        """Spool the file, still empty, to ``fd`` at ``spool`` instead (a kept spool file
        holding ``stale`` bytes of an earlier file); returns the spool file it had."""
        with self.lock:
            assert self.size == 0 and not self.writes and self.stream is None
            old = self.fd, self.spool
            self.fd, self.spool, self.stale = fd, spool, stale
            return old

    def read(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes of the file at ``offset``."""
        with self.lock:
            return os.pread(self.fd, max(0, min(size, self.size - offset)), offset)

    def truncate(self, length: int) -> None:
        """Truncate (or extend) the spool file. An empty file set to a size says how big it
        will be: that is its guess. Any other size drops the streamed upload first."""
        with self.lock:
            empty = self.size == 0
            stream = self.stream
            if stream is not None and length != stream.source.size:
                self.drop_stream("truncated")
            self._cut_stale()
            os.ftruncate(self.fd, length)
            self.size = length
            if self.stream is None and empty and not self.writes and self.opens == 1:
                self.guess = length
            self.dirty = True
            self.mtime = time.time()

    def drop_stream(self, reason: str) -> None:
        """Stop the streamed upload, if any (returns at once; its thread ends by itself)."""
        with self.lock:
            stream, self.stream = self.stream, None
            self.guess = None
        if stream is not None:
            stream.abandon(reason)

    def closing(self) -> Closing:
        """Look at the file as a close finds it (see :class:`Closing`); the streamed upload
        is taken off the file (later writes only make it dirty again)."""
        with self.lock:
            stream, self.stream = self.stream, None
            self.guess = None
            self._cut_stale()
            size = self.size
            if stream is None or not stream.close_at(size):
                return Closing(self.writes, self.mtime, None)
            try:
                c = fingerprint(self.spool, int(self.mtime))
            except BaseException:
                stream.abandon("no fingerprint")
                raise
            return Closing(self.writes, self.mtime, Streamed(stream, c))
