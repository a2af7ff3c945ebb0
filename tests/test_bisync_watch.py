"""``--watch``: a two-way sync that keeps running, against the emulator: local writes reach
MEGA, another client's changes reach the disk, a network loss is survived, events are
JSON lines."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast.sync import TwoWaySync, WatchLoop
from support.sync import PASSWORD, new_account, running_emulator, write

pytest.importorskip("watchdog")

emu = pytest.fixture(scope="module", name="emu")(running_emulator)


def _until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def watched(emu: Any, tmp_path: Path) -> Iterator[tuple[WatchLoop, Any, Path, list[Any]]]:
    email, mega = new_account(emu)
    other = Mega(api_url=emu.api_url).login(email, PASSWORD)
    local = tmp_path / "local"
    local.mkdir()
    events: list[dict[str, Any]] = []
    loop = WatchLoop(
        TwoWaySync(mega, local, "/w", state_dir=tmp_path / "st"), debounce=0.1, emit=events.append
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    _until(lambda: loop.passes >= 1)
    yield loop, other, local, events
    loop.stop()
    thread.join(20)
    assert not thread.is_alive()


def _remote_file(other: Any, path: str) -> Any:
    other.refresh()
    return other.find(path)


def test_a_local_write_reaches_mega_and_a_remote_change_reaches_the_disk(watched, tmp_path):
    loop, other, local, events = watched
    write(local / "sub" / "hello.txt", "hi")
    found = _until(lambda: _remote_file(other, "w/sub/hello.txt"))
    assert found[1]["s"] == 2
    folder = other.find_path_descriptor("w")
    other.upload(str(write(tmp_path / "up" / "from-mega.txt", "remote!")), folder)
    _until(lambda: (local / "from-mega.txt").exists())
    assert (local / "from-mega.txt").read_text() == "remote!"
    (local / "sub" / "hello.txt").unlink()
    _until(lambda: not _remote_file(other, "w/sub/hello.txt"))
    kinds = {e["event"] for e in events}
    assert {"start", "change", "sync"} <= kinds
    json.dumps(events)  # every event is one JSON object


def test_survives_a_network_loss(emu, watched):
    loop, other, local, events = watched
    emu.set_faults(api_error_rate=1.0, api_error_statuses=(503,))  # every API call fails
    try:
        write(local / "during-outage.txt", "x")
        time.sleep(3)
    finally:
        emu.clear_faults()
    _until(lambda: _remote_file(other, "w/during-outage.txt"), timeout=90)
    assert loop.stopped.is_set() is False


def test_a_restart_carries_on_from_the_state(emu, tmp_path):
    email, mega = new_account(emu)
    local = tmp_path / "local"
    write(local / "a.txt", "a")
    write(local / "b.txt", "b")
    job = TwoWaySync(mega, local, "/w", state_dir=tmp_path / "st")
    loop = WatchLoop(job, debounce=0.1)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    _until(lambda: loop.passes >= 1)
    loop.stop()
    thread.join(20)
    (local / "a.txt").unlink()  # while nothing watches
    report = TwoWaySync(mega, local, "/w", state_dir=tmp_path / "st", max_delete=100).run()
    assert report.count("delete") == 1  # the state says a.txt was agreed: a deletion
