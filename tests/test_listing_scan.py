"""The listing scanner kernel (``scan_nodes``): native and pure twins agree on any text, the
usual nodes it reads are exactly what a JSON parser reads, and no crafted string or attribute
moves another node's boundaries; the ListingParser gives the same store with either twin."""

from __future__ import annotations

import json
import random
import secrets
from array import array
from typing import Any

import pytest
from Crypto.Cipher import AES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megafast._tree.listing import load_listing
from megafast._tree.nodes import Keyring
from megafast._tree.nodestore import name_hash
from megafast.crypto import _backend, _pure
from megafast.errors import ValidationError
from megafast.testing import _crypto as C
from synthetic_listing import Account, handle

native = pytest.importorskip("megafast.crypto._native")

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACCT = Account(master=bytes(range(16)))
PREFIX = f"{ACCT.user}:".encode()

ODD_TEXT = ['a"b', "a\\b", "}],{", "\u00e9t\u00e9", "\U0001f600", "\x01", "", "\u2028", "ok"]


def raw_attr(text: bytes, key16: bytes) -> str:
    """Encrypt attribute bytes as they are (not necessarily valid JSON or UTF-8)."""
    data = b"MEGA" + text
    data += b"\0" * (-len(data) % 16)
    return C.b64encode(AES.new(key16, AES.MODE_CBC, iv=bytes(16)).encrypt(data))


def file_with_attr_text(h: str, text: bytes) -> dict[str, Any]:
    node = ACCT.file(h, ACCT.root, "x")
    packed = secrets.token_bytes(32)
    k = bytes(a ^ b for a, b in zip(packed[:16], packed[16:], strict=True))
    node["k"] = f"{ACCT.user}:{C.b64encode(C.ecb_encrypt(ACCT.master, packed))}"
    node["a"] = raw_attr(text, k)
    return node


ATTR_TEXTS = [
    b'{"n":"plain"}',
    b'{"n":"a","c":"b","lbl":3,"fav":-1}',
    b'{ "n" : "spaced" , "t" : 0 }  ',
    b'{"n":"esc\\u00e9"}',
    '{"n":"utf8 \u00e9\u4e2d"}'.encode(),
    b'{"n":"bad \xff utf8"}',
    b'{"n":"surrogate \xed\xa0\x80"}',
    b'{"n":"dup","n":"second"}',
    b'{"c":"x","n":"dup2","c":"y"}',
    b'{"n":1}',
    b'{"x":"no name"}',
    b'{"n":"nested","x":{"n":"inner"}}',
    b'{"n":"float","x":1.5}',
    b'{"n":"lead","x":01}',
    b'{"n":"trail"} x',
    b'{"n":"ctl\x01"}',
    b'{"n":"many",' + b",".join(b'"k%d":%d' % (i, i) for i in range(20)) + b"}",
    b'{"n":"unterminated',
    b"{}",
]


@st.composite
def node_text(draw: st.DrawFn) -> str:
    """One element of the ``f`` array: usual, odd in some way, or not an object."""
    serial = draw(st.integers(1, 10**6))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from(["1", '"s"', "[1,{}]", "null", "-0", "[]"]))
    if kind == 1:
        name = draw(st.sampled_from(ODD_TEXT))
        node = ACCT.folder(handle(serial), ACCT.root, name)
    elif kind == 2:
        node = file_with_attr_text(handle(serial), draw(st.sampled_from(ATTR_TEXTS)))
    else:
        node = ACCT.file(handle(serial), ACCT.root, draw(st.sampled_from(ODD_TEXT)), serial)
    if kind >= 6:  # change or add one field
        field = draw(st.sampled_from(["h", "p", "u", "t", "s", "ts", "k", "a", "fa", "sk", "x"]))
        node[field] = draw(
            st.sampled_from(
                [
                    "",
                    "}",
                    '"',
                    "\\",
                    "\u00e9",
                    0,
                    1,
                    2,
                    -1,
                    1.5,
                    10**19,
                    None,
                    True,
                    [1],
                    {"a": "}"},
                ]
            )
            | st.sampled_from([node.get("k", "")[:-1], "zz:" + node.get("k", ""), "AAA/"])
        )
    text = json.dumps(
        node,
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " :\t")])),
    )
    if kind == 9:  # raw-text oddities json.dumps never writes
        text = draw(
            st.sampled_from(
                [
                    text.replace('"t":', '"t": 0', 1),
                    text.replace('"s":', '"s":0', 1),
                    text.replace('"ts":', '"ts":1e', 1),
                    text[:-1] + ',"h":"dup"}',
                    text[:-1] + ",}",
                    text.replace("{", "{\n", 1),
                ]
            )
        )
    return text


listings = st.lists(node_text(), max_size=12).flatmap(
    lambda nodes: st.tuples(
        st.just(nodes),
        st.lists(
            st.sampled_from([",", " , ", ",\n", ",,", ""]), min_size=len(nodes), max_size=len(nodes)
        ),
        st.sampled_from(["]", "", '],"ok":[]}]', " x"]),
    )
)


def join(parts: tuple[list[str], list[str], str]) -> bytes:
    nodes, seps, tail = parts
    return ("".join(sep + n for sep, n in zip(seps, nodes, strict=True)) + tail).encode()


def both(text: bytes, pos: int = 0, limit: int = 1 << 20, prefix: bytes = PREFIX) -> Any:
    got = native.scan_nodes(text, pos, limit, prefix, ACCT.master)
    assert got == _pure.scan_nodes(text, pos, limit, prefix, ACCT.master)
    return got


@SETTINGS
@given(listings, st.integers(0, 400))
def test_native_matches_pure_on_any_listing(parts: Any, limit: int) -> None:
    text = join(parts)
    both(text, 0, limit)
    for cut in range(0, len(text), max(1, len(text) // 7)):
        both(text[:cut])


@SETTINGS
@given(st.binary(max_size=300), st.integers(0, 300), st.integers(0, 50))
def test_native_never_crashes_on_random_bytes(data: bytes, pos: int, limit: int) -> None:
    pos = min(pos, len(data))
    both(b"{" + data, 0, limit)
    both(data, pos, limit)


@SETTINGS
@given(listings, st.integers(0, 2**32), st.integers(0, 255))
def test_native_matches_pure_on_mutated_listings(parts: Any, at: int, byte: int) -> None:
    text = bytearray(join(parts))
    if text:
        text[at % len(text)] = byte
    both(bytes(text))


@SETTINGS
@given(listings)
def test_usual_nodes_read_exactly_as_json(parts: Any) -> None:
    """Every node the scanner reads itself is a valid JSON object with those very values,
    and every span (usual or not) is exactly one whole element of the array."""
    text = join(parts)
    end, stop, others, cols = both(text)
    handles, parents, owners, types, sizes, times, keys, attrs, fas, spans, names, members = cols[
        :12
    ]
    sizes_a, times_a, spans_a = (array("q", b) for b in (sizes, times, spans))
    hashes = array("I", cols[12])
    for i, h in enumerate(handles):
        node = json.loads(text[spans_a[2 * i] : spans_a[2 * i + 1]])
        assert (node["h"], node["p"], node["u"], node["t"]) == (h, parents[i], owners[i], types[i])
        assert (node.get("s", 0), node.get("ts", 0), node.get("fa")) == (
            sizes_a[i],
            times_a[i],
            fas[i],
        )
        if members[i]:
            parsed = json.loads(attrs[i])
            assert len(parsed) == members[i] and hashes[i] == name_hash(parsed["n"])
            assert names[i] == (parsed["n"] if members[i] == 1 else None)
        else:
            assert names[i] is None and hashes[i] == 0
        key = keys[32 * i : 32 * i + 32]
        assert key.rstrip(b"\0") or not key
    for start, _ in others:
        assert text[start : start + 1] == b"{"
    assert len(handles) + len(others) <= text.count(b"{")


def test_crafted_strings_never_move_boundaries() -> None:
    evil = ACCT.file("EVIL0000", ACCT.root, 'x"},{"h":"FAKE0000"')
    evil["fa"] = '}],{"h":"FAKE0001"},{'
    nodes = [evil, ACCT.file("GOOD0000", ACCT.root, "good")]
    text = ",".join(json.dumps(n) for n in nodes).encode() + b"]"
    end, stop, others, cols = both(text)
    assert stop == 1 and text[end : end + 1] == b"]"
    assert set(cols[0]) | {json.loads(text[s:e])["h"] for s, e in others} == {
        "EVIL0000",
        "GOOD0000",
    }


def test_bad_arguments_raise_like_pure() -> None:
    cases: list[tuple[Any, ...]] = [
        ("text", 0, 1, b"u:", bytes(16)),
        (b"{}", -1, 1, b"u:", bytes(16)),
        (b"{}", 3, 1, b"u:", bytes(16)),
        (b"{}", 0, -1, b"u:", bytes(16)),
        (b"{}", 0.0, 1, b"u:", bytes(16)),
        (b"{}", 0, 1, None, bytes(16)),
        (b"{}", 0, 1, b"u:", bytes(15)),
    ]
    for args in cases:
        outcomes = []
        for twin in (native, _pure):
            try:
                twin.scan_nodes(*args)
                outcomes.append(None)
            except (TypeError, ValueError) as exc:
                outcomes.append(type(exc))
        assert outcomes[0] is not None and outcomes[0] == outcomes[1], args


def test_listing_parser_gives_the_same_store_with_either_twin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(5)
    nodes = ACCT.roots() + [ACCT.folder(handle(100), ACCT.root, "d")]
    for i in range(300):
        if i % 30 == 0:
            nodes.append(file_with_attr_text(handle(200 + i), rng.choice(ATTR_TEXTS)))
        else:
            nodes.append(ACCT.file(handle(200 + i), handle(100), f"f{i}", i, {"c": str(i)}))
    nodes.append(nodes[10])  # a repeated handle
    body = json.dumps([{"f": nodes, "sn": "s"}]).encode()
    results = []
    for twin in (native, _pure):
        monkeypatch.setattr(_backend, "kernels", twin)
        store, _ = load_listing(
            [body[i : i + 777] for i in range(0, len(body), 777)], Keyring(ACCT.master, ACCT.user)
        )
        results.append(list(store.iter_nodes()))
    assert results[0] == results[1]
    assert len(results[0]) == len(nodes) - 1


@pytest.mark.parametrize("chunk", [1, 3, 4096, 1 << 20])
def test_values_around_the_nodes_in_any_chunking(chunk: int) -> None:
    """Numbers, strings and other elements split anywhere, inside f and after it (each is
    decoded a window at a time, so a big value after many small ones is read whole)."""
    folder = ACCT.folder(handle(7), ACCT.root, "d\u00e9")
    body = (
        '[{"a":12345,"f":[1, "x\\"}" ,'
        + json.dumps(folder)
        + ',[{"h":"zz"}],-0],"sn":"s\u00e9","n":-987654321,"big":"'
        + "y" * 20000
        + '"}]'
    ).encode()
    store, meta = load_listing(
        [body[i : i + chunk] for i in range(0, len(body), chunk)], Keyring(ACCT.master, ACCT.user)
    )
    assert meta["a"] == 12345 and meta["n"] == -987654321 and len(meta["big"]) == 20000
    assert store.sn == "s\u00e9" and store.find_path("d\u00e9") == handle(7)


def test_a_node_too_large_is_refused() -> None:
    parser_body = b'[{"f":[{"h":"' + b"x" * (5 << 20)
    with pytest.raises(ValidationError, match="too large"):
        load_listing(
            [parser_body[i : i + (1 << 20)] for i in range(0, len(parser_body), 1 << 20)],
            Keyring(ACCT.master, ACCT.user),
        )
