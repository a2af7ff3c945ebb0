"""Parallel, resumable, verified downloads in constant memory."""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import requests

from ..crypto import FileCipher
from ..errors import IntegrityError, TransferError, ValidationError
from . import _http
from ._config import MiB, ProgressCallback, TransferConfig, balanced_piece_size
from ._http import Controller, UrlSource, WorkerPool, check_progress, fetch_range
from ._local import (
    check_free_space,
    final_mode,
    fsync_dir,
    helper_base,
    open_part,
    preallocate,
)
from ._plan import ChunkMap, check_size
from ._sidecar import (
    chunk_state,
    claimed_chunks,
    digest,
    lock_exclusive,
    read_sidecar,
    remove_quietly,
    write_sidecar,
)

__all__ = ["download_file", "download_to_fileobj", "part_paths"]

#: Seconds between two sidecar writes while a download runs: 0.1 s, longer for files of
#: many chunks (a sidecar lists every chunk's MAC), up to 1 s from 40 000 chunks (40 GiB).
SIDECAR_INTERVAL = (0.1, 1.0)
SIDECAR_SECONDS_PER_CHUNK = 25e-6
#: Write whole blocks with O_DIRECT (files of at least DIRECT_MIN_SIZE bytes).
DIRECT_IO = os.environ.get("MEGAFAST_NO_DIRECT_IO") != "1"
DIRECT_MIN_SIZE = 8 * 1024 * 1024
DIRECT_ALIGN = 4096
#: Largest range held in memory when downloading into a file object (bytes).
FILEOBJ_PIECE = 4 * MiB

PART_SUFFIX = ".megafast-part"
SIDECAR_SUFFIX = ".megafast-part.json"


def part_paths(dest: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The temporary file and the resume sidecar of a download to ``dest``: beside it, named
    after it (shortened with a hash when the name is long, so they fit in NAME_MAX)."""
    dest = Path(dest)
    base = helper_base(dest.name)
    return dest.with_name(base + PART_SUFFIX), dest.with_name(base + SIDECAR_SUFFIX)


def _node_cipher(key: Sequence[int], size: int) -> FileCipher:
    cipher = FileCipher(key, size=size)
    if cipher.expected_meta_mac is None:
        raise ValidationError("key must be the packed 8-word node key")
    return cipher


def _key_id(cipher: FileCipher) -> str:
    # A digest, so that the sidecar does not hold the node key itself.
    assert cipher.expected_meta_mac is not None
    return digest("megafast-download-v1", cipher.key, cipher.nonce, cipher.expected_meta_mac)


def pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (os.pwrite may write less than asked)."""
    while data:
        n = os.pwrite(fd, data, offset)
        data = data[n:]
        offset += n


def pread_into(fd: int, buf: memoryview, offset: int) -> int:
    """Fill ``buf`` from ``offset``; returns the bytes read (short only at end of file)."""
    got = 0
    while got < len(buf):
        n = os.preadv(fd, [buf[got:]], offset + got)
        if n == 0:
            break
        got += n
    return got


class _Progress:
    """Reports ``(done, total)`` from the calling thread when the figure changed."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0  # written by workers under their lock; read here
        self._reported = -1

    def report(self, force: bool = False) -> None:
        done = self.done
        if self.callback is not None and (done != self._reported or force):
            self._reported = done
            self.callback(done, self.total)


class _FileDownload:
    def __init__(
        self,
        http: requests.Session | None,
        get_url: Callable[[bool], str],
        size: int,
        key: Sequence[int],
        dest: Path,
        config: TransferConfig,
        progress: ProgressCallback | None,
        resume_id: str | None,
        shared_session: bool = False,
        cancel: threading.Event | None = None,
    ) -> None:
        self.http = http
        self.shared_session = shared_session
        self.cancel = cancel
        self.urls = UrlSource(get_url)
        self.size = size
        self.cipher = _node_cipher(key, size)
        self.chunks = ChunkMap(size)
        self.dest = dest
        self.part, self.sidecar = part_paths(dest)
        self.config = config
        self.piece_size = balanced_piece_size(size, config)
        self.progress = _Progress(progress, size)
        self.resume_id = resume_id
        self.key_id = _key_id(self.cipher)
        self.lock = threading.Lock()
        self.done: set[int] = set()  # chunk starts decrypted, MAC-ed and written
        self.unverified: dict[int, bytes] = {}  # reused chunk -> MAC the sidecar claims
        self.partial: dict[int, int] = {}  # chunk start -> end of its plaintext on disk
        self.fd = -1
        self.direct_fd = -1
        self._direct_opened = -1
        self.use_direct = True
        self._saved_state: tuple[object, ...] | None = None
        self._last_save = 0.0
        self.all_stopped = True  # False: a worker thread outlived the failure of the pool

    # -- resume state
    def _load_reusable(self) -> dict[int, bytes]:
        """Chunks a sidecar claims (to re-verify); sets :attr:`partial` to the chunk
        prefixes it lists (their MAC is computed again from the part file)."""
        state = read_sidecar(self.sidecar)
        if state is None:
            return {}
        try:
            if (
                state.get("kind") != "download"
                or state.get("size") != self.size
                or state.get("key_id") != self.key_id
                or state.get("resume_id") != self.resume_id
                or os.fstat(self.fd).st_size != self.size
            ):
                return {}
            claimed = claimed_chunks(self.chunks, state)
            self.partial = self._claimed_prefixes(state.get("partial", []), claimed)
            return claimed
        except (OSError, KeyError, TypeError, ValueError, AttributeError):
            return {}

    def _claimed_prefixes(self, items: object, claimed: dict[int, bytes]) -> dict[int, int]:
        """Validated ``[chunk start, end]`` pairs of a sidecar's ``partial`` list."""
        if not isinstance(items, list) or len(items) > 4096:
            raise ValueError("partial list")
        out: dict[int, int] = {}
        for item in items:
            start, end = (int(x) for x in item)
            if start in claimed or not self.chunks.is_boundary(start) or start >= self.size:
                raise ValueError("partial entry")
            if not start < end < self.chunks.chunk_end(start) or (end - start) % 16:
                raise ValueError("partial entry")
            out[start] = end
        return out

    def _save(self) -> None:
        with self.lock:
            done = set(self.done)
            unverified = dict(self.unverified)
            partial = sorted(self.partial.items())
        key = (len(done), len(unverified), tuple(partial))
        if key == self._saved_state:
            return
        write_sidecar(
            self.sidecar,
            {
                "kind": "download",
                "size": self.size,
                "key_id": self.key_id,
                "resume_id": self.resume_id,
                **chunk_state(self.chunks, self.cipher.chunk_macs, done, unverified),
                "partial": [list(item) for item in partial],
            },
        )
        self._saved_state = key
        self._last_save = time.monotonic()

    # -- worker side
    def _consume(self, offset: int, view: memoryview) -> None:
        self.cipher.decrypt_into(view, view, offset)
        self._write(view, offset)
        end = offset + len(view)
        completed = self.chunks.completed_by(offset, end)
        with self.lock:
            self.done.update(completed)
            for c in completed:
                self.partial.pop(c, None)
            if not self.chunks.is_boundary(end):
                self.partial[self.chunks.floor(end)] = end
            self.progress.done += len(view)

    def _open_direct(self) -> None:
        # Whole blocks bypass the page cache (O_DIRECT): no page-cache copy and no page
        # allocation for a file nobody reads yet, which is most of a download's system time.
        if DIRECT_IO and hasattr(os, "O_DIRECT") and self.size >= DIRECT_MIN_SIZE:
            try:  # the same open file, reopened with O_DIRECT (never by its name)
                self.direct_fd = os.open(
                    f"/proc/self/fd/{self.fd}", os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC
                )
            except OSError:  # tmpfs and some network file systems refuse O_DIRECT
                self.direct_fd = -1

    def _write(self, view: memoryview, offset: int) -> None:
        """Write plaintext at ``offset``: aligned blocks (from our page-aligned buffers) by
        direct I/O when the file system allows it, anything else through the page cache."""
        dfd = self.direct_fd
        if dfd >= 0 and not offset % DIRECT_ALIGN and not len(view) % DIRECT_ALIGN:
            try:
                n = os.pwrite(dfd, view, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self.use_direct = False  # alignment this device refuses: page cache from now
                n = 0
            view = view[n:]
            offset += n
            if not self.use_direct:
                self.direct_fd = -1
        if view:
            pwrite_all(self.fd, view, offset)

    def _close_fds(self) -> None:
        for fd in {self.fd, self._direct_opened}:
            if fd >= 0:
                os.close(fd)
        self.fd = self.direct_fd = self._direct_opened = -1

    def _verify(self, begin: int, end: int, buf: memoryview, pool: WorkerPool) -> None:
        # Re-MAC the plaintext a previous run left behind and keep only matching chunks.
        pos = begin
        while pos < end:
            n = min(len(buf), end - pos)
            if pread_into(self.fd, buf[:n], pos) != n:
                break
            self.cipher.update_mac(buf[:n], pos)
            pos += n
        macs = self.cipher.chunk_macs if pos == end else {}
        starts = self.chunks.chunks_in(begin, end)
        good = [c for c in starts if c in macs and macs[c] == self.unverified[c]]
        bad = set(starts) - set(good)
        with self.lock:
            for c in starts:
                del self.unverified[c]
            self.done.update(good)
            self.progress.done += sum(self.chunks.chunk_end(c) - c for c in good)
        if bad:
            for rng in reversed(self.chunks.plan(self.piece_size, only=bad)):
                pool.push(("fetch", *rng))

    def _fetch_tasks(self, ranges: list[tuple[int, int]]) -> list[tuple[Any, ...]]:
        """Fetch tasks for ``ranges``, cut so that each chunk with a prefix on disk from an
        earlier run (:attr:`partial`) starts a task."""
        tasks: list[tuple[Any, ...]] = []
        cuts = sorted(self.partial)
        for begin, end in ranges:
            for c in cuts[bisect_right(cuts, begin) : bisect_left(cuts, end)]:
                tasks.append(("fetch", begin, c))
                begin = c
            tasks.append(("fetch", begin, end))
        return tasks

    def _adopt_prefix(self, begin: int, buf: memoryview) -> int:
        """Where fetching ``[begin, ...)`` starts: after the prefix of the chunk at ``begin``
        that an earlier run wrote, MAC-ed again from the part file (the meta-MAC at the
        end covers it), else ``begin``."""
        with self.lock:
            end = self.partial.get(begin, begin)
        if end == begin:
            return begin
        view = buf[: end - begin]
        if pread_into(self.fd, view, begin) != len(view):
            raise TransferError("the part file is shorter than its sidecar says")
        self.cipher.update_mac(view, begin)
        with self.lock:
            self.progress.done += end - begin
        return end

    # -- the whole job
    def _fetch_inline(self, ctl: Controller) -> None:
        """The fast path of a file that fits in one range: fetched on the calling thread into
        a buffer of its own size (no worker thread, no sidecar, no preallocation)."""
        if self.size:
            buf = memoryview(bytearray(-(-self.size // 16) * 16))
            fetch_range(ctl, self.urls, 0, self.size, buf, self._consume)

    def _fetch_pooled(self, ctl: Controller, reusable: dict[int, bytes]) -> None:
        """Fetch (and re-verify) the ranges on ``config.connections`` threads, saving the
        sidecar now and then (``all_stopped``: False when a worker outlived a failure)."""
        cfg = self.config
        preallocate(self.fd, self.size)
        self._open_direct()
        self._direct_opened = self.direct_fd
        tasks: list[tuple[Any, ...]] = [
            ("verify", *r) for r in self.chunks.plan(self.piece_size, only=reusable.keys())
        ]
        tasks += self._fetch_tasks(self.chunks.plan(self.piece_size, skip=reusable))
        buffers: dict[int, memoryview] = {}

        def work(task: tuple[Any, ...], index: int) -> None:
            buf = buffers.get(index)
            if buf is None:  # page-aligned (mmap), as direct I/O wants
                buf = buffers[index] = memoryview(mmap.mmap(-1, _http.IO_BLOCK))
            kind, begin, end = task
            if kind == "verify":
                self._verify(begin, end, buf, pool)
            else:
                fetch_range(ctl, self.urls, self._adopt_prefix(begin, buf), end, buf, self._consume)

        low, high = SIDECAR_INTERVAL
        save_every = min(high, max(low, len(self.chunks) * SIDECAR_SECONDS_PER_CHUNK))

        def tick() -> None:
            self.progress.report()
            if cfg.resume and time.monotonic() - self._last_save >= save_every:
                self._save()

        pool = WorkerPool(ctl, cfg.connections, tasks, work)
        try:
            pool.run(tick)
        finally:
            self.all_stopped = pool.all_stopped

    def run(self) -> Path:
        cfg = self.config
        small = self.size <= self.piece_size  # one range: the fast path, started over on resume
        keep_state = cfg.resume and not small
        check_free_space(self.part, self.size)  # before any file is created
        fd, adopted = open_part(self.part)  # O_EXCL | O_NOFOLLOW, 0600; unsafe files set aside
        try:
            lock_exclusive(fd, "this file")  # before anything of another run is touched
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        reusable = self._load_reusable() if keep_state and adopted else {}
        if adopted and not keep_state:
            remove_quietly(self.sidecar)
        self.unverified = dict(reusable)
        ctl = Controller(
            self.http,
            cfg,
            cfg.connections,
            shared_session=self.shared_session,
            cancel=self.cancel,
        )
        try:
            if adopted and not reusable and not self.partial:
                os.ftruncate(self.fd, 0)
            if small:
                self._fetch_inline(ctl)
            else:
                self._fetch_pooled(ctl, reusable)
            if len(self.done) != len(self.chunks):
                raise TransferError("download ended with missing ranges")
            try:
                self.cipher.verify()
            except IntegrityError:
                self._close_fds()
                remove_quietly(self.part, self.sidecar)
                raise
            os.fchmod(self.fd, final_mode())  # 0600 until now
            os.fsync(self.fd)
            self._close_fds()
            os.replace(self.part, self.dest)
            fsync_dir(self.dest.parent)
            if keep_state:
                remove_quietly(self.sidecar)
            self.progress.report(force=True)
            return self.dest
        except BaseException:
            if self.fd >= 0:
                if keep_state:
                    with contextlib.suppress(OSError):
                        self._save()
                if self.all_stopped:  # else a worker may still write through the descriptor
                    self._close_fds()
                if not keep_state:  # nothing to resume from: no part file left behind
                    remove_quietly(self.part)
            raise
        finally:
            ctl.close()


def download_file(
    http: requests.Session | None,
    get_url: Callable[[bool], str],
    size: int,
    key: Sequence[int],
    dest: str | os.PathLike[str],
    *,
    config: TransferConfig | None = None,
    progress: ProgressCallback | None = None,
    resume_id: str | None = None,
    shared_session: bool = False,
    cancel: threading.Event | None = None,
) -> Path:
    """Download a node's content to the file ``dest`` and return its path.

    ``get_url(refresh)`` gives the temporary URL (``refresh=True`` after 403/404: ask the API
    for a fresh one); ``size`` in bytes; ``key`` the packed 8-word node key. Ranges of whole
    MAC chunks go over ``config.connections`` connections into ``<dest>.megafast-part``; a
    sidecar ``<dest>.megafast-part.json`` (mode 0600: it holds chunk MACs) lets a later call
    with the same node, key and ``resume_id`` continue, re-verifying what it reuses. The
    meta-MAC is checked before the file is fsynced and renamed into place: on a mismatch
    :class:`~megafast.errors.IntegrityError` is raised and ``dest`` is untouched.

    A file that fits in one range (``size <= piece size``) takes a fast path: fetched on the
    calling thread, no sidecar (an interrupted one starts over; its part file is removed).
    ``shared_session``: use ``http`` as it is (a pool shared with other transfers, left
    open) instead of a private copy. ``cancel``: an event that stops the transfer within
    about 0.1 s with :class:`~megafast.transfer.TransferCancelled` (a sidecar is kept).
    """
    config = config if config is not None else TransferConfig()
    if not isinstance(config, TransferConfig):
        raise ValidationError("config must be a TransferConfig")
    size = check_size(size)
    dest = Path(os.fspath(dest))
    if dest.is_dir():
        raise ValidationError("dest is a folder: give the path of the file to write")
    if not dest.parent.is_dir():
        raise ValidationError("the folder of dest does not exist")
    if resume_id is not None and not isinstance(resume_id, str):
        raise ValidationError("resume_id must be a str")
    check_progress(progress)
    job = _FileDownload(
        http, get_url, size, key, dest, config, progress, resume_id, shared_session, cancel
    )
    return job.run()


def _write_all(fileobj: BinaryIO, view: memoryview) -> None:
    while view:
        n = fileobj.write(view)
        if n is None:  # a non-blocking raw stream that could not take anything yet
            time.sleep(0.001)
            continue
        view = view[n:]


def download_to_fileobj(
    http: requests.Session | None,
    get_url: Callable[[bool], str],
    size: int,
    key: Sequence[int],
    fileobj: BinaryIO,
    *,
    config: TransferConfig | None = None,
    progress: ProgressCallback | None = None,
    shared_session: bool = False,
    cancel: threading.Event | None = None,
) -> None:
    """Download a node's content into the writable ``fileobj``, in order.

    Ranges are fetched in parallel into at most ``connections + 1`` buffers of at most
    4 MiB and written in file order from the calling thread. The
    meta-MAC can only be checked once everything has been written: on a mismatch
    :class:`~megafast.errors.IntegrityError` is raised after the data was written.
    ``shared_session`` and ``cancel`` as for :func:`download_file` (a cancelled download
    raises :class:`~megafast.transfer.TransferCancelled`; what was written stays written).
    """
    config = config if config is not None else TransferConfig()
    if not isinstance(config, TransferConfig):
        raise ValidationError("config must be a TransferConfig")
    size = check_size(size)
    if not callable(getattr(fileobj, "write", None)):
        raise ValidationError("fileobj must have a write() method")
    check_progress(progress)
    cipher = _node_cipher(key, size)
    chunks = ChunkMap(size)
    ranges = chunks.plan(min(balanced_piece_size(size, config), FILEOBJ_PIECE))
    report = _Progress(progress, size)
    workers = min(config.connections, max(1, len(ranges)))
    ctl = Controller(http, config, workers, shared_session=shared_session, cancel=cancel)
    urls = UrlSource(get_url)
    cond = threading.Condition()
    free: list[memoryview] = []
    allocated = 0
    max_buffers = workers + 1
    next_range = 0
    ready: dict[int, tuple[memoryview, int]] = {}
    written = 0  # index of the next range to write

    def take_buffer() -> memoryview:
        nonlocal allocated
        with cond:
            while not free and allocated >= max_buffers:
                if ctl.stop.is_set():
                    raise _http.Stopped()
                cond.wait(0.1)
            if free:
                return free.pop()
            allocated += 1
        return memoryview(bytearray(max((e - b for b, e in ranges), default=0)))

    def work(_task: object, _index: int) -> None:
        nonlocal next_range
        while True:
            # Take the buffer before the range so that the lowest unwritten range always
            # has a buffer: no deadlock whatever the order in which ranges finish.
            buf = take_buffer()
            with cond:
                if next_range == len(ranges):
                    free.append(buf)
                    cond.notify_all()
                    return
                index = next_range
                next_range += 1
            begin, end = ranges[index]
            view = buf[: end - begin]

            def consume(offset: int, data: memoryview) -> None:
                cipher.decrypt_into(data, data, offset)

            fetch_range(ctl, urls, begin, end, view, consume)
            with cond:
                ready[index] = (buf, end - begin)
                cond.notify_all()
            pool.wake()

    def flush() -> None:
        nonlocal written
        while True:
            with cond:
                item = ready.pop(written, None)
            if item is None:
                return
            buf, length = item
            _write_all(fileobj, buf[:length])
            report.done += length
            with cond:
                free.append(buf)
                written += 1
                cond.notify_all()

    def tick() -> None:
        flush()
        report.report()

    pool = WorkerPool(ctl, workers, [None] * workers, work)
    try:
        pool.run(tick)
        flush()
    finally:
        ctl.close()
    if written != len(ranges):
        raise TransferError("download ended with missing ranges")
    cipher.verify()
    report.report(force=True)
