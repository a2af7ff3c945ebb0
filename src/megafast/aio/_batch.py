"""One ``/cs`` request per round trip for the commands of many tasks: :class:`AsyncBatcher`.

Tasks ``await batcher.call(command)``; one dispatcher task sends whatever is pending as a
single batch through :meth:`AsyncApiClient.batch` (same request id and body on every retry)
and resolves each caller from its own slot: a negative number (or ``{"err": N}``) fails that
command only. While a batch is in flight the next one gathers, so 1,000 concurrent
``get_link`` calls are a few requests. The size cap and its push-back rule are the threaded
:class:`megafast.transfer.CommandBatcher`'s: it halves when the server pushes back and grows
by one per clean batch; after a failed batch only read-only commands (``u``, ``g``) are sent
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from ..errors import MegaError, UnexpectedAnswerError
from ..transfer._batch import BatchRules, slot_error
from ._api import AsyncApiClient

__all__ = ["AsyncBatcher"]

logger = logging.getLogger("megafast.aio")


class _Pending:
    __slots__ = ("command", "future", "resends")

    def __init__(self, command: dict[str, Any], future: asyncio.Future[Any]) -> None:
        self.command = command
        self.future = future
        self.resends = 0


class AsyncBatcher(BatchRules):
    """Coalesce single commands from many tasks of one event loop into batches.

    ``api``: the :class:`AsyncApiClient`; ``folder``: a public folder handle (requests carry
    ``&n=``); ``max_batch``: the largest batch (commands), the cap starting at
    ``start_batch``. The dispatcher task starts on the first call and ends at :meth:`close`.
    """

    def __init__(
        self,
        api: AsyncApiClient,
        *,
        folder: str | None = None,
        max_batch: int = 1000,
        start_batch: int = 200,
    ) -> None:
        super().__init__(max_batch, start_batch)
        self.api = api
        self.folder = folder
        self._queue: deque[_Pending] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def call(self, command: dict[str, Any]) -> Any:
        """Send ``command`` in the next batch; its result, or its error raised."""
        return await self.submit(command)

    def submit(self, command: dict[str, Any]) -> asyncio.Future[Any]:
        """Queue one command (from the loop's thread); a future of its result."""
        if self._closed:
            raise MegaError("the command batcher is closed")
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="megafast-aio-batcher")
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Pending(command, future))
        assert self._wake is not None
        self._wake.set()
        return future

    async def close(self) -> None:
        """Stop: commands still queued fail with MegaError, the dispatcher task ends (a
        batch in flight is abandoned: its callers see CancelledError)."""
        self._closed = True
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(MegaError("the command batcher is closed"))
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the dispatcher task -----------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closed:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[_Pending] = []
            while self._queue and len(batch) < self.cap:
                item = self._queue.popleft()
                if not item.future.done():  # its caller may have been cancelled
                    batch.append(item)
            if batch:
                try:
                    await self._send(batch)
                except asyncio.CancelledError:
                    for item in batch:
                        item.future.cancel()
                    raise
                except BaseException as exc:  # noqa: BLE001 (never leave a caller waiting)
                    _fail(batch, exc)

    async def _send(self, batch: list[_Pending]) -> None:
        retries_before = self.api.stats.get("retries", 0)
        try:
            results = await self.api.batch([p.command for p in batch], folder=self.folder)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (handed to the waiting callers)
            self._failed(batch, exc)
            return
        if len(results) != len(batch):
            _fail(batch, UnexpectedAnswerError(f"a batch of {len(batch)} got a malformed answer"))
            return
        self._sent(len(batch), self.api.stats.get("retries", 0) > retries_before)
        for item, result in zip(batch, results, strict=True):
            if item.future.done():
                continue
            error = slot_error(result)
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)

    def _failed(self, batch: list[_Pending], exc: BaseException) -> None:
        again: list[_Pending] = self._resendable(batch, exc) or []
        _fail([item for item in batch if item not in again], exc)  # never a change twice
        if again:
            logger.info("batch of %d pushed back (%s); resending %d", len(batch), exc, len(again))
            self._queue.extendleft(reversed(again))


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)
