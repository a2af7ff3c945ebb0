"""The emulator's change log over raw HTTP: ``sn`` in ``f``, ``/sc`` action packets in MEGA's
format (PROTOCOL Part 2, §2-§3), the wait URL's long poll and ``-6`` for a trimmed log."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megafast import crypto as mc
from megafast.testing import MegaEmulator
from test_emulator_support import RawClient, logged_in


def sc(client: RawClient, sn: str, path: str = "sc", method: str = "post") -> Any:
    resp = getattr(client.http, method)(
        f"{client.api_url}/{path}", params={"sn": sn, "sid": client.sid}, timeout=60
    )
    assert resp.status_code == 200
    return resp.json()


def packets(client: RawClient, sn: str) -> tuple[list[dict], str]:
    answer = sc(client, sn)
    assert isinstance(answer, dict) and "a" in answer, answer
    assert list(answer)[-1] == "sn"  # sn comes last, as MEGA sends it
    for p in answer["a"]:  # every packet carries its v3 sequence tag after a (and i)
        keys = list(p)
        assert keys[keys.index("st") - 1] in ("a", "i") and p.pop("st").isdigit()
    return answer["a"], answer["sn"]


def test_f_carries_an_8_byte_sn_and_sc_waits_when_nothing_changed(emu: MegaEmulator) -> None:
    c = logged_in(emu, "sn@example.com")
    sn = c.files()["sn"]
    assert len(base64.urlsafe_b64decode(sn + "=")) == 8 and sn == emu.sn
    answer = sc(c, sn)
    assert set(answer) == {"w", "sn"} and answer["sn"] == sn
    assert answer["w"].startswith(emu.api_url + "/")


def test_changes_from_another_session_arrive_as_packets(emu: MegaEmulator) -> None:
    me = logged_in(emu, "watch@example.com")
    other = RawClient(emu.api_url)
    other.login("watch@example.com", "pw")
    sn = me.files()["sn"]
    folder = other.mkdir("docs")
    node, packed, _ = other.upload(b"hello" * 10, "a.txt", folder)
    got, sn2 = packets(me, sn)
    assert [p["a"] for p in got] == ["t", "t"]
    assert [n["h"] for n in got[0]["t"]["f"]] == [folder]
    new = got[1]["t"]["f"][0]
    assert new["h"] == node["h"] and new["p"] == folder and new["s"] == 50
    assert me.node_key(new) == packed and me.name(new) == "a.txt"
    assert got[0]["ou"] == me.user and "i" not in got[0]
    # nothing newer than the returned sn: a wait URL again
    assert set(sc(me, sn2)) == {"w", "sn"}
    # rename, move, delete
    k4 = [packed[i] ^ packed[i + 4] for i in range(4)]
    attr = mc.base64_url_encode(mc.encrypt_attr({"n": "b.txt"}, k4))
    assert other.one({"a": "a", "n": node["h"], "attr": attr}) == 0
    assert other.one({"a": "m", "n": folder, "t": other.root(4)}) == 0
    assert other.one({"a": "d", "n": folder}) == 0
    got, _ = packets(me, sn2)
    assert [p["a"] for p in got] == ["u", "d", "t", "d"]
    assert got[0] == {"a": "u", "n": node["h"], "u": me.user, "at": attr, "ts": new["ts"]}
    assert got[1]["n"] == folder and got[1]["m"] == 1  # a move: d with m:1 ...
    assert [n["h"] for n in got[2]["t"]["f"]] == [folder, node["h"]]  # ... then t of the subtree
    assert got[2]["t"]["f"][0]["p"] == other.root(4)
    assert got[3]["n"] == folder and "m" not in got[3]


def test_own_commands_echo_i_right_after_a(emu: MegaEmulator) -> None:
    c = logged_in(emu, "echo@example.com")
    sn = c.files()["sn"]
    cmd = {"a": "p", "i": "abcdefghij", "t": c.root(), "n": [c.new_node("x", mc.random_key(4))]}
    assert isinstance(c.one(cmd), dict)
    got, _ = packets(c, sn)
    assert list(got[0])[:2] == ["a", "i"] and got[0]["i"] == "abcdefghij"


def test_seeding_helpers_and_exports_are_announced(emu: MegaEmulator) -> None:
    c = logged_in(emu, "seed@example.com")
    sn = c.files()["sn"]
    folder = emu.add_folder("seed@example.com", "f")
    h, packed = emu.add_file("seed@example.com", b"data", "d.bin", folder)
    emu.export(h)
    got, sn2 = packets(c, sn)
    assert [p["a"] for p in got] == ["t", "t", "ph"]
    assert got[1]["t"]["f"][0]["h"] == h and c.node_key(got[1]["t"]["f"][0]) == packed
    assert got[2]["h"] == h and len(got[2]["ph"]) == 8 and "ts" in got[2]
    assert c.one({"a": "l", "n": h, "d": 1}) == 0
    got, _ = packets(c, sn2)
    assert got == [{"a": "ph", "h": h, "ph": got[0]["ph"], "d": 1}]


def test_shares_reach_the_sharee_with_the_tree(emu: MegaEmulator) -> None:
    owner = logged_in(emu, "owner@example.com")
    friend = logged_in(emu, "friend@example.com")
    folder = emu.add_folder("owner@example.com", "shared")
    h, _ = emu.add_file("owner@example.com", b"x", "in.txt", folder)
    sn_owner, sn_friend = owner.files()["sn"], friend.files()["sn"]
    share_key = mc.random_key(4)
    ok = mc.a32_to_base64(mc.encrypt_key(share_key, owner.master_key))
    answer = owner.one(
        {
            "a": "s2",
            "n": folder,
            "s": [{"u": "friend@example.com", "r": 1, "k": "c2hhcmVrZXk"}],
            "ok": ok,
            "ha": ok,
        }
    )
    assert answer == {"r": [0]}
    mine, _ = packets(owner, sn_owner)
    theirs, sn_friend2 = packets(friend, sn_friend)
    assert mine[0]["a"] == "s2" and mine[0]["ok"] == ok and mine[0]["r"] == 1
    assert theirs[0]["a"] == "s2" and theirs[0]["k"] == "c2hhcmVrZXk"
    assert theirs[0]["u"] == friend.user and theirs[0]["o"] == owner.user
    assert [n["h"] for n in theirs[1]["t"]["f"]] == [folder, h]
    top = theirs[1]["t"]["f"][0]
    assert (top["su"], top["sk"], top["r"]) == (owner.user, "c2hhcmVrZXk", 1)
    # a change inside the share reaches both; removing the share says so without r
    emu.add_file("owner@example.com", b"y", "new.txt", folder)
    got, sn_friend3 = packets(friend, sn_friend2)
    assert [p["a"] for p in got] == ["t"]
    assert owner.one({"a": "s2", "n": folder, "s": [{"u": friend.user}]}) == {"r": [0]}
    got, _ = packets(friend, sn_friend3)
    assert got[0]["a"] == "s2" and "r" not in got[0]


def test_contacts_are_announced(emu: MegaEmulator) -> None:
    c = logged_in(emu, "c1@example.com")
    emu.create_account("c2@example.com", "pw")
    sn = c.files()["sn"]
    assert c.one({"a": "ur", "u": "c2@example.com", "l": "1"}) == 0
    got, _ = packets(c, sn)
    assert got[0]["a"] == "c" and got[0]["u"][0]["m"] == "c2@example.com"
    assert got[0]["u"][0]["c"] == 1


def test_wait_url_returns_when_a_change_happens(emu: MegaEmulator) -> None:
    c = logged_in(emu, "wait@example.com")
    sn = c.files()["sn"]
    w = sc(c, sn)["w"]
    timer = threading.Timer(0.3, lambda: emu.add_folder("wait@example.com", "later"))
    began = time.monotonic()
    timer.start()
    resp = requests.post(w, timeout=60)  # megajs POSTs; go-mega GETs
    took = time.monotonic() - began
    timer.join()
    assert resp.status_code == 200 and resp.content == b""
    assert 0.25 < took < 10
    got, _ = packets(c, sn)
    assert got[0]["a"] == "t"
    assert requests.post(w, timeout=10).status_code == 404  # a wait URL serves once
    # the legacy SDK POSTs to <w>/1
    emu.configure_sc(wait_timeout=0.3)
    assert requests.post(sc(c, c.files()["sn"])["w"] + "/1", timeout=60).status_code == 200


def test_wait_url_times_out_with_an_empty_body_and_get_works(emu: MegaEmulator) -> None:
    c = logged_in(emu, "idlewait@example.com")
    emu.configure_sc(wait_timeout=0.3)
    sn = c.files()["sn"]
    w = sc(c, sn, method="get", path="sc")["w"]
    began = time.monotonic()
    resp = requests.get(w, timeout=60)
    assert resp.status_code == 200 and resp.content == b""
    assert 0.25 < time.monotonic() - began < 10
    assert requests.get(emu.api_url + "/wsp/unknown-token", timeout=10).status_code == 404


def test_an_sn_older_than_the_log_gets_minus_6(emu: MegaEmulator) -> None:
    c = logged_in(emu, "old@example.com")
    sn = c.files()["sn"]
    emu.configure_sc(log_size=3)
    for i in range(5):
        emu.add_folder("old@example.com", f"f{i}")
    assert sc(c, sn) == -6
    fresh = c.files()["sn"]
    assert set(sc(c, fresh)) == {"w", "sn"}


def test_bad_sc_requests_get_error_numbers(emu: MegaEmulator) -> None:
    c = logged_in(emu, "bad@example.com")
    assert sc(c, "not-an-sn") == -2
    assert set(sc(c, "AAAAAAAAAAA")) == {"w", "sn"}  # sn 0: nothing for this account yet
    future = base64.urlsafe_b64encode((1 << 60).to_bytes(8, "big")).decode().rstrip("=")
    assert sc(c, future) == -6
    resp = requests.post(f"{emu.api_url}/sc", params={"sn": c.files()["sn"], "sid": "nope"})
    assert resp.json() == -15


def test_a_failed_command_leaves_no_packet(emu: MegaEmulator) -> None:
    c = logged_in(emu, "fail@example.com")
    sn = c.files()["sn"]
    # the second node names a parent that is not in the batch: the whole p fails
    bad = c.new_node("x", mc.random_key(4))
    bad["p"] = "zzzzzzzz"
    assert c.one({"a": "p", "t": c.root(), "n": [c.new_node("y", mc.random_key(4)), bad]}) == -2
    assert set(sc(c, sn)) == {"w", "sn"}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sn=st.text(max_size=30) | st.sampled_from(["AAAAAAAAAAA", "_____________", "A" * 11 + "="]),
    sid=st.none() | st.text(max_size=50),
    path=st.sampled_from(["sc", "wsc", "wsp/x", "wsp/", "sc/1"]),
)
def test_odd_sc_requests_get_an_error_number_or_an_answer(
    emu: MegaEmulator, sn: str, sid: str | None, path: str
) -> None:
    params = {"sn": sn} if sid is None else {"sn": sn, "sid": sid}
    resp = requests.post(f"{emu.api_url}/{path}", params=params, timeout=30)
    if path.startswith("wsp") or path == "sc/1":
        assert resp.status_code == 404
    else:
        assert resp.status_code == 200
        answer = resp.json()
        assert answer in (-2, -6, -15) or set(answer) <= {"a", "w", "sn"}


def test_a_public_folder_visitor_polls_with_n(emu: MegaEmulator) -> None:
    emu.create_account("pub@example.com", "pw")
    folder = emu.add_folder("pub@example.com", "public")
    link = emu.export(folder)
    ph, key = link.rsplit("/", 1)[1].split("#")
    visitor = RawClient(emu.api_url)
    sn = visitor.one({"a": "f", "c": 1, "r": 1}, n=ph)["sn"]
    h, packed = emu.add_file("pub@example.com", b"news", "news.txt", folder)
    emu.add_file("pub@example.com", b"private", "elsewhere.txt")
    got = requests.post(f"{emu.api_url}/sc", params={"sn": sn, "n": ph}, timeout=30).json()
    assert [p["a"] for p in got["a"]] == ["t"]
    node = got["a"][0]["t"]["f"][0]
    assert node["h"] == h and node["k"].startswith(folder + ":")
    share_key = mc.base64_to_a32(key)
    assert visitor.node_key(node, share_key) == packed
    assert requests.post(f"{emu.api_url}/sc", params={"sn": sn, "n": "nothere"}).json() == -15
