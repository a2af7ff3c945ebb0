"""Uploads that start while a file is still being written (the mount's writes).

MEGA's ``u`` needs a file's size before any byte is sent, and a program writing into the
mount never says how big the file will be. When the mount has a guess of the final size (see
:mod:`megafast.mount._hint`), :class:`StreamedUpload` starts the upload at once. It reads
the spool file as it is written: each piece waits until the writes have reached its end
(:meth:`GrowingFile.wait_ready`), then it is read, encrypted and sent like any other piece.

The guess is checked when the file is closed. The upload is kept only when the file was
written in order, from its start, and its final size is the guess. Anything else abandons
it, and the file is uploaded from its spool file as before. A wrong guess costs the bytes
sent in vain, never a wrong file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from ..errors import MegaError
from ..transfer import Source, UploadResult
from ..transfer._download import pread_into

__all__ = ["GrowingFile", "StreamedUpload"]

log = logging.getLogger("megafast.mount")


class Abandoned(MegaError):
    """The file did not grow as guessed: its streamed upload stops."""


class GrowingFile(Source):
    """The spool file ``fd`` while it is written, read as ``size`` bytes (the guess).

    :meth:`wrote` records each write; only the prefix written in order counts. A write
    anywhere else, or past ``size``, abandons the file (:meth:`abandon`): waiting readers
    wake up with :class:`Abandoned`."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self._cond = threading.Condition()
        self._written = 0  # bytes written in order from the start
        self._waiting: list[int] = []  # the ends readers wait for (woken only once reached)
        self.reason: str | None = None  # why it was abandoned

    @property
    def written(self) -> int:
        return self._written

    def wrote(self, offset: int, length: int) -> None:
        """``length`` bytes were written at ``offset`` (after the write)."""
        with self._cond:
            if self.reason is not None or length == 0:
                return
            if offset != self._written:
                self._abandon("written out of order")
            elif offset + length > self.size:
                self._abandon("grew past the guessed size")
            else:
                self._written += length
                if self._waiting and self._written >= min(self._waiting):
                    self._cond.notify_all()

    def abandon(self, reason: str) -> None:
        with self._cond:
            self._abandon(reason)

    def _abandon(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self._cond.notify_all()

    def wait_ready(self, begin: int, end: int) -> None:
        with self._cond:
            if self._written < end and self.reason is None:
                self._waiting.append(end)
                try:
                    while self._written < end and self.reason is None:
                        self._cond.wait()
                finally:
                    self._waiting.remove(end)
            if self.reason is not None:
                raise Abandoned(self.reason)

    def read_at(self, offset: int, buf: memoryview) -> None:
        self.wait_ready(offset, offset + len(buf))
        if pread_into(self.fd, buf, offset) != len(buf):
            raise Abandoned("the spool file is shorter than its writes")


class StreamedUpload:
    """The upload of a file being written, on a thread of its own.

    ``run(source, cancel)`` uploads ``source`` (a :class:`GrowingFile` over a duplicate of
    the spool file's descriptor, closed by the thread when it ends) and returns its result;
    :meth:`abandon` sets ``cancel`` and returns at once. The writer reports each write with
    :meth:`wrote`; at close, :meth:`close_at` says whether the upload is the file, and
    :meth:`result` waits for it."""

    def __init__(
        self,
        fd: int,
        size: int,
        run: Callable[[GrowingFile, threading.Event], UploadResult],
    ) -> None:
        own = os.dup(fd)
        self.source = GrowingFile(own, size)
        self.cancel = threading.Event()
        self._result: UploadResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(run,), daemon=True, name="megafast-mount-stream"
        )
        try:
            self._thread.start()
        except BaseException:
            os.close(own)
            raise

    def _run(self, run: Callable[[GrowingFile, threading.Event], UploadResult]) -> None:
        try:
            self._result = run(self.source, self.cancel)
        except BaseException as exc:  # noqa: BLE001 - kept for result(), which falls back
            self._error = exc
        finally:
            os.close(self.source.fd)

    def wrote(self, offset: int, length: int) -> None:
        self.source.wrote(offset, length)

    def abandon(self, reason: str) -> None:
        """Stop the upload (the file did not turn out as guessed); returns at once."""
        self.source.abandon(reason)
        self.cancel.set()

    def close_at(self, size: int) -> bool:
        """The file is closed at ``size`` bytes: True when the upload is that file (written
        in order to the guessed size); otherwise it is abandoned."""
        if self.source.reason is None and size == self.source.size == self.source.written:
            return True
        self.abandon(f"closed at {size} bytes, {self.source.size} were guessed")
        return False

    def result(self) -> UploadResult | None:
        """The upload's result once it is done, or None when it was abandoned or failed
        (the caller then uploads the spool file)."""
        if self.source.reason is None:
            self._thread.join()
        if self._result is not None and self.source.reason is None:
            return self._result
        why = self.source.reason or f"{type(self._error).__name__}: {self._error}"
        log.debug("the upload started while writing was dropped (%s)", why)
        return None
