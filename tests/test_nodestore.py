"""The compact node store and the streaming listing parser: the same mega.py-shaped nodes as
NodeTree from real emulator answers fed in any chunking, path lookups, changes, bad input."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import requests

from megafast._tree.listing import ListingParser, add_raw_nodes, load_listing
from megafast._tree.nodes import Keyring, NodeTree
from megafast._tree.nodestore import NodeStore, StoreError
from megafast.errors import RequestError, ValidationError
from megafast.testing import MegaEmulator
from megafast.testing import _crypto as C
from synthetic_listing import Account, big_answer_chunks, handle


def f_answer(emu: MegaEmulator, email: str) -> bytes:
    sid = emu.create_session(email)
    response = requests.post(
        f"{emu.api_url}/cs?id=1&sid={sid}", json=[{"a": "f", "c": 1, "r": 1}], timeout=30
    )
    return response.content


@pytest.fixture(scope="module")
def emulated() -> Any:
    with MegaEmulator() as emu:
        acc = emu.create_account("big@example.com", "pw")
        other = emu.create_account("friend@example.com", "pw")
        docs = emu.add_folder(acc.email, "docs")
        sub = emu.add_folder(acc.email, "sub", docs)
        emu.add_file(acc.email, b"hello", "x.txt", sub)
        emu.add_file(acc.email, b"again", "x.txt", docs)
        emu.add_file(acc.email, b"{}}", 'we}ird, "name".txt', docs)
        emu.add_file(acc.email, b"top", "top.bin")
        emu.add_folder(other.email, "theirs")
        yield emu, acc


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 30])
def test_listing_matches_nodetree_for_any_chunking(emulated: Any, chunk: int) -> None:
    emu, acc = emulated
    body = f_answer(emu, acc.email)
    expected = NodeTree.from_answer(
        json.loads(body)[0], Keyring(master_key=acc.master_key, user_handle=acc.handle)
    ).visible()
    store, meta = load_listing(
        [body[i : i + chunk] for i in range(0, len(body), chunk)],
        Keyring(master_key=acc.master_key, user_handle=acc.handle),
    )
    assert store.visible() == expected
    assert len(expected) == 9 and len(store) == 9
    assert store.sn == json.loads(body)[0]["sn"]
    assert {"ok", "s", "u", "sn"} <= set(meta)


def test_paths_and_lookups(emulated: Any) -> None:
    emu, acc = emulated
    store, _ = load_listing([f_answer(emu, acc.email)], Keyring(acc.master_key, acc.handle))
    h = store.find_path("docs/sub/x.txt")
    assert h is not None and store.path_of(h) == "Cloud Drive/docs/sub/x.txt"
    assert store.node(h)["a"]["n"] == "x.txt" and store.node(h)["s"] == 5
    assert store.find_path("/docs//x.txt") == store.find_path("Cloud Drive/docs/x.txt")
    assert store.find_path('docs/we}ird, "name".txt') is not None
    assert store.find_path("docs/nothing") is None
    assert store.find_path("docs/sub", folders_only=True) is not None
    assert store.find_path("docs/x.txt", folders_only=True) is None
    assert store.find_path("Rubbish Bin") == store.roots[4]
    body = f_answer(emu, acc.email)
    tree = NodeTree.from_answer(json.loads(body)[0], Keyring(acc.master_key, acc.handle))
    first = tree.find_by_name("x.txt")
    assert first is not None and store.find_name("x.txt") == first["h"]  # listing order
    assert store.find_name("sub") == store.find_path("docs/sub")
    assert store.find_name("Cloud Drive") == store.root_id and store.find_name("none") is None
    assert store.find_path("") == store.root_id


def test_store_changes_move_remove_cycle() -> None:
    acct = Account()
    nodes = acct.roots() + [
        acct.folder("A0000000", acct.root, "a"),
        acct.folder("B0000000", "A0000000", "b"),
        acct.file("F0000000", "B0000000", "f.txt"),
    ]
    store, _ = load_listing([json.dumps([{"f": nodes}]).encode()], Keyring(acct.master, acct.user))
    assert store.find_path("a/b/f.txt") == "F0000000"
    store.move("B0000000", acct.root)
    assert store.find_path("b/f.txt") == "F0000000" and store.find_path("a/b") is None
    with pytest.raises(StoreError, match="cycle"):
        store.move("A0000000", "A0000000")
    store.move("A0000000", "B0000000")
    with pytest.raises(StoreError, match="cycle"):
        store.move("B0000000", "A0000000")
    with pytest.raises(StoreError):
        store.move("nope", acct.root)
    assert sorted(store.remove("B0000000")) == ["A0000000", "B0000000", "F0000000"]
    assert len(store) == 3 and "F0000000" not in store
    # freed slots are reused and stay consistent
    store.put("N0000000", acct.root, 1, acct.user, 0, 5, secrets.token_bytes(16), "new")
    assert store.find_path("new") == "N0000000" and len(store) == 4
    with pytest.raises(StoreError):
        store.remove("F0000000")


def test_children_listed_before_parent_and_share_keys_after_nodes() -> None:
    acct = Account()
    share_key = secrets.token_bytes(16)
    folder_key = secrets.token_bytes(16)
    shared = acct.folder("S0000000", acct.root, "shared", key=folder_key)
    inner_key = secrets.token_bytes(16)
    inner = {
        "h": "I0000000",
        "p": "S0000000",
        "u": "OtherUser00",
        "t": 1,
        "a": C.encrypt_attr({"n": "inner"}, inner_key),
        "k": f"S0000000:{C.b64encode(C.ecb_encrypt(share_key, inner_key))}",
        "ts": 3,
    }
    ok = [{"h": "S0000000", "ha": "", "k": C.b64encode(C.ecb_encrypt(acct.master, share_key))}]
    answer = {"f": [inner] + acct.roots() + [shared], "ok": ok, "sn": "AAAAAAAAAAI"}
    store, _ = load_listing([json.dumps([answer]).encode()], Keyring(acct.master, acct.user))
    assert store.find_path("shared/inner") == "I0000000"
    assert store.node("I0000000")["a"] == {"n": "inner"}
    assert store.node("I0000000")["u"] == "OtherUser00"


def test_a_cycle_in_a_hostile_listing_is_harmless() -> None:
    acct = Account()
    a = acct.folder("A0000000", "B0000000", "a")
    b = acct.folder("B0000000", "A0000000", "b")
    store, _ = load_listing(
        [json.dumps({"f": acct.roots() + [a, b]}).encode()], Keyring(acct.master, acct.user)
    )
    assert store.in_cycle("A0000000") and not store.in_cycle(acct.root)
    assert store.find_path("a") is None and store.path_of("A0000000")  # ends
    assert sorted(store.remove("A0000000")) == ["A0000000", "B0000000"]
    assert len(store) == 3


def test_undecryptable_nodes_stay_listed() -> None:
    acct = Account()
    bad = acct.file("X0000000", acct.root, "x")
    bad["k"] = f"{acct.user}:{C.b64encode(secrets.token_bytes(32))}"  # wrong key
    unknown = acct.file("Y0000000", acct.root, "y")
    unknown["k"] = "SomeShare:" + unknown["k"].split(":")[1]
    store, _ = load_listing(
        [json.dumps({"f": acct.roots() + [bad, unknown]}).encode()], Keyring(acct.master, acct.user)
    )
    for h in ("X0000000", "Y0000000"):
        node = store.node(h)
        assert node["a"] is False and node["undecryptable"] is True
    assert "X0000000" not in store.visible()


@pytest.mark.parametrize(
    "body",
    [
        b'[{"f":[{"h":"a","t":1}',
        b'[{"f":[',
        b'[{"f":[{"h":"a","t":1}],"sn":"x"',
        b"\xff\xfe",
        b'[{"f":[{"h":"a","t":1}]}] trailing',
        b"[{1:2}]",
        b'[{"f":[{"h":"a}]}]',
    ],
)
def test_malformed_or_truncated_answers_raise(body: bytes) -> None:
    parser = ListingParser(Keyring(secrets.token_bytes(16), "u"))
    with pytest.raises(ValidationError):
        for i in range(0, len(body), 3):
            parser.feed(body[i : i + 3])
        parser.close()


@pytest.mark.parametrize("body", [b"-9", b"[-9]", b"[-15]"])
def test_error_numbers_raise_request_errors(body: bytes) -> None:
    with pytest.raises(RequestError):
        load_listing([body], Keyring(secrets.token_bytes(16), "u"))


def test_hostile_node_text_never_shifts_names() -> None:
    """Braces and brackets inside strings and nested values take the slow path, correctly."""
    acct = Account()
    odd = acct.file("O0000000", acct.root, "o")
    odd["fa"] = '}],{"h":"evil"},{'
    odd["extra"] = {"x": [1, {"y": "}"}]}
    nodes = acct.roots() + [odd, acct.file("P0000000", acct.root, "p")]
    body = json.dumps([{"f": nodes, "sn": "s"}]).encode()
    for chunk in (5, len(body)):
        store, _ = load_listing(
            [body[i : i + chunk] for i in range(0, len(body), chunk)],
            Keyring(acct.master, acct.user),
        )
        assert "evil" not in store
        assert store.node("O0000000")["fa"] == odd["fa"]
        assert store.find_path("p") == "P0000000"


def test_synthetic_listing_counts() -> None:
    acct = Account()
    store, _ = load_listing(
        big_answer_chunks(acct, 20, 30, chunk=997), Keyring(acct.master, acct.user)
    )
    assert len(store) == 3 + 20 + 20 * 30
    h = store.find_path("folder7/file29.bin")
    assert h is not None and store.node(h)["s"] == 1029 and "c" in store.node(h)["a"]
    assert isinstance(NodeStore().visible(), dict)
    assert handle(5) != handle(6)


def test_odd_sizes_and_unusable_entries_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A hostile listing never loses or bends an entry without a word: invalid sizes are listed
    as 0 with a warning naming the handles, entries without a usable handle are counted."""
    store = NodeStore()
    odd = [
        {"h": f"ODDSIZE{i}", "p": "ROOTROOT", "t": 0, "u": "me", "k": "x:y", "a": "zz", "s": s}
        for i, s in enumerate(["12", 10**20, -1, 2.5])
    ]
    fine = {"h": "GOODSIZE", "p": "ROOTROOT", "t": 0, "u": "me", "k": "x:y", "a": "zz", "s": 7}
    unusable: list[Any] = [{"h": ["list"], "t": 0}, {"h": "NOTYPE00"}, 5]
    with caplog.at_level("WARNING", logger="megafast.listing"):
        add_raw_nodes(store, [*odd, fine, *unusable], Keyring())
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "3 entries without a usable handle" in messages
    assert "4 nodes declare an invalid size" in messages and "ODDSIZE0" in messages
    assert "GOODSIZE" not in messages
    assert all(store.node(f"ODDSIZE{i}")["s"] == 0 for i in range(4))
    assert store.node("GOODSIZE")["s"] == 7
