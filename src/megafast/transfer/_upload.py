"""Parallel, resumable uploads in constant memory."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests

from ..crypto import FileCipher
from ..errors import RetryExhaustedError, TransferError, ValidationError
from . import _http
from ._config import MAX_CHUNK, MiB, ProgressCallback, TransferConfig, balanced_piece_size
from ._download import _Progress, pread_into
from ._http import (
    NETWORK_ERRORS,
    Controller,
    QuotaExceeded,
    RestartUpload,
    RetryableError,
    RetryBudget,
    WorkerPool,
    check_progress,
    check_status,
    parse_api_error,
    raise_for_api_error,
)
from ._plan import ChunkMap
from ._sidecar import (
    chunk_state,
    claimed_chunks,
    digest,
    lock_exclusive,
    read_sidecar,
    remove_quietly,
    state_dir,
    write_sidecar,
)

__all__ = ["UploadResult", "upload_file"]

#: Largest piece held in memory for a source that cannot be re-read (bytes).
STREAM_PIECE = 4 * MiB
SIDECAR_INTERVAL = 1.0
_TOKEN_TEXT = re.compile(rb"[A-Za-z0-9_-]+={0,2}")


@dataclass(frozen=True)
class UploadResult:
    """What the ``p`` command needs after an upload."""

    token: str  #: completion token, base64url
    key: tuple[int, ...]  #: packed 8-word node key (k ^ iv.., iv, meta-MAC)
    size: int  #: bytes uploaded


# -- sources -------------------------------------------------------------------------------


class _Source:
    """Plaintext to upload. Positional sources can be re-read at any offset; the others
    (pipes, iterators) are read once, in order."""

    size: int
    positional: bool = True
    identity: str | None = None  # what a resume must find unchanged

    def read_at(self, offset: int, buf: memoryview) -> None:
        raise NotImplementedError

    def read_next(self, buf: memoryview) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called after a successful upload (checks that a stream has no extra bytes)."""

    def close(self) -> None:
        pass


def _short_source() -> ValidationError:
    return ValidationError("the source ended before `size` bytes: it changed or size is wrong")


class _FdSource(_Source):
    """A regular file read with positional reads (no shared position, no lock)."""

    def __init__(self, fd: int, base: int, size: int, own: bool) -> None:
        self.fd, self.base, self.size, self.own = fd, base, size, own

    def read_at(self, offset: int, buf: memoryview) -> None:
        if pread_into(self.fd, buf, self.base + offset) != len(buf):
            raise _short_source()

    def close(self) -> None:
        if self.own:
            os.close(self.fd)


class _SeekableSource(_Source):
    """A seekable file object without a usable descriptor (BytesIO, ...)."""

    def __init__(self, fileobj: Any, base: int, size: int) -> None:
        self.fileobj, self.base, self.size = fileobj, base, size
        self.lock = threading.Lock()

    def read_at(self, offset: int, buf: memoryview) -> None:
        with self.lock:
            self.fileobj.seek(self.base + offset)
            got = 0
            while got < len(buf):
                n = _read_into(self.fileobj, buf[got:])
                if not n:
                    raise _short_source()
                got += n


class _BufferSource(_Source):
    def __init__(self, data: Any) -> None:
        self.view = memoryview(data).cast("B")
        self.size = len(self.view)

    def read_at(self, offset: int, buf: memoryview) -> None:
        buf[:] = self.view[offset : offset + len(buf)]


def _read_into(fileobj: Any, buf: memoryview) -> int:
    readinto = getattr(fileobj, "readinto", None)
    if readinto is not None:
        n = readinto(buf)
        return n or 0
    data = fileobj.read(len(buf))
    buf[: len(data)] = data
    return len(data)


class _StreamSource(_Source):
    """A pipe-like file object or an iterable of bytes, read once in order."""

    positional = False

    def __init__(self, src: Any, size: int) -> None:
        self.size = size
        self.fileobj = src if hasattr(src, "read") else None
        self.iterator: Iterator[Any] | None = None if self.fileobj else iter(src)
        self.left = memoryview(b"")

    def _more(self, want: int) -> bool:
        if self.fileobj is not None:
            data = self.fileobj.read(want)
        else:
            assert self.iterator is not None
            data = next(self.iterator, None)
            while data is not None and len(data) == 0:
                data = next(self.iterator, None)
        if not data:
            return False
        if isinstance(data, str):
            raise TypeError("the source gave text; upload bytes")
        self.left = memoryview(data).cast("B")
        return True

    def read_next(self, buf: memoryview) -> None:
        got = 0
        while got < len(buf):
            if not self.left and not self._more(len(buf) - got):
                raise _short_source()
            take = min(len(self.left), len(buf) - got)
            buf[got : got + take] = self.left[:take]
            self.left = self.left[take:]
            got += take

    def finish(self) -> None:
        if self.left or self._more(1):
            raise ValidationError("the source has more than `size` bytes")


def _open_source(source: Any, size: int | None) -> _Source:
    if isinstance(size, bool) or (size is not None and (not isinstance(size, int) or size < 0)):
        raise ValidationError(f"size must be a non-negative int (bytes), not {size!r}")
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ValidationError("the source path is not a regular file")
            if size is not None and size != st.st_size:
                raise ValidationError(f"size {size} does not match the file ({st.st_size} bytes)")
        except BaseException:
            os.close(fd)
            raise
        src: _Source = _FdSource(fd, 0, st.st_size, own=True)
        src.identity = (
            f"path:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_dev}:{st.st_ino}"
        )
        return src
    if isinstance(source, (bytes, bytearray, memoryview)):
        src = _BufferSource(source)
        if size is not None and size != src.size:
            raise ValidationError(f"size {size} does not match the data ({src.size} bytes)")
        return src
    if hasattr(source, "read"):
        seekable = False
        with contextlib.suppress(AttributeError, OSError, ValueError):
            seekable = bool(source.seekable())
        if seekable:
            base = source.tell()
            end = source.seek(0, os.SEEK_END)
            source.seek(base)
            avail = end - base
            if size is None:
                size = avail
            elif size > avail:
                raise ValidationError(f"size {size} is more than the file object holds ({avail})")
            fd = -1
            if isinstance(source, (io.BufferedReader, io.FileIO)):
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    fd = source.fileno()
            if fd >= 0:
                return _FdSource(fd, base, size, own=False)
            return _SeekableSource(source, base, size)
        if size is None:
            raise ValidationError("size is needed for a file object that cannot seek")
        return _StreamSource(source, size)
    if isinstance(source, Iterable) and not isinstance(source, str):
        if size is None:
            raise ValidationError("size is needed to upload from an iterator")
        return _StreamSource(source, size)
    raise ValidationError(
        f"cannot upload from {type(source).__name__}: give a path, a binary file object, "
        "bytes or an iterable of bytes"
    )


# -- the upload ----------------------------------------------------------------------------


def _token_text(body: bytes) -> str:
    """The completion token as base64url text (raw binary tokens get encoded)."""
    text = body.strip()
    if _TOKEN_TEXT.fullmatch(text):
        return text.rstrip(b"=").decode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


class _PieceBody:
    """The encrypted body of one POST, block by block (requests sends it with a
    Content-Length: our ``__len__``). Positional sources are read and encrypted into the
    worker's reused block buffer as the body goes out; a streamed piece is already encrypted
    in ``buf`` (``ready=True``) and is only sliced."""

    def __init__(
        self, job: _Upload, begin: int, end: int, buf: memoryview, ready: bool = False
    ) -> None:
        self.job, self.begin, self.end, self.buf, self.ready = job, begin, end, buf, ready
        self.sent = 0

    def __len__(self) -> int:
        return self.end - self.begin

    def __iter__(self) -> Iterator[memoryview]:
        job = self.job
        step = job.ctl.limiter.block(_http.IO_BLOCK)
        pos = self.begin
        while pos < self.end:
            job.ctl.check()
            n = min(step, self.end - pos)
            if self.ready:
                view = self.buf[pos - self.begin : pos - self.begin + n]
            else:
                view = self.buf[:n]
                job.source.read_at(pos, view)
                job.encrypt(view, pos, self.begin)
            yield view
            pos += len(view)
            self.sent += len(view)
            with job.lock:
                job.progress.done += len(view)
            job.ctl.limiter.account(len(view), job.ctl)


class _Upload:
    def __init__(
        self,
        http: requests.Session | None,
        get_upload_url: Callable[[int], str],
        source: _Source,
        config: TransferConfig,
        progress: ProgressCallback | None,
        resume_id: str | None,
    ) -> None:
        self.http = http
        self.get_upload_url = get_upload_url
        self.source = source
        self.size = source.size
        self.config = config
        self.progress = _Progress(progress, self.size)
        self.chunks = ChunkMap(self.size)
        piece = balanced_piece_size(self.size, config)
        self.piece_size = piece if source.positional else min(piece, STREAM_PIECE)
        self.lock = threading.Lock()
        self.done: set[int] = set()  # chunk starts the server has
        self.mac_end: dict[int, int] = {}  # piece start -> end of the MAC-ed prefix
        self.reused: dict[int, bytes] = {}  # chunk -> MAC a sidecar claims (to re-verify)
        self.token: str | None = None
        self.source_changed = False
        self.sends = 0
        self.url = ""
        self.ctl: Controller | None = None
        resume_key = resume_id if resume_id is not None else source.identity
        self.sidecar: Path | None = None
        if config.resume and resume_key is not None and self.size > 0:
            self.sidecar = state_dir() / f"upload-{digest('megafast-upload-v1', resume_key)}.json"
        self.resume_key = resume_key
        self.lock_fd = -1
        if self.sidecar is not None:
            lock_path = self.sidecar.with_suffix(".lock")
            self.lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                lock_exclusive(self.lock_fd, "this source")
            except BaseException:
                self.release()
                raise
        self.cipher = self._load_or_new_cipher()

    def release(self) -> None:
        """Drop the resume lock."""
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    # -- resume
    def _load_or_new_cipher(self) -> FileCipher:
        if self.sidecar is not None:
            state = read_sidecar(self.sidecar)
            try:
                if (
                    state is not None
                    and state.get("kind") == "upload"
                    and state.get("size") == self.size
                    and state.get("resume_key") == digest(self.resume_key or "")
                    and isinstance(state.get("url"), str)
                ):
                    # keep the piece layout of the interrupted run, whatever the config now
                    piece = state["piece_size"]
                    limit = 1 << 30 if self.source.positional else STREAM_PIECE
                    if not isinstance(piece, int) or not MAX_CHUNK <= piece <= limit:
                        raise ValueError("piece size of the sidecar")
                    self.piece_size = piece
                    cipher = FileCipher(
                        bytes.fromhex(state["key"]), bytes.fromhex(state["nonce"]), size=self.size
                    )
                    self.reused = claimed_chunks(self.chunks, state)
                    self.url = state["url"]
                    return cipher
            except (KeyError, TypeError, ValueError, AttributeError):
                self.reused = {}
            remove_quietly(self.sidecar)
        # Fresh key material from the CSPRNG.
        return FileCipher(secrets.token_bytes(16), secrets.token_bytes(8), size=self.size)

    def _save(self) -> None:
        if self.sidecar is None or not self.url:
            return
        with self.lock:
            done = set(self.done)
            reused = dict(self.reused)
        write_sidecar(
            self.sidecar,
            {
                "kind": "upload",
                "size": self.size,
                "resume_key": digest(self.resume_key or ""),
                "piece_size": self.piece_size,
                "url": self.url,
                "key": self.cipher.key.hex(),
                "nonce": self.cipher.nonce.hex(),
                **chunk_state(self.chunks, self.cipher.chunk_macs, done, reused),
            },
        )

    # -- crypto, shared by every worker
    def encrypt(self, view: memoryview, pos: int, piece: int) -> None:
        """Encrypt one block in place; MAC it only the first time (retries and restarts
        send the same plaintext again)."""
        with self.lock:
            mac_end = self.mac_end.get(piece, piece)
        if pos >= mac_end:
            self.cipher.encrypt_into(view, view, pos)
            with self.lock:
                self.mac_end[piece] = pos + len(view)
        else:
            self.cipher.ctr_into(view, view, pos)

    def _new_url(self) -> None:
        url = self.get_upload_url(self.size)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TransferError("get_upload_url() did not return an http(s) URL")
        self.url = url.rstrip("/")

    # -- one POST, with retries
    def _post(self, begin: int, body: Any, what: str) -> None:
        assert self.ctl is not None
        budget = RetryBudget(self.ctl, what)
        while True:
            self.ctl.check()
            data = body() if callable(body) else body
            try:
                resp = self.ctl.session.post(
                    f"{self.url}/{begin}",
                    data=data,
                    timeout=self.ctl.timeout,
                    allow_redirects=False,
                )
                try:
                    check_status(resp, upload=True)
                    content = resp.content
                finally:
                    resp.close()
                code = parse_api_error(content)
                if code is not None:
                    raise_for_api_error(code, upload=True)
                if content:
                    with self.lock:
                        self.token = _token_text(content)
                return
            except (RetryableError, QuotaExceeded, *NETWORK_ERRORS) as exc:
                if isinstance(data, _PieceBody) and data.sent:
                    with self.lock:
                        self.progress.done -= data.sent
                budget.failed(exc)

    def _finish_piece(self, begin: int, end: int) -> None:
        with self.lock:
            self.done.update(self.chunks.chunks_in(begin, end))
            self.sends += 1

    def _send_positional(self, begin: int, end: int, buf: memoryview) -> None:
        self._post(begin, lambda: _PieceBody(self, begin, end, buf), f"piece at offset {begin}")
        self._finish_piece(begin, end)

    def _send_buffered(self, begin: int, end: int, view: memoryview) -> None:
        # A streamed piece: its ciphertext stays in the buffer for retries.
        self._post(
            begin, lambda: _PieceBody(self, begin, end, view, ready=True), f"piece at {begin}"
        )
        self._finish_piece(begin, end)

    def _verify(self, begin: int, end: int, plain: memoryview | None, buf: memoryview) -> bool:
        """Re-MAC a piece a previous run sent; True when its chunk MACs still match."""
        if plain is not None:
            self.cipher.update_mac(plain, begin)
        else:
            pos = begin
            while pos < end:
                view = buf[: min(len(buf), end - pos)]
                self.source.read_at(pos, view)
                self.cipher.update_mac(view, pos)
                pos += len(view)
        with self.lock:
            self.mac_end[begin] = end
        macs = self.cipher.chunk_macs
        starts = self.chunks.chunks_in(begin, end)
        ok = all(macs.get(c) == self.reused.get(c) for c in starts)
        with self.lock:
            for c in starts:
                self.reused.pop(c, None)
            if ok:
                self.done.update(starts)
                self.progress.done += end - begin
        return ok

    def _run_pieces(self, kinds: frozenset[str] = frozenset({"verify", "send"})) -> None:
        cfg = self.config
        assert self.ctl is not None
        ctl = self.ctl
        reused = set(self.reused)
        pieces: list[tuple[str, int, int]] = []
        # A piece is either all reused or all new: a resume uses the same piece size, so
        # ranges line up with the ones recorded.
        for begin, end in self.chunks.plan(self.piece_size, skip=self.done):
            kind = "verify" if set(self.chunks.chunks_in(begin, end)) <= reused else "send"
            if kind in kinds:
                pieces.append((kind, begin, end))
        next_index = 0
        read_lock = threading.Lock()
        index_lock = threading.Lock()
        buffers: dict[int, memoryview] = {}

        def work(_task: object, worker: int) -> None:
            nonlocal next_index
            buf = buffers.get(worker)
            if buf is None:
                size = _http.IO_BLOCK if self.source.positional else self.piece_size
                buf = buffers[worker] = memoryview(bytearray(size))
            while True:
                plain = None
                if self.source.positional:
                    with index_lock:
                        if next_index == len(pieces):
                            return
                        kind, begin, end = pieces[next_index]
                        next_index += 1
                else:
                    with read_lock:  # claim and read in file order
                        if next_index == len(pieces):
                            return
                        kind, begin, end = pieces[next_index]
                        next_index += 1
                        plain = buf[: end - begin]
                        self.source.read_next(plain)
                ctl.check()
                if kind == "verify":
                    if self._verify(begin, end, plain, buf):
                        continue
                    # The server holds other bytes there; sending them again could race with
                    # the piece that completes the upload, so the upload starts over.
                    self.source_changed = True
                    raise RestartUpload("the source changed since the interrupted upload")
                if plain is None:
                    self._send_positional(begin, end, buf)
                else:
                    self.cipher.encrypt_into(plain, plain, begin)
                    self._send_buffered(begin, end, plain)

        last_save = time.monotonic()

        def tick() -> None:
            nonlocal last_save
            self.progress.report()
            if self.sidecar is not None and time.monotonic() - last_save >= SIDECAR_INTERVAL:
                self._save()
                last_save = time.monotonic()

        workers = min(cfg.connections, max(1, len(pieces)))
        WorkerPool(ctl, workers, [None] * workers, work).run(tick)

    def run(self) -> UploadResult:
        cfg = self.config
        restarts = 0
        try:
            if not self.url:
                self._new_url()
            if self.size == 0:
                self.ctl = Controller(self.http, cfg, 1)
                try:
                    self._post(0, b"", "empty file")
                finally:
                    self.ctl.close()
            while self.size > 0:
                self.ctl = Controller(self.http, cfg, cfg.connections)
                try:
                    if self.source.positional and self.reused:
                        # Check everything a previous run sent before sending anything new.
                        self._run_pieces(frozenset({"verify"}))
                    self._run_pieces()
                    self.source.finish()
                    if self.token is not None:
                        break
                    raise RestartUpload("no completion token after the last piece")
                except RestartUpload as exc:
                    restarts += 1
                    if not self.source.positional:
                        if self.source_changed and self.sidecar is not None:
                            remove_quietly(self.sidecar)
                            self.sidecar = None
                        raise TransferError(
                            f"the upload must start over ({exc.reason}), but a streamed "
                            "source cannot be read again"
                        ) from None
                    if restarts > max(1, cfg.max_retries):
                        raise RetryExhaustedError(
                            "restart", f"upload kept failing ({exc.reason})"
                        ) from None
                    with self.lock:
                        self.done.clear()
                        self.reused.clear()
                        self.progress.done = 0
                    self._new_url()
                finally:
                    self.ctl.close()
            if self.token is None:
                raise TransferError("the upload server sent no completion token")
            self.progress.done = self.size
            self.progress.report(force=True)
            key = tuple(self.cipher.packed_key())
            if self.sidecar is not None:
                # the lock file goes too (a run starting in this instant may lock a file
                # that is then unlinked: harmless, the sidecar is already gone)
                remove_quietly(self.sidecar, self.sidecar.with_suffix(".lock"))
            return UploadResult(token=self.token, key=key, size=self.size)
        except BaseException:
            if self.sidecar is not None:
                with contextlib.suppress(OSError):
                    self._save()
            raise
        finally:
            self.source.close()
            self.release()


def upload_file(
    http: requests.Session | None,
    get_upload_url: Callable[[int], str],
    source: str | os.PathLike[str] | BinaryIO | Iterable[bytes],
    size: int | None = None,
    *,
    config: TransferConfig | None = None,
    progress: ProgressCallback | None = None,
    resume_id: str | None = None,
) -> UploadResult:
    """Encrypt and upload ``source``; returns the completion token and the packed node key.

    ``get_upload_url(size)`` asks the API (``u``) for an upload URL. ``source`` is a path, a
    binary file object (seekable ones from their current position), bytes, or an iterable of
    bytes; ``size`` (bytes) is needed when it cannot be known. Pieces of whole MAC chunks are
    read, MAC-ed and encrypted by the native kernel and POSTed over ``config.connections``
    connections; failed pieces are retried, a dead URL starts the upload over. With
    ``config.resume`` a sidecar (mode 0600, in :func:`~megafast.transfer._sidecar.state_dir`;
    it holds the upload URL and key) lets a later call for the same path (unchanged) or
    ``resume_id`` continue while the URL is valid. The source is never modified; key
    material comes from :mod:`secrets`. The caller then creates the node with ``p``.
    """
    config = config if config is not None else TransferConfig()
    if not isinstance(config, TransferConfig):
        raise ValidationError("config must be a TransferConfig")
    if resume_id is not None and not isinstance(resume_id, str):
        raise ValidationError("resume_id must be a str")
    check_progress(progress)
    src = _open_source(source, size)
    try:
        job = _Upload(http, get_upload_url, src, config, progress, resume_id)
    except BaseException:
        src.close()
        raise
    return job.run()
