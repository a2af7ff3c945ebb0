"""A bounded ``/sc`` catch-up for asyncio (issue 18), as the threaded watcher has it: the
channel gives up after ``max_failures`` failed polls in a row (ScDisconnected, a
RetryExhaustedError), and a watcher whose connections are really cut by the emulator yields
``disconnected`` (with ``retry_in``), keeps going, yields ``reconnected`` and keeps
delivering changes."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from megafast._tree.watch import ChangeEvent, ScDisconnected
from megafast._wire.retry import RetryPolicy
from megafast.aio import AsyncMega
from megafast.aio._api import AsyncApiClient
from megafast.aio._watch import AsyncScChannel, AsyncWatcher
from megafast.errors import RetryExhaustedError
from megafast.testing import MegaEmulator

pytestmark = [pytest.mark.asyncio, pytest.mark.filterwarnings("error")]

EMAIL, PASSWORD = "aio-watch-flaky@example.com", "pw"
FAST = RetryPolicy.fast()


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.configure_sc(wait_timeout=1.0)  # a long-poll lasts a second: a cut finds it open
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest_asyncio.fixture
async def m(emulator: MegaEmulator) -> AsyncIterator[AsyncMega]:
    emulator.clear_faults()
    async with AsyncMega(emulator.api_url) as client:
        await client.login(EMAIL, PASSWORD)
        yield client
    emulator.clear_faults()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_catch_up_gives_up_after_max_failures_on_a_dead_server() -> None:
    api = AsyncApiClient(f"http://127.0.0.1:{_closed_port()}")
    api.sid = "SECRETSID"
    channel = AsyncScChannel(api, "SN", retry=FAST, max_failures=3)
    started = time.monotonic()
    try:
        with pytest.raises(ScDisconnected) as info:
            await channel.poll(wait=False)
    finally:
        await api.close()
    assert isinstance(info.value, RetryExhaustedError)
    assert "4 times" in str(info.value) and "SECRETSID" not in str(info.value)
    assert info.value.retry_in == FAST.cap
    assert channel.failures == 0  # counting starts again
    assert time.monotonic() - started < 10


async def _next(watcher: AsyncWatcher) -> ChangeEvent:
    return await asyncio.wait_for(watcher.__anext__(), 30)


async def test_a_watcher_cut_by_the_server_reports_it_and_keeps_delivering(
    m: AsyncMega, emulator: MegaEmulator
) -> None:
    watcher = await m.watch()
    # the first failure in a row gives up: a cut during a long-poll makes the watcher report
    watcher.channel = AsyncScChannel(m.api, watcher.channel.sn, retry=FAST, max_failures=0)
    await watcher.catch_up()
    emulator.set_faults(cut_every=0.2)  # every connection, /sc's included, cut at once
    gone = await _next(watcher)
    assert gone.kind == "disconnected", gone
    assert gone.retry_in == FAST.cap and gone.packet
    emulator.set_faults(cut_every=None)  # the link is back
    emulator.add_folder(EMAIL, "after the cut")
    kinds = []
    while True:
        event = await _next(watcher)
        kinds.append(event.kind)
        if event.kind == "new":
            break
    assert kinds == ["reconnected", "new"], kinds
    assert event.path == "Cloud Drive/after the cut"
    assert await m.find("after the cut") is not None
    # it keeps going: a second change arrives on the same watcher
    emulator.add_folder(EMAIL, "later")
    later = await _next(watcher)
    assert (later.kind, later.path) == ("new", "Cloud Drive/later")
    await watcher.aclose()
