"""NodeStore's name index (CRC-32 column, runs of slots, lazy dicts): the same answers as a
plain scan of the children by name, through listings, changes and a cache round trip, and
never a node whose JSON only looks like it has the name."""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

import pytest

from megafast._tree.cache import NodeCache
from megafast._tree.nodestore import NodeStore, name_hash

KEY = bytes(32)


def batch(store: NodeStore, parent: str, items: list[tuple[str, str, bytes | None]]) -> None:
    n = len(items)
    store.put_batch(
        [h for h, _, _ in items],
        [parent] * n,
        [0] * n,
        ["u"] * n,
        [1] * n,
        [2] * n,
        KEY * n,
        [name for _, name, _ in items],
        [attrs for _, _, attrs in items],
    )


def plain_lookup(store: NodeStore, parent: str, name: str) -> list[str]:
    slots = store.children.get(store.slot_of[parent], ())
    return [store.handles[s] for s in slots if store.name_at(s) == name]  # type: ignore[misc]


def make_store() -> NodeStore:
    store = NodeStore()
    store.put("R", None, 2, "u", 0, 0, None, None)
    store.put("D", "R", 1, "u", 0, 0, bytes(16), "d")
    batch(
        store,
        "D",
        [
            ("A1", "a", None),
            ("A2", "b", b'{"n":"b","c":"x"}'),
            ("A3", "a", b'{"n":"a","c":"second a"}'),
            ("A4", "odd", b'{"n":"odd","x":{"n":"target"}}'),
            ("A5", "last", b'{"n":"target","n":"last"}'),
            ("A6", 'q"uote', b'{"n":"q\\"uote","c":1}'),
            ("A7", "\u00e9t\u00e9", '{"n":"\u00e9t\u00e9","c":1}'.encode()),
        ],
    )
    return store


def test_lookups_match_a_plain_scan() -> None:
    store = make_store()
    assert type(store._name_index[store.slot_of["D"]]) is tuple  # one run of slots
    for name in ("a", "b", "target", "last", "odd", 'q"uote', "\u00e9t\u00e9", "missing", ""):
        want = plain_lookup(store, "D", name)
        got = [store.handles[s] for s in store.children_named(store.slot_of["D"], name)]
        assert got == want, name
    assert store.find_path("d/a") == "A1"
    assert store.find_path("d/target") is None  # nested or overridden "n" is not the name


def test_hash_collisions_only_pick_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zlib, "crc32", lambda data: 7)
    store = make_store()
    assert {name_hash("a"), name_hash("b")} == {7}
    assert store.find_path("d/b") == "A2" and store.find_path("d/last") == "A5"
    assert store.find_path("d/target") is None and store.find_path('d/q"uote') == "A6"
    store._name_index.clear()  # the dict form of the index, with every slot under one hash
    assert store.find_path("d/a") == "A1" and store.find_path("d/odd") == "A4"


def test_index_follows_changes_and_cache(tmp_path: Path) -> None:
    rng = random.Random(4)
    store = make_store()
    batch(store, "D", [("B1", "a", None)])  # the run goes on
    store.put("E", "R", 1, "u", 0, 0, bytes(16), "e")
    batch(store, "E", [(f"E{i}", f"n{i % 5}", None) for i in range(30)])
    batch(store, "D", [("B2", "z", None)])  # not next to D's run: D gets a dict
    store.move("A1", "E")
    store.set_attributes("A2", "a", b'{"n":"a","c":"renamed"}')
    store.remove("E3")
    store.put("E3", "D", 0, "u", 1, 2, KEY, "n3")  # a freed slot comes back
    folder = tmp_path / "cache"
    cache = NodeCache(folder, bytes(16), "u")
    assert cache.save(store)
    loaded = cache.load()
    assert loaded is not None
    for s in (store, loaded):
        for parent in ("D", "E"):
            for name in ["a", "b", "z", "n3", "last", *(f"n{i}" for i in range(5))]:
                want = plain_lookup(s, parent, name)
                got = [s.handles[x] for x in s.children_named(s.slot_of[parent], name)]
                assert got == want, (parent, name)
    assert loaded.find_path("d/n3") == "E3" and loaded.find_path("e/a") == "A1"
    assert list(loaded.name_hash) == list(store.name_hash)
    names = [rng.choice("abc") for _ in range(200)]
    assert list(map(name_hash, names)) == [zlib.crc32(n.encode()) for n in names]
    assert json.loads(loaded.attrs[loaded.slot_of["A2"]] or b"{}")["c"] == "renamed"


def test_put_batch_with_hashes_and_names_only_in_the_json() -> None:
    store = NodeStore()
    store.put("R", None, 2, "u", 0, 0, None, None)
    store.put("D", "R", 1, "u", 0, 0, bytes(16), "d")
    for _ in range(2):  # the second time the handles are known: stored one by one
        store.put_batch(
            ["F1", "F2"],
            ["D", "D"],
            [0, 0],
            ["u", "u"],
            [1, 2],
            [3, 4],
            KEY * 2,
            [None, "y"],
            [b'{"n":"x","c":1}', None],
            hashes=[name_hash("x"), name_hash("y")],
        )
        assert store.find_path("d/x") == "F1" and store.find_path("d/y") == "F2"
        assert store.node("F1")["a"] == {"n": "x", "c": 1} and len(store) == 4


def test_a_long_run_gets_a_dict_and_paths_go_back_on_repeated_names() -> None:
    """A folder of more than _SCAN_RUN children laid out in one run is looked up through a
    dict made on the first lookup (scanning its run cost tens of microseconds at 10,000
    children); repeated folder names still find the first match in listing order."""
    from megafast._tree.nodelookup import _SCAN_RUN

    store = NodeStore()
    store.put("R", None, 2, "u", 0, 0, None, None)
    n = _SCAN_RUN * 4
    store.put_batch(
        [f"D{i}" for i in range(n)],
        ["R"] * n,
        [1] * n,
        ["u"] * n,
        [0] * n,
        [0] * n,
        bytes(16) * n,
        [f"d{i % (n // 2)}" for i in range(n)],  # every name twice
        [None] * n,
    )
    root = store.slot_of["R"]
    assert type(store._name_index[root]) is tuple
    assert store.find_path("d7") == "D7"
    assert type(store._name_index[root]) is dict
    for name in ("d0", "d7", f"d{n // 2 - 1}", "missing"):
        want = plain_lookup(store, "R", name)
        assert [store.handles[s] for s in store.children_named(root, name)] == want
    # d3 twice: only the second one has a "leaf" inside, so the path goes back to it
    batch(store, f"D{3 + n // 2}", [("L", "leaf", None)])
    assert store.find_path("d3/leaf") == "L"
    assert store.find_path("d3/missing") is None
    batch(store, "D3", [("L0", "leaf", None)])
    assert store.find_path("d3/leaf") == "L0"  # the first d3 in listing order wins
    store.put("F", "D5", 0, "u", 1, 2, KEY, "f")
    assert store.find_path("d5/f/x") is None  # a file on the way down
    assert store.find_path("d5/f") == "F"
    assert store.find_path("d5/f", folders_only=True) is None


def test_node_dicts_match_the_general_builder_and_json_loads() -> None:
    """The one-display dict of a usual file or folder has the same keys, order and values as
    the general builder; find by path hands over the JSON it parsed for the name, equal to a
    fresh dict; parse_attrs gives what json.loads gives (whitespace, errors)."""
    from megafast._tree.nodelookup import parse_attrs
    from megafast._tree.nodes import Keyring, NodeTree

    store = make_store()
    store.put("W", "D", 0, "u", 5, 6, bytes(range(32)), "w", b' {"n":"w", "c":2} ')
    store.put("X", "D", 0, "u", 5, 6, bytes(range(32)), "x", None, extra={"ph": "PH"})
    store.put("U", "D", 0, "u", 5, 6, None, None, None, enc_key="R:abc")
    store.put("O", "gone", 1, "u", 0, 7, bytes(range(16)), "orphan")
    store.put("F", "D", 1, "u", 0, 7, bytes(range(16)), "f", b'{"n":"f","x":[1]}')
    for h in store.slot_of:
        slot = store.slot_of[h]
        fast, general = store._dict(slot), store._dict_general(slot, None)
        assert list(fast.items()) == list(general.items()), h
    tree = NodeTree(store, Keyring(share_keys={"F": bytes(16)}))
    for path, h in (("d/w", "W"), ("d/x", "X"), ("d/f", "F"), ("d/b", "A2"), ("d/a", "A1")):
        node = tree.find_path(path)
        assert node is not None and node == tree.nodes[h] and node["h"] == h, path
        assert node["a"] is not tree.find_path(path)["a"]  # type: ignore[index]
    assert tree.find_path("d/f")["shared_folder_key"] == (0, 0, 0, 0)  # type: ignore[index]
    for text in (b'{"n":"a"}', b' {"n":"a"} ', b'{"n":"a"}x', b"[1]", b'"s"', b"", b"{"):
        try:
            want: object = json.loads(text.decode())
        except ValueError as exc:
            want = type(exc)
        try:
            got: object = parse_attrs(text)
        except ValueError as exc:
            got = type(exc)
        assert got == want, text
