"""Batches answered per command as MEGA does (PROTOCOL Part 2, §1), the batch-size cap, latency
on every kind of request, and the per-address connection limit, over raw HTTP."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from megafast import crypto as mc
from megafast.testing import MegaEmulator
from megafast.testing._serve import build_parser, emulator_options
from test_emulator_support import logged_in


def test_one_bad_g_in_a_batch_of_50_fails_only_its_slot(emu: MegaEmulator) -> None:
    c = logged_in(emu, "batch@example.com")
    handles = [emu.add_file("batch@example.com", b"x" * i, f"f{i}")[0] for i in range(1, 50)]
    batch = [{"a": "g", "n": h, "g": 1} for h in handles]
    batch.insert(17, {"a": "g", "n": "AAAAAAAA", "g": 1})
    answer = c.cs(batch)
    assert isinstance(answer, list) and len(answer) == 50
    assert answer[17] == -9
    others = answer[:17] + answer[18:]
    assert all(isinstance(a, dict) and a["g"].startswith(emu.api_url) for a in others)
    assert [a["s"] for a in others] == list(range(1, 50))


def test_a_failing_command_does_not_undo_the_others(emu: MegaEmulator) -> None:
    c = logged_in(emu, "mixed@example.com")
    root = c.root()
    bad = c.new_node("bad", mc.random_key(4))
    bad["p"] = "nowhere!"
    answer = c.cs(
        [
            {"a": "p", "t": root, "n": [c.new_node("one", mc.random_key(4))]},
            {"a": "p", "t": root, "n": [bad]},
            {"a": "nosuchcommand"},
            {"a": "p", "t": root, "n": [c.new_node("two", mc.random_key(4))]},
        ]
    )
    assert answer[1] == -2 and answer[2] == -2
    names = {c.name(n) for n in c.files()["f"] if n["t"] == 1}
    assert names == {"one", "two"}


def test_batch_level_eagain_stays_a_single_number(emu: MegaEmulator) -> None:
    c = logged_in(emu, "eagain@example.com")
    emu.set_faults(api_eagain_rate=1.0, api_eagain_limit=1)
    assert c.cs([{"a": "uq"}, {"a": "ug"}]) == -3
    assert isinstance(c.cs([{"a": "uq"}, {"a": "ug"}]), list)


@pytest.mark.parametrize("status", [200, 429, 503])
def test_batches_over_the_cap_are_refused_whole(emu: MegaEmulator, status: int) -> None:
    c = logged_in(emu, f"cap{status}@example.com")
    emu.set_faults(max_batch=10, max_batch_status=status)
    resp = c.post([{"a": "uq"}] * 11)
    if status == 200:
        assert resp.status_code == 200 and resp.json() == -3
    else:
        assert resp.status_code == status and resp.content == b""
    assert len(c.cs([{"a": "uq"}] * 10)) == 10
    assert emu.stats()["api_batch_refused"] == 1
    with pytest.raises(ValueError):
        emu.set_faults(max_batch=0)
    with pytest.raises(ValueError):
        emu.set_faults(max_batch_status=500)


def test_latency_delays_api_sc_download_and_upload_answers(emu: MegaEmulator) -> None:
    c = logged_in(emu, "slow@example.com")
    h, _ = emu.add_file("slow@example.com", b"z" * 1000, "z")
    dl = emu.download_url(h)
    ul = emu.upload_url("slow@example.com", 10)
    sn = c.files()["sn"]
    emu.set_faults(latency=0.2)

    def timed(call) -> float:
        began = time.monotonic()
        resp = call()
        assert resp.status_code == 200
        return time.monotonic() - began

    assert timed(lambda: c.post([{"a": "uq"}])) >= 0.2
    assert timed(lambda: requests.get(dl, timeout=30)) >= 0.2
    assert timed(lambda: requests.get(dl + "/0-99", timeout=30)) >= 0.2
    assert timed(lambda: requests.post(f"{ul}/0", data=b"0123456789", timeout=30)) >= 0.2
    assert timed(lambda: requests.post(f"{emu.api_url}/sc?sn={sn}&sid={c.sid}")) >= 0.2


def _http_get(sock: socket.socket) -> bytes:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock.recv(4096)


def test_connections_beyond_the_per_address_limit_get_429(emu: MegaEmulator) -> None:
    emu.set_faults(max_connections_per_ip=2)
    first = socket.create_connection(("127.0.0.1", emu.port), timeout=10)
    second = socket.create_connection(("127.0.0.1", emu.port), timeout=10)
    try:
        assert _http_get(first).startswith(b"HTTP/1.1 200")
        assert _http_get(second).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as third:
            assert _http_get(third).startswith(b"HTTP/1.1 429")
            assert third.recv(10) == b""  # and it is closed
        assert emu.stats()["connections_refused"] == 1
    finally:
        first.close()
    deadline = time.monotonic() + 5
    while True:  # the server notices the closed connection, then a new one is welcome
        with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as again:
            if _http_get(again).startswith(b"HTTP/1.1 200"):
                break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second.close()
    emu.set_faults(max_connections_per_ip=None)


def test_serve_turns_its_options_into_emulator_settings() -> None:
    args = build_parser().parse_args(
        [
            "--latency",
            "0.05",
            "--max-batch",
            "100",
            "--max-batch-status",
            "429",
            "--max-connections-per-ip",
            "8",
            "--sc-log-size",
            "500",
            "--sc-wait-timeout",
            "20",
        ]
    )
    options = emulator_options(args)
    assert options["faults"]["latency"] == 0.05
    assert options["faults"]["max_batch"] == 100
    assert options["faults"]["max_batch_status"] == 429
    assert options["faults"]["max_connections_per_ip"] == 8
    assert options["sc_log_size"] == 500 and options["sc_wait_timeout"] == 20
    with MegaEmulator(**options) as emu:
        assert emu.faults.latency == 0.05 and emu.faults.max_batch == 100
