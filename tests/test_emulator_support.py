"""The raw client the emulator tests use (tests/support/raw_client.py) and the emulator's
idle wait."""

from __future__ import annotations

import threading
import time

import requests

from megafast.testing import MegaEmulator
from support.raw_client import RawClient


def logged_in(emu: MegaEmulator, email: str, password: str = "pw") -> RawClient:
    """A new account on ``emu`` and a RawClient logged in to it."""
    emu.create_account(email, password)
    c = RawClient(emu.api_url)
    c.login(email, password)
    return c


def test_raw_client_logs_in_and_lists_three_roots(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("support@example.com", "pw")
    assert isinstance(client.login("support@example.com", "pw"), dict)
    types = sorted(n["t"] for n in client.files()["f"])
    assert types == [2, 3, 4]


def test_wait_idle_waits_for_transfers_in_flight(emu) -> None:
    emu.create_account("idle@example.com", "pw")
    handle, _ = emu.add_file("idle@example.com", b"x" * (1 << 20), "big.bin")
    url = emu.download_url(handle)
    emu.set_faults(bandwidth=256 << 10)  # about 4 s for the whole file
    t = threading.Thread(target=lambda: requests.get(url, timeout=30).content)
    t.start()
    deadline = time.monotonic() + 10
    while not emu.stats()["active_transfers"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.stats()["active_transfers"] == 1
    emu.clear_faults()
    emu.wait_idle(timeout=20)
    assert emu.stats()["active_transfers"] == 0
    assert emu.stats()["download_bytes"] == 1 << 20
    t.join()
