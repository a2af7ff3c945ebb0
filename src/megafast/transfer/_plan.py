"""Planning transfers as ranges of whole MAC chunks."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable

from ..crypto import chunk_bounds
from ..errors import ValidationError

__all__ = ["ChunkMap"]


class ChunkMap:
    """The MEGA MAC chunks of a file of ``size`` bytes (offsets in bytes)."""

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValidationError(f"size must be a non-negative int, not {size!r}")
        self.size = size
        bounds = chunk_bounds(size)
        self.starts: list[int] = [start for start, _ in bounds]
        self.ends: list[int] = [start + length for start, length in bounds]

    def __len__(self) -> int:
        return len(self.starts)

    def is_boundary(self, offset: int) -> bool:
        """True when ``offset`` starts a chunk or is the end of the file."""
        if offset == self.size:
            return True
        i = bisect_left(self.starts, offset)
        return i < len(self.starts) and self.starts[i] == offset

    def chunk_end(self, start: int) -> int:
        """The end offset of the chunk that starts at ``start``."""
        i = bisect_left(self.starts, start)
        if i == len(self.starts) or self.starts[i] != start:
            raise ValueError(f"{start} is not a chunk start")
        return self.ends[i]

    def chunks_in(self, begin: int, end: int) -> list[int]:
        """Starts of the chunks inside ``[begin, end)`` (both chunk boundaries)."""
        return self.starts[bisect_left(self.starts, begin) : bisect_left(self.starts, end)]

    def completed_by(self, begin: int, end: int) -> list[int]:
        """Starts of the chunks whose end lies in ``(begin, end]``: the chunks that a
        contiguous stream reaching ``end`` from ``begin`` completes."""
        lo = bisect_right(self.ends, begin)
        hi = bisect_right(self.ends, end)
        return self.starts[lo:hi]

    def floor(self, offset: int) -> int:
        """Start of the chunk that holds byte ``offset`` (``0 <= offset < size``)."""
        return self.starts[bisect_right(self.starts, offset) - 1]

    def plan(self, piece_size: int, skip: Collection[int] = ()) -> list[tuple[int, int]]:
        """Half-open ``(start, end)`` ranges of whole chunks, each at most ``piece_size``
        bytes, covering every chunk whose start is not in ``skip``, in file order."""
        ranges: list[tuple[int, int]] = []
        cur_start = cur_end = -1
        for start, end in zip(self.starts, self.ends, strict=True):
            if start in skip:
                if cur_start >= 0:
                    ranges.append((cur_start, cur_end))
                    cur_start = -1
                continue
            if cur_start >= 0 and end - cur_start <= piece_size:
                cur_end = end
                continue
            if cur_start >= 0:
                ranges.append((cur_start, cur_end))
            cur_start, cur_end = start, end
        if cur_start >= 0:
            ranges.append((cur_start, cur_end))
        return ranges

    def to_intervals(self, chunk_starts: Iterable[int]) -> list[list[int]]:
        """Merge a set of chunk starts into sorted ``[start, end]`` byte intervals."""
        out: list[list[int]] = []
        for start in sorted(set(chunk_starts)):
            end = self.chunk_end(start)
            if out and out[-1][1] == start:
                out[-1][1] = end
            else:
                out.append([start, end])
        return out

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
