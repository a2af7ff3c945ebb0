"""HTTP transport to MEGA's API: request ids, retries with back-off, HTTP 402 hashcash.

One :class:`ApiClient` owns one ``requests.Session`` (keep-alive, a connection pool) for API
requests; each transfer clones it into a private session of its own (see
:mod:`megafast.transfer`). Every request has a timeout. A request id starts random and grows by
one per new request; a retry sends the same id and the same body (the server uses the id to
drop duplicates). ``-3``, HTTP 429/500/502/503/504, dropped connections and timeouts are
retried with the capped exponential back-off and jitter of a
:class:`~megafast._wire.retry.RetryPolicy` until ``retry_time`` seconds have passed,
then :class:`~megafast.errors.RetryExhaustedError` is raised. A server that cannot be reached
at all (connection refused, host name that does not resolve) gets only ``connect_retry_time``
seconds (a few tries), then :class:`~megafast.errors.ServerUnreachableError`, so a command
against a server that is down fails fast. HTTP 402 with ``X-Hashcash`` is solved with the
native solver within what is left of ``retry_time`` and the request sent again; a challenge
easier than ``min_hashcash_easiness`` (expected work too large to finish) or one that cannot be
solved in the time left raises :class:`~megafast.errors.HashcashError` at once. An answer is
read up to ``max_answer_bytes`` (a batch with ``f``, a listing, up to ``max_listing_bytes``);
a longer one, one nested too deeply, or one that is not JSON raises
:class:`~megafast.errors.UnexpectedAnswerError`.

The session id travels in the URL, so exception messages never include the URL.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError

from ..errors import (
    HashcashError,
    MegaError,
    RequestError,
    UnexpectedAnswerError,
    ValidationError,
    error_for_code,
)
from .arrived import BrokenStream, arrived_chunks, resumed
from .protocol import (
    RetryClock,
    answer_limit,
    batch_results,
    describe,
    doing,
    hashcash_error,
    is_eagain,
)
from .redact import redact
from .retry import DEFAULT_RETRY, RetryPolicy
from .seqtag import OwnTags

__all__ = ["ApiClient", "DEFAULT_API_URL", "new_http_session"]

logger = logging.getLogger("megafast.api")
STREAM_CHUNK = 1 << 20  # the most bytes read at a time from a streamed answer
_OBJECT_START = re.compile(rb"\s*(\[\s*)?\{")  # an answer that is an object (not an error number)


class _RedactSessionIds(logging.Filter):
    """urllib3 logs every request URL at DEBUG, and API URLs carry the session id."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is urllib3's business, not ours
            return True
        if "sid=" in message:
            record.msg, record.args = redact(message), ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactSessionIds())

DEFAULT_API_URL = "https://g.api.mega.co.nz"
#: The largest answer read for a batch without ``f`` (bytes).
DEFAULT_MAX_ANSWER_BYTES = 64 << 20
#: The largest answer read for a batch with ``f``: a 1,000,000-node listing is about 300 MB.
DEFAULT_MAX_LISTING_BYTES = 2 << 30
#: The hardest hashcash megafast tries: easiness 128 expects 32,768 tries of 12 MiB each
#: (minutes on one core); MEGA's own challenges are far easier (about 180-200).
DEFAULT_MIN_HASHCASH_EASINESS = 128
_READ_SIZE = 1 << 18
RETRY_HTTP_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def new_http_session(pool_size: int = 16) -> requests.Session:
    """A ``requests.Session`` with keep-alive and a pool of ``pool_size`` connections per host."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "megafast/0.1"
    return session


class ApiClient:
    """Sends command batches to ``{api_url}/cs`` and returns their results.

    ``timeout``: seconds for connecting and for each read; ``retry_time``: seconds a request
    may spend retrying temporary errors; ``connect_retry_time``: seconds it may keep trying a
    server that refuses connections or whose name does not resolve (at most ``retry_time``);
    ``backoff_base``/``backoff_cap``: the first and the largest wait between tries, in
    seconds; ``retry``: a :class:`~megafast._wire.retry.RetryPolicy` that replaces those four
    figures (and sets the jitter); ``hashcash_threads``: threads for the 402 solver (``None``:
    all cores); ``min_hashcash_easiness``: harder challenges fail at once;
    ``max_answer_bytes`` / ``max_listing_bytes``: the longest answer read (see the module
    docstring).
    """

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 60.0,
        retry_time: float = 120.0,
        connect_retry_time: float = 3.0,
        backoff_base: float = 0.25,
        backoff_cap: float = 16.0,
        hashcash_threads: int | None = None,
        http: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        min_hashcash_easiness: int = DEFAULT_MIN_HASHCASH_EASINESS,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        max_listing_bytes: int = DEFAULT_MAX_LISTING_BYTES,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retry is None:
            retry = DEFAULT_RETRY.with_changes(
                base=backoff_base,
                cap=backoff_cap,
                time_budget=retry_time,
                connect_budget=connect_retry_time,
            )
        elif not isinstance(retry, RetryPolicy):
            raise ValidationError("retry must be a RetryPolicy")
        self.retry = retry
        if not 0 <= min_hashcash_easiness <= 255:
            raise ValueError("min_hashcash_easiness must be 0..255")
        if max_answer_bytes < 1 or max_listing_bytes < 1:
            raise ValueError("max_answer_bytes and max_listing_bytes must be positive")
        self.min_hashcash_easiness = int(min_hashcash_easiness)
        self.max_answer_bytes = int(max_answer_bytes)
        self.max_listing_bytes = int(max_listing_bytes)
        self.api_url = api_url.rstrip("/")
        self.timeout = float(timeout)
        self.hashcash_threads = hashcash_threads
        self.http = http if http is not None else new_http_session()
        self.sid: str | None = None
        self._next_id = secrets.randbelow(1 << 32)
        self._id_lock = threading.Lock()  # a batcher's thread and the caller's ask at once
        self.stats = {"requests": 0, "retries": 0, "hashcash": 0}
        self.own_seqtags = OwnTags()  # v3 tags of our own changes (see seqtag)

    # -- ids -------------------------------------------------------------------------------
    def _new_request_id(self) -> int:
        """A fresh request id (never the same for two threads: a repeated id is a retry,
        which the server answers with the earlier request's answer)."""
        with self._id_lock:
            rid = self._next_id
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return rid

    # -- public calls ----------------------------------------------------------------------
    def request(self, command: dict[str, Any], *, folder: str | None = None) -> Any:
        """Send one command and return its result; a negative number raises its error.

        ``folder``: a public folder handle: the request carries ``&n=`` and no session id.
        """
        result = self.batch([command], folder=folder)[0]
        if isinstance(result, int) and result < 0:
            raise error_for_code(result)
        return result

    def batch(self, commands: Sequence[dict[str, Any]], *, folder: str | None = None) -> list[Any]:
        """Send commands in one request; return every command's result in order.

        A command's error stays in the list as its negative number; an error for the whole
        batch raises.
        """
        if not commands:
            return []
        body = json.dumps(list(commands), separators=(",", ":"))
        names = [c.get("a") for c in commands]
        answer = self._send(body, len(commands), folder, names)
        return batch_results(names, answer, self.own_seqtags)

    def stream(self, command: dict[str, Any], *, folder: str | None = None) -> Iterator[bytes]:
        """Send one command whose answer may be very large (``f``) and return its body as an
        iterator of chunks, each handed over as soon as it arrived (retries, hashcash and
        ``-3`` as for :meth:`request`; an error number raises before anything is returned).
        The body is the batch answer (``[{...}]``); the connection closes when the iterator
        ends or is closed. When the connection is cut mid-answer the command is sent again
        and read on past the bytes already returned, once they are checked to be the same
        (:func:`~megafast._wire.arrived.resumed`)."""
        body = json.dumps([command], separators=(",", ":"))
        names = [command.get("a")]

        def send() -> Iterator[bytes]:
            answer = self._send(body, 1, folder, names, stream=True)
            if isinstance(answer, Iterator):
                return answer
            if isinstance(answer, list) and len(answer) == 1:
                answer = answer[0]
            if isinstance(answer, int):
                raise error_for_code(answer)
            raise UnexpectedAnswerError(f"the server answered {describe(answer)}")

        # a cut mid-answer asks again and goes on past the bytes already handed over
        return resumed(send(), send, self.retry, doing(names, capital=True))

    # -- the loop --------------------------------------------------------------------------
    def _send(
        self, body: str, count: int, folder: str | None, names: list[Any], stream: bool = False
    ) -> Any:
        rid = self._new_request_id()
        params: dict[str, Any] = {"id": rid}
        if folder is not None:
            params["n"] = folder
        elif self.sid:
            params["sid"] = self.sid
        params["v"] = 3  # sequence tags in answers, as MEGA's SDK asks (see seqtag)
        url = f"{self.api_url}/cs"
        headers = {"Content-Type": "application/json"}
        clock = RetryClock(self.retry, _origin(self.api_url), names)
        self.stats["requests"] += 1
        while True:
            reason: str
            unreachable: str | None = None
            try:
                resp = self.http.post(
                    url,
                    params=params,
                    data=body.encode("utf-8"),
                    headers=headers,
                    timeout=(min(self.timeout, 30.0), self.timeout),
                    stream=True,
                )
                status = resp.status_code
                raw, streamed = bytearray(), None
                if status != 200:
                    resp.close()
                elif stream:
                    streamed, raw = self._start_stream(resp, names)
                else:
                    with resp:
                        raw = self._read(resp, names)
            except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
                unreachable = _unreachable_reason(exc)
                reason = unreachable or f"{type(exc).__name__} (no answer)"
            except requests.RequestException as exc:
                raise MegaError(f"HTTP request failed: {type(exc).__name__}") from None
            else:
                if status == 402 and "X-Hashcash" in resp.headers:
                    clock.hashcash()
                    headers["X-Hashcash"] = self._solve(
                        resp.headers["X-Hashcash"], clock.deadline - time.monotonic()
                    )
                    continue
                if status in RETRY_HTTP_STATUS:
                    reason = f"HTTP {status}"
                elif status != 200:
                    raise RequestError(f"HTTP {status}", f"the API answered HTTP {status}")
                else:
                    if streamed is not None:
                        return streamed
                    if not raw.strip():
                        reason = "empty answer"
                    else:
                        answer = _parse(raw)
                        if is_eagain(answer, count):
                            reason = "EAGAIN (-3)"
                        else:
                            if logger.isEnabledFor(logging.DEBUG):
                                logger.debug(
                                    "api %s id=%d ok after %d retries", names, rid, clock.tries
                                )
                            return answer
            # a temporary failure: wait and send the same id and body again
            wait = clock.next_wait(reason, unreachable is not None)
            self.stats["retries"] += 1
            logger.info("api %s: %s, retry %d in %.2f s", names, reason, clock.tries, wait)
            time.sleep(wait)

    def _limit(self, names: list[Any]) -> tuple[int, Callable[..., UnexpectedAnswerError]]:
        """The longest answer read for these commands, and the error for a longer one."""
        return answer_limit(names, self.max_answer_bytes, self.max_listing_bytes)

    def _read(
        self,
        resp: requests.Response,
        names: list[Any],
        head: bytes = b"",
        rest: Iterator[bytes] | None = None,
    ) -> bytearray:
        """The body of a 200 answer (``head`` and the chunks ``rest`` when reading began
        already), at most the limit for these commands (bytes, not ``resp.text``: guessing
        the charset of a large body is slow)."""
        limit, too_long = self._limit(names)
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_long(f"{int(declared)} bytes")
        raw = bytearray(head)
        for piece in rest if rest is not None else arrived_chunks(resp, _READ_SIZE):
            raw += piece
            if len(raw) > limit:
                raise too_long()
        return raw

    def _start_stream(
        self, resp: requests.Response, names: list[Any]
    ) -> tuple[Iterator[bytes] | None, bytearray]:
        """A streamed 200 answer: (its chunks, empty) when it is an object (read as the caller
        consumes it, up to the limit), else (None, the whole short body: an error number)."""
        try:
            limit, too_long = self._limit(names)
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise too_long(f"{int(declared)} bytes")
            chunks = arrived_chunks(resp, STREAM_CHUNK)
            first = next(chunks, b"")
            if _OBJECT_START.match(first):
                streamed = _closing(resp, itertools.chain((first,), chunks), limit, too_long)
                return streamed, bytearray()
            raw = self._read(resp, names, first, chunks)
        except BaseException:
            resp.close()
            raise
        resp.close()
        return None, raw

    def _solve(self, challenge: str, time_left: float) -> str:
        from ..crypto import solve_hashcash

        self.stats["hashcash"] += 1
        start = time.monotonic()
        try:
            answer = solve_hashcash(
                challenge,
                threads=self.hashcash_threads,
                timeout=time_left,
                min_easiness=self.min_hashcash_easiness,
            )
        except (HashcashError, ValueError, TypeError) as exc:
            raise hashcash_error(exc, self.retry, self.min_hashcash_easiness) from None
        logger.info("solved a hashcash challenge in %.2f s", time.monotonic() - start)
        return answer

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()


def _parse(raw: bytes | bytearray) -> Any:
    """An answer body as JSON; text that is not JSON (or NaN/Infinity, or nested too deeply
    to parse) raises :class:`UnexpectedAnswerError`."""
    from .gc import gc_paused

    # the collector paused: a large answer builds millions of objects, and a deeply nested one
    # runs at the recursion limit, where a finalizer the collector started would fail
    try:
        with gc_paused():
            return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise UnexpectedAnswerError("the answer is nested too deeply to read") from None
    except ValueError:
        snippet = bytes(raw[:60]).decode("utf-8", "replace")
        raise RequestError(snippet, "the API answered with text that is not JSON") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _closing(
    resp: requests.Response,
    chunks: Iterator[bytes],
    limit: int,
    too_long: Callable[[], UnexpectedAnswerError],
) -> Iterator[bytes]:
    """The chunks of a streamed body, at most ``limit`` bytes (``too_long()`` is raised past
    it); the response is closed at the end (or on close())."""
    seen = 0
    try:
        for chunk in chunks:
            seen += len(chunk)
            if seen > limit:
                raise too_long()
            yield chunk
    except requests.RequestException as exc:
        raise BrokenStream(
            f"the answer broke off while it was read: {type(exc).__name__}"
        ) from None
    finally:
        resp.close()


def _unreachable_reason(exc: BaseException) -> str | None:
    """Why no connection could be made at all (refused, unknown host), or None when the
    failure may be temporary (a dropped connection, a timeout)."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:  # requests wraps urllib3's MaxRetryError, which names the cause in .reason
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, NameResolutionError):
            return "the host name does not resolve"
        if isinstance(err, NewConnectionError):
            cause = err.__cause__ or err.__context__
            if isinstance(cause, ConnectionRefusedError) or "refused" in str(err).lower():
                return "connection refused"
            return "no route to the server"
        if isinstance(err, BaseException):
            todo.extend([getattr(err, "reason", None), err.__cause__, err.__context__])
            todo.extend(a for a in err.args if isinstance(a, BaseException))
    return None


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (no path or query: those may carry secrets)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]  # never show user:password@
    return f"{parts.scheme}://{netloc}" if netloc else "the API server"
