"""mfusepy's FUSE loop with fewer copies of the file bytes.

mfusepy hands ``write`` a copy of libfuse's buffer (``ctypes.string_at``) and copies the
``bytes`` that ``read`` returns into the kernel's buffer. Here ``write`` gets a view of
libfuse's buffer (valid only during the call: the operations write it out and keep
nothing), and ``read`` copies the operations' buffers (views of the reader's cached chunks)
straight into libfuse's buffer: one copy instead of two each way.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from typing import Any

import mfusepy

__all__ = ["FastFUSE", "raise_read_ahead", "raise_read_ahead_when_mounted"]

log = logging.getLogger("megafast.mount")


def _view(buf: Any, size: int) -> memoryview:
    """A writable byte view of ``size`` bytes at libfuse's ``buf`` (a ``c_byte`` pointer)."""
    array = (ctypes.c_char * size).from_address(ctypes.addressof(buf.contents))
    return memoryview(array).cast("B")


class FastFUSE(mfusepy.FUSE):  # type: ignore[misc]
    """:class:`mfusepy.FUSE` with the copy-saving ``read`` and ``write`` (see the module doc).
    The operations need ``read_parts(path, size, offset, fi)`` (buffers in order) and a
    ``write`` that accepts any buffer; ``raw_fi`` must be True."""

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        name = None if path is None else path.decode(self.encoding, self.errors)
        parts = self.operations.read_parts(name, size, offset, fip.contents)
        if not parts:
            return 0
        out = _view(buf, size)
        done = 0
        for part in parts:
            n = len(part)
            if done + n > size:
                raise OSError(5, "a read answered more than was asked for")
            out[done : done + n] = part
            done += n
        return done

    def write(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        name = None if path is None else path.decode(self.encoding, self.errors)
        data = _view(buf, size)
        try:
            n: int = self.operations.write(name, data, offset, fip.contents)
        finally:
            data.release()
        return n


#: Read-ahead asked of the kernel for the mount (KiB): reads of 1 MiB then reach the
#: operations as one request (``max_pages`` is 256 pages) instead of eight of 128 KiB, and a
#: random read of 64 KiB still asks for only 128 KiB.
READ_AHEAD_KB = 1024


def raise_read_ahead(mountpoint: str, kib: int = READ_AHEAD_KB) -> bool:
    """Set the kernel's read-ahead of the FUSE mount at ``mountpoint`` (its
    ``/sys/class/bdi/<major>:<minor>/read_ahead_kb``; the kernel offers FUSE only 128 KiB).
    Only root may write it: returns False, changing nothing, when it cannot be set."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    # mountinfo escapes space, tab, newline and backslash in paths as octal
    escaped = "".join(c if c not in " \t\n\\" else f"\\{ord(c):03o}" for c in mountpoint)
    device = None
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4 and fields[4] == escaped and " - fuse" in line:
            device = fields[2]  # the last mount on that path wins
    if device is None or not all(p.isdigit() for p in device.split(":")):
        return False
    try:
        with open(f"/sys/class/bdi/{device}/read_ahead_kb", "w", encoding="ascii") as f:
            f.write(str(kib))
    except OSError:
        return False
    return True


def raise_read_ahead_when_mounted(mountpoint: str, timeout: float = 30.0) -> threading.Thread:
    """:func:`raise_read_ahead` on a thread of its own once the mount answers: the kernel
    sets the read-ahead from libfuse's answer to its INIT, after the ``init`` operation
    returns, so it is raised only once a ``stat`` of the mount point gets through."""

    def run() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.ismount(mountpoint):
                if not raise_read_ahead(mountpoint):
                    log.debug("the kernel's read-ahead of the mount stays at its default")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True, name="megafast-mount-read-ahead")
    thread.start()
    return thread
