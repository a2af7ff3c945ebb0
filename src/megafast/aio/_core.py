"""The core under AsyncMega: :class:`LoopCore`, a :class:`~megafast._account.core.Core`
whose requests are answered by the async API client on the event loop.

AsyncMega keeps the session, the keyring and the live tree in a Core, as every front end
does, and hands out the core's typed nodes. Its own I/O is async (aiohttp, the batcher, the
streamed listing); the core's synchronous operations that it reuses as they are (a folder
export's ``s2``, logins) run in a worker thread, where ``request``/``batch`` wait for the
loop to send them. Called on the loop's own thread they would block it, so they refuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import requests

from .._account.core import Core
from .._account.livetree import LiveTree
from .._tree.nodes import Keyring, NodeTree
from .._tree.nodestore import NodeStore
from ..errors import MegaError
from ._api import AsyncApiClient
from ._bridge import call_from_thread

__all__ = ["LoopCore"]

T = TypeVar("T")


class LoopCore(Core):
    """A Core for one event loop: ``request``/``batch`` go through ``api`` (aiohttp) on
    ``loop`` and may be called from worker threads only; the tree is set by AsyncMega's
    streamed listing (:meth:`use_store`), never loaded synchronously."""

    def __init__(
        self, options: dict[str, Any], api: AsyncApiClient, http: requests.Session
    ) -> None:
        super().__init__(options, http=http)
        self.async_api = api
        self.loop: asyncio.AbstractEventLoop | None = None

    def request(self, command: dict[str, Any], folder: str | None = None) -> Any:
        return self._wait(self.async_api.request(command, folder=folder))

    def batch(self, commands: list[dict[str, Any]]) -> list[Any]:
        return self._wait(self.async_api.batch(commands))

    def refresh(self) -> None:
        raise MegaError("the tree of AsyncMega is listed with: await m.refresh()")

    def use_store(self, store: NodeStore, keyring: Keyring) -> None:
        """Make ``store`` (listed with ``keyring``) the live tree."""
        if self.live is not None and self.live.keyring is keyring:
            self.live.tree.store = store
            return
        tree = NodeTree(store, keyring)
        tree.own_clock = self.async_api.own_seqtags.latest
        self.live = LiveTree(tree, keyring, None)

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            coro.close()
            raise MegaError("a blocking call of the core on the event loop's thread")
        return call_from_thread(loop, coro)
