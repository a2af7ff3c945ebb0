"""Fetch buffers of the shared reader (:mod:`megafast.vfs._reader`), reused once nothing
refers to them."""

from __future__ import annotations

import mmap
import threading

from ..transfer._config import MAX_CHUNK

__all__ = ["Buffers", "SMALLEST_BUFFER", "SPARES"]


def _unused(buf: mmap.mmap | bytearray) -> bool:
    """True when no view of ``buf`` is alive (no cached chunk, no reader holds its bytes):
    neither an mmap nor a bytearray can be resized while a view of it lives, so a resize
    that changes nothing (the map to its own size; the array one byte shorter and back,
    which never moves it) raises BufferError exactly then."""
    try:
        if isinstance(buf, mmap.mmap):
            buf.resize(len(buf))
        else:
            del buf[-1:]
            buf.append(0)
    except BufferError:
        return False
    return True


def _new_buffer(size: int) -> mmap.mmap | bytearray:
    """An anonymous map with its pages already in (``MAP_POPULATE``: one call instead of a
    page fault per page as ``recv_into`` first writes them, about twice as fast), or a
    bytearray where a map cannot be resized."""
    try:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
        buf = mmap.mmap(-1, size, flags=flags)
        buf.resize(size)
        return buf
    except (OSError, ValueError, SystemError, AttributeError):
        return bytearray(size)


#: Smallest fetch buffer kept for reuse (bytes): MEGA's first MAC chunk.
SMALLEST_BUFFER = 128 * 1024
#: Fresh buffers of each size up to :data:`MAX_CHUNK` made ahead, in the background: a seek
#: that covers whole chunks (a kernel read-ahead of 1 MiB does) keeps them in the memory
#: cache, so the next one needs fresh memory, which costs page faults; a spare made ahead has
#: its pages in already.
SPARES = 2


class Buffers:
    """Fetch buffers, reused once nothing refers to them: fresh memory for every fetch costs
    page faults and zeroing, more than the bytes' own copy. A fetch gets a buffer of the
    smallest power of two from :data:`SMALLEST_BUFFER` up to ``largest`` that holds it, so
    a small cached chunk pins at most twice its bytes; larger fetches get their own. At most
    ``keep`` bytes of buffers are kept: past that, an unused buffer of another size goes
    first, else the new one is not kept. A buffer that must be fresh comes from the
    :data:`SPARES` made ahead when there is one (sizes up to a MAC chunk: seeks)."""

    def __init__(self, keep: int, largest: int) -> None:
        self.budget = keep
        self.largest = largest
        self.kept = 0  # bytes of the buffers in _all
        self._all: dict[int, list[mmap.mmap | bytearray]] = {}
        self._spares: dict[int, list[mmap.mmap | bytearray]] = {}
        self._wanted: set[int] = set()  # sizes whose spares are to be made
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._maker: threading.Thread | None = None
        self._closed = False

    def close(self) -> None:
        """Stop making spares (those made are let go)."""
        with self._lock:
            self._closed = True
            self._spares.clear()
        self._wake.set()

    def take(self, size: int) -> memoryview:
        """A writable view of ``size`` bytes (its contents are undefined)."""
        if size > self.largest or size <= 0:
            return memoryview(bytearray(size))
        room = max(SMALLEST_BUFFER, 1 << (size - 1).bit_length())
        with self._lock:  # the view is made under the lock: the buffer is then in use
            same = self._all.setdefault(room, [])
            for buf in same:
                if _unused(buf):
                    return memoryview(buf)[:size]
            spares = self._spares.get(room)
            spare = spares.pop() if spares else None
            if room <= MAX_CHUNK and not self._closed:
                self._wanted.add(room)
                self._start_maker()
            buf = spare if spare is not None else _new_buffer(room)
            if self.kept + room > self.budget:
                self._free(self.kept + room - self.budget, room)
            if self.kept + room <= self.budget:
                same.append(buf)
                self.kept += room
            return memoryview(buf)[:size]

    def _free(self, wanted: int, keep_room: int) -> None:
        """Stop keeping unused buffers of other sizes until ``wanted`` bytes are let go."""
        for room, bufs in self._all.items():
            if room == keep_room:
                continue
            for buf in [b for b in bufs if _unused(b)]:
                bufs.remove(buf)
                self.kept -= room
                wanted -= room
                if wanted <= 0:
                    return

    def _start_maker(self) -> None:
        """Wake the thread that makes spares (started on first use; under the lock)."""
        self._wake.set()
        if self._maker is None:
            self._maker = threading.Thread(
                target=self._make_spares, daemon=True, name="megafast-read-buffers"
            )
            self._maker.start()

    def _make_spares(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            while not self._closed:
                with self._lock:
                    short = [r for r in self._wanted if len(self._spares.get(r, ())) < SPARES]
                if not short:
                    break
                buf = _new_buffer(short[0])  # the page faults, outside the lock
                with self._lock:
                    if not self._closed:
                        self._spares.setdefault(short[0], []).append(buf)
