"""The threaded transfer engine, awaited: :func:`run_in_thread` and :class:`LoopProgress`.

A transfer runs in a worker thread of the client's executor (its kernels run without the
GIL), so awaiting it never blocks the loop. Its progress callbacks, called in engine
threads, reach the loop through ``call_soon_threadsafe``, folded so that at most one
callback is pending at a time (the newest figures win). Cancelling the awaiting task sets
the engine's ``cancel`` event: the engine stops within about 0.1 s, keeping a multi-range
transfer's part file and sidecar so the same call later resumes, and the task waits for the
thread to end before it re-raises: no thread is left running, and the target file is never
half-written (a download is renamed into place only after its MAC verified).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar

from ..transfer import TransferCancelled

__all__ = ["LoopProgress", "run_in_thread", "call_from_thread"]

T = TypeVar("T")
Progress = Callable[[int, int], Any]


class LoopProgress:
    """An engine progress callback (``(done, total)`` bytes, from any thread) that calls
    ``callback`` on the loop's thread; a coroutine function's result is awaited as a task."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Progress | None) -> None:
        self._loop = loop
        self._callback = callback
        self._lock = threading.Lock()
        self._latest: tuple[int, int] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def __call__(self, done: int, total: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            pending = self._latest is not None
            self._latest = (done, total)
        if not pending:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody listens any more
                self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            latest, self._latest = self._latest, None
        if latest is None or self._callback is None:
            return
        result = self._callback(*latest)
        if asyncio.iscoroutine(result):
            task = self._loop.create_task(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def flush(self) -> None:
        """Deliver the newest figures now (on the loop's thread, after the transfer)."""
        self._deliver()


async def run_in_thread(
    executor: Executor,
    job: Callable[[threading.Event], T],
) -> T:
    """``job(cancel_event)`` in a worker thread of ``executor``, awaited. A cancelled task
    sets the event, waits for the job to end (or takes it off the queue when it has not
    started), and re-raises CancelledError."""
    cancel = threading.Event()
    work = executor.submit(job, cancel)
    future = asyncio.wrap_future(work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        if not work.cancel():  # running: it ends within ~0.1 s of the event
            await asyncio.wait([future])
            if not future.cancelled():
                future.exception()  # retrieved (TransferCancelled): the cancel is the answer
        raise


#: Seconds between two looks at whether the loop still runs, while a thread waits on it.
LOOP_CHECK_SECONDS = 0.5


def call_from_thread(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], timeout: float | None = None
) -> T:
    """Run ``coro`` on ``loop`` from a worker thread and wait for its result (an engine's
    ``get_url(refresh=True)`` asks the API through the client's batcher this way).

    A loop that stops or closes before it runs ``coro`` (the program is ending) would leave
    the thread waiting for good: it is looked at every :data:`LOOP_CHECK_SECONDS`, and then
    the call raises :class:`~megafast.transfer.TransferCancelled`. ``timeout`` (seconds)
    raises :class:`TimeoutError`."""
    if loop.is_closed():
        coro.close()
        raise TransferCancelled("the event loop is closed")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = LOOP_CHECK_SECONDS
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - time.monotonic()))
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                future.cancel()
                raise TimeoutError(f"the event loop did not answer within {timeout:g} s") from None
            if loop.is_closed() or not loop.is_running():
                future.cancel()
                raise TransferCancelled("the event loop stopped before it answered") from None
