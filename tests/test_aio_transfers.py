"""AsyncMega's bridge to the threaded transfer engine: the loop keeps running during a
transfer, cancelling stops it within a second and leaves resumable state (the same call
resumes), a cancelled task leaves no half-written target and no running thread, and many
uploads at once share batched API requests."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast.aio import AsyncMega
from megafast.testing import MegaEmulator
from megafast.transfer import MiB, TransferConfig, part_paths

pytestmark = [pytest.mark.asyncio, pytest.mark.filterwarnings("error")]

EMAIL, PASSWORD = "transfers@example.com", "pw"
SIZE = 16 * MiB
SLOW = TransferConfig(connections=4, piece_size=1 * MiB, speed_limit=4 * MiB)
FAST = TransferConfig(connections=4, piece_size=1 * MiB)


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest.fixture(scope="module")
def big(emulator: MegaEmulator) -> tuple[str, bytes]:
    data = os.urandom(SIZE)
    handle, _ = emulator.add_file(EMAIL, data, "big.bin")
    return handle, data


def in_transfer_code() -> list[str]:
    """Names of the threads executing the transfer engine's code right now."""
    names = {t.ident: t.name for t in threading.enumerate()}
    busy = []
    for ident, frame in sys._current_frames().items():
        stack = traceback.extract_stack(frame)
        if any(f"{os.sep}transfer{os.sep}" in entry.filename for entry in stack):
            busy.append(names.get(ident, str(ident)))
    return busy


def engine_threads(before: set[int | None]) -> list[threading.Thread]:
    """Threads started since ``before`` that still run transfer work."""
    return [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and t.name.startswith("megafast")
    ]


async def test_cancel_stops_within_a_second_and_the_same_call_resumes(
    emulator: MegaEmulator, big: tuple[str, bytes], tmp_path: Path
) -> None:
    handle, data = big
    target = tmp_path / "big.bin"
    before = {t.ident for t in threading.enumerate()}
    async with AsyncMega(emulator.api_url, config=SLOW) as m:
        await m.login(EMAIL, PASSWORD)
        progress: list[int] = []
        task = asyncio.create_task(
            m.download(handle, tmp_path, progress=lambda done, _: progress.append(done))
        )
        await asyncio.sleep(1.5)
        assert progress, "progress reached the loop while the download ran"
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1.0
        assert not in_transfer_code()  # the engine's thread ended before the task did
        assert not target.exists()  # never half-written
        part, sidecar = part_paths(target)
        assert part.exists() and sidecar.exists()  # what the next call resumes from
    assert not engine_threads(before)
    emulator.reset_stats()
    async with AsyncMega(emulator.api_url, config=FAST) as m:
        await m.login(EMAIL, PASSWORD)
        path = await m.download(handle, tmp_path)
    assert path == target and target.read_bytes() == data
    assert emulator.stats()["download_bytes"] < SIZE  # resumed, not started over
    assert not part.exists() and not sidecar.exists()


async def test_cancelled_upload_resumes(emulator: MegaEmulator, tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    async with AsyncMega(emulator.api_url, config=SLOW) as m:
        await m.login(EMAIL, PASSWORD)
        task = asyncio.create_task(m.upload(src))
        await asyncio.sleep(1.5)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1.0
        assert not in_transfer_code()
    assert await_free_of(src, data)
    emulator.reset_stats()
    async with AsyncMega(emulator.api_url, config=FAST) as m:
        await m.login(EMAIL, PASSWORD)
        node = await m.upload(src)
        assert await m.download_bytes(node) == data
    assert emulator.stats()["upload_bytes"] < SIZE  # the pieces sent before were kept


def await_free_of(src: Path, data: bytes) -> bool:
    return src.read_bytes() == data  # the source is untouched


async def test_timeout_cancels_a_download(
    emulator: MegaEmulator, big: tuple[str, bytes], tmp_path: Path
) -> None:
    handle, _ = big
    async with AsyncMega(emulator.api_url, config=SLOW) as m:
        await m.login(EMAIL, PASSWORD)
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(m.download_bytes(handle), 0.5)
        assert time.monotonic() - started < 1.5
    assert not (tmp_path / "big.bin").exists()


async def test_the_loop_runs_during_a_transfer(
    emulator: MegaEmulator, big: tuple[str, bytes]
) -> None:
    handle, data = big
    lags: list[float] = []

    async def beat() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - start - 0.005)

    async with AsyncMega(emulator.api_url, config=FAST) as m:
        await m.login(EMAIL, PASSWORD)
        ticker = asyncio.create_task(beat())
        await asyncio.sleep(0)  # the ticker has started
        started = time.perf_counter()
        try:
            assert await m.download_bytes(handle) == data
        finally:
            elapsed = time.perf_counter() - started
            ticker.cancel()
    # the loop kept turning: at least one 5 ms beat for every 50 ms of the transfer, however
    # long it took (the lag figures are the benchmark's job)
    assert lags and len(lags) >= int(elapsed / 0.05), (len(lags), elapsed)


async def test_gathered_uploads_share_requests(emulator: MegaEmulator) -> None:
    async with AsyncMega(emulator.api_url) as m:
        await m.login(EMAIL, PASSWORD)
        folder = await m.create_folder("gathered")
        emulator.reset_stats()
        nodes = await asyncio.gather(
            *(m.upload_bytes(os.urandom(4096), f"f{i}.bin", folder) for i in range(100))
        )
        requests = emulator.stats()["api_requests"]
    assert len({n.handle for n in nodes}) == 100
    assert requests <= 40  # u and p batched: far fewer than 200 single commands
