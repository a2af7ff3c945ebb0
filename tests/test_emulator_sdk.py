"""What MEGA's C++ SDK (meganz/sdk v10.11.0) needs from the emulator, over raw HTTP: session
ids carrying the user handle, upload pieces checked against ``?d=`` and answered ``0``, the raw
upload token for ``u`` v:3, downloads by POST, v3 sequence tags in answers and packets, the
``^!keys`` user attributes (``upv``/``up2``/``uga``/``ug``), and HTTPS (docs/EMULATOR.md)."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import pytest
import requests

from megafast import crypto as mc
from megafast.testing import MegaEmulator
from megafast.testing._uploadcheck import PieceChecksum, uncovered, xor12
from test_emulator_support import RawClient, logged_in


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def v3(client: RawClient, command: dict) -> Any:
    """One command with ``&v=3`` on the URL, as MEGA's SDK sends every batch."""
    resp = client.http.post(
        f"{client.api_url}/cs",
        params={"id": secrets.token_hex(5), "sid": client.sid, "v": "3"},
        data=json.dumps([command]),
        timeout=30,
    )
    answer = resp.json()
    return answer if isinstance(answer, int) else answer[0]


def sc_packets(client: RawClient, sn: str) -> list[dict]:
    answer = client.http.post(
        f"{client.api_url}/sc", params={"sn": sn, "sid": client.sid}, timeout=60
    ).json()
    return answer.get("a", [])


def reference_checksum(data: bytes) -> bytes:
    out = bytearray(12)
    for i, byte in enumerate(data):
        out[i % 12] ^= byte
    return bytes(out)


# --- login --------------------------------------------------------------------------------


def test_session_id_carries_the_user_handle_after_16_bytes(emu: MegaEmulator) -> None:
    c = logged_in(emu, "sid@example.com")
    raw = mc.base64_url_decode(c.sid)
    assert len(raw) == 43 and raw[16:27].decode() == c.user  # CommandLogin::procresult
    again = logged_in_again(emu, "sid@example.com")
    assert again.sid != c.sid and mc.base64_url_decode(again.sid)[16:27] == raw[16:27]


def logged_in_again(emu: MegaEmulator, email: str) -> RawClient:
    c = RawClient(emu.api_url)
    c.login(email, "pw")
    return c


# --- the upload checksum ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 23, 24, 25, 100, 4095, 65536 + 7])
def test_xor12_is_the_bytewise_fold_modulo_12(size: int) -> None:
    data = secrets.token_bytes(size)
    assert xor12(data) == reference_checksum(data)


@pytest.mark.parametrize("size", [0, 12, 24, 36, 12 * 1001, 24 * 4097])
def test_both_folds_agree(size: int) -> None:
    from megafast.testing import _uploadcheck as U

    data = secrets.token_bytes(size)
    assert U._fold_python(memoryview(data)) == reference_checksum(data)
    if U._np is not None and size % 24 == 0:
        assert U._fold_numpy(memoryview(data)) == reference_checksum(data)


def test_piece_checksum_fed_in_odd_parts_matches_one_pass() -> None:
    data = secrets.token_bytes(100_003)
    check = PieceChecksum()
    at = 0
    for step in (1, 5, 12, 7, 4096, 13, 50_000):
        check.update(data[at : at + step])
        at += step
    check.update(data[at:])
    assert check.digest() == reference_checksum(data)


def test_uncovered_skips_ranges_already_received() -> None:
    assert uncovered([], 0, 10) == [(0, 10)]
    assert uncovered([[0, 4], [6, 8]], 2, 10) == [(4, 6), (8, 10)]
    assert uncovered([[0, 20]], 2, 10) == []


def _encrypted(size: int) -> tuple[bytes, mc.FileCipher]:
    data = secrets.token_bytes(size)
    cipher = mc.FileCipher(mc.random_key(4), mc.random_key(2), size=size)
    return cipher.encrypt(data), cipher


def test_v3_upload_answers_0_per_piece_and_the_raw_token_at_the_end(emu: MegaEmulator) -> None:
    c = logged_in(emu, "up3@example.com")
    enc, cipher = _encrypted(300_000)
    url = v3(c, {"a": "u", "ssl": 2, "v": 3, "s": len(enc)})["p"]
    first, second = enc[:131072], enc[131072:]
    r = c.http.post(f"{url}/0?d={b64(reference_checksum(first))}", data=first, timeout=30)
    assert r.content == b"0"
    r = c.http.post(f"{url}/131072?d={b64(reference_checksum(second))}", data=second, timeout=30)
    assert len(r.content) == 36  # raw bytes, as the SDK's UPLOADTOKENLEN
    node = c.one(
        {
            "a": "p",
            "t": c.root(),
            "n": [c.new_node("f.bin", cipher.packed_key(), t=0, h=b64(r.content))],
        }
    )
    assert node["f"][0]["s"] == len(enc)


def test_a_piece_with_a_wrong_checksum_is_refused_with_ekey_and_not_kept(
    emu: MegaEmulator,
) -> None:
    c = logged_in(emu, "badcrc@example.com")
    enc, _ = _encrypted(1000)
    url = c.one({"a": "u", "v": 3, "s": len(enc)})["p"]
    wrong = bytearray(reference_checksum(enc))
    wrong[5] ^= 1
    r = c.http.post(f"{url}/0?d={b64(bytes(wrong))}", data=enc, timeout=30)
    assert r.content == b"-14"
    assert emu.stats().get("upload_checksum_mismatch") == 1
    # the same piece with the right checksum completes the upload
    r = c.http.post(f"{url}/0?d={b64(reference_checksum(enc))}", data=enc, timeout=30)
    assert len(r.content) == 36
    r = c.http.post(f"{url}/0?d=AAAA", data=enc, timeout=30)  # not 12 bytes
    assert r.content == b"-2"


def test_old_c_parameter_is_checked_and_answers_an_empty_body(emu: MegaEmulator) -> None:
    c = logged_in(emu, "oldc@example.com")
    enc, _ = _encrypted(200_000)
    url = c.one({"a": "u", "s": len(enc)})["p"]  # no v: a base64url text token
    head, tail = enc[:131072], enc[131072:]
    r = c.http.post(f"{url}/0?c={b64(reference_checksum(head))}", data=head, timeout=30)
    assert r.content == b""
    r = c.http.post(f"{url}/131072?c={b64(reference_checksum(tail))}", data=tail, timeout=30)
    assert len(mc.base64_url_decode(r.text)) == 36


# --- downloads by POST ---------------------------------------------------------------------


def test_download_url_answers_post_as_get(emu: MegaEmulator) -> None:
    c = logged_in(emu, "dlpost@example.com")
    node, _, _ = c.upload(b"x" * 5000 + b"y" * 5000, "d.bin")
    url = c.one({"a": "g", "g": 1, "n": node["h"], "ssl": 2})["g"]
    got = c.http.get(f"{url}/100-199", timeout=30).content
    assert c.http.post(f"{url}/100-199", data=b"", timeout=30).content == got
    assert len(got) == 100 and c.http.post(url, timeout=30).content == c.http.get(url).content


# --- v3 sequence tags -----------------------------------------------------------------------


def test_v3_answers_carry_the_tag_of_the_packets_the_command_caused(emu: MegaEmulator) -> None:
    c = logged_in(emu, "st@example.com")
    sn = c.files()["sn"]
    answer = v3(c, {"a": "p", "t": c.root(), "n": [c.new_node("dir", mc.random_key(4))]})
    assert isinstance(answer, list) and isinstance(answer[0], str) and "f" in answer[1]
    st, h = answer[0], answer[1]["f"][0]["h"]
    got = sc_packets(c, sn)
    assert [(p["a"], p["st"]) for p in got] == [("t", st)]
    assert list(got[0])[:2] == ["a", "st"]
    renamed = c.new_node("again", mc.random_key(4))
    moved = v3(c, {"a": "a", "n": h, "at": renamed["a"]})
    assert isinstance(moved, str) and (len(moved), moved) > (len(st), st)  # grows
    link = v3(c, {"a": "l", "n": c.upload(b"data", "f")[0]["h"]})
    assert isinstance(link, list) and len(link) == 2 and len(link[1]) == 8
    assert v3(c, {"a": "m", "n": "AAAAAAAA", "t": c.root()}) == -9  # errors stay numbers
    assert c.one({"a": "a", "n": h, "at": renamed["a"]}) == 0  # without v=3: as before


# --- user attributes (^!keys) --------------------------------------------------------------


def test_upv_stores_versioned_attributes_that_ug_and_uga_return(emu: MegaEmulator) -> None:
    c = logged_in(emu, "keys@example.com")
    other = logged_in(emu, "other@example.com")
    keys, pub = b64(secrets.token_bytes(200)), b64(secrets.token_bytes(32))
    sn = c.files()["sn"]
    answer = v3(c, {"a": "upv", "^!keys": [keys], "+puEd255": [pub]})
    st, versions = answer
    assert set(versions) == {"^!keys", "+puEd255"}
    packet = sc_packets(c, sn)[0]
    assert packet["a"] == "ua" and packet["st"] == st and packet["ua"] == ["^!keys", "+puEd255"]
    assert c.one({"a": "ug"})["^!keys"] == {"av": keys, "v": versions["^!keys"]}
    assert c.one({"a": "uga", "u": c.user, "ua": "^!keys", "v": 1})["av"] == keys
    assert other.one({"a": "uga", "u": c.user, "ua": "+puEd255", "v": 1})["av"] == pub
    assert other.one({"a": "uga", "u": c.user, "ua": "^!keys", "v": 1}) == -11
    assert c.one({"a": "uga", "u": c.user, "ua": "*keyring", "v": 1}) == -9
    # a change must name the version it replaces
    newer = b64(secrets.token_bytes(200))
    assert c.one({"a": "upv", "^!keys": [newer]}) == -8
    assert c.one({"a": "upv", "^!keys": [newer, "AAAAAAAAAAA"]}) == -8
    done = c.one({"a": "upv", "^!keys": [newer, versions["^!keys"]]})
    assert done["^!keys"] != versions["^!keys"]
    assert c.one({"a": "up2", "^!lang": b64(b"en")})["^!lang"]
    assert c.one({"a": "upv", "^!keys": [42]}) == -2


# --- HTTPS -----------------------------------------------------------------------------------


@pytest.fixture
def tls_emu() -> Any:
    pytest.importorskip("cryptography")
    with MegaEmulator(tls=True) as emu:
        yield emu


def test_https_with_the_emulators_authority(
    tls_emu: MegaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_emu.api_url.startswith("https://") and tls_emu.ca_file is not None
    with pytest.raises(requests.exceptions.SSLError):  # not a publicly trusted certificate
        requests.post(f"{tls_emu.api_url}/cs", data="[]", timeout=10, verify=True)
    tls_emu.create_account("tls@example.com", "pw")
    # requests prefers these variables to a session's verify: point them at our authority
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_emu.ca_file))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    c = RawClient(tls_emu.api_url)
    http = c.http
    c.login("tls@example.com", "pw")
    node, _, _ = c.upload(b"over https" * 1000, "t.bin")
    url = c.one({"a": "g", "g": 1, "n": node["h"], "ssl": 2})["g"]
    assert url.startswith("https://") and len(http.get(url, timeout=30).content) == 10_000


def test_megafast_client_over_https(
    tls_emu: MegaEmulator, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from megafast import Mega

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_emu.ca_file))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls_emu.create_account("tlsclient@example.com", "pw")
    m = Mega(api_url=tls_emu.api_url).login("tlsclient@example.com", "pw")
    data = secrets.token_bytes(3 * 1024 * 1024 + 5)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    m.upload(str(src))
    (tmp_path / "out").mkdir()
    got = m.download(m.find("src.bin"), str(tmp_path / "out"))
    assert got.read_bytes() == data


# --- /wsc as MEGA's SDK polls it -------------------------------------------------------------


def test_wsc_points_to_a_long_poll_that_answers_0_when_idle(
    emu: MegaEmulator,
) -> None:
    import threading
    import time

    c = logged_in(emu, "wsc@example.com")
    emu.configure_sc(wait_timeout=0.5)
    sn = c.files()["sn"]

    def wsc(path: str = "wsc", **extra: str) -> requests.Response:
        return c.http.post(
            f"{c.api_url}/{path}", params={"sn": sn, "sid": c.sid, **extra}, timeout=60
        )

    first = wsc().json()  # nothing pending: at once, where to long-poll
    assert first == {"w": f"{emu.api_url}/wsc/lp", "sn": sn}
    began = time.monotonic()
    idle = wsc("wsc/lp")
    assert idle.content == b"0" and time.monotonic() - began >= 0.45  # keep-alive: poll again
    assert wsc("sc/wsc").json() == {"a": [], "sn": sn}  # catch-up answers at once
    assert c.http.post(f"{c.api_url}/sc", params={"c": "50", "sid": c.sid}).json() == {
        "c": [],
        "u": [],
    }
    emu.configure_sc(wait_timeout=20)
    threading.Timer(0.3, lambda: emu.add_folder("wsc@example.com", "news")).start()
    began = time.monotonic()
    answer = wsc("wsc/lp").json()
    assert [p["a"] for p in answer["a"]] == ["t"] and time.monotonic() - began < 10
    assert wsc(sid="nope").json() == -15
    assert wsc("wsc/lp", sid="nope").json() == -15


def test_plain_transfers_hand_out_http_transfer_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cryptography")
    with MegaEmulator(tls=True, plain_transfers=True) as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emu.ca_file))
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        emu.create_account("plain@example.com", "pw")
        c = RawClient(emu.api_url)
        c.login("plain@example.com", "pw")
        url = c.one({"a": "u", "s": 10})["p"]
        assert url.startswith("http://") and emu.api_url.startswith("https://")
        node, _, _ = c.upload(b"plain body" * 100, "p.bin")
        got = c.one({"a": "g", "g": 1, "n": node["h"]})["g"]
        assert got.startswith("http://") and len(requests.get(got, timeout=30).content) == 1000


def test_serve_options_for_https() -> None:
    from megafast.testing._serve import build_parser, emulator_options, serve_main

    args = build_parser().parse_args(["--tls", "--plain-transfers", "--ca-file", "ca.pem"])
    options = emulator_options(args)
    assert options["tls"] is True and options["plain_transfers"] is True
    assert serve_main(["--ca-file", "ca.pem"]) == 2  # needs --tls
    assert serve_main(["--plain-transfers"]) == 2
