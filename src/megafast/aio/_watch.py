"""Live updates for asyncio: ``/sc`` polled through aiohttp, packets applied to the store.

:class:`AsyncScChannel` is the async twin of :class:`megafast._tree.watch.ScChannel`: ``POST
<api>/sc?sn=&sid=`` gives packets (``ir:1``: more follow) or a wait URL, long-polled until
something changes; ``-6`` raises :class:`~megafast._tree.watch.SnTooOld`, ``-15``
:class:`~megafast.errors.SessionError`. :class:`AsyncWatcher` applies each packet to the
store with the one :func:`~megafast._tree.watch.apply_packet` and is an async iterator of
:class:`~megafast._tree.watch.ChangeEvent`s; on ``-6`` or a packet the store cannot apply it
reloads the whole tree through the ``reload`` coroutine it was given and yields a
``reload`` event. Packets are applied on the loop's thread, so code on the loop never sees
a half-applied change.
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
from .._tree.scanswer import SnTooOld, read_sc_answer
from .._tree.watch import POLL_TIMEOUT, ChangeEvent, apply_packet
from ..errors import MegaError, ValidationError
from ._api import AsyncApiClient

__all__ = ["AsyncScChannel", "AsyncWatcher"]

log = logging.getLogger("megafast.watch")
MAX_SC_ANSWER = 64 << 20  # bytes: one /sc answer at most


class AsyncScChannel:
    """Polls ``/sc`` for the session of ``api`` (its pool and its ``sid``) from ``sn``."""

    def __init__(
        self,
        api: AsyncApiClient,
        sn: str,
        *,
        timeout: float = POLL_TIMEOUT,
        retry_delay: float = 1.0,
    ) -> None:
        self.api = api
        self.sn = sn
        self.timeout = timeout
        self.retry_delay = retry_delay

    def __repr__(self) -> str:
        return f"AsyncScChannel(sn={self.sn!r})"  # never the session id

    async def poll(self, wait: bool = True) -> tuple[list[dict[str, Any]], bool]:
        """(packets, caught_up). Without ``wait``: ([], True) when nothing is pending."""
        if not self.api.sid:
            raise ValidationError("not logged in: log in before watching")
        delay = self.retry_delay
        while True:
            answer = await self._post(
                f"{self.api.api_url}/sc", {"sn": self.sn, "sid": self.api.sid}
            )
            step = read_sc_answer(answer, wait)
            if step.retry:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = self.retry_delay
            if step.sn is not None:
                self.sn = step.sn
            if step.packets is not None:
                return step.packets, step.caught_up
            assert step.wait_url is not None
            if await self._post(step.wait_url, None, parse=False) is None:
                await asyncio.sleep(self.retry_delay)

    async def _post(self, url: str, params: dict[str, str] | None, parse: bool = True) -> Any:
        """The JSON answer of one POST, or None when it failed (logged; the caller waits)."""
        from .._wire.api import _parse

        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self.api.session.post(
                url, params=params, data=b"", timeout=timeout, allow_redirects=False
            ) as resp:
                if resp.status != 200:
                    return None
                raw = bytearray()
                while piece := await resp.content.readany():
                    raw += piece
                    if len(raw) > MAX_SC_ANSWER:
                        raise ValidationError(f"an sc answer is longer than {MAX_SC_ANSWER} bytes")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.info("sc poll failed (%s); retrying", type(exc).__name__)
            return None
        if not parse:
            return True
        try:
            return _parse(raw) if raw.strip() else None
        except MegaError:
            log.info("sc answer is not JSON; retrying")
            return None


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

    def __aiter__(self) -> AsyncWatcher:
        return self

    async def __anext__(self) -> ChangeEvent:
        while not self._ready:
            if self._closed:
                raise StopAsyncIteration
            events, _ = await self._poll(wait=True)
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
