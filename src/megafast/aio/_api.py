"""The asyncio transport to MEGA's API: :class:`AsyncApiClient`, over one aiohttp session.

It keeps the synchronous :class:`megafast._wire.api.ApiClient`'s contract, awaited instead of
blocking: a request id starts random and grows by one per new request, and a retry sends
the same id and the same body; ``-3``, HTTP 408/429/5xx, dropped connections and timeouts
are retried with the back-off of the one :class:`~megafast._wire.retry.RetryPolicy` until its
``time_budget`` is spent (:class:`~megafast.errors.RetryExhaustedError`); a server that
refuses connections gets ``connect_budget`` seconds
(:class:`~megafast.errors.ServerUnreachableError`). HTTP 402 with ``X-Hashcash`` is solved
in a worker thread (the native solver releases the GIL) while the loop runs on. Answers are
read up to ``max_answer_bytes`` (``max_listing_bytes`` for ``f``); redirects are not
followed. Every failure is a :mod:`megafast.errors` class; cancelling the awaiting task
(``asyncio.timeout``, ``task.cancel()``) cancels the request and stops a hashcash search.

The session id travels in the URL, so no message includes the URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any

import aiohttp

from .._wire.api import (
    _OBJECT_START,
    DEFAULT_API_URL,
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_MAX_LISTING_BYTES,
    DEFAULT_MIN_HASHCASH_EASINESS,
    RETRY_HTTP_STATUS,
    _origin,
    _parse,
)
from .._wire.protocol import (
    RetryClock,
    answer_limit,
    batch_results,
    describe,
    hashcash_error,
    is_eagain,
    is_error_number,
)
from .._wire.retry import DEFAULT_RETRY, RetryPolicy
from .._wire.seqtag import OwnTags
from ..errors import (
    HashcashError,
    MegaError,
    RequestError,
    UnexpectedAnswerError,
    ValidationError,
    error_for_code,
)

__all__ = ["AsyncApiClient", "Sink"]

logger = logging.getLogger("megafast.aio")
READ_SIZE = 1 << 20  # bytes gathered from the socket before a streamed chunk is handed on
#: An async consumer of a streamed answer's chunks (bytes)
Sink = Callable[[bytes], Awaitable[None]]


class _Retry(Exception):
    """A temporary failure: wait and send the same id and body again."""

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class AsyncApiClient:
    """Sends command batches to ``{api_url}/cs`` with aiohttp; the async twin of
    :class:`megafast._wire.api.ApiClient` (same options, same errors; times in seconds).

    ``timeout``: seconds for connecting and for each read; ``retry``: the
    :class:`~megafast._wire.retry.RetryPolicy` (default: the API client's, its ``time_budget`` set
    by ``retry_time`` when given); ``connections``: the pool's size (one pool for every
    command of this client); ``executor``: where hashcash is solved (default: a thread of
    the loop's default executor); ``session``: an aiohttp session to use (left open).
    Create it anywhere; its HTTP session is made on the first request, in the running loop.
    """

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        retry_time: float | None = None,
        connections: int = 16,
        hashcash_threads: int | None = None,
        min_hashcash_easiness: int = DEFAULT_MIN_HASHCASH_EASINESS,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        max_listing_bytes: int = DEFAULT_MAX_LISTING_BYTES,
        executor: Executor | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValidationError("timeout must be a positive number of seconds")
        if retry is None:
            retry = DEFAULT_RETRY
        elif not isinstance(retry, RetryPolicy):
            raise ValidationError("retry must be a RetryPolicy")
        if retry_time is not None:
            retry = retry.with_changes(
                time_budget=retry_time, connect_budget=min(retry.connect_budget, retry_time)
            )
        if not 0 <= min_hashcash_easiness <= 255:
            raise ValidationError("min_hashcash_easiness must be 0..255")
        if max_answer_bytes < 1 or max_listing_bytes < 1 or connections < 1:
            raise ValidationError("max_answer_bytes, max_listing_bytes and connections must be > 0")
        self.api_url = api_url.rstrip("/")
        self.timeout = float(timeout)
        self.retry = retry
        self.connections = int(connections)
        self.hashcash_threads = hashcash_threads
        self.min_hashcash_easiness = int(min_hashcash_easiness)
        self.max_answer_bytes = int(max_answer_bytes)
        self.max_listing_bytes = int(max_listing_bytes)
        self.executor = executor
        self.sid: str | None = None
        self.stats = {"requests": 0, "retries": 0, "hashcash": 0}
        self.own_seqtags = OwnTags()  # v3 tags of our own changes (see _wire.seqtag)
        self._session = session
        self._own_session = session is None
        self._next_id = secrets.randbelow(1 << 32)
        self._id_lock = threading.Lock()  # a transfer thread may ask for an id too
        self._closed = False

    def __repr__(self) -> str:
        return f"AsyncApiClient({_origin(self.api_url)!r})"  # never the session id

    # -- ids and the HTTP session ----------------------------------------------------------
    def new_request_id(self) -> int:
        """A fresh request id (a repeated id is a retry, answered with the earlier answer)."""
        with self._id_lock:
            rid = self._next_id
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return rid

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (made on first use, inside the running loop)."""
        if self._closed:
            raise MegaError("this API client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": "megafast/0.1"},
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        """Close the connection pool (when this client made it). Safe to call twice."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._own_session and not session.closed:
            await session.close()

    # -- public calls ----------------------------------------------------------------------
    async def request(self, command: dict[str, Any], *, folder: str | None = None) -> Any:
        """Send one command and return its result; a negative number raises its error.
        ``folder``: a public folder handle (the request carries ``&n=``, not the session)."""
        result = (await self.batch([command], folder=folder))[0]
        if isinstance(result, int) and not isinstance(result, bool) and result < 0:
            raise error_for_code(result)
        return result

    async def batch(
        self, commands: Sequence[dict[str, Any]], *, folder: str | None = None
    ) -> list[Any]:
        """Send commands in one request; every command's result in order (a command's error
        stays in the list as its negative number; an error for the whole batch raises)."""
        if not commands:
            return []
        body = json.dumps(list(commands), separators=(",", ":")).encode()
        names = [c.get("a") for c in commands]
        answer = await self._send(body, len(commands), folder, names, None)
        return batch_results(names, answer, self.own_seqtags)

    async def stream(
        self, command: dict[str, Any], sink: Sink, *, folder: str | None = None
    ) -> None:
        """Send one command whose answer may be very large (``f``) and hand its body to
        ``sink`` chunk by chunk as it arrives (about :data:`READ_SIZE` bytes each, at most
        the listing limit in all). Retries, hashcash and ``-3`` happen before the first
        chunk; an error number raises instead; a body that breaks off raises MegaError."""
        body = json.dumps([command], separators=(",", ":")).encode()
        answer = await self._send(body, 1, folder, [command.get("a")], sink)
        if answer is _STREAMED:
            return
        if isinstance(answer, list) and len(answer) == 1:
            answer = answer[0]
        if is_error_number(answer):
            raise error_for_code(answer)
        raise UnexpectedAnswerError(f"the server answered {describe(answer)}")

    # -- the loop --------------------------------------------------------------------------
    async def _send(
        self, body: bytes, count: int, folder: str | None, names: list[Any], sink: Sink | None
    ) -> Any:
        rid = self.new_request_id()
        params = {"id": str(rid)}
        if folder is not None:
            params["n"] = folder
        elif self.sid:
            params["sid"] = self.sid
        params["v"] = "3"  # sequence tags in answers, as the sync client asks (_wire.seqtag)
        headers = {"Content-Type": "application/json"}
        clock = RetryClock(self.retry, _origin(self.api_url), names)
        self.stats["requests"] += 1
        while True:
            try:
                status, challenge, answer = await self._post(body, params, headers, names, sink)
                if status == 402 and challenge is not None:
                    clock.hashcash()
                    headers["X-Hashcash"] = await self._solve(challenge, clock.deadline)
                    continue
                if status in RETRY_HTTP_STATUS:
                    raise _Retry(f"HTTP {status}")
                if status != 200:
                    raise RequestError(f"HTTP {status}", f"the API answered HTTP {status}")
                if is_eagain(answer, count):
                    raise _Retry("EAGAIN (-3)")
                return answer
            except _Retry as retry:
                reason, unreachable = retry.reason, retry.unreachable
            wait = clock.next_wait(reason, unreachable)
            self.stats["retries"] += 1
            logger.info("api %s: %s, retry %d in %.2f s", names, reason, clock.tries, wait)
            await asyncio.sleep(wait)

    async def _post(
        self,
        body: bytes,
        params: dict[str, str],
        headers: dict[str, str],
        names: list[Any],
        sink: Sink | None,
    ) -> tuple[int, str | None, Any]:
        """One POST: (status, hashcash challenge or None, parsed answer or _STREAMED)."""
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(self.timeout, 30.0), sock_read=self.timeout
        )
        streaming = False
        try:
            async with self.session.post(
                f"{self.api_url}/cs",
                params=params,
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                if resp.status != 200:
                    return resp.status, resp.headers.get("X-Hashcash"), None
                limit, too_long = self._limit(names)
                declared = resp.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise too_long(f"{int(declared)} bytes")
                first = await _read_some(resp, READ_SIZE, limit, too_long)
                if sink is not None and _OBJECT_START.match(first):
                    streaming = True
                    await sink(first)
                    seen = len(first)
                    while True:
                        chunk = await _read_some(resp, READ_SIZE, limit - seen, too_long)
                        if not chunk:
                            return 200, None, _STREAMED
                        seen += len(chunk)
                        await sink(chunk)
                raw = bytearray(first)
                while chunk := await _read_some(resp, READ_SIZE, limit - len(raw), too_long):
                    raw += chunk
        except (aiohttp.ClientConnectorError, aiohttp.ClientConnectorDNSError) as exc:
            raise _Retry(_unreachable_reason(exc), unreachable=True) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if streaming:  # part of it went on already: it cannot be sent again
                raise MegaError(
                    f"the answer broke off while it was read: {type(exc).__name__}"
                ) from None
            if isinstance(exc, aiohttp.ClientResponseError | aiohttp.InvalidURL):
                raise MegaError(f"HTTP request failed: {type(exc).__name__}") from None
            raise _Retry(f"{type(exc).__name__} (no answer)") from None
        if not raw.strip():
            raise _Retry("empty answer")
        return 200, None, _parse(raw)

    def _limit(self, names: list[Any]) -> tuple[int, Callable[..., UnexpectedAnswerError]]:
        """The longest answer read for these commands, and the error for a longer one."""
        return answer_limit(names, self.max_answer_bytes, self.max_listing_bytes, "AsyncMega")

    async def _solve(self, challenge: str, deadline: float) -> str:
        """The answer to a hashcash challenge, found in a worker thread; cancelling the
        awaiting task stops the search (within one batch of tries) before it returns."""
        from ..crypto import solve_hashcash

        self.stats["hashcash"] += 1
        stop = threading.Event()
        job = partial(
            solve_hashcash,
            challenge,
            threads=self.hashcash_threads,
            timeout=deadline - time.monotonic(),
            min_easiness=self.min_hashcash_easiness,
            cancel=stop,
        )
        future = asyncio.get_running_loop().run_in_executor(self.executor, job)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait([future])  # the search ends within one batch
            raise
        except (HashcashError, ValueError, TypeError) as exc:
            raise hashcash_error(exc, self.retry, self.min_hashcash_easiness) from None


class _StreamedMarker:
    def __repr__(self) -> str:
        return "<streamed>"


_STREAMED: Any = _StreamedMarker()


async def _read_some(
    resp: aiohttp.ClientResponse,
    size: int,
    room: int,
    too_long: Callable[..., UnexpectedAnswerError],
) -> bytes:
    """Up to ``size`` bytes of the body (fewer at its end; b"" when it ended); more than
    ``room`` bytes in all raises ``too_long()``."""
    out = bytearray()
    while len(out) < size:
        piece = await resp.content.readany()
        if not piece:
            break
        out += piece
        if len(out) > room:
            raise too_long()
    return bytes(out)


def _unreachable_reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    cause = getattr(exc, "os_error", None)
    if isinstance(cause, ConnectionRefusedError) or "refused" in str(exc).lower():
        return "connection refused"
    return "no route to the server"
