"""The emulator's ``f`` from ready-encoded nodes (testing/_encoded.py): over real HTTP, the
bytes are those of the node-by-node listing it replaced (kept below as the oracle), for an
account with folders, files, old versions, a detached node, an exported folder, a folder
shared with another user, and nodes SQLite cannot encode by concatenation; after every kind
of change; for a public folder; and for state written before the ``js`` column existed."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
import requests

from megafast import crypto as mc
from megafast.testing import MegaEmulator
from megafast.testing._changes import encode_sn
from megafast.testing._encoded import Encoded, encode_answer
from support.raw_client import RawClient

A, B = "alice@example.com", "bob@example.com"


def oracle(emu: MegaEmulator, user: str | None, folder: str | None = None) -> Any:
    """The ``f`` answer built node by node with ``node_json`` (the emulator's listing before
    the nodes were kept encoded): the reference the fast listing must equal byte for byte."""
    svc, store = emu.service, emu.store
    sn = encode_sn(svc.changes.current())
    if folder is not None:
        keys = svc._listing_keys(None, None, folder)
        return {
            "f": [svc.node_json(r, None, folder, keys) for r in store.subtree(folder)],
            "sn": sn,
        }
    assert user is not None
    keys = svc._listing_keys(None, user, None)
    out = []
    for t in (2, 3, 4):
        for row in store.subtree(store.root_node(user, t)):
            out.append(svc.node_json(row, user, None, keys))
    listed = {n["h"] for n in out}
    versions = svc._versions_of(user)
    listed.update(r["h"] for r in versions)
    for r in store.all("SELECT h FROM nodes WHERE owner=? ORDER BY seq", user):
        if r["h"] not in listed:
            out.append(svc.node_json(store.node(r["h"]), user, None, keys))
    contacts: dict[str, dict] = {}
    for share in store.all("SELECT * FROM shares WHERE u=?", user):
        for i, row in enumerate(store.subtree(share["h"])):
            entry = svc.node_json(row, user, None, keys)
            if i == 0:
                entry.update(su=row["owner"], sk=share["k"] or "", r=share["r"])
            out.append(entry)
        owner = store.user(store.node(share["h"])["owner"])
        contacts[owner["handle"]] = {"u": owner["handle"], "c": 1, "m": owner["email"] or ""}
    for c in store.all(
        "SELECT users.handle, users.email FROM contacts JOIN users"
        " ON users.handle = contacts.contact WHERE contacts.user=?",
        user,
    ):
        contacts.setdefault(c["handle"], {"u": c["handle"], "c": 1, "m": c["email"] or ""})
    me = store.user(user)
    contacts[user] = {"u": user, "c": 2, "m": me["email"] or ""}
    ok = [
        {"h": r["h"], "ha": r["ha"] or "", "k": r["ok"]}
        for r in store.all("SELECT * FROM share_keys WHERE owner=?", user)
    ]
    s = [
        {"h": r["h"], "u": r["u"], "r": r["r"], "ts": r["ts"]}
        for r in store.all(
            "SELECT shares.* FROM shares JOIN nodes ON nodes.h = shares.h WHERE nodes.owner=?"
            " ORDER BY nodes.seq, shares.u",
            user,
        )
    ]
    answer = {"f": out, "ok": ok, "s": s, "u": list(contacts.values()), "sn": sn}
    if versions:
        answer["f2"] = [svc.node_json(r, user, None, keys) for r in versions]
    return answer


def raw_f(emu: MegaEmulator, **params: str) -> bytes:
    response = requests.post(
        f"{emu.api_url}/cs", params={"id": "1", **params}, data=b'[{"a":"f","c":1}]', timeout=60
    )
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    return response.content


def assert_same(emu: MegaEmulator, email: str) -> dict[str, Any]:
    user = emu.store.user_by_email(email)["handle"]
    got = raw_f(emu, sid=emu.create_session(email))
    expected = json.dumps([oracle(emu, user)], separators=(",", ":")).encode()
    assert got == expected
    return json.loads(got)[0]  # type: ignore[no-any-return]


@pytest.fixture
def accounts(emu: MegaEmulator) -> dict[str, Any]:
    """alice: folders and files, two old versions, a detached folder, an exported folder
    (shared with bob) with an exported folder inside; bob: his own file."""
    emu.create_account(A, "pw")
    bob = emu.create_account(B, "pw")
    top = emu.add_folder(A, "top")
    inner = emu.add_folder(A, "inner", top)
    files = [emu.add_file(A, b"x" * i, f"f{i}.txt", inner if i % 2 else top)[0] for i in range(6)]
    emu.add_file(B, b"bob's", "mine.txt")
    owner = emu.store.user_by_email(A)["handle"]
    node = emu.node(files[0])
    assert node is not None
    # two old versions under files[0], one below the other, and a node whose parent is gone
    v1 = emu.store.insert_node(owner, files[0], 0, node["a"], node["k"], s=1, blob=node["blob"])
    emu.store.insert_node(owner, v1, 0, node["a"], node["k"], s=2, blob=node["blob"])
    emu.store.insert_node(owner, "gone0000", 1, node["a"], node["k"])
    emu.export(inner)  # the nodes in inner have keys under two shares
    link = emu.export(top)
    ph, key_b64 = link.rsplit("/", 1)[1].split("#")
    share_key = mc.base64_to_a32(key_b64)
    alice = RawClient(emu.api_url)
    alice.login(A, "pw")
    sk = mc.a32_to_base64(mc.encrypt_key(share_key, mc.str_to_a32(bob.master_key)))
    assert alice.one({"a": "s2", "n": top, "s": [{"u": B, "r": 1, "k": sk}]}) == {"r": [0]}
    return {"top": top, "inner": inner, "files": files, "ph": ph, "alice": alice}


def test_listing_bytes_equal_the_node_by_node_listing(
    emu: MegaEmulator, accounts: dict[str, Any]
) -> None:
    answer = assert_same(emu, A)
    assert len(answer["f2"]) == 2 and any(n["p"] == "gone0000" for n in answer["f"])
    assert any("/" in n["k"] for n in answer["f"])  # keys under the export's share too
    answer = assert_same(emu, B)  # bob: his own tree and alice's share
    assert any(n.get("su") for n in answer["f"])
    got = raw_f(emu, n=accounts["ph"])
    expected = oracle(emu, None, accounts["top"])
    assert got == json.dumps([expected], separators=(",", ":")).encode()
    assert len(expected["f"]) == 1 + 1 + 6


def test_every_change_reencodes_the_node(emu: MegaEmulator, accounts: dict[str, Any]) -> None:
    alice: RawClient = accounts["alice"]
    files = accounts["files"]
    node = emu.node(files[1])
    assert node is not None
    assert alice.one({"a": "a", "n": files[1], "attr": node["a"] + "x"}) == 0
    assert alice.one({"a": "m", "n": files[2], "t": accounts["inner"]}) == 0
    assert alice.one({"a": "d", "n": files[3]}) == 0
    emu.add_file(A, b"new", "new.txt", accounts["inner"])  # keyed for the export's share
    emu.store.execute("UPDATE nodes SET fa=? WHERE h=?", "0:thumbnail", files[4])
    emu.store.execute("DELETE FROM node_keys WHERE h=?", files[5])
    answer = assert_same(emu, A)
    assert any(n.get("fa") == "0:thumbnail" for n in answer["f"])
    assert_same(emu, B)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("a", 'quote " and \\ backslash'),
        ("a", "ünïcode name"),
        ("a", "line\nbreak\x7f"),
        ("k", None),
        ("ts", 1.5),
        ("fa", "ü"),
    ],
)
def test_nodes_sqlite_cannot_encode_are_encoded_in_python(
    emu: MegaEmulator, accounts: dict[str, Any], column: str, value: Any
) -> None:
    h = accounts["files"][1]
    emu.store.execute(f"UPDATE nodes SET {column}=? WHERE h=?", value, h)
    assert emu.store.one("SELECT js FROM nodes WHERE h=?", h)["js"] is None
    assert_same(emu, A)
    assert_same(emu, B)
    assert (
        raw_f(emu, n=accounts["ph"])
        == json.dumps([oracle(emu, None, accounts["top"])], separators=(",", ":")).encode()
    )


def test_state_from_before_the_encoded_column_is_encoded_on_open(tmp_path: Any) -> None:
    with MegaEmulator(data_dir=tmp_path) as emu:
        emu.create_account(A, "pw")
        folder = emu.add_folder(A, "kept")
        emu.add_file(A, b"data", "a.bin", folder)
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP INDEX nodes_owner_seq")
    db.execute("ALTER TABLE nodes DROP COLUMN js")
    db.commit()
    db.close()
    with MegaEmulator(data_dir=tmp_path) as emu:
        assert emu.store.one("SELECT count(*) FROM nodes WHERE js IS NULL")[0] == 0
        assert_same(emu, A)


def test_long_answers_are_sent_in_pieces_with_their_length() -> None:
    items = [
        json.dumps({"h": str(i), "a": "x" * 100}, separators=(",", ":")).encode()
        for i in range(20000)
    ]
    answer = [{"f": Encoded(items), "sn": "abc"}, 0, {"f": Encoded([])}]
    length, pieces = encode_answer(answer)
    body = b"".join(pieces)
    assert len(body) == length
    expected = [{"f": [json.loads(i) for i in items], "sn": "abc"}, 0, {"f": []}]
    assert body == json.dumps(expected, separators=(",", ":")).encode()


@pytest.mark.parametrize("folder_queries", [0, 2, 64])
def test_public_folder_folder_by_folder_or_from_the_owners_nodes(
    emu: MegaEmulator,
    accounts: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    folder_queries: int,
) -> None:
    """A public folder is listed folder by folder up to _FOLDER_QUERIES folders, else from
    one pass over its owner's nodes: the same bytes either way."""
    from megafast.testing import _nodes

    deeper = emu.add_folder(A, "deeper", accounts["inner"])
    emu.add_file(A, b"deep", "deep.txt", deeper)
    monkeypatch.setattr(_nodes, "_FOLDER_QUERIES", folder_queries)
    got = raw_f(emu, n=accounts["ph"])
    expected = oracle(emu, None, accounts["top"])
    assert got == json.dumps([expected], separators=(",", ":")).encode()
    assert len(expected["f"]) == 1 + 1 + 6 + 2


def test_bulk_raw_and_converted_inserts_are_encoded(
    emu: MegaEmulator, accounts: dict[str, Any]
) -> None:
    """Store.insert_rows writes each node's JSON with it; a plain INSERT (as some benchmarks
    seed) or a value the column converts (a time as text) is encoded by the insert trigger."""
    store = emu.store
    owner = store.user_by_email(A)["handle"]
    node = emu.node(accounts["files"][1])
    assert node is not None
    seq = store.next_seq()
    store.insert_rows(
        [
            ("bulk0001", owner, accounts["inner"], 0, node["a"], node["k"], 5, 7, None, None,
             seq + 1, None),
            ("bulk0002", owner, accounts["inner"], 0, node["a"], node["k"], 5, "8", None, None,
             seq + 2, None),
        ]
    )  # fmt: skip
    store.execute(
        "INSERT INTO nodes(h, owner, parent, t, a, k, s, ts, seq) VALUES(?,?,?,?,?,?,?,?,?)",
        "raw00001", owner, accounts["top"], 1, node["a"], node["k"], None, 9, seq + 3,
    )  # fmt: skip
    store._seq = seq + 3
    rows = store.all("SELECT h, ts, js FROM nodes WHERE h IN ('bulk0001','bulk0002','raw00001')")
    assert len(rows) == 3 and all(r["js"] is not None for r in rows)
    assert {r["h"]: r["ts"] for r in rows}["bulk0002"] == 8
    assert_same(emu, A)
