"""The emulator's /cs API over real HTTP: envelope, errors, accounts, nodes, links, shares."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pyotp
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megafast import crypto as mc
from megafast.testing import MegaEmulator
from support.raw_client import RawClient

# --- envelope and error numbers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", -2),
        (b'{"a": "us0"}', -2),  # an object, not a batch
        (b"\xff\xfe", -2),
        (b"", -2),
    ],
)
def test_malformed_batches_get_minus_2(client: RawClient, body: bytes, expected: int) -> None:
    resp = client.post(None, raw_body=body)
    assert resp.status_code == 200
    assert resp.json() == expected


def test_bad_commands_get_per_command_errors(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("e@example.com", "pw")
    client.login("e@example.com", "pw")
    answer = client.cs(
        [
            {"a": "nosuchcommand"},
            {"x": 1},
            5,
            {"a": 7},
            {"a": "us0"},  # missing user
            {"a": "us0", "user": 12},  # wrong type
            {"a": "m", "n": "short", "t": "AAAAAAAA"},  # malformed handle
            {"a": "u", "s": "12"},  # size as text
            {"a": "u", "s": True},
            {"a": "g", "g": 1, "n": "AAAAAAAA"},  # no such node
            {"a": "ug"},  # and the batch goes on
        ]
    )
    assert answer[:10] == [-2, -2, -2, -2, -2, -2, -2, -2, -2, -9]
    assert answer[10]["email"] == "e@example.com"


def test_bad_session_id_fails_the_batch_with_minus_15(client: RawClient) -> None:
    assert client.cs([{"a": "ug"}], sid="A" * 58) == -15


def test_commands_needing_a_session_get_minus_11_without_one(client: RawClient) -> None:
    assert client.cs([{"a": "ug"}, {"a": "f", "c": 1}, {"a": "u", "s": 1}]) == [-11, -11, -11]


def test_server_survives_garbage_and_keeps_serving(emu: MegaEmulator, client: RawClient) -> None:
    for body in [b"[" * 10000, b'[{"a": "p", "t": null, "n": [null]}]', b'[{"a":"f","p":5}]']:
        assert client.post(None, raw_body=body).status_code == 200
    # a request that lies about its length and disconnects
    with socket.create_connection(("127.0.0.1", emu.port)) as s:
        s.sendall(b"POST /cs?id=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[{")
    assert client.cs([{"a": "us0", "user": "nobody@example.com"}]) == [-9]


def test_lone_surrogates_and_odd_parameters_get_error_numbers(
    emu: MegaEmulator, client: RawClient
) -> None:
    emu.create_account("s@example.com", "pw")
    client.sid = emu.create_session("s@example.com")
    for body in (
        rb'[{"a":"us0","user":"\ud800"}]',
        rb'[{"a":"g","p":"\ud800"}]',
        rb'[{"a":"us","user":"\udfff","uh":"x"}]',
        rb'[{"a":"\ud800"}]',
    ):
        assert client.post(None, raw_body=body).json() == [-2]
    client.sid = None
    http = requests.Session()
    assert http.post(f"{emu.api_url}/cs?id=1&sid=%FF", data=b'[{"a":"ug"}]').json() == -15
    assert http.post(f"{emu.api_url}/cs?id=%ED%A0%80&n=%ED%A0%80", data=b'[{"a":"f"}]').json() == [
        -9
    ]


def test_same_request_id_gets_same_answer_without_redoing_the_work(
    emu: MegaEmulator, client: RawClient
) -> None:
    emu.create_account("idem@example.com", "pw")
    client.login("idem@example.com", "pw")
    root = client.root()
    cmd = [{"a": "p", "t": root, "n": [client.new_node("once", mc.random_key(4))]}]
    emu.reset_stats()
    first = client.cs(cmd, rid="777")
    again = client.cs(cmd, rid="777")
    assert first == again
    stats = emu.stats()
    assert stats["api_answered"] == 1 and stats["api_replayed"] == 1
    assert stats["commands"] == {"p": 1}
    assert [e["outcome"] for e in emu.request_log] == ["answered", "replayed"]
    folders = [n for n in client.files()["f"] if n["t"] == 1]
    assert len(folders) == 1
    # a new id is a new request
    client.cs(cmd, rid="778")
    assert len([n for n in client.files()["f"] if n["t"] == 1]) == 2


def test_a_retry_arriving_while_the_first_try_runs_is_not_done_twice(
    emu: MegaEmulator, client: RawClient
) -> None:
    emu.create_account("slow@example.com", "pw")
    client.login("slow@example.com", "pw")
    root = client.root()
    cmd = [{"a": "p", "t": root, "n": [client.new_node("twice?", mc.random_key(4))]}]
    answers: list[object] = []

    def send() -> None:
        answers.append(RawClient(emu.api_url).cs(cmd, sid=client.sid, rid="4242"))

    threads = [threading.Thread(target=send) for _ in range(3)]
    emu.reset_stats()
    with emu.store.lock:  # the first try stalls inside the server; the retries arrive meanwhile
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while emu.stats().get("api_requests", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # the first try is in
        time.sleep(0.2)  # and the retries have arrived
    for t in threads:
        t.join()
    assert len(answers) == 3 and answers[0] == answers[1] == answers[2]
    assert len([n for n in client.files()["f"] if n["t"] == 1]) == 1
    assert emu.stats()["commands"].get("p") == 1


# --- accounts and login ------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_login_gives_a_session_that_works(
    emu: MegaEmulator, client: RawClient, version: int
) -> None:
    acct = emu.create_account("Mixed@Example.com", "pässwörd", version=version)
    pre = client.one({"a": "us0", "user": "mixed@example.com"})
    assert pre["v"] == version
    assert ("s" in pre) == (version == 2)
    res = client.login("mixed@example.com", "pässwörd")
    assert set(res) >= {"k", "privk", "csid"}
    assert bytes(mc.a32_to_str(client.master_key)) == acct.master_key
    assert len(mc.base64_url_decode(client.sid)) == 43
    me = client.one({"a": "ug"})
    assert me["u"] == acct.handle and me["email"] == "mixed@example.com"
    # the private key really is p, q, d, u of a 2048-bit key
    privk = mc.a32_to_str(mc.decrypt_key(mc.base64_to_a32(res["privk"]), client.master_key))
    p, q, d, u = mc.decode_mpis(privk, 4)
    assert (p * q).bit_length() == 2048 and u == pow(p, -1, q)
    n, e = mc.decode_mpis(mc.base64_url_decode(me["pubk"]), 2)
    assert n == p * q and pow(pow(12345, e, n), d, n) == 12345


def test_wrong_password_or_unknown_email_gives_minus_9(
    emu: MegaEmulator, client: RawClient
) -> None:
    emu.create_account("v2@example.com", "right", version=2)
    emu.create_account("v1@example.com", "right", version=1)
    assert client.login("v2@example.com", "wrong") == -9
    assert client.login("v1@example.com", "wrong") == -9
    assert client.one({"a": "us0", "user": "nobody@example.com"}) == -9
    assert client.one({"a": "us", "user": "nobody@example.com", "uh": "AAAAAAAAAAA"}) == -9


def test_two_factor_login(emu: MegaEmulator, client: RawClient) -> None:
    acct = emu.create_account("tfa@example.com", "pw", mfa_secret=True)
    assert client.login("tfa@example.com", "pw") == -26
    assert (
        client.login("tfa@example.com", "pw", mfa="000000" if acct.totp() != "000000" else "111111")
        == -5
    )
    code = pyotp.TOTP(acct.mfa_secret).now()  # an independent TOTP implementation
    assert code == acct.totp()
    assert isinstance(client.login("tfa@example.com", "pw", mfa=code), dict)
    assert client.one({"a": "ug"})["email"] == "tfa@example.com"
    assert client.one({"a": "mfag", "e": "tfa@example.com"}) == 1


def test_non_ascii_login_fields_are_refused_cleanly(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("na@example.com", "pw", mfa_secret=True)
    pre = client.one({"a": "us0", "user": "na@example.com"})
    _, uh = mc.derive_v2("pw", mc.base64_url_decode(pre["s"]))
    assert client.cs(
        [
            {"a": "us", "user": "na@example.com", "uh": "é" * 22},
            {"a": "us", "user": "na@example.com", "uh": uh, "mfa": "١٢٣٤٥٦"},  # not ASCII digits
            {"a": "us", "user": "na@example.com", "uh": uh, "mfa": 123456},
        ]
    ) == [-9, -5, -5]


def test_ephemeral_account_via_up_and_us(client: RawClient) -> None:
    handle = client.login_ephemeral()
    assert client.one({"a": "ug"})["u"] == handle
    assert sorted(n["t"] for n in client.files()["f"]) == [2, 3, 4]
    folder = client.mkdir("anon dir")
    assert any(n["h"] == folder for n in client.files()["f"])


def test_ephemeral_account_helper(emu: MegaEmulator, client: RawClient) -> None:
    acct = emu.create_ephemeral_account()
    res = client.one({"a": "us", "user": acct.handle})
    assert mc.decrypt_key(mc.base64_to_a32(res["k"]), mc.str_to_a32(acct.password_key)) == tuple(
        mc.str_to_a32(acct.master_key)
    )
    assert client.one({"a": "ug"}, sid=res["tsid"])["u"] == acct.handle


def test_logout_ends_the_session(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("out@example.com", "pw")
    client.login("out@example.com", "pw")
    assert client.one({"a": "sml"}) == 0
    assert client.cs([{"a": "ug"}]) == -15


def test_quota(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("q@example.com", "pw")
    emu.add_file("q@example.com", b"x" * 1000, "a")
    client.login("q@example.com", "pw")
    uq = client.one({"a": "uq", "strg": 1, "xfer": 1, "pro": 1})
    assert uq["cstrg"] == 1000 and uq["mstrg"] == 20 * 1024**3
    emu.set_storage_quota("q@example.com", 1500)
    assert client.one({"a": "u", "s": 600}) == -17
    assert "p" in client.one({"a": "u", "s": 500})


# --- nodes -------------------------------------------------------------------------------


def test_listing_has_roots_folders_files_and_decryptable_keys(
    emu: MegaEmulator, client: RawClient
) -> None:
    emu.create_account("n@example.com", "pw")
    folder = emu.add_folder("n@example.com", "docs")
    handle, packed = emu.add_file("n@example.com", b"hello world", "hello.txt", folder)
    client.login("n@example.com", "pw")
    listing = client.files()
    assert set(listing) >= {"f", "ok", "s", "u"}
    nodes = {n["h"]: n for n in listing["f"]}
    roots = [n for n in listing["f"] if n["t"] in (2, 3, 4)]
    assert [n["t"] for n in roots] == [2, 3, 4] and all(len(n["h"]) == 8 for n in roots)
    assert nodes[folder]["p"] == roots[0]["h"] and nodes[handle]["p"] == folder
    assert nodes[handle]["s"] == 11 and len(nodes[handle]["u"]) == 11
    assert client.name(nodes[folder]) == "docs"
    assert client.name(nodes[handle]) == "hello.txt"
    assert client.node_key(nodes[handle]) == packed
    # parents come before their children
    order = [n["h"] for n in listing["f"]]
    assert order.index(folder) < order.index(handle)


def test_rename_move_delete(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("ops@example.com", "pw")
    client.login("ops@example.com", "pw")
    a = client.mkdir("a")
    b = client.mkdir("b", a)
    node, packed, _ = client.upload(b"data" * 100, "f.bin", b)
    k4 = [packed[i] ^ packed[i + 4] for i in range(4)]
    new_attr = mc.base64_url_encode(mc.encrypt_attr({"n": "g.bin"}, k4))
    assert client.one({"a": "a", "n": node["h"], "attr": new_attr}) == 0
    nodes = {n["h"]: n for n in client.files()["f"]}
    assert client.name(nodes[node["h"]]) == "g.bin"
    assert client.one({"a": "m", "n": node["h"], "t": a}) == 0
    assert {n["h"]: n for n in client.files()["f"]}[node["h"]]["p"] == a
    assert client.one({"a": "m", "n": a, "t": b}) == -10  # into its own child
    assert client.one({"a": "m", "n": a, "t": a}) == -10
    assert client.one({"a": "m", "n": client.root(), "t": a}) == -11  # roots stay
    assert client.one({"a": "d", "n": client.root(4)}) == -11
    assert client.one({"a": "d", "n": a}) == 0  # the whole subtree goes
    left = {n["h"] for n in client.files()["f"]}
    assert not left & {a, b, node["h"]}
    assert client.one({"a": "d", "n": a}) == -9


def test_other_users_nodes_are_invisible(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("one@example.com", "pw")
    emu.create_account("two@example.com", "pw")
    h, _ = emu.add_file("one@example.com", b"secret", "s")
    client.login("two@example.com", "pw")
    assert all(n["h"] != h for n in client.files()["f"])
    assert client.cs(
        [
            {"a": "g", "g": 1, "n": h},
            {"a": "d", "n": h},
            {"a": "l", "n": h},
            {"a": "m", "n": h, "t": client.root()},
            {
                "a": "p",
                "t": emu.root_handle("one@example.com"),
                "n": [{"h": "xxxxxxxx", "t": 1, "a": "AA", "k": "A" * 22}],
            },
        ]
    ) == [-9, -9, -11, -9, -9]


def test_p_rejects_unknown_tokens_and_bad_nodes(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("pp@example.com", "pw")
    client.login("pp@example.com", "pw")
    root = client.root()
    k = "A" * 43
    assert client.cs(
        [
            {"a": "p", "t": root, "n": [{"h": "A" * 48, "t": 0, "a": "AAAA", "k": k}]},
            {"a": "p", "t": root, "n": []},
            {"a": "p", "t": root, "n": [{"t": 0, "a": "AAAA", "k": k}]},
            {"a": "p", "t": root, "n": [{"h": "xxxxxxxx", "t": 9, "a": "AAAA", "k": k}]},
            {"a": "p", "t": root, "n": "nope"},
        ]
    ) == [-2, -2, -2, -2, -2]


def test_completion_token_is_single_use_and_owned(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("tok@example.com", "pw")
    emu.create_account("thief@example.com", "pw")
    client.login("tok@example.com", "pw")
    _, _, token = client.upload(b"z" * 50, "z")
    other = RawClient(emu.api_url)
    other.login("thief@example.com", "pw")
    url = emu.upload_url("tok@example.com", 3)
    tok2 = requests.post(f"{url}/0", data=b"abc", timeout=10).text
    node = {"h": tok2, "t": 0, "a": "AAAA", "k": "A" * 43}
    assert other.one({"a": "p", "t": other.root(), "n": [node]}) == -11
    node["h"] = token
    assert client.one({"a": "p", "t": client.root(), "n": [node]}) == -2  # already used


# --- links, imports, shares and public folders -------------------------------------------


def test_file_link_public_g_and_import(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("owner@example.com", "pw")
    emu.create_account("importer@example.com", "pw")
    client.login("owner@example.com", "pw")
    node, packed, _ = client.upload(b"shared bytes" * 1000, "pub.bin")
    ph = client.one({"a": "l", "n": node["h"]})
    assert isinstance(ph, str) and len(ph) == 8
    assert client.one({"a": "l", "n": node["h"]}) == ph  # stable
    anon = RawClient(emu.api_url)
    info = anon.one({"a": "g", "p": ph})
    assert info["s"] == 12000 and "g" not in info
    k4 = [packed[i] ^ packed[i + 4] for i in range(4)]
    assert mc.decrypt_attr(mc.base64_url_decode(info["at"]), k4)["n"] == "pub.bin"
    url = anon.one({"a": "g", "g": 1, "p": ph, "ssl": 2})["g"]
    assert requests.get(url, timeout=10).content == emu.stored_blob(node["h"])
    imp = RawClient(emu.api_url)
    imp.login("importer@example.com", "pw")
    res = imp.one(
        {
            "a": "p",
            "t": imp.root(),
            "n": [
                {
                    "ph": ph,
                    "t": 0,
                    "a": mc.base64_url_encode(mc.encrypt_attr({"n": "mine.bin"}, k4)),
                    "k": mc.a32_to_base64(mc.encrypt_key(packed, imp.master_key)),
                }
            ],
        }
    )
    new = res["f"][0]
    assert new["s"] == 12000 and imp.name(new) == "mine.bin" and new["u"] == imp.user
    assert emu.stored_blob(new["h"]) == emu.stored_blob(node["h"])
    assert anon.one({"a": "g", "p": "AAAAAAAA"}) == -9
    assert client.one({"a": "l", "n": node["h"], "d": 1}) == 0
    assert anon.one({"a": "g", "p": ph}) == -9


def test_folder_export_with_s2_and_public_folder_listing(
    emu: MegaEmulator, client: RawClient
) -> None:
    emu.create_account("sh@example.com", "pw")
    client.login("sh@example.com", "pw")
    top = client.mkdir("top")
    sub = client.mkdir("sub", top)
    node, packed, _ = client.upload(b"in a public folder", "deep.txt", sub)
    assert client.one({"a": "l", "n": top}) == -11  # not shared yet
    share_key = mc.random_key(4)
    listing = {n["h"]: n for n in client.files()["f"]}
    handles = [top, sub, node["h"]]
    cr_keys = []
    for i, h in enumerate(handles):
        cr_keys += [0, i, mc.a32_to_base64(mc.encrypt_key(client.node_key(listing[h]), share_key))]
    res = client.one(
        {
            "a": "s2",
            "n": top,
            "s": [{"u": "EXP", "r": 0}],
            "ok": mc.a32_to_base64(mc.encrypt_key(share_key, client.master_key)),
            "ha": mc.base64_url_encode(b"x" * 16),
            "cr": [[top], handles, cr_keys],
        }
    )
    assert res == {"r": [0]}
    after = client.files()
    assert {"h": top, "u": "EXP", "r": 0} in [
        {k: s[k] for k in ("h", "u", "r")} for s in after["s"]
    ]
    assert [o["h"] for o in after["ok"]] == [top]
    top_node = next(n for n in after["f"] if n["h"] == top)
    assert top_node["k"].startswith(client.user + ":") and f"/{top}:" in top_node["k"]
    ph = client.one({"a": "l", "n": top})
    # the public folder, as a visitor with only the link sees it
    visitor = RawClient(emu.api_url)
    pub = visitor.one({"a": "f", "c": 1, "r": 1, "ca": 1}, n=ph)
    nodes = {n["h"]: n for n in pub["f"]}
    assert set(nodes) == set(handles)
    assert all(n["k"].startswith(f"{top}:") for n in nodes.values())
    assert visitor.name(nodes[sub], share_key) == "sub"
    assert visitor.node_key(nodes[node["h"]], share_key) == packed
    dl = visitor.one({"a": "g", "g": 1, "n": node["h"]}, n=ph)
    assert dl["s"] == len(b"in a public folder")
    assert requests.get(dl["g"], timeout=10).content == emu.stored_blob(node["h"])
    # nodes outside the folder are out of reach
    other = client.mkdir("outside")
    assert visitor.one({"a": "g", "g": 1, "n": other}, n=ph) == -9
    assert visitor.one({"a": "f", "c": 1}, n="AAAAAAAA") == -9


def test_p_maps_cr_entries_that_name_new_nodes_by_token_or_temporary_handle(
    emu: MegaEmulator, client: RawClient
) -> None:
    emu.create_account("cr@example.com", "pw")
    folder = emu.add_folder("cr@example.com", "exported")
    link = emu.export(folder)
    ph, share_b64 = link.rsplit("/", 1)[1].split("#")
    share_key = mc.base64_to_a32(share_b64)
    client.login("cr@example.com", "pw")
    url = client.one({"a": "u", "s": 5})["p"]
    token = requests.post(f"{url}/0", data=b"12345", timeout=10).text
    fkey = mc.random_key(8)
    dkey = mc.random_key(4)
    res = client.one(
        {
            "a": "p",
            "t": folder,
            "n": [
                client.new_node("late", fkey, t=0, h=token),
                client.new_node("dir", dkey, h="tmp00001"),
            ],
            "cr": [
                [folder],
                [token, "tmp00001"],
                [
                    0,
                    0,
                    mc.a32_to_base64(mc.encrypt_key(fkey, share_key)),
                    0,
                    1,
                    mc.a32_to_base64(mc.encrypt_key(dkey, share_key)),
                ],
            ],
        }
    )
    made = [n["h"] for n in res["f"]]
    visitor = RawClient(emu.api_url)
    nodes = {n["h"]: n for n in visitor.one({"a": "f", "c": 1, "r": 1}, n=ph)["f"]}
    assert [visitor.name(nodes[h], share_key) for h in made] == ["late", "dir"]


def test_export_helper_and_share_with_a_user(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("alice@example.com", "pw")
    bob = emu.create_account("bob@example.com", "pw")
    folder = emu.add_folder("alice@example.com", "to bob")
    h, packed = emu.add_file("alice@example.com", b"for bob", "b.txt", folder)
    link = emu.export(folder)
    assert link.startswith("https://mega.nz/folder/")
    ph, key_b64 = link.rsplit("/", 1)[1].split("#")
    share_key = mc.base64_to_a32(key_b64)
    visitor = RawClient(emu.api_url)
    nodes = {n["h"]: n for n in visitor.one({"a": "f", "c": 1, "r": 1}, n=ph)["f"]}
    assert visitor.name(nodes[h], share_key) == "b.txt"
    # files added after the export get share keys too
    h2, _ = emu.add_file("alice@example.com", b"later", "later.txt", folder)
    nodes = {n["h"]: n for n in visitor.one({"a": "f", "c": 1, "r": 1}, n=ph)["f"]}
    assert visitor.name(nodes[h2], share_key) == "later.txt"
    # share the folder with bob: he sees it with su/sk/r
    alice = RawClient(emu.api_url)
    alice.login("alice@example.com", "pw")
    sk = mc.a32_to_base64(mc.encrypt_key(share_key, mc.str_to_a32(bob.master_key)))
    assert alice.one(
        {"a": "s2", "n": folder, "s": [{"u": "bob@example.com", "r": 1, "k": sk}]}
    ) == {"r": [0]}
    client.login("bob@example.com", "pw")
    listing = client.files()
    root_share = next(n for n in listing["f"] if n["h"] == folder)
    assert root_share["su"] == alice.user and root_share["r"] == 1 and root_share["sk"] == sk
    got = mc.decrypt_key(mc.base64_to_a32(root_share["sk"]), client.master_key)
    inner = next(n for n in listing["f"] if n["h"] == h)
    assert client.node_key(inner, got) == packed
    assert any(u["u"] == alice.user for u in listing["u"])
    # read-write share: bob adds a folder inside, keyed for himself and (cr) for the share
    bob_key = mc.random_key(4)
    new_folder = client.new_node("from bob", bob_key)
    made = client.one({"a": "p", "t": folder, "n": [new_folder]})["f"][0]
    assert made["u"] == client.user and client.name(made) == "from bob"
    cr = [[folder], [made["h"]], [0, 0, mc.a32_to_base64(mc.encrypt_key(bob_key, got))]]
    assert client.one({"a": "s2", "n": folder, "s": [], "cr": cr}) == -11  # not his folder
    res = client.one({"a": "p", "t": folder, "n": [{**new_folder, "h": "yyyyyyyy"}], "cr": cr})
    assert isinstance(res, dict)
    # alice sees bob's folder in her tree, readable through the share key only
    seen = next(n for n in alice.files()["f"] if n["h"] == made["h"])
    assert seen["u"] == client.user and seen["p"] == folder
    parts = dict(p.split(":", 1) for p in seen["k"].split("/"))
    assert set(parts) == {client.user, folder}
    assert alice.name({**seen, "k": f"{folder}:{parts[folder]}"}, share_key) == "from bob"
    # and it lives in alice's tree
    assert emu.node(made["h"])["owner"] == alice.user


def test_contacts(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("me@example.com", "pw")
    friend = emu.create_account("friend@example.com", "pw")
    client.login("me@example.com", "pw")
    assert client.one({"a": "ur", "u": "friend@example.com", "l": "1", "i": "x"}) == 0
    assert {"u": friend.handle, "c": 1, "m": "friend@example.com"} in client.files()["u"]
    assert client.cs(
        [
            {"a": "ur", "u": "nobody@example.com", "l": "1"},
            {"a": "ur", "u": "me@example.com", "l": "1"},
            {"a": "ur", "u": "friend@example.com", "l": "maybe"},
            {"a": "ur", "u": "friend@example.com", "l": "0"},
        ]
    ) == [-9, -2, -2, 0]
    assert all(u["u"] != friend.handle for u in client.files()["u"])


def test_uk_gives_a_users_public_key(emu: MegaEmulator, client: RawClient) -> None:
    emu.create_account("keys@example.com", "pw")
    other = emu.create_account("other-keys@example.com", "pw")
    eph = emu.create_ephemeral_account()
    client.login("keys@example.com", "pw")
    by_email = client.one({"a": "uk", "u": "Other-Keys@example.com"})
    by_handle = client.one({"a": "uk", "u": other.handle})
    assert by_email == by_handle and by_email["u"] == other.handle
    n, e = mc.decode_mpis(mc.base64_url_decode(by_email["pubk"]), 2)
    assert n.bit_length() >= 1024 and e in (3, 17, 65537)
    # the key is the account's: its modulus is p*q of the account's private key
    from megafast.testing import _crypto as C

    row = emu.store.user(other.handle)
    assert row is not None
    privk = C.ecb_decrypt(other.master_key, C.b64decode(row["privk"]))
    p, q = mc.decode_mpis(privk, 2)
    assert p * q == n
    assert client.cs(
        [
            {"a": "uk", "u": "nobody@example.com"},
            {"a": "uk", "u": eph.handle},  # no key yet
            {"a": "uk"},
        ]
    ) == [-9, -9, -2]


def test_concurrent_api_clients(emu: MegaEmulator) -> None:
    emu.create_account("conc@example.com", "pw")
    sid = emu.create_session("conc@example.com")
    errors: list[object] = []

    def work() -> None:
        c = RawClient(emu.api_url)
        c.sid = sid
        try:
            for _ in range(10):
                assert c.one({"a": "ug"})["email"] == "conc@example.com"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_answers_are_compact_json(client: RawClient) -> None:
    body = client.post([{"a": "us0", "user": "x@example.com"}]).content
    assert body == b"[-9]"
    assert json.loads(body) == [-9]


# --- fuzzing: whatever arrives, an error number, never a crash ---------------------------

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.text(max_size=12),
    st.sampled_from(["AAAAAAAA", "xxxxxxxx", "A" * 22, "A" * 43, "EXP", "-1", "", "é" * 11]),
    st.sampled_from(["١٢٣٤٥٦", "123456", "0", "1", "\ud800", "a\udfffb"]),  # odd text
    st.sampled_from(["@@root", "@@folder", "@@file", "@@trash", "@@ph", "@@fileph", "@@user"]),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)
_fields = [
    "n",
    "t",
    "p",
    "h",
    "k",
    "a",
    "attr",
    "key",
    "s",
    "g",
    "user",
    "uh",
    "ts",
    "ok",
    "ha",
    "cr",
    "r",
    "u",
    "v",
    "d",
    "mfa",
    "e",
    "ssl",
    "c",
    "l",
    "i",
    "ov",
    "vb",
]
_commands = st.fixed_dictionaries(
    {
        "a": st.sampled_from(
            [
                "us0",
                "us",
                "up",
                "ug",
                "uq",
                "f",
                "p",
                "a",
                "m",
                "d",
                "l",
                "s2",
                "g",
                "u",
                "mfag",
                "ur",
                "dv",
                "zz",
            ]
        )
    },
    optional={f: _json_values for f in _fields if f != "a"},
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(_commands, min_size=1, max_size=4), public=st.booleans())
def test_fuzzed_commands_never_crash_the_server(fuzz_target, batch: list, public: bool) -> None:
    emu, client, ph, names = fuzz_target
    body = json.dumps(batch)
    for placeholder, real in names.items():  # real handles reach the deeper code paths
        body = body.replace(placeholder, real)
    resp = client.post(None, raw_body=body.encode(), n=ph if public else None)
    assert resp.status_code == 200
    answer = resp.json()
    assert isinstance(answer, list) and len(answer) == len(batch)
    assert -1 not in answer  # EINTERNAL would mean a handler raised
    assert all(not isinstance(a, int) or a <= 0 for a in answer)


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[MegaEmulator, RawClient, str]]:
    with MegaEmulator() as e:
        e.create_account("fuzz@example.com", "pw")
        folder = e.add_folder("fuzz@example.com", "f")
        h, _ = e.add_file("fuzz@example.com", b"x" * 100, "x", folder)
        ph = e.export(folder).rsplit("/", 1)[1].split("#")[0]
        file_ph = e.export(h).rsplit("/", 1)[1].split("#")[0]
        c = RawClient(e.api_url)
        c.login("fuzz@example.com", "pw")
        names = {
            "@@root": e.root_handle("fuzz@example.com"),
            "@@trash": e.root_handle("fuzz@example.com", 4),
            "@@folder": folder,
            "@@file": h,
            "@@ph": ph,
            "@@fileph": file_ph,
            "@@user": "fuzz@example.com",
        }
        yield e, c, ph, names
