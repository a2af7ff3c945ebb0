"""A worker thread waiting on the event loop (``call_from_thread``) never waits for good: a
loop that stops or is closed before it answers ends the wait, as a timeout does."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from megafast.aio._bridge import call_from_thread
from megafast.transfer import TransferCancelled


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop running in a thread of its own (as a program's loop is, beside the workers)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    if not loop.is_closed():
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


async def _answer(value: int, delay: float = 0.0) -> int:
    await asyncio.sleep(delay)
    return value


def test_a_running_loop_answers(loop: asyncio.AbstractEventLoop) -> None:
    assert call_from_thread(loop, _answer(7)) == 7


def test_a_loop_that_stops_ends_the_wait(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_soon_threadsafe(loop.call_later, 0.2, loop.stop)
    started = time.monotonic()
    with pytest.raises(TransferCancelled):
        call_from_thread(loop, _answer(1, delay=60))
    assert time.monotonic() - started < 5


def test_a_closed_loop_is_refused_at_once() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    with pytest.raises(TransferCancelled):
        call_from_thread(loop, _answer(1))


def test_a_timeout_is_kept(loop: asyncio.AbstractEventLoop) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        call_from_thread(loop, _answer(1, delay=60), timeout=0.3)
    assert time.monotonic() - started < 3
