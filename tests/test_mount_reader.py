"""The shared reader of the mount and the HTTP server (megafast.vfs): which ranges it fetches,
read-ahead, integrity, and its memory and disk caches; against the emulator's transfers."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from megafast.crypto import FileCipher, fingerprint
from megafast.errors import IntegrityError, MegaError
from megafast.transfer import ChunkMap
from megafast.transfer._config import MAX_CHUNK
from megafast.vfs import (
    DiskCache,
    Fetcher,
    MemoryCache,
    Spool,
    Stream,
    _buffers,
    _reader,
    display_names,
)
from megafast.vfs._tree import fingerprint_mtime, fingerprint_with_mtime
from support.transfer import fast_config

MiB = 1 << 20


@pytest.fixture
def ranges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every (start, end) range the reader asked the server for."""
    calls: list[tuple[int, int]] = []
    real = _reader.fetch_range

    def spy(ctl: Any, urls: Any, start: int, end: int, *args: Any, **kw: Any) -> Any:
        calls.append((start, end))
        return real(ctl, urls, start, end, *args, **kw)

    monkeypatch.setattr(_reader, "fetch_range", spy)
    return calls


def _open(remote: Any, data: bytes, memory: int = 64 * MiB, disk: DiskCache | None = None) -> Any:
    handle, key = remote.add_file(data)
    fetcher = Fetcher(remote.http, fast_config(connections=4), MemoryCache(memory), disk)
    return fetcher, fetcher.file(handle, len(data), key, remote.url_getter(handle))


def _landed(f: Any) -> None:
    """Wait until no fetch of ``f`` is in flight."""
    deadline = time.monotonic() + 10
    while f._inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not f._inflight


def test_a_random_read_fetches_only_its_own_bytes(remote: Any, ranges: list[Any]) -> None:
    # a seek: the bytes asked for, out to whole AES blocks, in the reading thread; the MACs
    # of the chunks it touches in part stay unknown (nothing of them can be checked)
    data = os.urandom(10 * MiB)
    fetcher, f = _open(remote, data)
    try:
        offset = 7 * MiB + 5000
        assert f.read(offset, 65536) == data[offset : offset + 65536]
        assert ranges == [(offset // 16 * 16, -(-(offset + 65536) // 16) * 16)]
        assert f._macs == {} and not f._inflight  # nothing runs on in the background
        assert f.read(len(data) - 100, 100) == data[-100:]  # the last bytes of the file
        assert ranges[-1] == ((len(data) - 100) // 16 * 16, len(data))
        assert f._macs == {} and not f.verified
    finally:
        fetcher.close()


def test_reading_in_order_reads_ahead_and_verifies(remote: Any, ranges: list[Any]) -> None:
    data = os.urandom(12 * MiB + 12345)
    fetcher, f = _open(remote, data)
    try:
        stream = Stream(f)
        out = bytearray()
        while len(out) < len(data):
            piece = stream.read(len(out), 128 * 1024)
            assert piece
            out += piece
        assert bytes(out) == data
        assert f.verified
        assert max(end - start for start, end in ranges) > 1 * MiB  # read-ahead in pieces
        covered = sorted(ranges)
        assert sum(e - s for s, e in covered) == len(data)  # every byte fetched once
    finally:
        fetcher.close()


def test_a_corrupted_download_gives_an_error_never_wrong_bytes(
    remote: Any, transfer_emulator: Any
) -> None:
    data = os.urandom(300_000)
    fetcher, f = _open(remote, data)
    transfer_emulator.set_faults(corrupt_rate=1.0)
    try:
        with pytest.raises(IntegrityError):
            Stream(f).read(0, len(data))
        transfer_emulator.clear_faults()
        with pytest.raises(IntegrityError):  # and every later read of that file
            f.read(0, 10)
    finally:
        fetcher.close()


def test_a_first_read_where_the_stream_expects_it_reads_ahead(
    remote: Any, ranges: list[Any]
) -> None:
    data = os.urandom(10 * MiB)
    fetcher, f = _open(remote, data)
    try:
        assert Stream(f).read(0, MiB) == data[:MiB]  # from the start: in order at once
        assert ranges and ranges[0][0] == 0 and max(e for _, e in ranges) > MiB
        _landed(f)
        ranges.clear()
        start = 9 * MiB + 3  # past what was read ahead
        assert Stream(f, at=None).read(start, 1000) == data[start : start + 1000]
        assert ranges == [(start - 3, -(-(start + 1000) // 16) * 16)]  # only its own bytes
    finally:
        fetcher.close()


def test_a_chunk_that_changes_between_reads_is_an_integrity_error(
    remote: Any, transfer_emulator: Any
) -> None:
    data = os.urandom(6 * MiB)
    fetcher, f = _open(remote, data, memory=0)  # nothing kept (marks neither): reads fetch
    try:
        c = ChunkMap(len(data)).floor(5 * MiB)
        assert f.read(c, MiB) == data[c : c + MiB]  # the whole chunk: its MAC is known
        assert c in f._macs
        transfer_emulator.set_faults(corrupt_rate=1.0)
        with pytest.raises(IntegrityError):
            f.read(c + 100, 100)
    finally:
        fetcher.close()


def test_memory_cache_is_bounded() -> None:
    cache = MemoryCache(3 * MiB)
    for i in range(10):
        cache.put("h", i * MiB, memoryview(bytes(MiB)))
    assert cache.used <= 3 * MiB
    assert cache.get("h", 9 * MiB) is not None and cache.get("h", 0) is None


def test_disk_cache_holds_private_ciphertext_and_serves_rereads(
    remote: Any, ranges: list[Any], tmp_path: Path
) -> None:
    data = b"plaintext marker " * 400_000  # 6.8 MB of a recognisable pattern
    folder = tmp_path / "cache"
    fetcher, f = _open(remote, data, memory=0, disk=DiskCache(folder, 64 * MiB))
    try:
        assert Stream(f).read(0, len(data)) == data
        fetched = len(ranges)
        assert f.read(2 * MiB, 1000) == data[2 * MiB : 2 * MiB + 1000]
        assert len(ranges) == fetched  # from the disk, not the network
    finally:
        fetcher.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert files
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert b"plaintext marker" not in p.read_bytes()


def test_a_seek_keeps_the_chunks_it_covers_whole_in_the_disk_cache(
    remote: Any, ranges: list[Any], tmp_path: Path
) -> None:
    # a later mount (a new fetcher on the same folder) reads them from the disk
    data = os.urandom(6 * MiB)
    c = ChunkMap(len(data)).floor(5 * MiB)
    handle, key = remote.add_file(data)
    for i in range(2):
        disk = DiskCache(tmp_path / "cache", 64 * MiB)
        fetcher = Fetcher(remote.http, fast_config(connections=2), MemoryCache(0), disk)
        try:
            f = fetcher.file(handle, len(data), key, remote.url_getter(handle))
            if i == 0:
                assert f.read(c - 100, MiB + 100) == data[c - 100 : c + MiB]  # a seek
                assert ranges == [(c - 112, c + MiB)] and list(f._macs) == [c]
            else:
                assert f.read(c + 300_000, 1000) == data[c + 300_000 : c + 301_000]
                assert len(ranges) == 1  # from the disk, checked against its MAC
                assert list(f._macs) == [c]
        finally:
            fetcher.close()


def test_a_damaged_disk_cache_is_fetched_again(
    remote: Any, ranges: list[Any], tmp_path: Path
) -> None:
    data = os.urandom(2 * MiB)
    folder = tmp_path / "cache"
    fetcher, f = _open(remote, data, memory=0, disk=DiskCache(folder, 64 * MiB))
    try:
        assert f.read(0, len(data)) == data
        blob = next(folder.glob("*.bin"))
        raw = bytearray(blob.read_bytes())
        raw[1000] ^= 0xFF
        blob.write_bytes(bytes(raw))
        before = len(ranges)
        assert f.read(0, 4096) == data[:4096]
        assert len(ranges) > before
    finally:
        fetcher.close()


def test_disk_cache_stays_under_its_cap(remote: Any, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    disk = DiskCache(folder, 3 * MiB)
    for _ in range(3):
        data = os.urandom(2 * MiB)
        fetcher, f = _open(remote, data, memory=0, disk=disk)
        try:
            assert f.read(0, len(data)) == data
        finally:
            fetcher.close()
        assert disk.used <= 3 * MiB
    assert sum(p.stat().st_blocks * 512 for p in folder.glob("*.bin")) <= 4 * MiB


def test_a_hostile_declared_size_fails_without_hanging_or_allocating(remote: Any) -> None:
    data = os.urandom(1000)
    handle, key = remote.add_file(data)
    fetcher = Fetcher(remote.http, fast_config(connections=2), MemoryCache(8 * MiB))
    try:
        f = fetcher.file(handle, 1 << 50, key, remote.url_getter(handle))
        with pytest.raises(MegaError):  # the server has no such bytes
            f.read((1 << 49) + 7, 65536)
    finally:
        fetcher.close()


def test_display_names_escape_and_number() -> None:
    names = ["a/b", ".", "..", "nul\x00x", "same.txt", "same.txt", "100%"]
    assert display_names(names) == [
        "a%2Fb",
        "%2E",
        "%2E%2E",
        "nul%00x",
        "same.txt",
        "same (1).txt",
        "100%25",
    ]


def test_fingerprint_mtime_reads_megas_fingerprint(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 10000)
    assert fingerprint_mtime(fingerprint(str(p), 1_600_000_123)) == 1_600_000_123
    moved = fingerprint_with_mtime(fingerprint(str(p), 1_600_000_123), 1_700_000_000)
    assert fingerprint_mtime(moved) == 1_700_000_000
    assert moved is not None and moved[:20] == fingerprint(str(p), 0)[:20]  # same CRCs
    assert fingerprint_mtime("not base64 !!") is None
    assert fingerprint_mtime(12) is None


def test_spool_is_private_and_its_queue_survives(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    fd, path = spool.new_file()
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    item = spool.enqueue(path, "parent", "name", 1.0, None)
    assert stat.S_IMODE((tmp_path / "spool" / "queue.json").stat().st_mode) == 0o600
    assert Spool(tmp_path / "spool").pending() == [item]
    spool.dequeue(item)
    assert spool.pending() == []
    (tmp_path / "spool" / "queue.json").write_text("{damaged")
    assert spool.pending() == []


# -- fetch buffers --------------------------------------------------------------------------
def test_a_fetch_buffer_is_reused_only_once_no_view_of_it_lives() -> None:
    buffers = _buffers.Buffers(keep=4 * _reader.PIECE, largest=_reader.PIECE)
    first = buffers.take(_reader.PIECE)
    first[:5] = b"held!"
    held = first[:5].toreadonly()  # a reader still holds these bytes
    del first
    second = buffers.take(_reader.PIECE)
    second[:5] = b"other"
    assert bytes(held) == b"held!"  # not handed out again while a view lives
    held.release()
    del second
    third = buffers.take(_reader.PIECE - 100)
    assert len(third) == _reader.PIECE - 100
    assert len(buffers._all[_reader.PIECE]) == 2  # the first one again: no third was made


def test_small_fetch_buffers_are_reused_in_their_own_size() -> None:
    # room for one piece's worth of kept buffers
    buffers = _buffers.Buffers(keep=_reader.PIECE, largest=_reader.PIECE)
    small = buffers.take(MAX_CHUNK - 100)  # a 1 MiB chunk never pins a whole piece
    assert len(small) == MAX_CHUNK - 100
    assert small.obj is not None and len(small.obj) == MAX_CHUNK
    small[:5] = b"first"
    del small
    again = buffers.take(MAX_CHUNK)
    assert bytes(again[:5]) == b"first"  # the same buffer, reused
    tiny = buffers.take(1000)  # smaller than the first MAC chunk: its size
    assert len(tiny.obj) == _buffers.SMALLEST_BUFFER
    del again, tiny
    assert buffers.kept == MAX_CHUNK + _buffers.SMALLEST_BUFFER
    # a piece needs the whole budget: the unused small buffers are let go for it
    piece = buffers.take(_reader.PIECE)
    assert buffers.kept == _reader.PIECE and len(buffers._all[_reader.PIECE]) == 1
    held = buffers.take(_reader.PIECE)  # the first is in use: a new one, not kept
    assert held.obj is not piece.obj and buffers.kept == _reader.PIECE


def test_views_held_across_cache_eviction_keep_their_bytes(remote: Any) -> None:
    # a cache of two pieces, a file of six: buffers are reused while the read goes on, but
    # never the one under a view a reader still holds
    data = os.urandom(24 * MiB + 777)
    fetcher, f = _open(remote, data, memory=2 * _reader.PIECE)
    try:
        stream = Stream(f)
        held = stream.views(5 * MiB, 1000)
        out = bytearray()
        while len(out) < len(data):
            out += stream.read(len(out), MiB)
        assert out == data and f.verified
        assert b"".join(held) == data[5 * MiB : 5 * MiB + 1000]
        assert len(fetcher.buffers._all[_reader.PIECE]) < 24 * MiB // _reader.PIECE  # reused
    finally:
        fetcher.close()


# -- reads out of order ------------------------------------------------------------------------
def _mib_chunks(size: int) -> list[int]:
    """Starts of the 1 MiB MAC chunks of a file of ``size`` bytes."""
    chunks = ChunkMap(size)
    return [c for c in chunks.chunks_in(0, size) if chunks.chunk_end(c) - c == MiB]


def test_a_random_read_macs_the_chunks_it_covers_whole(remote: Any, ranges: list[Any]) -> None:
    # a reader that goes on in order from a seek then has every chunk's MAC
    data = os.urandom(10 * MiB)
    chunks = ChunkMap(len(data))
    fetcher, f = _open(remote, data)
    try:
        second = chunks.floor(7 * MiB)
        first = chunks.floor(second - 1)
        assert f.read(second - 500, 1000) == data[second - 500 : second + 500]
        assert ranges == [(second - 512, second + 512)] and f._macs == {}
        assert f.read(first, second + 500 - first) == data[first : second + 500]
        assert ranges[-1] == (first, second + 512)
        assert list(f._macs) == [first]  # the first chunk was fetched whole, the second not
        expected = FileCipher(f.key, size=len(data))  # the chunk's MAC from its plaintext
        expected.encrypt(data[first:second], first)
        assert f._macs[first] == expected.chunk_macs[first]
        stream = Stream(f, at=None)
        assert stream.read(0, MiB) == data[:MiB]  # a seek back to the start, then in order
        out = bytearray(data[:MiB])
        while len(out) < len(data):
            out += stream.read(len(out), MiB)
        assert out == data and f.verified
    finally:
        fetcher.close()


def test_readers_at_once_in_one_chunk_get_their_bytes(remote: Any) -> None:
    # reads out of order that start together each fetch their own bytes
    data = os.urandom(10 * MiB)
    starts = _mib_chunks(len(data))
    fetcher, f = _open(remote, data)
    try:
        for c in starts[:4]:
            spans = [(c + 64, 4096), (c + 300_000, 70_000), (c + 900_000, 100_000), (c, MiB)]
            got: dict[int, bytes] = {}
            barrier = threading.Barrier(len(spans))

            def read(
                i: int, at: int, n: int, got: dict[int, bytes], barrier: threading.Barrier
            ) -> None:
                barrier.wait()
                got[i] = f.read(at, n)

            threads = [
                threading.Thread(target=read, args=(i, at, n, got, barrier))
                for i, (at, n) in enumerate(spans)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert all(got[i] == data[at : at + n] for i, (at, n) in enumerate(spans))
            _landed(f)
            assert c in f._macs  # the whole-chunk read completed it
    finally:
        fetcher.close()


def test_a_random_read_on_a_slow_link_leaves_no_fetch_behind_it(
    remote: Any, transfer_emulator: Any, ranges: list[Any]
) -> None:
    data = os.urandom(10 * MiB)
    fetcher, f = _open(remote, data)
    transfer_emulator.set_faults(bandwidth=1_000_000)  # a 1 MiB chunk takes a second
    try:
        offset = 7 * MiB + 5000
        assert f.read(offset, 1000) == data[offset : offset + 1000]
        assert not f._inflight  # nothing of its chunk is still arriving
        assert ranges == [(offset // 16 * 16, -(-(offset + 1000) // 16) * 16)]
        transfer_emulator.clear_faults()
        assert f.read(offset, 65536) == data[offset : offset + 65536]
    finally:
        transfer_emulator.clear_faults()
        fetcher.close()


def _flip(remote: Any, handle: str, offset: int) -> None:
    """Change one stored byte of a file on the emulator (what a later request serves)."""
    path = remote.emu.store.blob_path(remote.emu.node(handle)["blob"])
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 1]))


def _read_whole_then_evict(fetcher: Any, f: Any, data: bytes) -> ChunkMap:
    """Read ``f`` in order (every chunk's MAC and marks known), then empty the memory cache."""
    assert Stream(f).read(0, len(data)) == data
    _landed(f)
    assert f.verified
    chunks = ChunkMap(len(data))
    fetcher.memory.drop(f.handle, chunks.chunks_in(0, len(data)))
    return chunks


def test_a_chunk_read_again_fetches_only_between_its_marks(remote: Any, ranges: list[Any]) -> None:
    # its MAC and its running MACs every 64 KiB are known: a read fetches and checks the
    # 64 KiB steps it touches, not the whole chunk, in its own thread
    data = os.urandom(10 * MiB + 1000)  # a ragged last chunk
    fetcher, f = _open(remote, data)
    try:
        chunks = _read_whole_then_evict(fetcher, f, data)
        ranges.clear()
        c = chunks.floor(7 * MiB)
        assert f.read(c + 70000, 65536) == data[c + 70000 : c + 70000 + 65536]
        assert ranges == [(c + 65536, c + 3 * 65536)]
        ranges.clear()
        end = chunks.chunk_end(c)  # across two chunks: the end of one, the start of the next
        assert f.read(end - 1000, 5000) == data[end - 1000 : end + 4000]
        assert ranges == [(end - 65536, end + 65536)]
        ranges.clear()
        last = chunks.floor(len(data) - 1)  # up to the end of the file
        assert f.read(len(data) - 500, 500) == data[-500:]
        assert ranges == [(last + (len(data) - 500 - last) // 65536 * 65536, len(data))]
        ranges.clear()
        assert f.read(c, 100) == data[c : c + 100]  # from the chunk's own start
        assert ranges == [(c, c + 65536)]
        assert not f._inflight and not f.corrupt
    finally:
        fetcher.close()


def test_a_byte_changed_in_a_marked_step_is_an_integrity_error(remote: Any) -> None:
    data = os.urandom(6 * MiB)
    fetcher, f = _open(remote, data)
    try:
        chunks = _read_whole_then_evict(fetcher, f, data)
        c = chunks.floor(5 * MiB)
        _flip(remote, f.handle, c + 3 * 65536 + 7)  # in the fourth step of the chunk
        # a read of other steps is checked against their own marks: right bytes
        assert f.read(c + 100, 1000) == data[c + 100 : c + 1100]
        assert f.read(c + 5 * 65536, 65536) == data[c + 5 * 65536 : c + 6 * 65536]
        # a read in that step, even of bytes after the changed one, gets an error
        with pytest.raises(IntegrityError):
            f.read(c + 3 * 65536 + 100, 10)
        assert f.corrupt
        with pytest.raises(IntegrityError):  # and so does every later read of the file
            f.read(0, 10)
    finally:
        fetcher.close()


def test_marks_are_bounded_by_the_memory_cache() -> None:
    fetcher = Fetcher(None, fast_config(connections=2), MemoryCache(2 * MiB))
    try:
        cap = 2 * _reader.MARKED_PER_MIB
        for c in range(cap + 10):
            fetcher.marks.put((None, c), b"m")  # type: ignore[arg-type]
        assert len(fetcher.marks) == cap
        assert fetcher.marks.get((None, 9)) is None  # type: ignore[arg-type]
        assert fetcher.marks.get((None, 10)) == b"m"  # type: ignore[arg-type]
    finally:
        fetcher.close()


def test_a_chunk_read_again_without_its_marks_is_fetched_whole_by_the_reading_thread(
    remote: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its MAC is known, so the read waits for the whole chunk: it fetches it itself (no
    # hand-over to a worker and back), and the bytes are checked against the MAC first
    data = os.urandom(10 * MiB)
    fetcher, f = _open(remote, data)
    threads: list[int] = []
    real = _reader.RemoteFile._fetch_whole

    def spy(self: Any, begin: int, end: int) -> Any:
        threads.append(threading.get_ident())
        return real(self, begin, end)

    monkeypatch.setattr(_reader.RemoteFile, "_fetch_whole", spy)
    try:
        chunks = ChunkMap(len(data))
        offset = chunks.floor(7 * MiB) + 100
        assert f.read(offset - 100, MiB) == data[offset - 100 : offset - 100 + MiB]
        _landed(f)
        assert chunks.floor(offset) in f._macs
        threads.clear()
        fetcher.memory.drop(f.handle, [chunks.floor(offset)])  # evicted
        fetcher.marks.clear()  # pushed out by other files' marks
        assert f.read(offset, 65536) == data[offset : offset + 65536]
        assert threads == [threading.get_ident()]
        assert not f._inflight
    finally:
        fetcher.close()


def test_a_read_that_may_complete_the_file_waits_for_its_check(
    remote: Any, transfer_emulator: Any
) -> None:
    data = os.urandom(100_000)  # one chunk: its first read completes the set of MACs
    fetcher, f = _open(remote, data)
    transfer_emulator.set_faults(bandwidth=200_000)
    try:
        assert f.read(0, 100) == data[:100]
        assert f.verified  # checked before its first bytes were handed out
    finally:
        transfer_emulator.clear_faults()
        fetcher.close()


def test_a_failed_fetch_fails_the_read_that_waits_on_its_bytes(
    remote: Any, transfer_emulator: Any
) -> None:
    data = os.urandom(10 * MiB)
    fetcher, f = _open(remote, data)
    transfer_emulator.set_faults(transfer_error_rate=1.0)
    try:
        with pytest.raises(MegaError):
            f.read(6 * MiB + 3, 1000)
        assert not f._inflight
    finally:
        transfer_emulator.clear_faults()
        fetcher.close()


def test_a_reader_in_order_leaves_behind_it_no_cached_chunks(remote: Any) -> None:
    data = os.urandom(20 * MiB + 99)
    fetcher, f = _open(remote, data, memory=64 * MiB)  # room for the whole file
    try:
        stream = Stream(f)
        out = bytearray()
        while len(out) < len(data):
            out += stream.read(len(out), MiB)
        assert out == data and f.verified
        # what the reader passed went (its buffers are reused); the last few MiB stay
        assert fetcher.memory.used <= _reader.IN_ORDER_SLACK + 2 * _reader.PIECE
        assert f.read(0, 1000) == data[:1000]  # fetched again when asked for
    finally:
        fetcher.close()


def test_a_file_whose_state_was_pushed_out_is_still_verified(remote: Any) -> None:
    # its chunk stays in the memory cache, but its MAC went with the pushed-out state: the
    # new state must not serve that chunk unchecked (a read in order must end verified)
    data = os.urandom(6 * MiB)
    fetcher, f = _open(remote, data)
    try:
        assert f.read(2 * MiB, 1000) == data[2 * MiB : 2 * MiB + 1000]
        _landed(f)
        for i in range(_reader.FILES_KEPT):
            fetcher.file(f"other{i}", 1000, f.key, remote.url_getter(f.handle))
        again = fetcher.file(f.handle, len(data), f.key, remote.url_getter(f.handle))
        assert again is not f
        stream = Stream(again)
        out = bytearray()
        while len(out) < len(data):
            out += stream.read(len(out), MiB)
        assert out == data
        assert again.verified
    finally:
        fetcher.close()


def _in_thread(call: Any, timeout: float = 20) -> Any:
    """``call()`` in a thread: its result, or its exception raised here; fails on a hang."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(("ok", call()))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out.append(("error", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert out, "the read hung"
    kind, value = out[0]
    if kind == "error":
        raise value
    return value


def test_a_read_that_fails_before_its_fetch_leaves_none_hanging(
    remote: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no buffer for a read out of order, then for a read with read-ahead: nothing is left in
    # flight, and a later read of the same bytes gets them
    data = os.urandom(2 * _reader.PIECE + 2 * MiB)
    fetcher, f = _open(remote, data)
    real = fetcher.buffers.take

    def take(size: int) -> Any:
        raise MemoryError("no room")

    monkeypatch.setattr(fetcher.buffers, "take", take)
    try:
        with pytest.raises(MemoryError):
            f.read(MiB, _reader.PIECE + MiB)
        with pytest.raises(MemoryError):
            _in_thread(lambda: f.views(0, 1000, ahead=MiB))
        _landed(f)
        monkeypatch.setattr(fetcher.buffers, "take", real)
        assert _in_thread(lambda: f.read(0, 1000)) == data[:1000]
    finally:
        fetcher.close()


def test_a_fetch_that_fails_before_its_read_waits_on_it_fails_that_read(
    remote: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fetch ended (and left the in-flight table) before the read looked it up
    data = os.urandom(10 * MiB)
    fetcher, f = _open(remote, data)

    def submit(fn: Any, *args: Any) -> Any:
        fut: Any = _reader.Future()
        fut.set_exception(_reader.TransferError("the fetch failed"))
        return fut

    monkeypatch.setattr(fetcher.pool, "submit", submit)
    try:
        with pytest.raises(MegaError):
            _in_thread(lambda: f.views(0, 1000, ahead=MiB))
        assert not f._inflight
    finally:
        fetcher.close()
