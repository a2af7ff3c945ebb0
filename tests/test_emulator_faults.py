"""Fault and throttle knobs of the emulator, and the hashcash gate."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from megafast import crypto as mc
from megafast.testing import Faults, MegaEmulator
from support.raw_client import RawClient

EMAIL = "f@example.com"


@pytest.fixture
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator(faults={"seed": 1}) as e:
        e.create_account(EMAIL, "pw")
        yield e


def _file(emu: MegaEmulator, size: int = 200_000) -> tuple[str, bytes]:
    h, _ = emu.add_file(EMAIL, os.urandom(size), "x")
    return emu.download_url(h), emu.stored_blob(h)


def test_eagain_on_api_calls_then_the_retry_with_the_same_id_passes(emu: MegaEmulator) -> None:
    emu.set_faults(api_eagain_rate=1.0, api_eagain_limit=2)
    c = RawClient(emu.api_url)
    cmd = [{"a": "us0", "user": EMAIL}]
    assert c.cs(cmd, rid="5") == -3
    assert c.cs(cmd, rid="5") == -3
    assert c.cs(cmd, rid="5")[0]["v"] == 2
    assert emu.fault_counts == {"api_eagain": 2}


def test_http_errors_on_api_calls_before_the_batch_runs(emu: MegaEmulator) -> None:
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    emu.set_faults(api_error_rate=1.0, api_error_limit=3, api_error_statuses=(500, 503, 429))
    root = emu.root_handle(EMAIL)
    folders_before = len([n for n in emu.nodes(EMAIL) if n["t"] == 1])
    cmd = [{"a": "p", "t": root, "n": [{"h": "xxxxxxxx", "t": 1, "a": "AAAA", "k": "AAAA"}]}]
    statuses = [c.post(cmd, rid="77").status_code for _ in range(3)]
    assert set(statuses) <= {500, 503, 429} and all(s != 200 for s in statuses)
    # nothing ran: no folder yet; the retry with the same id is answered normally
    assert len([n for n in emu.nodes(EMAIL) if n["t"] == 1]) == folders_before
    assert isinstance(c.cs(cmd, rid="77")[0], dict)
    assert len([n for n in emu.nodes(EMAIL) if n["t"] == 1]) == folders_before + 1
    assert emu.fault_counts == {"api_error": 3}
    assert emu.stats()["api_http_error"] == 3


def test_http_errors_after_the_batch_ran_lose_only_the_answer(emu: MegaEmulator) -> None:
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    emu.set_faults(api_error_rate=1.0, api_error_limit=1, api_error_after_processing=True)
    root = emu.root_handle(EMAIL)
    before = len(emu.nodes(EMAIL))
    cmd = [{"a": "p", "t": root, "n": [{"h": "xxxxxxxx", "t": 1, "a": "AAAA", "k": "AAAA"}]}]
    assert c.post(cmd, rid="78").status_code in (500, 503, 429)
    assert len(emu.nodes(EMAIL)) == before + 1  # it ran
    again = c.cs(cmd, rid="78")  # the same id: the kept answer, not a second folder
    assert isinstance(again[0], dict) and len(emu.nodes(EMAIL)) == before + 1
    assert emu.stats()["api_answers_lost"] == 1 and emu.stats()["api_replayed"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"api_error_rate": 2.0},
        {"api_error_limit": -1},
        {"api_error_statuses": (200,)},
        {"api_error_statuses": ()},
    ],
)
def test_api_error_settings_are_checked(emu: MegaEmulator, bad: dict) -> None:
    with pytest.raises(ValueError):
        emu.set_faults(**bad)


def test_eagain_rate_is_a_fraction(emu: MegaEmulator) -> None:
    emu.set_faults(api_eagain_rate=0.5, seed=7)
    c = RawClient(emu.api_url)
    answers = [c.cs([{"a": "us0", "user": EMAIL}]) for _ in range(60)]
    eagain = sum(1 for a in answers if a == -3)
    assert 10 < eagain < 50
    assert all(a == -3 or a[0]["v"] == 2 for a in answers)


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_http_errors_on_transfers(emu: MegaEmulator, direction: str) -> None:
    url, blob = _file(emu)
    piece = os.urandom(4 * 1024 * 1024)  # big enough that an unread body would reset
    up = emu.upload_url(EMAIL, len(piece))
    emu.set_faults(transfer_error_rate=1.0, transfer_error_limit=3, transfer_faults=direction)
    statuses = []
    with requests.Session() as http:  # keep-alive survives the errors
        for _ in range(3):
            if direction == "download":
                statuses.append(http.get(url, timeout=10).status_code)
            else:
                statuses.append(http.post(f"{up}/0", data=piece, timeout=10).status_code)
        assert set(statuses) <= {500, 503, 429} and len(statuses) == 3
        assert http.get(url, timeout=10).content == blob
        assert len(http.post(f"{up}/0", data=piece, timeout=10).text) == 48
    assert emu.fault_counts == {"transfer_error": 3}


def test_only_chosen_statuses(emu: MegaEmulator) -> None:
    url, _ = _file(emu, 100)
    emu.set_faults(transfer_error_rate=1.0, transfer_error_statuses=(503,))
    assert {requests.get(url, timeout=10).status_code for _ in range(5)} == {503}


def test_connection_dropped_after_n_bytes(emu: MegaEmulator) -> None:
    url, blob = _file(emu)
    emu.set_faults(drop_after_bytes=50_000, drop_limit=1)
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(blob)}".encode() in head
    assert body == blob[:50_000]
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        emu.set_faults(drop_limit=2)
        requests.get(url, timeout=10).content  # noqa: B018
    assert requests.get(url, timeout=10).content == blob
    assert emu.fault_counts == {"drop": 2}


def test_upload_connection_dropped(emu: MegaEmulator) -> None:
    up = emu.upload_url(EMAIL, 100_000)
    emu.set_faults(drop_after_bytes=1000, drop_limit=1, transfer_faults="upload")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{up}/0", data=os.urandom(100_000), timeout=10)
    assert len(requests.post(f"{up}/0", data=os.urandom(100_000), timeout=10).text) == 48


def test_corrupted_byte_in_a_download(emu: MegaEmulator) -> None:
    url, blob = _file(emu)
    emu.set_faults(corrupt_rate=1.0, corrupt_limit=1)
    bad = requests.get(url, timeout=10).content
    assert len(bad) == len(blob) and bad != blob
    assert sum(1 for a, b in zip(bad, blob, strict=True) if a != b) == 1
    assert requests.get(url, timeout=10).content == blob


def test_corruption_is_caught_by_the_mac(emu: MegaEmulator) -> None:
    data = os.urandom(400_000)
    h, packed = emu.add_file(EMAIL, data, "m")
    emu.set_faults(corrupt_rate=1.0, corrupt_limit=1)
    cipher = mc.FileCipher(packed, size=len(data))
    cipher.decrypt(requests.get(emu.download_url(h), timeout=10).content)
    with pytest.raises(ValueError):
        cipher.verify()


def test_transfer_quota_exceeded(emu: MegaEmulator) -> None:
    url, blob = _file(emu, 1000)
    h = emu.nodes(EMAIL)[-1]["h"]
    emu.set_faults(over_quota=True, over_quota_time_left=1234)
    r = requests.get(url, timeout=10)
    assert r.status_code == 509 and r.headers["X-MEGA-Time-Left"] == "1234"
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    assert "g" in c.one({"a": "g", "g": 1, "n": h})
    emu.set_faults(over_quota_in_g=True)
    res = c.one({"a": "g", "g": 1, "n": h})
    assert res["e"] == -17 and res["tl"] == 1234 and "g" not in res
    emu.set_faults(over_quota=False)
    assert requests.get(url, timeout=10).content == blob


def test_bandwidth_cap_per_connection(emu: MegaEmulator) -> None:
    url, blob = _file(emu, 300_000)
    emu.set_faults(bandwidth=1_000_000)
    t0 = time.monotonic()
    assert requests.get(url, timeout=10).content == blob
    assert time.monotonic() - t0 >= 0.25
    up = emu.upload_url(EMAIL, 200_000)
    t0 = time.monotonic()
    requests.post(f"{up}/0", data=os.urandom(200_000), timeout=10)
    assert time.monotonic() - t0 >= 0.15


def test_link_bandwidth_is_shared_by_every_connection(emu: MegaEmulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    files = [_file(emu, 300_000) for _ in range(2)]
    uploads = [emu.upload_url(EMAIL, 200_000) for _ in range(2)]
    emu.set_faults(link_bandwidth=1_000_000)
    with ThreadPoolExecutor(2) as pool:
        # two downloads at once share 1 MB/s: 600 KB take at least 0.6 s (each alone on
        # a per-connection cap of 1 MB/s would take 0.3 s)
        t0 = time.monotonic()
        got = list(pool.map(lambda f: requests.get(f[0], timeout=10).content, files))
        assert time.monotonic() - t0 >= 0.5
        assert got == [blob for _, blob in files]
        t0 = time.monotonic()
        answers = list(
            pool.map(
                lambda up: requests.post(f"{up}/0", data=os.urandom(200_000), timeout=10),
                uploads,
            )
        )
        assert time.monotonic() - t0 >= 0.35
        assert all(a.status_code == 200 for a in answers)


def test_added_latency(emu: MegaEmulator) -> None:
    emu.set_faults(latency=0.2)
    c = RawClient(emu.api_url)
    t0 = time.monotonic()
    c.cs([{"a": "us0", "user": EMAIL}])
    assert time.monotonic() - t0 >= 0.2
    emu.clear_faults()
    assert emu.faults == Faults()


@pytest.mark.parametrize(
    "bad",
    [
        {"api_eagain_rate": 1.5},
        {"transfer_error_statuses": (200,)},
        {"drop_after_bytes": -1},
        {"bandwidth": 0},
        {"link_bandwidth": -5},
        {"transfer_faults": "sideways"},
        {"no_such_knob": 1},
    ],
)
def test_nonsense_settings_are_refused(emu: MegaEmulator, bad: dict) -> None:
    with pytest.raises(ValueError):
        emu.set_faults(**bad)


# --- hashcash ----------------------------------------------------------------------------


def test_hashcash_answers_from_the_known_vectors_pass_the_check(external_vectors) -> None:
    from megafast.testing import _crypto

    for case in external_vectors["hashcash"]:
        _, easiness, _, token = case["challenge"].split(":")
        _, _, prefix = case["expect_answer"].split(":")
        tok = _crypto.b64decode(token)
        assert _crypto.check_hashcash_answer(tok, int(easiness), _crypto.b64decode(prefix))
        assert not _crypto.check_hashcash_answer(tok, int(easiness), b"\xff\xff\xff\xff")


def test_hashcash_gate(emu: MegaEmulator) -> None:
    emu.require_hashcash(240)
    c = RawClient(emu.api_url)
    cmd = [{"a": "us0", "user": EMAIL}]
    r = c.post(cmd, rid="9")
    assert r.status_code == 402 and r.content == b""
    challenge = r.headers["X-Hashcash"]
    version, easiness, stamp, token = challenge.split(":")
    assert version == "1" and easiness == "240" and len(mc.base64_url_decode(token)) == 48
    assert abs(int(stamp) - time.time()) < 60
    # a wrong answer does not pass
    wrong = "1:" + token + ":" + mc.base64_url_encode(bytes([255, 255, 255, 255]))
    if not mc.check_hashcash(challenge, wrong):
        assert c.post(cmd, rid="9", headers={"X-Hashcash": wrong}).status_code == 402
    answer = mc.solve_hashcash(challenge)
    r = c.post(cmd, rid="9", headers={"X-Hashcash": answer})
    assert r.status_code == 200 and r.json()[0]["v"] == 2
    # the client is known now, and so are the sessions it opens
    assert c.post(cmd).status_code == 200
    emu.create_account("hc@example.com", "pw")
    assert isinstance(c.login("hc@example.com", "pw"), dict)
    fresh = RawClient(emu.api_url)  # a new connection with that session
    assert fresh.post([{"a": "ug"}], sid=c.sid).status_code == 200
    # another client is challenged
    assert RawClient(emu.api_url).post(cmd).status_code == 402
    emu.require_hashcash(None)
    assert RawClient(emu.api_url).post(cmd).status_code == 200
