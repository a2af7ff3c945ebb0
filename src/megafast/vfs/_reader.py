"""Streaming, verified reads of remote files, shared by the mount and the HTTP server.

:class:`Fetcher` owns what every read shares: one transfer :class:`Controller` (a private
connection pool of ``config.connections``), a thread pool of as many fetch workers, the
memory cache and the optional disk cache. :class:`RemoteFile` is one node's state: the MAC of
every chunk read so far, the fetches in flight and whether the meta-MAC was checked.
:class:`Stream` is one reader's position (an open file, an HTTP response).

Reads are planned in MEGA's MAC chunks (:class:`~megafast.transfer.ChunkMap`): a read
fetches only the chunks it touches, through the engine's ranged fetch
(:func:`megafast.transfer._http.fetch_range`: retries, URL refresh, back-off, timeouts); a
read out of order stops at its own end, and the chunk it ends in is kept fetched in part
(:class:`_Partial`, its MAC state with it) until a later read needs the rest. A stream
reading in order gets read-ahead that doubles from :data:`FIRST_AHEAD` up to
``connections`` pieces of :data:`PIECE` bytes, fetched in parallel.

Integrity: each fetched range is decrypted and MAC-ed; a chunk read twice must give the same
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
from collections import OrderedDict
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import requests

from ..crypto import MAC_MARK, FileCipher
from ..errors import IntegrityError, TransferError
from ..transfer import ChunkMap, MiB, TransferConfig
from ..transfer._config import MAX_CHUNK
from ..transfer._http import Controller, UrlSource, fetch_range, range_steps
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
#: Chunks kept fetched only in part, all files together (a read out of order stops at its
#: own end); no more than the memory cache holds in 1 MiB chunks.
PARTIALS_KEPT = 16
#: Chunks whose marks are kept, all files together, per MiB of the memory cache (a 1 MiB
#: chunk's marks take 240 bytes: 16 MiB of memory cache keep those of 1 GiB of file).
MARKED_PER_MIB = 64
#: Times a read plans its fetches again when a fetch it waited on ended short of its bytes.
_REPLANS = 8


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
        self._files: OrderedDict[str, RemoteFile] = OrderedDict()
        self._lock = threading.Lock()
        #: chunks fetched in part (:class:`_Partial`), by (file, chunk start)
        self.partials: Recent[tuple[RemoteFile, int], _Partial] = Recent(
            min(PARTIALS_KEPT, memory.cap // MAX_CHUNK)
        )
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
        with self._lock:
            f = self._files.get(handle)
            if f is None or f.size != size or tuple(f.key) != tuple(key):
                f = RemoteFile(self, handle, size, key, get_url)
                self._files[handle] = f
            self._files.move_to_end(handle)
            while len(self._files) > FILES_KEPT:
                self._files.popitem(last=False)
            return f

    def known(self, handle: str) -> RemoteFile | None:
        """The shared state of node ``handle`` when it is kept, else None."""
        with self._lock:
            f = self._files.get(handle)
            if f is not None:
                self._files.move_to_end(handle)
            return f

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
        self._arriving: dict[int, _Arriving] = {}  # chunks of fetches that hand out early
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
        """:meth:`read` as read-only views of the cached chunks, in order (no copy)."""
        for _ in range(_REPLANS):
            try:
                return self._views(offset, size, ahead)
            except _Short:
                continue  # another read's fetch stopped short of these bytes: plan again
        raise TransferError("a read found its bytes fetched only in part, again and again")

    def _views(self, offset: int, size: int, ahead: int) -> list[memoryview]:
        if self.corrupt:
            raise IntegrityError("this file failed its MAC check: its bytes are not served")
        end = min(self.size, offset + size)
        if offset < 0 or offset >= end:
            return []
        chunks = self.chunks
        first = chunks.floor(offset)
        need_end = chunks.chunk_end(chunks.floor(end - 1))
        needed = chunks.chunks_in(first, need_end)
        if ahead == 0:
            marked = self._marked(offset, end, needed)
            if marked:
                return self._read_marked(offset, end, marked)
        got: dict[int, memoryview] = {}
        waits: dict[int, Future[dict[int, memoryview]]] = {}
        with self._lock:
            missing = []
            for c in needed:
                data = self._cached(c)
                if data is None:
                    data = self._from_partial(c, min(end, chunks.chunk_end(c)))
                if data is not None:
                    got[c] = data
                elif c not in self._inflight:
                    missing.append(c)
            # a read out of order (a seek) may get its bytes as they arrive, before its chunks
            # are whole: unless a chunk is read again (its MAC must match first) or these
            # fetches may complete the file (the meta-MAC is checked before the last bytes)
            early = (
                ahead == 0
                and not any(c in self._macs for c in needed)
                and len(self._macs) + len(self._inflight) + len(missing) < len(chunks)
            )
            # a read with no read-ahead that must wait for its chunks whole fetches them in
            # its own thread (no hand-over to a worker and back)
            whole: list[tuple[Callable[[], dict[int, memoryview]], _Result]] = []
            placed: dict[int, _Result] = {}
            driven = self._start(
                missing,
                early=early,
                own=whole if ahead == 0 else None,
                placed=placed,
                stop=end if early else None,
            )
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
            arriving: dict[int, _Arriving] = {}
            for c in needed:
                if c not in got:
                    waits[c] = self._inflight.get(c) or placed[c]
                    if early and c in self._arriving:
                        arriving[c] = self._arriving[c]
        for run, task in whole:
            self._run_whole(run, task)
        # this read's own fetches (they end with its bytes): it moves them itself
        for i, own in enumerate(driven):
            try:
                _run_steps(own)
            except BaseException as exc:  # an interrupt: those not moved yet end too
                self._abandon([p.future for p in driven[i + 1 :]], driven[i + 1 :], exc)
                raise
        for c, fut in waits.items():
            part = arriving.get(c)
            data = part.wait(min(end, chunks.chunk_end(c))) if part is not None else None
            if data is not None and part is not None:
                got[c] = data[c - part.begin :]
            elif c in (result := fut.result()):
                got[c] = result[c]
            else:  # that fetch stopped before this chunk's end (a read out of order's own)
                raise _Short()
        if not self.verified and len(self._macs) == len(chunks):
            self._verify()  # this read completed the set (whatever order the reads came in)
        parts = []
        for c in needed:
            data = got[c]
            parts.append(data[max(0, offset - c) : min(len(data), end - c)])
        return parts

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

    def _from_partial(self, c: int, upto: int) -> memoryview | None:
        """Chunk ``c``'s bytes fetched so far, when they reach ``upto`` (call under the
        lock): an earlier read out of order fetched the chunk only up to its own end."""
        part = self.fetcher.partials.get((self, c))
        if part is None or part.upto < upto:
            return None
        return part.view[: part.upto - c].toreadonly()

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
        early: bool = False,
        own: list[tuple[Callable[[], dict[int, memoryview]], _Result]] | None = None,
        placed: dict[int, _Result] | None = None,
        stop: int | None = None,
    ) -> list[_Arriving]:
        """Fetch the chunks ``starts`` (call under the lock) on the fetch workers. With
        ``early`` (and no copy in the disk cache) the fetches are returned instead, not yet
        started: the reader that asked moves them itself (no hand-over between threads),
        decrypting as they arrive; other readers may take their bytes as they arrive too. Such a
        fetch ends at ``stop`` (the read's end, up to the AES block) when that is inside its
        last chunk: the chunk is kept fetched in part, with its MAC state
        (:class:`_Partial`), and a later read that needs more of it fetches only the rest
        (:meth:`_continue`). With ``own`` and a single fetch to make, that fetch is not
        started but listed there (what to run, future): the reader that asked runs it whole
        itself (:meth:`_run_whole`). ``placed`` gets each chunk's future (a fetch that ends at
        once leaves the in-flight table before its reader looks). Fetches made before one
        fails are ended with its error (:meth:`_abandon`), so none is left that no thread
        moves."""
        driven: list[_Arriving] = []
        made: list[_Result] = []  # futures only this call can settle
        disk = self.fetcher.disk
        rest: list[int] = []
        tasks: list[tuple[list[int], Callable[[], dict[int, memoryview]]]] = []
        for c in starts:
            kept = self.fetcher.partials.get((self, c), take=True)
            if kept is None:
                rest.append(c)
            else:
                tasks.append(([c], functools.partial(self._continue, c, kept)))
        try:
            for begin, end in self.chunks.plan(PIECE, only=rest) if rest else []:
                mine = self.chunks.chunks_in(begin, end)
                if early and (disk is None or disk.lookup(self._ident, mine) is None):
                    until = end if stop is None else min(end, -(-stop // 16) * 16)
                    part = _Arriving(self.fetcher.buffers.take(end - begin), begin, until)
                    part.steps = self._arriving_steps(begin, end, part)
                    made.append(part.future)
                    driven.append(part)
                    for c in mine:
                        self._arriving[c] = part
                    self._place(mine, part.future, placed)
                else:
                    tasks.append((mine, functools.partial(self._fetch_whole, begin, end)))
            for mine, run in tasks:
                fut: _Result
                if own is not None and len(tasks) == 1 and not driven:
                    fut = Future()
                    made.append(fut)
                    own.append((run, fut))
                else:
                    fut = self.fetcher.pool.submit(run)
                self._place(mine, fut, placed)
        except BaseException as exc:
            self._abandon(made, driven, exc)
            raise
        return driven

    def _place(self, mine: list[int], fut: _Result, placed: dict[int, _Result] | None) -> None:
        """Chunks ``mine`` are in flight in ``fut`` (under the lock)."""
        for c in mine:
            self._inflight[c] = fut
            if placed is not None:
                placed[c] = fut
        fut.add_done_callback(self._landed)

    def _abandon(
        self,
        futures: list[Future[dict[int, memoryview]]],
        parts: list[_Arriving],
        exc: BaseException,
    ) -> None:
        """End fetches made but never to be moved (the read that made them failed first):
        they leave the in-flight table and their waiters get an error (none waits forever)."""
        error = exc if isinstance(exc, Exception) else TransferError("the read was interrupted")
        with self._lock:
            for c in [c for c, f in self._inflight.items() if f in futures]:
                del self._inflight[c]
                self._arriving.pop(c, None)
        for part in parts:
            part.steps.close()
            _end(part, error=error)
        for fut in futures:
            if not fut.done():
                fut.set_exception(error)

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
                self._arriving.pop(c, None)

    # -- fetching ---------------------------------------------------------------------------
    def _arriving_steps(
        self, begin: int, end: int, part: _Arriving
    ) -> Generator[None, None, dict[int, memoryview]]:
        """Fetch the chunks ``[begin, end)`` up to ``part.end`` into ``part``'s buffer one step
        at a time, decrypting each piece as it arrives (readers waiting on
        :meth:`_Arriving.wait` get its bytes then); returns what :meth:`_keep` returns for
        the whole chunks. A last chunk fetched in part is kept as a :class:`_Partial`."""
        view = part.view
        starts = self.chunks.chunks_in(begin, part.end)
        disk = self.fetcher.disk
        cipher = FileCipher(self.key, size=self.size, marks=True)
        saved: list[bytes] = []

        def consume(offset: int, data: memoryview) -> None:
            if disk is not None:
                saved.append(bytes(data))  # the ciphertext, for the disk cache
            cipher.decrypt_into(data, data, offset)
            part.arrived(offset + len(data))

        until = part.end
        yield from range_steps(
            self.fetcher.ctl,
            self._urls,
            begin,
            until,
            view[: until - begin],
            consume,
            eager=True,
        )
        if until < end:  # the last chunk in part: its bytes so far and its MAC state
            last = starts.pop()
            if not starts:  # kept only when it has its own buffer (it pins the whole buffer)
                self.fetcher.partials.put((self, last), _Partial(view, until, cipher))
        if disk is not None and starts:
            whole_end = self.chunks.chunk_end(starts[-1])
            macs = cipher.chunk_macs
            written = [(c, self.chunks.chunk_end(c) - c, macs[c]) for c in starts]
            ciphertext = b"".join(saved)[: whole_end - begin]
            disk.write(self._ident, begin, memoryview(ciphertext), written)
        return self._keep(view, begin, starts, cipher)

    def _continue(self, c: int, part: _Partial) -> dict[int, memoryview]:
        """Fetch the rest of chunk ``c``, fetched in part before, into the same buffer; its
        MAC goes on from where the part ended (the disk cache does not get this chunk)."""
        end = self.chunks.chunk_end(c)
        rest = part.view[part.upto - c :]
        fetch_range(self.fetcher.ctl, self._urls, part.upto, end, rest, _ignore)
        part.cipher.decrypt_into(rest, rest, part.upto)
        return self._keep(part.view, c, [c], part.cipher)

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
        cipher = self._decrypt(view, begin)
        if disk is not None:
            macs = cipher.chunk_macs
            written = [(c, self.chunks.chunk_end(c) - c, macs[c]) for c in starts]
            disk.write(self._ident, begin, memoryview(ciphertext), written)
        return self._keep(view, begin, starts, cipher)

    def _decrypt(self, view: memoryview, begin: int) -> FileCipher:
        cipher = FileCipher(self.key, size=self.size, marks=True)
        cipher.decrypt_into(view, view, begin)
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


class _Arriving:
    """A fetch whose bytes readers may take as they arrive: its buffer, its steps (a
    generator, moved by one thread at a time) and its future. ``wait(upto)`` returns a
    read-only view of the buffer from its start once the bytes before ``upto`` (a file
    offset) are decrypted, or None when the fetch ended first (failed or done: the reader
    then takes the future's result)."""

    def __init__(self, view: memoryview, begin: int, end: int | None = None) -> None:
        self.view = view
        self.begin = begin
        self.end = begin + len(view) if end is None else end  # the fetch ends here
        self.steps: Generator[None, None, dict[int, memoryview]] = _no_steps()
        self.future: Future[dict[int, memoryview]] = Future()
        self.done = begin  # bytes before this file offset are decrypted
        self._ended = False
        self._cond = threading.Condition()

    def arrived(self, upto: int) -> None:
        with self._cond:
            self.done = upto
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wait(self, upto: int) -> memoryview | None:
        with self._cond:
            while self.done < upto and not self._ended:
                self._cond.wait()
            if self.done < upto:
                return None
        return self.view[: upto - self.begin].toreadonly()


_Result = Future[dict[int, memoryview]]


class _Window:
    """Part of chunk ``chunk`` to fetch and check: ``[begin, end)``, from the chunk's running
    MAC ``state`` at ``begin`` (None at the chunk's start) to ``expect`` at ``end``."""

    __slots__ = ("chunk", "begin", "end", "state", "expect")

    def __init__(
        self, chunk: int, begin: int, end: int, state: bytes | None, expect: bytes
    ) -> None:
        self.chunk = chunk
        self.begin = begin
        self.end = end
        self.state = state
        self.expect = expect


class _Partial:
    """A chunk fetched only up to ``upto`` by a read out of order: ``view`` is its buffer
    (room for the whole chunk), the bytes before ``upto`` decrypted; ``cipher`` holds the
    chunk's MAC state at ``upto``, so fetching the rest completes its MAC."""

    __slots__ = ("view", "upto", "cipher")

    def __init__(self, view: memoryview, upto: int, cipher: FileCipher) -> None:
        self.view = view
        self.upto = upto
        self.cipher = cipher


class _Short(Exception):
    """A fetch a read waited on stopped before that read's bytes (it was another read's,
    out of order): the read plans again."""


def _no_steps() -> Generator[None, None, dict[int, memoryview]]:
    return {}
    yield  # a generator that ends at once


def _end(
    part: _Arriving, result: dict[int, memoryview] | None = None, error: Exception | None = None
) -> None:
    """Settle ``part``'s future and wake the readers waiting on its bytes."""
    if not part.future.done():
        if error is not None:
            part.future.set_exception(error)
        else:
            part.future.set_result(result or {})
    part.finish()


def _run_steps(part: _Arriving) -> None:
    """Move ``part``'s fetch to its end (its future is then settled)."""
    try:
        while True:
            next(part.steps)
    except StopIteration as stop:
        _end(part, result=stop.value)
    except Exception as exc:  # the readers get it from the future
        _end(part, error=exc)
    except BaseException:  # an interrupt: the others waiting on it must not hang
        part.steps.close()
        _end(part, error=TransferError("the fetch was interrupted"))
        raise


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
