"""The watcher against the emulator's own /sc (skipped while the emulator has none): changes
made by another logged-in session (mkdir, upload, rename, move, delete) reach the watching
store within a second each, and the store then equals a fresh listing."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from megafast import Mega
from megafast._tree.listing import load_listing
from megafast._tree.nodes import Keyring
from megafast._tree.nodestore import NodeStore
from megafast._tree.watch import ChangeEvent, ScChannel, Watcher
from megafast.testing import MegaEmulator

EMAIL, PASSWORD = "watcher@example.com", "watch pw"


def listing(emu: MegaEmulator, sid: str, keyring: Keyring) -> NodeStore:
    with requests.post(
        f"{emu.api_url}/cs?id={time.monotonic_ns()}&sid={sid}",
        json=[{"a": "f", "c": 1, "r": 1}],
        stream=True,
        timeout=30,
    ) as response:
        store, _ = load_listing(response.iter_content(1 << 16), keyring)
    return store


@pytest.fixture()
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emulator:
        probe = requests.post(f"{emulator.api_url}/sc?sn=AAAAAAAAAAA&sid=x", timeout=10)
        if probe.status_code == 404:
            pytest.skip("this emulator has no /sc yet")
        if hasattr(emulator, "configure_sc"):
            emulator.configure_sc(wait_timeout=1.0)  # the watcher stops within a second
        yield emulator


def test_changes_by_another_session_reach_the_watcher(emu: MegaEmulator) -> None:
    acc = emu.create_account(EMAIL, PASSWORD)
    sid = emu.create_session(EMAIL)
    keyring = Keyring(acc.master_key, acc.handle)
    store = listing(emu, sid, keyring)
    assert store.sn
    watcher = Watcher(
        store,
        keyring,
        ScChannel(emu.api_url, sid, store.sn, timeout=10),
        lambda: listing(emu, sid, Keyring(acc.master_key, acc.handle)),
    )
    seen: queue.Queue[tuple[ChangeEvent, float]] = queue.Queue()
    thread = watcher.start(lambda e: seen.put((e, time.monotonic())))
    other = Mega(api_url=emu.api_url).login(EMAIL, PASSWORD)

    def expect(kind: str, timeout: float = 1.0) -> ChangeEvent:
        sent = time.monotonic()
        while True:
            event, at = seen.get(timeout=10)
            if event.kind == kind:
                assert at - sent < timeout, f"{kind} seen after {at - sent:.2f} s"
                return event
            assert event.kind != "reload", "a change forced a full reload"

    try:
        time.sleep(0.2)
        other.create_folder("docs")
        event = expect("new")
        assert event.path == "Cloud Drive/docs"
        docs = event.handle
        emu.add_file(EMAIL, b"hello world", "a.txt", docs)
        assert expect("new").path == "Cloud Drive/docs/a.txt"
        file_handle = watcher.store.find_path("docs/a.txt")
        other.refresh()  # the other session learns of the file added by the emulator
        other.rename(other.find("docs/a.txt"), "b.txt")
        expect("update")
        assert watcher.store.find_path("docs/b.txt") == file_handle
        other.move(other.find("docs/b.txt"), other.find("Cloud Drive") or 2)
        until(lambda: watcher.store.find_path("b.txt") == file_handle)
        other.destroy(other.find("b.txt"))
        until(lambda: file_handle not in watcher.store)
        assert watcher.store.find_path("docs") == docs
    finally:
        watcher.stop()
        thread.join(timeout=15)
    fresh = listing(emu, sid, Keyring(acc.master_key, acc.handle))
    assert _visible(watcher.store) == _visible(fresh)


def until(condition: Any, within: float = 1.0) -> None:
    """Wait for ``condition()`` (a change applied by the watcher thread), at most ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the change did not arrive in time"
        time.sleep(0.01)


def _visible(store: NodeStore) -> dict[str, Any]:
    return {h: {k: v for k, v in n.items() if k != "ts"} for h, n in store.visible().items()}
