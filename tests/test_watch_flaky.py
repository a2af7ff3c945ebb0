"""A bounded ``/sc`` catch-up (issue 18): a channel that keeps failing raises after
``max_failures`` polls in a row instead of retrying without end, and a watcher reports
``disconnected`` (with the seconds until it tries again), keeps going, and reports
``reconnected`` when ``/sc`` answers again."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from megafast._tree.watch import ChangeEvent, ScChannel, ScDisconnected, Watcher
from megafast._wire.retry import RetryPolicy
from megafast.errors import RetryExhaustedError
from synthetic_listing import Account
from test_watch import ScServer, listing, renamed

FAST = RetryPolicy.fast()


@pytest.fixture()
def server() -> Iterator[ScServer]:
    srv = ScServer(hold=0.5)
    yield srv
    srv.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_catch_up_gives_up_after_max_failures_on_a_dead_server(acct: Account) -> None:
    store, keyring = listing(acct)
    channel = ScChannel(
        f"http://127.0.0.1:{_closed_port()}", "SID", store.sn or "", retry=FAST, max_failures=3
    )
    watcher = Watcher(store, keyring, channel, lambda: store)
    started = time.monotonic()
    with pytest.raises(ScDisconnected) as info:
        watcher.catch_up()
    assert isinstance(info.value, RetryExhaustedError)
    assert "4 times" in str(info.value) and "SID" not in str(info.value)
    assert time.monotonic() - started < 10


def test_eagain_counts_as_a_failure_and_a_success_resets_the_count(server: ScServer) -> None:
    channel = ScChannel(server.url, "SID", "SN1", retry=FAST, max_failures=2)
    for _ in range(2):
        server.push(-3)
    server.push({"a": [{"a": "d", "n": "x"}], "sn": "SN2"})
    assert channel.poll() == ([{"a": "d", "n": "x"}], True)  # two failures: still within
    assert channel.failures == 0
    for _ in range(3):
        server.push(-3)
    with pytest.raises(ScDisconnected):
        channel.poll()


@pytest.fixture()
def acct() -> Account:
    return Account()


def test_watcher_reports_disconnected_and_keeps_going(
    server: ScServer, acct: Account, caplog: pytest.LogCaptureFixture
) -> None:
    store, keyring = listing(acct)
    channel = ScChannel(server.url, "SID", "SN000000001", retry=FAST, max_failures=2)
    watcher = Watcher(store, keyring, channel, lambda: store)
    for _ in range(3):
        server.push(-3)  # three failures in a row: one more than the channel allows
    server.push({"a": [{"a": "u", "n": "F0000000", "at": renamed(store, "F0000000", "g.txt")}]})
    events: list[ChangeEvent] = []

    def collect() -> None:
        for event in watcher:
            events.append(event)
            if event.kind == "update":
                watcher.stop()

    with caplog.at_level(logging.WARNING, logger="megafast.watch"):
        thread = threading.Thread(target=collect, daemon=True)
        thread.start()
        thread.join(timeout=20)
    assert not thread.is_alive()
    kinds = [e.kind for e in events]
    assert kinds == ["disconnected", "reconnected", "update"], kinds
    gone = events[0]
    assert gone.retry_in == FAST.cap and "-3" in gone.packet
    assert "disconnected" in caplog.text and "retrying in" in caplog.text
    assert store.path_of("F0000000").endswith("a/b/g.txt")
