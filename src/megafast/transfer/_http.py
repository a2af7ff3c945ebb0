"""HTTP plumbing shared by downloads, uploads and readers: sessions, retries, back-off,
rate limiting, streaming ranges into reused buffers, and a small worker pool."""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any

import requests
import urllib3

from .._wire.retry import RetryPolicy
from ..errors import (
    OverQuotaError,
    RetryExhaustedError,
    TransferError,
    ValidationError,
    error_for_code,
)
from ._config import TransferConfig
from ._lean import Answer, lean_get
from ._session import clone_session

log = logging.getLogger("megafast.transfer")

# Waits between tries come from ``TransferConfig.retry`` (a :class:`RetryPolicy`).
CONNECT_TIMEOUT = 20.0
#: A buffer that fills slowly is handed on after this many seconds (whole 4 KiB blocks),
#: so that a killed process loses little more than the last fraction of a second.
CONSUME_INTERVAL = 0.1
#: Size of the reused I/O blocks (bytes, a multiple of 16): each block is filled from the
#: socket, then decrypted and MAC-ed by one kernel call and written by one positional write.
#: One per connection, so memory stays ``connections * IO_BLOCK`` whatever the file size.
#: 8 MiB: eight 1 MiB MAC chunks, one per lane of the native kernels (MF_MAX_LANES), which
#: MAC chunks side by side; a 4 MiB block fills half the lanes and costs 1.5x the CPU.
IO_BLOCK = 8 << 20

NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    http.client.HTTPException,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)

# API error numbers a transfer server may answer in a body, and what they mean for us.
_RETRY_CODES = {-3, -4, -6, -14, -18, -19}
_REFRESH_CODES = {-8, -9, -11}


class TransferCancelled(TransferError):
    """The transfer was cancelled (its future, its manager, or the caller's ``cancel`` event);
    resumable state (part files, sidecars) is kept."""


#: how often a wait looks at the caller's ``cancel`` event (cancel takes effect within this)
CANCEL_POLL = 0.1


class Stopped(Exception):
    """The transfer is being stopped (another part failed, or the caller interrupted it)."""


class RetryableError(Exception):
    """A temporary failure: back off and try again (counts against the retry budget unless
    the attempt delivered data). ``retry_after``: the seconds a 429/503 answer asked for."""

    def __init__(
        self, reason: str, code: int | str | None = None, retry_after: float | None = None
    ):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retry_after = retry_after


class RefreshUrl(Exception):
    """The transfer URL is gone (403/404, -8 ...): ask for a fresh one."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class QuotaExceeded(Exception):
    """HTTP 509 or -17 from a transfer server; ``time_left`` in seconds when known."""

    def __init__(self, time_left: float | None):
        super().__init__(time_left)
        self.time_left = time_left


def _header_seconds(resp: Answer, name: str) -> float | None:
    value = resp.headers.get(name)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 1e7 else None


def parse_api_error(body: bytes) -> int | None:
    """The negative API number in a short body such as ``b"-3"``, else None."""
    text = body.strip()
    if not text or len(text) > 12:
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value < 0 else None


def raise_for_api_error(code: int, *, upload: bool = False) -> None:
    """Turn an API number answered by a transfer server into our control exceptions."""
    if code == -17:
        raise QuotaExceeded(None)
    if upload and code in (-4, -8):
        raise RestartUpload(f"upload server answered {code}")
    if code in _RETRY_CODES:
        raise RetryableError(f"server answered {code}", code=code)
    if code in _REFRESH_CODES and not upload:
        raise RefreshUrl(f"server answered {code}")
    raise error_for_code(code)


class RestartUpload(Exception):
    """The upload URL is dead (-4, -8, 403/404): start over with a fresh one."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_progress(progress: object) -> None:
    if progress is not None and not callable(progress):
        raise ValidationError("progress must be a callable(bytes_done, total) or None")


def check_status(resp: Answer, *, upload: bool = False) -> None:
    """Raise the control exception for a non-success HTTP status."""
    status = resp.status_code
    if status in (200, 206):
        return
    if status == 509:
        raise QuotaExceeded(_header_seconds(resp, "X-MEGA-Time-Left"))
    if status in (403, 404, 410):
        if upload:
            raise RestartUpload(f"HTTP {status}")
        raise RefreshUrl(f"HTTP {status}")
    if status in (429, 503):
        raise RetryableError(
            f"HTTP {status}", code=status, retry_after=_header_seconds(resp, "Retry-After")
        )
    if status >= 500 or status == 408:
        raise RetryableError(f"HTTP {status}", code=status)
    raise TransferError(f"transfer server answered HTTP {status}")


class RateLimiter:
    """A shared speed limit (bytes/s) for every connection of one transfer."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = 0.0

    def block(self, default: int) -> int:
        """Bytes to move per step so that the limit is kept smoothly."""
        if self.rate is None:
            return default
        return max(16 * 1024, min(default, int(self.rate / 8)))

    def account(self, nbytes: int, ctl: Controller) -> None:
        """Record ``nbytes`` moved and sleep as long as the limit asks."""
        if self.rate is None or nbytes <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + nbytes / self.rate
            delay = self._next - now
        if delay > 0.001:
            ctl.sleep(delay)


class Controller:
    """The shared state of one transfer: its session, config, stop flag and speed limit.

    ``shared_session``: use ``http`` itself (a caller-owned pool shared by many transfers,
    never closed here) instead of a private clone. ``cancel``: the caller's event; once set,
    :meth:`check` and :meth:`sleep` raise :class:`TransferCancelled`.
    """

    def __init__(
        self,
        http: requests.Session | None,
        config: TransferConfig,
        pool: int,
        *,
        shared_session: bool = False,
        cancel: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.retry: RetryPolicy = config.retry
        self.session: requests.Session
        if shared_session and isinstance(http, requests.Session):
            self.session, self._owns_session = http, False
        else:
            self.session, self._owns_session = clone_session(http, pool), True
        self.stop = threading.Event()
        self.cancel = cancel
        self.limiter = RateLimiter(config.speed_limit)
        self.timeout = (min(config.timeout, CONNECT_TIMEOUT), config.timeout)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up and raise :class:`Stopped` (or :class:`TransferCancelled`) when
        the transfer is stopped (or cancelled)."""
        if self.cancel is None:
            if self.stop.wait(seconds):
                raise Stopped()
            return
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.stop.wait(min(left, CANCEL_POLL)):
                raise Stopped()

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise TransferCancelled("the transfer was cancelled")
        if self.stop.is_set():
            raise Stopped()

    def close(self) -> None:
        if self._owns_session:
            self.session.close()


class UrlSource:
    """The temporary URL of a transfer, refreshed once per expiry however many workers see it."""

    def __init__(self, get_url: Callable[[bool], str]) -> None:
        self._get_url = get_url
        self._lock = threading.Lock()
        self._url: str | None = None
        self._generation = 0

    def _fetch(self, refresh: bool) -> str:
        url = self._get_url(refresh)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TransferError("get_url() did not return an http(s) URL")
        return url.rstrip("/")

    def get(self) -> tuple[str, int]:
        with self._lock:
            if self._url is None:
                self._url = self._fetch(False)
            return self._url, self._generation

    def refresh(self, generation: int) -> None:
        """Ask for a fresh URL unless another worker already did since ``generation``."""
        with self._lock:
            if generation == self._generation:
                self._url = self._fetch(True)
                self._generation += 1


class RetryBudget:
    """The retry budget of one range or piece: ``max_retries`` failed attempts in a row
    that delivered nothing. An attempt that moved data refills it (:meth:`progressed`)."""

    def __init__(self, ctl: Controller, what: str) -> None:
        self.ctl = ctl
        self.what = what
        self.attempts = 0
        self.refreshes = 0
        self.quota_waits = 0

    def progressed(self) -> None:
        """The attempt under way delivered data: the failures before it no longer count."""
        self.attempts = 0
        self.refreshes = 0

    def _exhausted(self, code: int | str | None, reason: str, count: int) -> RetryExhaustedError:
        return RetryExhaustedError(
            code if code is not None else "network",
            f"{self.what}: gave up after {count} failed attempts (last: {reason})",
        )

    def failed(self, exc: BaseException, *, delivered: bool = False) -> bool:
        """Account for a failed attempt and back off. Returns True when the caller must
        refresh the URL first; raises when the budget is spent or the error is final.
        ``delivered``: the attempt moved data before it failed (a dropped connection): it
        costs nothing and the next attempt starts after a short random wait
        (:meth:`RetryPolicy.reconnect`), so connections cut together come back spread."""
        cfg = self.ctl.config
        policy = self.ctl.retry
        if delivered and not isinstance(exc, (QuotaExceeded, RefreshUrl)):
            self.progressed()
            wait = policy.reconnect()
            log.debug(
                "%s: %s after some data, continuing in %.3f s", self.what, type(exc).__name__, wait
            )
            self.ctl.sleep(wait)
            return False
        if isinstance(exc, QuotaExceeded):
            if not cfg.wait_on_quota:
                raise OverQuotaError(
                    -17, "transfer quota exceeded (HTTP 509)", time_left=exc.time_left
                ) from None
            self.quota_waits += 1
            if self.quota_waits > max(1, cfg.max_retries):
                raise OverQuotaError(-17, "still over transfer quota after waiting", exc.time_left)
            wait = exc.time_left if exc.time_left is not None else policy.quota_wait
            log.info("%s: over transfer quota, waiting %.0f s", self.what, wait)
            self.ctl.sleep(wait)
            return False
        if isinstance(exc, RefreshUrl):
            self.refreshes += 1
            if self.refreshes > max(1, cfg.max_retries):
                raise self._exhausted(None, exc.reason, self.refreshes) from None
            log.debug("%s: %s, asking for a fresh URL", self.what, exc.reason)
            if self.refreshes > 1:
                self.ctl.sleep(policy.backoff(self.refreshes - 1))
            return True
        code: int | str | None = None
        if isinstance(exc, RetryableError):
            reason, code = exc.reason, exc.code
        else:  # a network error; its text may hold the URL, so only its type is kept
            reason = type(exc).__name__
        self.attempts += 1
        if self.attempts > cfg.max_retries:
            raise self._exhausted(code, reason, self.attempts) from None
        if code == 429:
            wait = policy.after_429(getattr(exc, "retry_after", None))
        elif code == 503:
            wait = policy.after_503(getattr(exc, "retry_after", None))
        else:
            wait = policy.backoff(self.attempts)
        log.debug("%s: %s, retry %d in %.2f s", self.what, reason, self.attempts, wait)
        self.ctl.sleep(wait)
        return False


def body_reader(resp: Answer) -> Callable[[memoryview], int]:
    """A ``readinto1`` over the response body: each call makes at most one system call and
    returns what has arrived (1 byte or more; 0 at the end of the body), so a read never
    waits for a full buffer on a live connection.

    A plain body with a ``Content-Length`` is read with ``readinto1`` of the socket's buffered
    file straight into the caller's buffer (``recv_into``, no copy in Python), keeping
    ``http.client``'s count of what is left so the connection can go back to the pool;
    anything else (chunked, encoded) through ``read1``, copied in."""
    fp = getattr(resp.raw, "_fp", None)
    if (
        isinstance(fp, http.client.HTTPResponse)
        and not fp.chunked
        and fp.length is not None
        and not resp.headers.get("Content-Encoding")
    ):
        sockfile = fp.fp
        readinto1 = getattr(sockfile, "readinto1", None)
        close_conn: Callable[[], None] | None = getattr(fp, "_close_conn", None)
        if readinto1 is not None and close_conn is not None:

            def read(view: memoryview) -> int:
                left = fp.length
                if not left or fp.fp is None:
                    return 0
                n: int = readinto1(view[:left] if len(view) > left else view)
                if not n:
                    close_conn()  # what http.client does on an early end
                    return 0
                fp.length = left - n
                if left == n:
                    close_conn()  # the whole body is read: the connection may be reused
                return n

            return read
    read1 = getattr(resp.raw, "read1", None) or resp.raw.read  # urllib3 1.x: no read1

    def read_copy(view: memoryview) -> int:
        data = read1(len(view), decode_content=True)
        if len(data) > len(view):
            raise RetryableError("the server sent an encoded body we cannot read")
        view[: len(data)] = data
        return len(data)

    return read_copy


def release(resp: Answer, complete: bool) -> None:
    """Give a fully read connection back to the pool; drop any other."""
    if complete:
        resp.raw.release_conn()
    else:
        resp.close()


#: What a range request retries after (the other errors end the transfer).
FETCH_ERRORS: tuple[type[BaseException], ...] = (
    RetryableError,
    RefreshUrl,
    QuotaExceeded,
    *NETWORK_ERRORS,
)
#: What an upload POST retries after.
POST_ERRORS: tuple[type[BaseException], ...] = (RetryableError, QuotaExceeded, *NETWORK_ERRORS)


def _content_range_start(resp: Answer) -> int | None:
    """The first byte a ``Content-Range: bytes a-b/n`` header names, else None."""
    value = resp.headers.get("Content-Range")
    if value is None:
        return None
    unit, _, spec = value.strip().partition(" ")
    first = spec.partition("-")[0]
    if unit != "bytes" or not first.isdigit():
        raise RetryableError("the server sent a Content-Range we cannot read")
    return int(first)


def _open_range(ctl: Controller, url: str, pos: int, end: int) -> Answer:
    """GET the bytes ``[pos, end)``; the answer is checked to hold exactly those bytes
    (status, ``Content-Length`` and ``Content-Range``) before any of its body is read.
    The GET skips requests' own work when the session needs none of it (:mod:`._lean`)."""
    ranged = f"{url}/{pos}-{end - 1}"
    resp: Answer | None = lean_get(ctl.session, ranged, ctl.timeout)
    if resp is None:
        resp = ctl.session.get(ranged, stream=True, timeout=ctl.timeout, allow_redirects=False)
    try:
        check_status(resp)
        want = end - pos
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != want:
            code = parse_api_error(resp.raw.read(64)) if int(length) <= 32 else None
            if code is not None:
                raise_for_api_error(code)
            raise RetryableError(f"server sent {length} bytes instead of {want}")
        first = _content_range_start(resp)
        if first is not None and first != pos:
            raise RetryableError(f"server sent bytes from {first} instead of {pos}")
    except BaseException:
        resp.close()
        raise
    return resp


def fetch_range(
    ctl: Controller,
    urls: UrlSource,
    start: int,
    end: int,
    buf: memoryview,
    consume: Callable[[int, memoryview], None],
    *,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Stream the bytes ``[start, end)`` of the file at ``urls`` through ``buf``.

    Each read returns what has arrived (:func:`body_reader`). ``consume(offset, view)`` gets
    the bytes in file order as one contiguous stream: each full buffer, the rest at ``end``,
    what waits every :data:`CONSUME_INTERVAL` seconds once 64 KiB wait (whole 4 KiB blocks),
    and -- when a connection drops -- what arrived, down to a multiple of 16 bytes (the AES
    block), so a later failure or a killed process loses at most 15 bytes of it. The next
    request asks only for the rest. ``len(buf)`` must be a multiple of 16. Bytes stay where
    they arrived in ``buf`` (a caller may hand in the whole range as ``buf`` and use it
    afterwards). An attempt that delivered data does not spend the retry budget.
    """
    for _ in range_steps(ctl, urls, start, end, buf, consume, on_bytes=on_bytes):
        pass


def range_steps(
    ctl: Controller,
    urls: UrlSource,
    start: int,
    end: int,
    buf: memoryview,
    consume: Callable[[int, memoryview], None],
    *,
    eager: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> Generator[None, None, None]:
    """:func:`fetch_range` one step at a time: a generator that yields after each
    ``consume`` call (closing it abandons the range and its connection). ``eager``: consume
    after every read what arrived, down to a multiple of 16 bytes (a reader hands those bytes
    out at once)."""
    budget = RetryBudget(ctl, f"bytes {start}-{end - 1}")
    pos = start  # next byte to ask for
    filled = 0  # bytes in buf; buf[used:filled] is not consumed yet and ends at pos
    used = 0
    step = ctl.limiter.block(len(buf))
    limited = ctl.limiter.rate is not None
    last = time.monotonic()
    while pos < end:
        ctl.check()
        url, generation = urls.get()
        delivered = False
        try:
            resp = _open_range(ctl, url, pos, end)
            complete = False
            try:
                readinto = body_reader(resp)
                while pos < end:
                    room = min(step, len(buf) - filled, end - pos)
                    n = readinto(buf[filled : filled + room])
                    if not n:
                        raise RetryableError("connection closed early")
                    delivered = True
                    pos += n
                    filled += n
                    if on_bytes is not None:
                        on_bytes(n)
                    if limited:
                        ctl.limiter.account(n, ctl)
                    if filled == len(buf) or pos == end:
                        consume(pos - (filled - used), buf[used:filled])
                        filled = used = 0
                        last = time.monotonic()
                        yield
                        ctl.check()
                    elif eager:
                        keep = (filled - used) & ~15  # whole AES blocks
                        if keep:
                            consume(pos - (filled - used), buf[used : used + keep])
                            used += keep
                            yield
                    elif (
                        filled - used >= 65536
                        and (now := time.monotonic()) - last >= CONSUME_INTERVAL
                    ):
                        keep = (filled - used) & ~4095  # whole 4 KiB blocks
                        consume(pos - (filled - used), buf[used : used + keep])
                        used += keep
                        last = now
                        yield
                # Keep the connection only when the body was exactly what we read (a
                # Content-Length was checked to be the bytes asked for).
                complete = resp.headers.get("Content-Length", "").isdigit()
            finally:
                release(resp, complete)
        except FETCH_ERRORS as exc:
            keep = (filled - used) // 16 * 16
            if keep:  # what arrived, down to the AES block, goes on now
                consume(pos - (filled - used), buf[used : used + keep])
                used += keep
            if budget.failed(exc, delivered=delivered):
                urls.refresh(generation)
            if keep:
                yield
        except requests.RequestException as exc:  # redirects, bad URLs: not worth a retry
            raise TransferError(f"transfer request failed: {type(exc).__name__}") from None


_NO_TASK = object()


class WorkerPool:
    """Run ``work(task, worker_index)`` for each task on ``count`` threads.

    The first error stops every worker and is raised by :meth:`run` in the calling thread;
    ``tick()`` runs in the calling thread about every ``interval`` seconds (progress,
    sidecars), so callbacks never run on worker threads.
    """

    def __init__(
        self,
        ctl: Controller,
        count: int,
        tasks: Iterable[Any],
        work: Callable[[Any, int], None],
    ) -> None:
        self.ctl = ctl
        self.count = count
        self._tasks: deque[Any] = deque(tasks)
        self._work = work
        self._cond = threading.Condition()
        self._alive = 0
        self._error: BaseException | None = None
        self._woken = False
        #: False when a worker thread was still running after :meth:`run` gave up waiting.
        self.all_stopped = True

    def push(self, task: Any) -> None:
        with self._cond:
            self._tasks.appendleft(task)

    def wake(self) -> None:
        """Run ``tick()`` in the calling thread now rather than at the next interval."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def _next(self) -> Any:
        with self._cond:
            return self._tasks.popleft() if self._tasks else _NO_TASK

    def _loop(self, index: int) -> None:
        try:
            while not self.ctl.stop.is_set():
                task = self._next()
                if task is _NO_TASK:
                    break
                self._work(task, index)
        except Stopped:
            pass
        except BaseException as exc:  # handed to the calling thread
            with self._cond:
                if self._error is None:
                    self._error = exc
            self.ctl.stop.set()
        finally:
            with self._cond:
                self._alive -= 1
                self._cond.notify_all()

    def run(self, tick: Callable[[], None], interval: float = 0.1) -> None:
        threads = [
            threading.Thread(target=self._loop, args=(i,), name=f"megafast-transfer-{i}")
            for i in range(min(self.count, max(1, len(self._tasks))))
        ]
        for t in threads:
            t.daemon = True
        self._alive = len(threads)
        for t in threads:
            t.start()
        try:
            while True:
                with self._cond:
                    if self._alive == 0:
                        break
                    if not self._woken:
                        self._cond.wait(interval)
                    self._woken = False
                if self._error is None:
                    tick()
                cancel = self.ctl.cancel
                if cancel is not None and cancel.is_set():
                    raise TransferCancelled("the transfer was cancelled")
        except BaseException:
            self.ctl.stop.set()
            for t in threads:
                t.join(timeout=5)
            self.all_stopped = not any(t.is_alive() for t in threads)
            raise
        for t in threads:
            t.join()
        if self._error is not None:
            raise self._error
