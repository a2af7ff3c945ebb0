"""Planning transfers as ranges of whole MAC chunks, computed on demand.

MEGA's MAC chunks are 128 KiB, 256 KiB, ... 1 MiB (the first eight, 4.5 MiB in all), then
1 MiB each. :class:`ChunkMap` computes chunk bounds arithmetically, so its memory does not
depend on the file size; sizes are validated first (:func:`check_size`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator

from ..errors import ValidationError

__all__ = ["ChunkMap", "MAX_FILE_SIZE", "check_size"]

_K = 128 * 1024
_FIRST = 8  # chunks of growing size
_TAIL = _K * _FIRST * (_FIRST + 1) // 2  # 4.5 MiB: where the 1 MiB chunks begin
_MIB = 1 << 20
#: The largest file size accepted (bytes): 2**53 - 1, the largest integer a JSON number
#: (MEGA's ``s``) carries exactly; far above any file MEGA stores.
MAX_FILE_SIZE = (1 << 53) - 1


def check_size(size: object, what: str = "size") -> int:
    """``size`` when it is an int in ``[0, MAX_FILE_SIZE]``, else ValidationError (strings,
    floats, infinity, lists and absurd numbers from a hostile server included)."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValidationError(f"{what} must be an int (bytes), not {type(size).__name__}")
    if not 0 <= size <= MAX_FILE_SIZE:
        raise ValidationError(f"{what} {size} is out of range (0 to {MAX_FILE_SIZE} bytes)")
    return size


def _start(i: int) -> int:
    return _K * i * (i + 1) // 2 if i <= _FIRST else _TAIL + (i - _FIRST) * _MIB


class ChunkMap:
    """The MEGA MAC chunks of a file of ``size`` bytes (offsets in bytes)."""

    def __init__(self, size: int) -> None:
        self.size = check_size(size)
        self._count = 0 if size == 0 else self._index(size - 1) + 1

    @staticmethod
    def _index(offset: int) -> int:
        """Index of the chunk that holds byte ``offset`` (of an endless file)."""
        if offset >= _TAIL:
            return _FIRST + (offset - _TAIL) // _MIB
        i = 0
        while _start(i + 1) <= offset:
            i += 1
        return i

    def __len__(self) -> int:
        return self._count

    def _end(self, i: int) -> int:
        return min(self.size, _start(i + 1))

    @property
    def starts(self) -> list[int]:
        """Every chunk start (a list as long as the file has chunks: for tests and small
        files; the engine uses the methods below)."""
        return [_start(i) for i in range(self._count)]

    def is_boundary(self, offset: int) -> bool:
        """True when ``offset`` starts a chunk or is the end of the file."""
        if offset == self.size:
            return True
        return 0 <= offset < self.size and _start(self._index(offset)) == offset

    def chunk_end(self, start: int) -> int:
        """The end offset of the chunk that starts at ``start``."""
        if not 0 <= start < self.size or _start(self._index(start)) != start:
            raise ValueError(f"{start} is not a chunk start")
        return self._end(self._index(start))

    def chunks_in(self, begin: int, end: int) -> list[int]:
        """Starts of the chunks inside ``[begin, end)`` (both chunk boundaries)."""
        if begin >= end:
            return []
        first, last = self._index(begin), self._index(end - 1)
        return [_start(i) for i in range(first, last + 1)]

    def completed_by(self, begin: int, end: int) -> list[int]:
        """Starts of the chunks whose end lies in ``(begin, end]``: the chunks that a
        contiguous stream reaching ``end`` from ``begin`` completes."""
        if end <= begin or begin >= self.size:
            return []
        first = self._index(begin)  # its end is > begin
        last = self._index(end - 1)
        if self._end(last) != end:
            last -= 1
        return [_start(i) for i in range(first, last + 1)]

    def floor(self, offset: int) -> int:
        """Start of the chunk that holds byte ``offset`` (``0 <= offset < size``)."""
        return _start(self._index(offset))

    def _runs(self, skip: Collection[int], only: Collection[int] | None) -> Iterator[list[int]]:
        """Maximal ``[start, end]`` byte runs of the chunks that are in ``only`` (when given)
        and not in ``skip``; memory grows with ``skip``/``only``, not with the file."""
        if only is not None:
            wanted: Iterable[int] = sorted(c for c in only if c not in skip)
            run: list[int] | None = None
            for c in wanted:
                end = self.chunk_end(c)
                if run is not None and run[1] == c:
                    run[1] = end
                    continue
                if run is not None:
                    yield run
                run = [c, end]
            if run is not None:
                yield run
            return
        pos = 0
        for c in sorted(x for x in skip if 0 <= x < self.size):
            if c > pos:
                yield [pos, c]
            pos = max(pos, self.chunk_end(c))
        if pos < self.size:
            yield [pos, self.size]

    def plan(
        self, piece_size: int, skip: Collection[int] = (), only: Collection[int] | None = None
    ) -> list[tuple[int, int]]:
        """Half-open ``(start, end)`` ranges of whole chunks, each at most ``piece_size``
        bytes (or one chunk), covering every chunk whose start is not in ``skip`` (and is in
        ``only`` when given), in file order."""
        ranges: list[tuple[int, int]] = []
        for begin, end in self._runs(skip, only):
            pos = begin
            while pos < end:
                cut = end if end - pos <= piece_size else self.floor(pos + piece_size)
                if cut <= pos:
                    cut = self.chunk_end(pos)
                ranges.append((pos, cut))
                pos = cut
        return ranges

    def to_intervals(self, chunk_starts: Iterable[int]) -> list[list[int]]:
        """Merge a set of chunk starts into sorted ``[start, end]`` byte intervals."""
        return list(self._runs((), set(chunk_starts)))

    def from_intervals(self, intervals: Iterable[Iterable[int]]) -> set[int]:
        """The chunk starts covered by ``[start, end]`` intervals; ValueError when an
        interval does not sit on chunk boundaries."""
        starts: set[int] = set()
        for item in intervals:
            begin, end = (int(x) for x in item)
            if not (0 <= begin < end <= self.size) or not (
                self.is_boundary(begin) and self.is_boundary(end)
            ):
                raise ValueError("interval not on chunk boundaries")
            starts.update(self.chunks_in(begin, end))
        return starts
