"""Streaming, verified reads of remote files, shared by the mount and the HTTP server.

:class:`Fetcher` owns what every read shares: one transfer :class:`Controller` (a private
connection pool of ``config.connections``), a thread pool of as many fetch workers, the
memory cache and the optional disk cache. :class:`RemoteFile` is one node's state: the MAC of
every chunk read so far, the fetches in flight and whether the meta-MAC was checked.
:class:`Stream` is one reader's position (an open file, an HTTP response).

Reads go through the engine's ranged fetch (:func:`megafast.transfer._http.fetch_range`:
retries, URL refresh, back-off, timeouts). A stream reading in order fetches whole MAC chunks
(:class:`~megafast.transfer.ChunkMap`) and gets read-ahead that doubles from
:data:`FIRST_AHEAD` up to ``connections`` pieces of :data:`PIECE` bytes, fetched in
parallel. A read out of order (a seek) fetches only its own bytes, in its own thread.

Integrity: each chunk fetched whole is decrypted and MAC-ed; a chunk read twice must give the same
MAC (else :class:`~megafast.errors.IntegrityError`). A chunk's first MAC also keeps its running
MAC every :data:`~megafast.crypto.MAC_MARK` bytes (its marks); a later read out of order of
part of it fetches and checks only from the mark before the read to the mark (or the chunk's
MAC) after it. When the MACs of every chunk are known
the meta-MAC is checked, before the read that completed the set returns: a file read in
order is checked before its last bytes are handed out; a mismatch raises IntegrityError
(EIO in the mount, a dropped connection in the server) and so does every later read of the
file. Bytes of a file read only in part cannot be checked (MEGA keeps no per-chunk MAC).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import requests

from ..crypto import MAC_MARK, FileCipher
from ..errors import IntegrityError, TransferError
from ..transfer import ChunkMap, MiB, TransferConfig
from ..transfer._config import MAX_CHUNK
from ..transfer._http import Controller, UrlSource, fetch_range
from ._buffers import Buffers
from ._cache import DiskCache, MemoryCache, Recent

__all__ = ["Fetcher", "RemoteFile", "Stream", "PIECE", "FIRST_AHEAD"]

#: Largest range one fetch asks for (bytes, whole chunks), as the engine's ranges for a file of
#: 256 MiB: each request has a fixed cost in the client (about 1 ms of CPU here, most of it in
#: ``requests``), so fewer, larger ones save CPU on a sequential read.
PIECE = 8 * MiB
#: Read-ahead after the first two reads in order (bytes); it doubles on each further one.
FIRST_AHEAD = 1 * MiB
#: A read this close to where the last one ended still counts as in order (bytes): the
#: kernel sends its read-ahead requests from several threads, slightly out of order.
IN_ORDER_SLACK = 2 * MiB
#: Remote files whose state (chunk MACs) is kept.
FILES_KEPT = 256
#: Chunks before a reader in order that it drops from the memory cache at each read (those
#: further back went at earlier reads).
_DROP_BACK = 4
#: Chunks whose marks are kept, all files together, per MiB of the memory cache (a 1 MiB
#: chunk's marks take 240 bytes: 16 MiB of memory cache keep those of 1 GiB of file).
MARKED_PER_MIB = 64


class Fetcher:
    """What every read shares: connections, fetch workers and caches (see the module doc)."""

    def __init__(
        self,
        http: requests.Session | None,
        config: TransferConfig,
        memory: MemoryCache,
        disk: DiskCache | None = None,
    ) -> None:
        self.config = config
        self.memory = memory
        self.disk = disk
        self.ctl = Controller(http, config, config.connections)
        self.pool = ThreadPoolExecutor(config.connections, thread_name_prefix="megafast-read")
        # the workers start now, in the background: a first read that hands its chunk to a
        # worker would otherwise wait for a thread to start
        self._gate = threading.Barrier(config.connections)
        threading.Thread(
            target=self._start_workers, daemon=True, name="megafast-read-start"
        ).start()
        #: what the memory cache can hold, what is in flight, and some held by readers
        self.buffers = Buffers((memory.cap // PIECE + config.connections + 2) * PIECE, PIECE)
        #: Largest read-ahead of one stream (bytes): the connections, and half the memory
        #: cache (what was read ahead must still be there when it is asked for; a reader in
        #: order drops what it passed, so the cache holds mostly its read-ahead).
        self.max_ahead = max(FIRST_AHEAD, min(config.connections * PIECE, memory.cap // 2))
        self._files: Recent[str, RemoteFile] = Recent(FILES_KEPT)
        self._lock = threading.Lock()
        #: each chunk's marks (its running MACs, concatenated), by (file, chunk start)
        self.marks: Recent[tuple[RemoteFile, int], bytes] = Recent(
            memory.cap // MiB * MARKED_PER_MIB
        )

    def file(
        self,
        handle: str,
        size: int,
        key: Sequence[int],
        get_url: Callable[[bool], str],
    ) -> RemoteFile:
        """The shared state of node ``handle`` (made on first use; ``get_url(refresh)`` is
        called only when bytes must be fetched)."""
        with self._lock:  # one RemoteFile a node, however many ask at once
            f = self._files.get(handle)
            if f is None or f.size != size or tuple(f.key) != tuple(key):
                f = RemoteFile(self, handle, size, key, get_url)
                self._files.put(handle, f)
            return f

    def known(self, handle: str) -> RemoteFile | None:
        """The shared state of node ``handle`` when it is kept, else None."""
        return self._files.get(handle)

    def _start_workers(self) -> None:
        """One task per worker, each waiting for the others: the pool starts every thread."""

        def wait() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                self._gate.wait(timeout=10)

        for _ in range(self._gate.parties):
            try:
                self.pool.submit(wait)
            except RuntimeError:  # closed already
                self._gate.abort()
                return

    def close(self) -> None:
        """Stop fetches in flight (their readers get an error) and close the connections."""
        self._gate.abort()
        self.ctl.stop.set()
        self.buffers.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.ctl.close()


class RemoteFile:
    """One node's bytes: chunk MACs seen, fetches in flight, verification (module doc)."""

    def __init__(
        self,
        fetcher: Fetcher,
        handle: str,
        size: int,
        key: Sequence[int],
        get_url: Callable[[bool], str],
    ) -> None:
        self.fetcher = fetcher
        self.handle = handle
        self.size = size
        self.key = tuple(key)
        self.chunks = ChunkMap(size)
        FileCipher(self.key, size=size)  # ValidationError now for a key that is no file key
        self._urls = UrlSource(get_url)
        self._macs: dict[int, bytes] = {}
        self._inflight: dict[int, Future[dict[int, memoryview]]] = {}
        self._lock = threading.RLock()
        self._ahead_end = 0  # read-ahead was asked for up to here (bytes)
        self.verified = False
        self.corrupt = False
        disk = fetcher.disk
        self._ident = disk.ident(handle, bytes(str(self.key), "ascii")) if disk else ""

    # -- reading --------------------------------------------------------------------------
    def read(self, offset: int, size: int, ahead: int = 0) -> bytes:
        """The plaintext bytes ``[offset, offset + size)`` (fewer at the end of the file);
        ``ahead``: bytes after them to fetch in the background."""
        parts = self.views(offset, size, ahead)
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def views(self, offset: int, size: int, ahead: int = 0) -> list[memoryview]:
        """:meth:`read` as read-only views of the fetched bytes, in order (no copy)."""
        if self.corrupt:
            raise IntegrityError("this file failed its MAC check: its bytes are not served")
        end = min(self.size, offset + size)
        if offset < 0 or offset >= end:
            return []
        chunks = self.chunks
        need_end = chunks.chunk_end(chunks.floor(end - 1))
        needed = chunks.chunks_in(chunks.floor(offset), need_end)
        if ahead == 0:  # a read out of order: its own bytes, fetched in this thread
            marked = self._marked(offset, end, needed)
            if marked:
                return self._read_marked(offset, end, marked)
            if self._unknown(needed):
                return self._read_plain(offset, end, needed)
        got: dict[int, memoryview] = {}
        waits: dict[int, _Result] = {}
        with self._lock:
            missing = []
            for c in needed:
                data = self._cached(c)
                if data is not None:
                    got[c] = data
                elif c not in self._inflight:
                    missing.append(c)
            # a read with no read-ahead that must wait for its chunks whole fetches them in
            # its own thread (no hand-over to a worker and back)
            whole: list[tuple[Callable[[], dict[int, memoryview]], _Result]] = []
            placed: dict[int, _Result] = {}
            self._start(missing, own=whole if ahead == 0 else None, placed=placed)
            ahead_end = min(self.size, need_end + ahead)
            if need_end < ahead_end:
                # chunks up to _ahead_end were asked for by an earlier read in order; the rest
                # is asked for in whole pieces (one request each: fewer, larger requests)
                begin = self._ahead_end if need_end <= self._ahead_end <= ahead_end else need_end
                batch = min(PIECE, ahead)
                due = ahead_end - begin >= batch or (ahead_end == self.size and begin < ahead_end)
                later = chunks.chunks_in(begin, ahead_end) if due else []
                self._start(
                    [c for c in later if c not in self._inflight and self._cached(c) is None],
                    placed=placed,
                )
                self._ahead_end = max(begin, chunks.chunk_end(later[-1]) if later else begin)
            for c in needed:
                if c not in got:
                    waits[c] = self._inflight.get(c) or placed[c]
        for run, task in whole:
            self._run_whole(run, task)
        for c, fut in waits.items():
            got[c] = fut.result()[c]
        if not self.verified and len(self._macs) == len(chunks):
            self._verify()  # this read completed the set (whatever order the reads came in)
        parts = []
        for c in needed:
            data = got[c]
            parts.append(data[max(0, offset - c) : min(len(data), end - c)])
        return parts

    def _unknown(self, needed: list[int]) -> bool:
        """True when no chunk of ``needed`` has a known MAC or a copy in the disk cache, and
        fetching them whole could not complete the file's set of MACs (a read that may
        complete it waits for its chunks whole: the meta-MAC check comes first)."""
        with self._lock:
            if any(c in self._macs for c in needed):
                return False
            if len(self._macs) + len(needed) >= len(self.chunks):
                return False
        disk = self.fetcher.disk
        return disk is None or disk.lookup(self._ident, needed) is None

    def _read_plain(self, offset: int, end: int, needed: list[int]) -> list[memoryview]:
        """Fetch just the bytes ``[offset, end)`` (out to whole AES blocks) in this thread and
        decrypt them. The chunks of ``needed`` wholly inside are MAC-ed and kept, as any
        fetch of whole chunks (a reader that goes on in order from here then has every
        chunk's MAC); the bytes of the others are not checked (nor can those of a file read
        only in part be), add no MAC and are not cached."""
        begin, stop = offset // 16 * 16, min(self.size, -(-end // 16) * 16)
        view = self.fetcher.buffers.take(stop - begin)
        fetch_range(self.fetcher.ctl, self._urls, begin, stop, view, _ignore)
        whole = [c for c in needed if begin <= c and self.chunks.chunk_end(c) <= stop]
        a, b = (whole[0], self.chunks.chunk_end(whole[-1])) if whole else (stop, stop)
        cipher = FileCipher(self.key, size=self.size)
        cipher.ctr_into(view[: a - begin], view[: a - begin], begin)
        cipher.ctr_into(view[b - begin :], view[b - begin :], b)
        if whole:
            inside = view[a - begin : b - begin]
            ciphertext = bytes(inside) if self.fetcher.disk is not None else b""
            self._keep(inside, a, whole, self._decrypt(inside, a, ciphertext))
            if not self.verified and len(self._macs) == len(self.chunks):
                self._verify()
        return [view[offset - begin : end - begin].toreadonly()]

    def _marked(self, offset: int, end: int, needed: list[int]) -> list[_Window] | None:
        """The windows to fetch for the bytes ``[offset, end)`` when every chunk they touch
        has its MAC and marks known, and none is cached or in flight; else None."""
        chunks = self.chunks
        windows = []
        with self._lock:
            for c in needed:
                mac = self._macs.get(c)
                if mac is None or c in self._inflight or self._cached(c) is not None:
                    return None
                marks = self.fetcher.marks.get((self, c))
                if marks is None:
                    return None
                chunk_end = chunks.chunk_end(c)
                # from the mark at or before the read's first byte in this chunk to the mark
                # (or the chunk's end) at or after its last
                a = (max(offset, c) - c) // MAC_MARK
                b = -(-(min(end, chunk_end) - c) // MAC_MARK)
                begin, stop = c + a * MAC_MARK, min(chunk_end, c + b * MAC_MARK)
                state = marks[16 * (a - 1) : 16 * a] if a else None
                expect = mac if stop == chunk_end else marks[16 * (b - 1) : 16 * b]
                windows.append(_Window(c, begin, stop, state, expect))
        return windows

    def _read_marked(self, offset: int, end: int, windows: list[_Window]) -> list[memoryview]:
        """Fetch ``windows`` (adjacent: one range) in this thread, check each against its
        marks and return the bytes ``[offset, end)`` (IntegrityError on a mismatch)."""
        begin, stop = windows[0].begin, windows[-1].end
        view = self.fetcher.buffers.take(stop - begin)
        fetch_range(self.fetcher.ctl, self._urls, begin, stop, view, _ignore)
        parts = []
        for w in windows:
            cipher = FileCipher(self.key, size=self.size)
            if w.state is not None:
                cipher.continue_from(w.begin, w.state)
            data = view[w.begin - begin : w.end - begin]
            cipher.decrypt_into(data, data, w.begin)
            whole = w.end == self.chunks.chunk_end(w.chunk)
            got = cipher.chunk_macs.get(w.chunk) if whole else cipher.running_mac(w.end)
            if got != w.expect:
                self.corrupt = True
                raise IntegrityError(
                    f"the chunk at offset {w.chunk} changed between two reads: corrupted data"
                )
            parts.append(data[max(0, offset - w.begin) : min(len(data), end - w.begin)])
        return [p.toreadonly() for p in parts]

    def _cached(self, c: int) -> memoryview | None:
        """Chunk ``c`` from the memory cache, only when its MAC is in :attr:`_macs` (the cache
        is keyed by handle: a chunk another :class:`RemoteFile` of this node fetched, one pushed
        out of :class:`Fetcher`, say, is fetched again so that its MAC joins this file's)."""
        return self.fetcher.memory.get(self.handle, c) if c in self._macs else None

    def forget_before(self, offset: int) -> None:
        """Drop the cached chunks that end at or before ``offset`` from the memory cache: a
        reader in order is past them (the kernel keeps the pages it got), so their buffers
        are reused at once instead of fresh memory for the read-ahead."""
        chunks = self.chunks
        if offset <= 0:
            return
        end = chunks.floor(min(offset, self.size - 1))
        begin = chunks.floor(max(0, end - _DROP_BACK * MAX_CHUNK))
        self.fetcher.memory.drop(self.handle, chunks.chunks_in(begin, end))

    def _start(
        self,
        starts: list[int],
        *,
        own: list[tuple[Callable[[], dict[int, memoryview]], _Result]] | None = None,
        placed: dict[int, _Result] | None = None,
    ) -> None:
        """Fetch the chunks ``starts`` (call under the lock) whole, in pieces of up to
        :data:`PIECE` bytes, on the fetch workers. With ``own`` and a single fetch to make,
        that fetch is not started but listed there (what to run, future): the reader that
        asked runs it whole itself (:meth:`_run_whole`). ``placed`` gets each chunk's future
        (a fetch that ends at once leaves the in-flight table before its reader looks)."""
        plans = self.chunks.plan(PIECE, only=starts) if starts else []
        for begin, end in plans:
            run = functools.partial(self._fetch_whole, begin, end)
            fut: _Result
            if own is not None and len(plans) == 1:
                fut = Future()
                own.append((run, fut))
            else:
                fut = self.fetcher.pool.submit(run)
            self._place(self.chunks.chunks_in(begin, end), fut, placed)

    def _place(self, mine: list[int], fut: _Result, placed: dict[int, _Result] | None) -> None:
        """Chunks ``mine`` are in flight in ``fut`` (under the lock)."""
        for c in mine:
            self._inflight[c] = fut
            if placed is not None:
                placed[c] = fut
        fut.add_done_callback(self._landed)

    def _run_whole(self, run: Callable[[], dict[int, memoryview]], fut: _Result) -> None:
        """Run a fetch whole in this thread and settle ``fut`` (others may wait on it: it is
        settled whatever happens, an interrupt included)."""
        try:
            fut.set_result(run())
        except Exception as exc:  # the readers get it from the future
            fut.set_exception(exc)
        except BaseException:
            fut.set_exception(TransferError("the fetch was interrupted"))
            raise

    def _landed(self, fut: Future[dict[int, memoryview]]) -> None:
        with self._lock:
            for c in [c for c, f in self._inflight.items() if f is fut]:
                del self._inflight[c]

    # -- fetching ---------------------------------------------------------------------------
    def _fetch_whole(self, begin: int, end: int) -> dict[int, memoryview]:
        view = self.fetcher.buffers.take(end - begin)
        starts = self.chunks.chunks_in(begin, end)
        disk = self.fetcher.disk
        if disk is not None:
            records = disk.lookup(self._ident, starts)
            if records is not None and disk.read(self._ident, begin, view):
                cipher = self._decrypt(view, begin)
                macs = cipher.chunk_macs
                if all(macs[c] == rec[1] for c, rec in zip(starts, records, strict=True)):
                    return self._keep(view, begin, starts, cipher)
                disk.drop(self._ident)  # damaged: fetched again below
        fetch_range(self.fetcher.ctl, self._urls, begin, end, view, _ignore)
        ciphertext = bytes(view) if disk is not None else b""
        return self._keep(view, begin, starts, self._decrypt(view, begin, ciphertext))

    def _decrypt(self, view: memoryview, begin: int, ciphertext: bytes = b"") -> FileCipher:
        """Decrypt and MAC the whole chunks in ``view`` (from file offset ``begin``) in place;
        ``ciphertext``, their bytes as fetched, goes to the disk cache with their MACs."""
        cipher = FileCipher(self.key, size=self.size, marks=True)
        cipher.decrypt_into(view, view, begin)
        disk = self.fetcher.disk
        if disk is not None and ciphertext:
            macs = cipher.chunk_macs
            written = [(c, self.chunks.chunk_end(c) - c, macs[c]) for c in sorted(macs)]
            disk.write(self._ident, begin, memoryview(ciphertext), written)
        return cipher

    def _keep(
        self, view: memoryview, begin: int, starts: list[int], cipher: FileCipher
    ) -> dict[int, memoryview]:
        """Check and record the MACs of the whole chunks ``starts`` (their bytes in ``view``
        from file offset ``begin``, MAC-ed by ``cipher``), keep their marks the first time,
        and put them in the memory cache."""
        macs = cipher.chunk_macs
        with self._lock:
            first = [c for c in starts if c not in self._macs]
            for c in starts:
                if self._macs.setdefault(c, macs[c]) != macs[c]:
                    self.corrupt = True
                    raise IntegrityError(
                        f"the chunk at offset {c} changed between two reads: corrupted data"
                    )
        if first:
            marks = cipher.marks
            for c in first:
                ends = range(c + MAC_MARK, self.chunks.chunk_end(c), MAC_MARK)
                if all(p in marks for p in ends):
                    self.fetcher.marks.put((self, c), b"".join(marks[p] for p in ends))
        out: dict[int, memoryview] = {}
        memory = self.fetcher.memory
        for c in starts:
            # a read-only view into the fetch's buffer (no copy): the buffer is freed when
            # the last of its chunks leaves the cache and no reader holds it
            data = view[c - begin : self.chunks.chunk_end(c) - begin].toreadonly()
            memory.put(self.handle, c, data)
            out[c] = data
        return out

    def _verify(self) -> None:
        """Check the meta-MAC once every chunk's MAC is known (IntegrityError on mismatch)."""
        with self._lock:
            if self.verified or len(self._macs) < len(self.chunks):
                return
            cipher = FileCipher(self.key, size=self.size)
            cipher.add_chunk_macs(self._macs)
            try:
                cipher.verify()
            except IntegrityError:
                self.corrupt = True
                raise
            self.verified = True


_Result = Future[dict[int, memoryview]]


@dataclass(frozen=True, slots=True)
class _Window:
    """Part of chunk ``chunk`` to fetch and check: ``[begin, end)``, from the chunk's running
    MAC ``state`` at ``begin`` (None at the chunk's start) to ``expect`` at ``end``."""

    chunk: int
    begin: int
    end: int
    state: bytes | None
    expect: bytes


def _ignore(_offset: int, _view: memoryview) -> None:
    """The fetch leaves the bytes in the buffer; they are decrypted once all arrived."""


class Stream:
    """One reader's position in a :class:`RemoteFile`, with its read-ahead. ``at``: where
    the first read is expected (one there counts as in order and gets read-ahead at once:
    a reader from the start, an HTTP answer longer than one send); None when the first read
    may be anywhere (it then fetches only up to its own end)."""

    def __init__(self, file: RemoteFile, at: int | None = 0) -> None:
        self.file = file
        self._next = -1 if at is None else at
        self._ahead = 0

    def read(self, offset: int, size: int) -> bytes:
        """Bytes ``[offset, offset + size)``; reads in order grow the read-ahead."""
        parts = self.views(offset, size)
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def views(self, offset: int, size: int) -> list[memoryview]:
        """:meth:`read` as read-only views (no copy; see :meth:`RemoteFile.views`)."""
        if self._next >= 0 and abs(offset - self._next) <= IN_ORDER_SLACK:
            limit = self.file.fetcher.max_ahead
            self._ahead = min(limit, max(FIRST_AHEAD, self._ahead * 2))
            self.file.forget_before(offset - IN_ORDER_SLACK)
        else:
            self._ahead = 0
        parts = self.file.views(offset, size, self._ahead)
        self._next = offset + sum(len(p) for p in parts)
        return parts
