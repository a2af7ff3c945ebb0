"""Parallel, resumable uploads in constant memory."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
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
from ._download import _Progress
from ._http import (
    NETWORK_ERRORS,
    POST_ERRORS,
    Controller,
    RestartUpload,
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
from ._sources import Source, open_source

__all__ = ["UploadResult", "upload_file"]

#: Largest piece held in memory for a source that cannot be re-read (bytes).
STREAM_PIECE = 4 * MiB
#: The smallest POST after failures: one MAC chunk (the first chunks are 128 KiB).
MIN_PIECE = 128 * 1024
#: The first POST of each connection (bytes); later ones double up to the piece size.
START_PIECE = MAX_CHUNK
SIDECAR_INTERVAL = 1.0
_TOKEN_TEXT = re.compile(rb"[A-Za-z0-9_-]+={0,2}")


@dataclass(frozen=True)
class UploadResult:
    """What the ``p`` command needs after an upload."""

    token: str  #: completion token, base64url
    key: tuple[int, ...]  #: packed 8-word node key (k ^ iv.., iv, meta-MAC)
    size: int  #: bytes uploaded


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
        self, job: _Upload, begin: int, end: int, buf: memoryview, piece: int, ready: bool
    ) -> None:
        self.job, self.begin, self.end, self.buf, self.ready = job, begin, end, buf, ready
        self.piece = piece  # start of the planned piece this body is part of (MAC stream)
        self.sent = 0

    def __len__(self) -> int:
        return self.end - self.begin

    def __iter__(self) -> Iterator[memoryview]:
        job, ctl = self.job, self.job.ctl
        assert ctl is not None
        step = ctl.limiter.block(_http.IO_BLOCK)
        pos = self.begin
        while pos < self.end:
            ctl.check()
            n = min(step, self.end - pos)
            if self.ready:
                view = self.buf[pos - self.begin : pos - self.begin + n]
            else:
                view = self.buf[:n]
                job.source.read_at(pos, view)
                job.encrypt(view, pos, self.piece)
            yield view
            pos += len(view)
            self.sent += len(view)
            with job.lock:
                job.progress.done += len(view)
            ctl.limiter.account(len(view), ctl)


class _Window:
    """How many bytes one connection puts in a POST (an upload piece is all or nothing).

    It starts at one MAC chunk and doubles with each POST that gets through up to the piece
    size (a slow start: a link that drops soon loses little of its first POSTs, a fast one
    reaches full pieces after a few). After a failure: half the failed POST at once, or
    less when the link moves less in a quarter of its mean lifetime (down to one MAC chunk),
    then one more 1 MiB chunk per success, but never more than the connection moves in a
    quarter of its mean lifetime between failures -- so on a link that drops every T
    seconds a POST takes about T/4 and most of them get through.
    """

    def __init__(self, piece_size: int) -> None:
        self.largest = piece_size
        self.size = min(piece_size, START_PIECE)
        self.born = time.monotonic()
        self.failures = 0
        self.moved = 0  # bytes sent, and the seconds spent sending them
        self.busy = 0.0

    def _target(self) -> int:
        if not self.failures or self.busy <= 0:
            return self.largest
        lifetime = (time.monotonic() - self.born) / self.failures
        return int(self.moved / self.busy * lifetime / 4)

    def record(self, size: int, sent: int, seconds: float, *, ok: bool) -> None:
        """A POST of ``size`` bytes ended after ``sent`` bytes went out in ``seconds``."""
        self.moved += sent
        self.busy += seconds
        if ok:
            step = self.size if not self.failures else MAX_CHUNK
            grown = min(self._target(), self.size + step)
        else:
            self.failures += 1
            grown = min(min(self.size, size) // 2, self._target())
        self.size = max(MIN_PIECE, min(self.largest, grown))


class _Upload:
    def __init__(
        self,
        http: requests.Session | None,
        get_upload_url: Callable[[int], str],
        source: Source,
        config: TransferConfig,
        progress: ProgressCallback | None,
        resume_id: str | None,
        shared_session: bool = False,
        cancel: threading.Event | None = None,
    ) -> None:
        self.http = http
        self.shared_session = shared_session
        self.cancel = cancel
        self.get_upload_url = get_upload_url
        self.source = source
        self.size = source.size
        self.config = config
        self.progress = _Progress(progress, self.size)
        self.chunks = ChunkMap(self.size)
        piece = balanced_piece_size(self.size, config)
        self.piece_size = piece if source.positional else min(piece, STREAM_PIECE)
        #: one piece: the fast path (sent from the calling thread, no sidecar: an interrupted
        #: small upload starts over)
        self.small = self.size <= self.piece_size
        self.lock = threading.Lock()
        self.done: set[int] = set()  # chunk starts the server has
        self.mac_end: dict[int, int] = {}  # piece start -> end of the MAC-ed prefix
        self.failed_posts = 0
        self.reused: dict[int, bytes] = {}  # chunk -> MAC a sidecar claims (to re-verify)
        self.token: str | None = None
        self.source_changed = False
        self.sends = 0
        self.url = ""
        self.ctl: Controller | None = None
        resume_key = resume_id if resume_id is not None else source.identity
        self.sidecar: Path | None = None
        if config.resume and resume_key is not None and not self.small:
            self.sidecar = state_dir() / f"upload-{digest('megafast-upload-v1', resume_key)}.json"
        self.resume_key = resume_key
        self.lock_fd = -1
        if self.sidecar is not None:
            lock_path = self.sidecar.with_suffix(".lock")
            self.lock_fd = os.open(
                lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
            )
            try:
                lock_exclusive(self.lock_fd, "this source")
            except BaseException:
                self.release()
                raise
        self.cipher = self._load_or_new_cipher()
        self._windows = threading.local()  # each connection's _Window

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
        seen = min(max(0, mac_end - pos), len(view))  # bytes of this block MAC-ed before
        if seen:
            self.cipher.ctr_into(view[:seen], view[:seen], pos)
        if seen < len(view):
            self.cipher.encrypt_into(view[seen:], view[seen:], pos + seen)
            with self.lock:
                self.mac_end[piece] = pos + len(view)

    def _new_url(self) -> None:
        url = self.get_upload_url(self.size)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TransferError("get_upload_url() did not return an http(s) URL")
        self.url = url.rstrip("/")

    # -- POSTs
    def _post_once(self, begin: int, data: Any) -> None:
        """One POST of the bytes at ``begin``; raises the control exceptions on failure."""
        assert self.ctl is not None
        try:
            resp = self.ctl.session.post(
                f"{self.url}/{begin}", data=data, timeout=self.ctl.timeout, allow_redirects=False
            )
            try:
                check_status(resp, upload=True)
                content = resp.content
            finally:
                resp.close()
        except requests.RequestException as exc:
            if isinstance(exc, NETWORK_ERRORS):
                raise
            raise TransferError(f"upload request failed: {type(exc).__name__}") from None
        code = parse_api_error(content)
        if code is not None:
            raise_for_api_error(code, upload=True)
        if content:  # the completion token may come on any piece
            with self.lock:
                self.token = _token_text(content)

    def _post(self, begin: int, body: Any, what: str) -> None:
        """POST ``body`` at ``begin`` until it gets through (within the retry budget)."""
        assert self.ctl is not None
        budget = RetryBudget(self.ctl, what)
        while True:
            self.ctl.check()
            try:
                self._post_once(begin, body)
                return
            except POST_ERRORS as exc:
                budget.failed(exc)

    def _window(self) -> _Window:
        """This connection's window (one per worker thread)."""
        window: _Window | None = getattr(self._windows, "window", None)
        if window is None:
            window = self._windows.window = _Window(self.piece_size)
        return window

    def _piece_end(self, pos: int, end: int, window: int) -> int:
        """Where a POST from ``pos`` of about ``window`` bytes ends: whole chunks, at least
        one chunk, at most ``end``."""
        if end - pos <= window:
            return end
        cut = self.chunks.floor(pos + window)
        return cut if cut > pos else self.chunks.chunk_end(pos)

    def _send(self, begin: int, end: int, buf: memoryview, ready: bool) -> None:
        """Send the planned piece ``[begin, end)`` as POSTs of adaptive size. ``buf``: the
        worker's block buffer, or (``ready``) the piece's ciphertext."""
        assert self.ctl is not None
        budget = RetryBudget(self.ctl, f"piece at offset {begin}")
        window = self._window()
        pos = begin
        while pos < end:
            self.ctl.check()
            cut = self._piece_end(pos, end, window.size)
            view = buf[pos - begin : cut - begin] if ready else buf
            body = _PieceBody(self, pos, cut, view, begin, ready)
            started = time.monotonic()
            try:
                self._post_once(pos, body)
            except POST_ERRORS as exc:
                window.record(cut - pos, body.sent, time.monotonic() - started, ok=False)
                with self.lock:
                    self.progress.done -= body.sent
                    self.failed_posts += 1
                # A POST cut short after sending data only shrinks the next one; one that
                # moved nothing, or was already a single chunk, spends the budget.
                split = body.sent > 0 and cut > self.chunks.chunk_end(pos)
                budget.failed(exc, delivered=split)
                continue
            budget.progressed()
            window.record(cut - pos, body.sent, time.monotonic() - started, ok=True)
            with self.lock:
                self.done.update(self.chunks.chunks_in(pos, cut))
                self.sends += 1
            pos = cut

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
        if kinds == {"verify"}:
            # A positional source: check the chunks a previous run sent, whatever pieces
            # they were sent in (a run that was split after drops leaves odd ones).
            ranges = self.chunks.plan(self.piece_size, only=reused)
            pieces = [("verify", begin, end) for begin, end in ranges]
        else:
            # A streamed source is read in order: a piece is all reused or sent whole.
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
                size = min(size, -(-self.size // 16) * 16)  # a small file: its own size
                buf = buffers[worker] = memoryview(bytearray(size))
            while True:
                plain = None
                if self.source.positional:
                    with index_lock:
                        if next_index == len(pieces):
                            return
                        kind, begin, end = pieces[next_index]
                        next_index += 1
                    self.source.wait_ready(begin, end)
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
                    self._send(begin, end, buf, ready=False)
                else:
                    self.cipher.encrypt_into(plain, plain, begin)
                    self._send(begin, end, plain, ready=True)

        last_save = time.monotonic()

        def tick() -> None:
            nonlocal last_save
            self.progress.report()
            if self.sidecar is not None and time.monotonic() - last_save >= SIDECAR_INTERVAL:
                self._save()
                last_save = time.monotonic()

        if self.small:  # one piece: no worker thread
            work(None, 0)
            return
        workers = min(cfg.connections, max(1, len(pieces)))
        WorkerPool(ctl, workers, [None] * workers, work).run(tick)

    def _controller(self, pool: int) -> Controller:
        return Controller(
            self.http, self.config, pool, shared_session=self.shared_session, cancel=self.cancel
        )

    def run(self) -> UploadResult:
        cfg = self.config
        restarts = 0
        try:
            if not self.url:
                self._new_url()
            if self.size == 0:
                self.ctl = self._controller(1)
                try:
                    self._post(0, b"", "empty file")
                finally:
                    self.ctl.close()
            while self.size > 0:
                self.ctl = self._controller(cfg.connections)
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
    source: str | os.PathLike[str] | BinaryIO | Iterable[bytes] | Source,
    size: int | None = None,
    *,
    config: TransferConfig | None = None,
    progress: ProgressCallback | None = None,
    resume_id: str | None = None,
    shared_session: bool = False,
    cancel: threading.Event | None = None,
    on_key: Callable[[bytes], None] | None = None,
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

    A source that fits in one piece takes a fast path: sent from the calling thread with no
    sidecar (an interrupted one starts over). ``shared_session``: use ``http`` as it is (a
    pool shared with other transfers, left open) instead of a private copy. ``cancel``: an
    event that stops the upload within about 0.1 s with
    :class:`~megafast.transfer.TransferCancelled` (the sidecar is kept). ``on_key``: called
    with the file's 16-byte AES key (the folded node key) before any byte is sent; it stays
    the file's key through retries and restarts (a file attribute can be encrypted and
    stored with it while the upload runs).
    """
    config = config if config is not None else TransferConfig()
    if not isinstance(config, TransferConfig):
        raise ValidationError("config must be a TransferConfig")
    if resume_id is not None and not isinstance(resume_id, str):
        raise ValidationError("resume_id must be a str")
    check_progress(progress)
    src = open_source(source, size)
    try:
        job = _Upload(
            http, get_upload_url, src, config, progress, resume_id, shared_session, cancel
        )
    except BaseException:
        src.close()
        raise
    if on_key is not None:
        try:
            on_key(job.cipher.key)
        except BaseException:
            src.close()
            job.release()
            raise
    return job.run()
