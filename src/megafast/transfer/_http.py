"""HTTP plumbing shared by downloads, uploads and readers: sessions, retries, back-off,
rate limiting, streaming ranges into reused buffers, and a small worker pool."""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ..errors import (
    OverQuotaError,
    RetryExhaustedError,
    TransferError,
    ValidationError,
    error_for_code,
)
from ._config import TransferConfig

log = logging.getLogger("megafast.transfer")

# Back-off (seconds). Module constants so tests can shorten them.
BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 8.0
DELAY_429 = 0.5  # MEGA's SDK waits 0.5 s after HTTP 429 ...
DELAY_503 = 5.0  # ... and 5 s after HTTP 503
QUOTA_WAIT_DEFAULT = 60.0  # HTTP 509 without X-MEGA-Time-Left, when waiting is asked for
CONNECT_TIMEOUT = 20.0
#: Bytes a retried request must deliver before the retry budget of its range refills.
PROGRESS_REFILL = 64 * 1024
#: Size of the reused I/O blocks (bytes, a multiple of 16): each block is filled from the
#: socket, then decrypted and MAC-ed by one kernel call and written by one positional write.
#: One per connection, so memory stays ``connections * IO_BLOCK`` whatever the file size.
IO_BLOCK = 4 << 20

NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    http.client.HTTPException,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)

# API error numbers a transfer server may answer in a body, and what they mean for us.
_RETRY_CODES = {-3, -4, -6, -14, -18, -19}
_REFRESH_CODES = {-8, -9, -11}


class Stopped(Exception):
    """The transfer is being stopped (another part failed, or the caller interrupted it)."""


class RetryableError(Exception):
    """A temporary failure: back off and try again (counts against the retry budget)."""

    def __init__(self, reason: str, delay: float | None = None, code: int | str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.code = code


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


def clone_session(http: requests.Session | None, pool: int) -> requests.Session:
    """A private session for one transfer with a connection pool of ``pool`` connections.

    It copies the caller's headers, proxies, TLS settings, auth and cookie jar, so the
    caller's session (shared with API calls) is never changed by a transfer.
    """
    session = requests.Session()
    if isinstance(http, requests.Session):
        session.headers.update(http.headers)
        session.proxies.update(http.proxies)
        session.verify = http.verify
        session.cert = http.cert
        session.auth = http.auth
        session.trust_env = http.trust_env
        session.cookies = http.cookies
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(1, pool), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def backoff_delay(attempt: int) -> float:
    """Capped exponential back-off with jitter for the ``attempt``-th retry (seconds)."""
    base = min(BACKOFF_MAX, BACKOFF_INITIAL * (2 ** max(0, attempt - 1)))
    return base * (0.5 + random.random() / 2)  # jitter only: not key material


def _header_seconds(resp: requests.Response, name: str) -> float | None:
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


def check_status(resp: requests.Response, *, upload: bool = False) -> None:
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
    if status == 429:
        wait = _header_seconds(resp, "Retry-After") or 0.0
        raise RetryableError("HTTP 429", delay=max(DELAY_429, min(wait, BACKOFF_MAX)), code=429)
    if status == 503:
        wait = _header_seconds(resp, "Retry-After")
        raise RetryableError("HTTP 503", delay=min(wait, 60.0) if wait else DELAY_503, code=503)
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
    """The shared state of one transfer: its session, config, stop flag and speed limit."""

    def __init__(self, http: requests.Session | None, config: TransferConfig, pool: int) -> None:
        self.config = config
        self.session = clone_session(http, pool)
        self.stop = threading.Event()
        self.limiter = RateLimiter(config.speed_limit)
        self.timeout = (min(config.timeout, CONNECT_TIMEOUT), config.timeout)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up and raise :class:`Stopped` when the transfer is stopped."""
        if self.stop.wait(seconds):
            raise Stopped()

    def check(self) -> None:
        if self.stop.is_set():
            raise Stopped()

    def close(self) -> None:
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
    """The retry budget of one range or piece (``max_retries`` failures in a row)."""

    def __init__(self, ctl: Controller, what: str) -> None:
        self.ctl = ctl
        self.what = what
        self.attempts = 0
        self.refreshes = 0
        self.quota_waits = 0
        self._since_failure = 0

    def progressed(self, nbytes: int) -> None:
        self._since_failure += nbytes
        if self._since_failure >= PROGRESS_REFILL:
            self.attempts = 0
            self.refreshes = 0

    def _exhausted(self, code: int | str | None, reason: str, count: int) -> RetryExhaustedError:
        return RetryExhaustedError(
            code if code is not None else "network",
            f"{self.what}: gave up after {count} failed attempts (last: {reason})",
        )

    def failed(self, exc: BaseException) -> bool:
        """Account for a failed attempt and back off. Returns True when the caller must
        refresh the URL first; raises when the budget is spent or the error is final."""
        cfg = self.ctl.config
        self._since_failure = 0
        if isinstance(exc, QuotaExceeded):
            if not cfg.wait_on_quota:
                raise OverQuotaError(
                    -17, "transfer quota exceeded (HTTP 509)", time_left=exc.time_left
                ) from None
            self.quota_waits += 1
            if self.quota_waits > max(1, cfg.max_retries):
                raise OverQuotaError(-17, "still over transfer quota after waiting", exc.time_left)
            wait = exc.time_left if exc.time_left is not None else QUOTA_WAIT_DEFAULT
            log.info("%s: over transfer quota, waiting %.0f s", self.what, wait)
            self.ctl.sleep(wait)
            return False
        if isinstance(exc, RefreshUrl):
            self.refreshes += 1
            if self.refreshes > max(1, cfg.max_retries):
                raise self._exhausted(None, exc.reason, self.refreshes) from None
            log.debug("%s: %s, asking for a fresh URL", self.what, exc.reason)
            if self.refreshes > 1:
                self.ctl.sleep(backoff_delay(self.refreshes - 1))
            return True
        if isinstance(exc, RetryableError):
            reason, delay, code = exc.reason, exc.delay, exc.code
        else:  # a network error; its text may hold the URL, so only its type is kept
            reason, delay, code = type(exc).__name__, None, None
        self.attempts += 1
        if self.attempts > cfg.max_retries:
            raise self._exhausted(code, reason, self.attempts) from None
        wait = delay if delay is not None else backoff_delay(self.attempts)
        log.debug("%s: %s, retry %d in %.2f s", self.what, reason, self.attempts, wait)
        self.ctl.sleep(wait)
        return False


def body_reader(resp: requests.Response) -> Callable[[memoryview], int]:
    """A ``readinto`` that moves the response body straight from the socket into our buffer
    (urllib3's own ``readinto`` reads into a fresh bytes object and copies)."""
    fp = getattr(resp.raw, "_fp", None)
    if isinstance(fp, http.client.HTTPResponse) and not resp.headers.get("Content-Encoding"):
        return fp.readinto
    return resp.raw.readinto


def release(resp: requests.Response, complete: bool) -> None:
    """Give a fully read connection back to the pool; drop any other."""
    if complete:
        resp.raw.release_conn()
    else:
        resp.close()


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

    ``consume(offset, view)`` gets each full buffer (and the rest at ``end``), so its length is
    a multiple of 16 whenever ``len(buf)`` is. A dropped connection keeps what arrived and the
    next request asks only for the rest, so ``consume`` sees one contiguous stream.
    """
    budget = RetryBudget(ctl, f"bytes {start}-{end - 1}")
    pos = start  # next byte to ask for
    filled = 0  # bytes in buf not yet consumed; they start at pos - filled
    step = ctl.limiter.block(len(buf))
    while pos < end:
        ctl.check()
        url, generation = urls.get()
        try:
            resp = ctl.session.get(f"{url}/{pos}-{end - 1}", stream=True, timeout=ctl.timeout)
            complete = False
            try:
                check_status(resp)
                want = end - pos
                length = resp.headers.get("Content-Length")
                exact = length is not None and length.isdigit() and int(length) == want
                if length is not None and length.isdigit() and int(length) != want:
                    code = parse_api_error(resp.raw.read(64)) if int(length) <= 32 else None
                    if code is not None:
                        raise_for_api_error(code)
                    raise RetryableError(f"server sent {length} bytes instead of {want}")
                readinto = body_reader(resp)
                while pos < end:
                    n = readinto(buf[filled : filled + min(step, len(buf) - filled, end - pos)])
                    if not n:
                        raise RetryableError("connection closed early")
                    pos += n
                    filled += n
                    budget.progressed(n)
                    if on_bytes is not None:
                        on_bytes(n)
                    ctl.limiter.account(n, ctl)
                    if filled == len(buf) or pos == end:
                        consume(pos - filled, buf[:filled])
                        filled = 0
                        ctl.check()
                # Keep the connection only when the body was exactly what we read.
                complete = exact
            finally:
                release(resp, complete)
        except (RetryableError, RefreshUrl, QuotaExceeded, *NETWORK_ERRORS) as exc:
            if budget.failed(exc):
                urls.refresh(generation)


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
