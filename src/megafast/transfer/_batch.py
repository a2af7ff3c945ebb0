"""One ``/cs`` request per round trip for the commands of many workers.

Workers :meth:`CommandBatcher.submit` single commands (``u``, ``g``, ``p``, ``m``, ``d``...)
and get a :class:`concurrent.futures.Future`; one dispatcher thread sends whatever is
pending as a single batch through :meth:`megafast._wire.api.ApiClient.batch` (which retries a
batch with the same request id and body) and resolves each future from its own slot: a
negative number (or ``{"err": N}``) fails that command only.

The batch size is capped. The cap halves when the server pushes back (the batch needed
retries for ``-3``/429/503, or failed as a whole with such an error) and grows back by one
command per clean batch.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Protocol

from ..errors import (
    MegaError,
    RequestError,
    RetryExhaustedError,
    UnexpectedAnswerError,
    error_for_code,
)

logger = logging.getLogger("megafast.transfer")

#: commands a failed batch may send again in a smaller one (they change nothing on the server)
_READ_ONLY = frozenset({"u", "g"})
_MAX_RESENDS = 3


class BatchApi(Protocol):
    """What the dispatcher needs of :class:`megafast._wire.api.ApiClient`."""

    stats: dict[str, int]

    def batch(self, commands: Any, *, folder: str | None = None) -> list[Any]: ...


def slot_error(result: Any) -> RequestError | None:
    """The error a batch slot carries (``-N`` or ``{"err": N}``), or None for a result."""
    if isinstance(result, int) and not isinstance(result, bool) and result < 0:
        return error_for_code(result)
    if isinstance(result, dict) and isinstance(result.get("err"), int) and result["err"] < 0:
        return error_for_code(result["err"])
    return None


def _pushed_back(exc: BaseException) -> bool:
    code = getattr(exc, "code", None)
    return isinstance(exc, RetryExhaustedError) or code in (-3, -4, "HTTP 429", "HTTP 503")


class BatchRules:
    """The batching rules without I/O, shared by CommandBatcher (threads) and aio's
    AsyncBatcher: the cap (commands per batch) starts at ``start_batch``, grows by one per
    batch sent without retries up to ``max_batch`` and halves when a batch was retried or
    pushed back; a pushed-back batch resends its read-only commands (``u``, ``g``) up to
    ``_MAX_RESENDS`` times each, never a change."""

    def __init__(self, max_batch: int, start_batch: int) -> None:
        if not 1 <= start_batch <= max_batch:
            raise ValueError("need 1 <= start_batch <= max_batch")
        self.max_batch = max_batch
        self.cap = start_batch
        self.stats = {"batches": 0, "commands": 0, "shrinks": 0}

    def _sent(self, count: int, retried: bool) -> None:
        """Count a batch of ``count`` commands that was answered (``retried``: on a retry)."""
        self.stats["batches"] += 1
        self.stats["commands"] += count
        if retried:
            self._shrink()
        elif self.cap < self.max_batch:
            self.cap += 1

    def _shrink(self) -> None:
        self.cap = max(1, self.cap // 2)
        self.stats["shrinks"] += 1

    def _resendable(self, batch: list[Any], exc: BaseException) -> list[Any] | None:
        """After a batch failed with ``exc``: None when every command fails with it, else the
        commands to send again (their ``resends`` counted; the others fail with ``exc``)."""
        if not _pushed_back(exc) or len(batch) == 1:
            return None
        self._shrink()
        again = []
        for item in batch:
            if item.command.get("a") in _READ_ONLY and item.resends < _MAX_RESENDS:
                item.resends += 1
                again.append(item)
        return again


class _Pending:
    __slots__ = ("command", "future", "resends")

    def __init__(self, command: dict[str, Any], future: Future[Any]) -> None:
        self.command = command
        self.future = future
        self.resends = 0


class CommandBatcher(BatchRules):
    """Coalesce single API commands from many threads into batches.

    ``api``: the :class:`~megafast._wire.api.ApiClient` (its ``batch`` and ``stats``);
    ``folder``: a public folder handle (requests carry ``&n=`` instead of the session);
    ``max_batch``: the largest batch (commands); the cap starts at ``start_batch``.
    """

    def __init__(
        self,
        api: BatchApi,
        *,
        folder: str | None = None,
        max_batch: int = 1000,
        start_batch: int = 200,
    ) -> None:
        super().__init__(max_batch, start_batch)
        self.api = api
        self.folder = folder
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="megafast-batcher", daemon=True)
        self._thread.start()

    def submit(self, command: dict[str, Any]) -> Future[Any]:
        """Queue one command; the future gives its result or raises its error."""
        future: Future[Any] = Future()
        with self._cond:
            if self._closed:
                raise MegaError("the command batcher is closed")
            self._queue.append(_Pending(command, future))
            self._cond.notify()
        return future

    def call(self, command: dict[str, Any], timeout: float | None = None) -> Any:
        """Send one command in the next batch and wait for its result."""
        return self.submit(command).result(timeout)

    def close(self, cancel: BaseException | None = None) -> None:
        """Stop taking commands. Those queued are still sent and the thread is waited for;
        with ``cancel`` they fail with that error instead and nothing is waited for (a batch
        in flight still completes in the background)."""
        with self._cond:
            self._closed = True
            if cancel is not None:
                while self._queue:
                    item = self._queue.popleft()
                    if item.future.set_running_or_notify_cancel():
                        item.future.set_exception(cancel)
            self._cond.notify_all()
        if cancel is None and threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> CommandBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the dispatcher thread -------------------------------------------------------------
    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            batch: list[_Pending] = []
            while self._queue and len(batch) < self.cap:
                item = self._queue.popleft()
                if item.future.set_running_or_notify_cancel():
                    batch.append(item)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if batch:
                try:
                    self._send(batch)
                except BaseException as exc:  # noqa: BLE001 (never leave a worker waiting)
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)

    def _send(self, batch: list[_Pending]) -> None:
        retries_before = self.api.stats.get("retries", 0)
        try:
            results = self.api.batch([p.command for p in batch], folder=self.folder)
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting workers)
            self._failed(batch, exc)
            return
        if not isinstance(results, list) or len(results) != len(batch):
            bad = UnexpectedAnswerError(f"a batch of {len(batch)} got a malformed answer")
            for item in batch:
                item.future.set_exception(bad)
            return
        self._sent(len(batch), self.api.stats.get("retries", 0) > retries_before)
        for item, result in zip(batch, results, strict=True):
            error = slot_error(result)
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)

    def _failed(self, batch: list[_Pending], exc: BaseException) -> None:
        again: list[_Pending] = self._resendable(batch, exc) or []
        for item in batch:
            if item not in again:  # it may have been done: never send a change twice
                item.future.set_exception(exc)
        if again:
            logger.info("batch of %d pushed back (%s); resending %d", len(batch), exc, len(again))
            with self._cond:
                # back to the front, as new futures: the old ones are already running
                for item in reversed(again):
                    fresh = _Pending(item.command, Future())
                    fresh.resends = item.resends
                    fresh.future.add_done_callback(_chain(item.future))
                    self._queue.appendleft(fresh)


def _chain(target: Future[Any]) -> Any:
    def copy(source: Future[Any]) -> None:
        exc = source.exception()
        if exc is not None:
            target.set_exception(exc)
        else:
            target.set_result(source.result())

    return copy
