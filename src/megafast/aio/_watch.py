"""Live updates for asyncio: ``/sc`` polled through aiohttp, packets applied to the store.

:class:`AsyncScChannel` is the async twin of :class:`megafast._tree.watch.ScChannel`: ``POST
<api>/sc?sn=&sid=`` gives packets (``ir:1``: more follow) or a wait URL, long-polled until
something changes; ``-6`` raises :class:`~megafast._tree.watch.SnTooOld`, ``-15``
:class:`~megafast.errors.SessionError`. :class:`AsyncWatcher` applies each packet to the
store with the one :func:`~megafast._tree.watch.apply_packet` and is an async iterator of
:class:`~megafast._tree.watch.ChangeEvent`s; on ``-6`` or a packet the store cannot apply it
reloads the whole tree through the ``reload`` coroutine it was given and yields a
``reload`` event. A channel that fails ``max_failures`` polls in a row raises
:class:`~megafast._tree.scanswer.ScDisconnected` (the count and the waits are the sync
channel's :class:`~megafast._tree.scanswer.ScFailures`); the watcher then yields a
``disconnected`` event (``retry_in`` seconds), waits, keeps going, and yields
``reconnected`` once a poll gets through again. Packets are applied on the loop's thread,
so code on the loop never sees a half-applied change.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .._tree.nodes import Keyring
from .._tree.nodestore import NodeStore, StoreError
from .._tree.scanswer import ScDisconnected, ScFailures, SnTooOld, read_sc_answer
from .._tree.watch import POLL_TIMEOUT, ChangeEvent, LinkState, apply_packet
from .._wire.retry import RetryPolicy
from ..errors import MegaError, ValidationError
from ._api import AsyncApiClient

__all__ = ["AsyncScChannel", "AsyncWatcher"]

log = logging.getLogger("megafast.watch")
MAX_SC_ANSWER = 64 << 20  # bytes: one /sc answer at most


class AsyncScChannel:
    """Polls ``/sc`` for the session of ``api`` (its pool and its ``sid``) from ``sn``.

    A failed poll (network error, HTTP error, ``-3``/``-4``, a failed wait URL) is tried
    again after ``retry.backoff(n)`` seconds (default: ``retry_delay`` doubling up to 30 s,
    jittered); after ``max_failures`` in a row :class:`ScDisconnected` is raised."""

    def __init__(
        self,
        api: AsyncApiClient,
        sn: str,
        *,
        timeout: float = POLL_TIMEOUT,
        retry_delay: float = 1.0,
        retry: RetryPolicy | None = None,
        max_failures: int = 6,
    ) -> None:
        self.api = api
        self.sn = sn
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.retry = retry or RetryPolicy(base=retry_delay, cap=max(retry_delay, 30.0))
        self._failures = ScFailures(self.retry, max_failures)

    @property
    def failures(self) -> int:
        """Failed polls in a row."""
        return self._failures.count

    def __repr__(self) -> str:
        return f"AsyncScChannel(sn={self.sn!r})"  # never the session id

    async def poll(self, wait: bool = True) -> tuple[list[dict[str, Any]], bool]:
        """(packets, caught_up). Without ``wait``: ([], True) when nothing is pending."""
        if not self.api.sid:
            raise ValidationError("not logged in: log in before watching")
        while True:
            answer, reason = await self._post(
                f"{self.api.api_url}/sc", {"sn": self.sn, "sid": self.api.sid}
            )
            step = read_sc_answer(answer, wait)
            if step.retry:
                reason = reason if answer is None else f"the server answered {answer}"
                await asyncio.sleep(self._failures.failed(reason))
                continue
            self._failures.succeeded()
            if step.sn is not None:
                self.sn = step.sn
            if step.packets is not None:
                return step.packets, step.caught_up
            assert step.wait_url is not None
            done, reason = await self._post(step.wait_url, None, parse=False)
            if done is None:  # counted: a dead link fails both
                await asyncio.sleep(self._failures.failed(f"the wait URL: {reason}"))

    async def _post(
        self, url: str, params: dict[str, str] | None, parse: bool = True
    ) -> tuple[Any, str]:
        """(the JSON answer of one POST, or None when it failed; why it failed)."""
        from .._wire.api import _parse

        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self.api.session.post(
                url, params=params, data=b"", timeout=timeout, allow_redirects=False
            ) as resp:
                if resp.status != 200:
                    return None, f"HTTP {resp.status}"
                raw = bytearray()
                while piece := await resp.content.readany():
                    raw += piece
                    if len(raw) > MAX_SC_ANSWER:
                        raise ValidationError(f"an sc answer is longer than {MAX_SC_ANSWER} bytes")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return None, type(exc).__name__  # its text may hold the URL
        if not parse:
            return True, ""
        try:
            return (_parse(raw) if raw.strip() else None), "an empty answer"
        except MegaError:
            return None, "an answer that is not JSON"


class AsyncWatcher:
    """The account's changes as an async iterator of ChangeEvents (``async for``).

    ``store``: the NodeStore the packets are applied to (read the current one from
    :attr:`store`: a reload replaces it); ``reload``: a coroutine function listing the whole
    tree again (a new store with its ``sn``); ``self_id``: this client's request id (its own
    deletions, already applied, are not reported twice, nor are those whose v3 tag the
    API client's ``own_seqtags`` holds). :meth:`catch_up` applies what is
    pending without waiting. Stop by leaving the loop (or :meth:`aclose`)."""

    def __init__(
        self,
        store: NodeStore,
        keyring: Keyring,
        channel: AsyncScChannel,
        reload: Callable[[], Awaitable[NodeStore]],
        *,
        self_id: str | None = None,
        on_store: Callable[[NodeStore], None] | None = None,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.channel = channel
        self._reload = reload
        self._on_store = on_store
        self.self_id = self_id
        self._ready: deque[ChangeEvent] = deque()
        self._closed = False
        self._link = LinkState()
        self._pause = 0.0  # seconds to wait before the next poll (after a disconnect)

    def __aiter__(self) -> AsyncWatcher:
        return self

    async def __anext__(self) -> ChangeEvent:
        while not self._ready:
            if self._pause:
                pause, self._pause = self._pause, 0.0
                await asyncio.sleep(pause)
            if self._closed:
                raise StopAsyncIteration
            try:
                events, _ = await self._poll(wait=True)
            except ScDisconnected as exc:
                self._pause = exc.retry_in
                return self._link.lost(exc)
            back = self._link.polled()
            if back is not None:
                self._ready.append(back)
            self._ready.extend(events)
        return self._ready.popleft()

    async def catch_up(self) -> list[ChangeEvent]:
        """Apply everything the server has since ``store.sn`` without waiting."""
        events: list[ChangeEvent] = []
        while True:
            batch, caught_up = await self._poll(wait=False)
            events.extend(batch)
            if caught_up:
                return events

    async def aclose(self) -> None:
        """End the iteration (the next ``__anext__`` stops)."""
        self._closed = True

    async def __aenter__(self) -> AsyncWatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _poll(self, wait: bool) -> tuple[list[ChangeEvent], bool]:
        self.channel.sn = self.store.sn or self.channel.sn
        try:
            packets, caught_up = await self.channel.poll(wait=wait)
            events: list[ChangeEvent] = []
            for packet in packets:
                events.extend(
                    apply_packet(
                        self.store, self.keyring, packet, self.self_id, self.channel.api.own_seqtags
                    )
                )
        except SnTooOld:
            log.warning("the server's change log no longer reaches sn %s: reloading", self.store.sn)
            return await self._full_reload(), True
        except StoreError as exc:
            log.warning("action packet not applicable (%s): reloading the whole tree", exc)
            return await self._full_reload(), True
        self.store.sn = self.channel.sn
        return events, caught_up

    async def _full_reload(self) -> list[ChangeEvent]:
        self.store = await self._reload()
        if self.store.sn:
            self.channel.sn = self.store.sn
        if self._on_store is not None:
            self._on_store(self.store)
        return [ChangeEvent("reload")]
