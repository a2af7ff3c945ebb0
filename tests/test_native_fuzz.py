"""Bad input at every native entry point: a clear TypeError/ValueError/OverflowError, never a
crash, and the same outcome (exception type and message, or result) as the pure twin.

Arguments are drawn as small "specs" and built twice, so each backend gets fresh objects
(output buffers are compared after the call). ``-m slow`` runs a much bigger batch.
"""

from __future__ import annotations

import array
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megafast.crypto import _pure

native = pytest.importorskip("megafast.crypto._native")

EXPECTED = (TypeError, ValueError, OverflowError)
DEFAULT = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- argument specs -------------------------------------------------------------------------

JUNK = st.sampled_from(
    [
        ("none",),
        ("str", "0123456789abcdef"),
        ("int", 16),
        ("float", 1.5),
        ("list_ints", 16),
        ("dict",),
        ("object",),
        ("bool", True),
    ]
)


def buffer_spec(sizes: st.SearchStrategy[int]) -> st.SearchStrategy[tuple]:
    kinds = st.sampled_from(["bytes", "bytearray", "ro_view", "rw_view", "noncontig", "array_I"])
    return st.tuples(kinds, sizes, st.integers(0, 2**16))


def maybe_junk(good: st.SearchStrategy[tuple], junk_weight: int = 1) -> st.SearchStrategy[tuple]:
    return st.one_of(*([good] * 3), *([JUNK] * junk_weight))


def build(spec: tuple) -> Any:
    kind = spec[0]
    if kind == "none":
        return None
    if kind == "str":
        return spec[1]
    if kind in ("int", "float", "bool", "value"):
        return spec[1]
    if kind == "list_ints":
        return list(range(spec[1]))
    if kind == "list":
        return []
    if kind == "dict":
        return {"a": 1}
    if kind == "object":
        return object()
    n, seed = spec[1], spec[2]
    data = random.Random(seed).randbytes(n)
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "ro_view":
        return memoryview(data)
    if kind == "rw_view":
        return memoryview(bytearray(data))
    if kind == "noncontig":
        return memoryview(bytearray(data + data))[::2]
    if kind == "array_I":
        return array.array("I", data[: n - n % 4])
    raise AssertionError(kind)


def outcome(fn: Callable[..., Any], args: list[Any]) -> tuple[Any, ...]:
    try:
        return ("ok", fn(*args))
    except EXPECTED as exc:
        return (type(exc), str(exc))


def snapshot(obj: Any) -> Any:
    if isinstance(obj, list):
        return list(obj)
    try:
        return bytes(memoryview(obj).cast("B")) if obj is not None else None
    except (TypeError, ValueError):
        return repr(type(obj))


def compare(name: str, specs: list[tuple], out_positions: tuple[int, ...] = ()) -> None:
    """Call native and pure with freshly built args; outcomes and outputs must agree."""
    results = []
    for mod in (native, _pure):
        args = [build(s) if s[0] != "same" else None for s in specs]
        for i, s in enumerate(specs):
            if s[0] == "same":  # dst is src
                args[i] = args[s[1]]
        res = outcome(getattr(mod, name), args)
        results.append((res, [snapshot(args[i]) for i in out_positions]))
    assert results[0] == results[1], specs


keys = maybe_junk(buffer_spec(st.sampled_from([16, 16, 16, 0, 15, 17, 32])))
nonces = maybe_junk(buffer_spec(st.sampled_from([8, 8, 8, 0, 7, 9, 16])))
offsets = st.one_of(
    st.tuples(
        st.just("value"),
        st.one_of(
            st.integers(0, 1 << 22),
            st.integers(-(1 << 70), -1),
            st.integers((1 << 68) - 4096, (1 << 68) + 10),
            st.integers(1 << 68, 1 << 200),
            st.sampled_from([0, 16, 131072, 131072 - 16, 393216, 4718592, 2**64, 2**64 * 16 - 16]),
            st.sampled_from([65536 - 32, 4718592 + 65536 - 48]),  # just before a mark
        ),
    ),
    JUNK,
)
data = maybe_junk(buffer_spec(st.integers(0, 600)))
small_data = maybe_junk(buffer_spec(st.sampled_from([0, 4, 8, 12, 16, 3, 5, 18])))
mac_ins = st.one_of(st.just(("none",)), buffer_spec(st.sampled_from([16, 16, 0, 15, 17])), JUNK)
finals = st.one_of(
    st.tuples(st.just("value"), st.booleans()), st.just(("value", 0)), st.just(("value", 1))
)
# marks: a list to fill (its contents compared after the call), None, or junk
marks_args = st.one_of(st.just(("list",)), st.just(("list",)), JUNK)


def dst_for(src_spec: tuple) -> st.SearchStrategy[tuple]:
    n = src_spec[1] if len(src_spec) > 2 else 16
    return st.one_of(
        buffer_spec(st.sampled_from([n, n, n, max(0, n - 1), n + 1])),
        st.just(("same", 3)),
        JUNK,
    )


@DEFAULT
@given(st.data())
def test_ctr_xor_into_bad_input(d: st.DataObject) -> None:
    src = d.draw(data)
    compare(
        "ctr_xor_into",
        [d.draw(keys), d.draw(nonces), d.draw(offsets), src, d.draw(dst_for(src))],
        (3, 4),
    )


@DEFAULT
@given(st.data(), st.sampled_from(["decrypt_mac_into", "mac_encrypt_into", "mac"]))
def test_mac_functions_bad_input(d: st.DataObject, name: str) -> None:
    src = d.draw(data)
    specs = [d.draw(keys), d.draw(nonces), d.draw(offsets), src]
    if name != "mac":
        specs.append(d.draw(dst_for(src)))
    specs += [d.draw(mac_ins), d.draw(finals)]
    outputs = (3, 4) if name != "mac" else (3,)
    if d.draw(st.booleans()):  # with marks
        specs.append(d.draw(marks_args))
        outputs += (len(specs) - 1,)
    compare(name, specs, outputs)


@DEFAULT
@given(st.data())
def test_small_kernels_bad_input(d: st.DataObject) -> None:
    compare("prepare_key", [d.draw(small_data)])
    compare("stringhash", [d.draw(small_data), d.draw(keys)])
    compare(
        "fold_meta_mac",
        [d.draw(keys), d.draw(maybe_junk(buffer_spec(st.sampled_from([0, 16, 32, 15, 17, 48]))))],
    )


node_items = st.one_of(
    st.just(("none",)), buffer_spec(st.sampled_from([16, 32, 0, 15, 24, 48, 33])), JUNK
)


@DEFAULT
@given(
    st.data(),
    st.integers(0, 5),
    st.integers(0, 5),
    st.sampled_from(["one", "list", "tuple", "list_short", "junk"]),
    st.sampled_from(["list", "tuple", "bytes", "str", "none", "range", "dict"]),
)
def test_decrypt_nodes_bad_input(
    d: st.DataObject, nk: int, na: int, kek_kind: str, seq_kind: str
) -> None:
    key_specs = [d.draw(node_items) for _ in range(nk)]
    attr_specs = [d.draw(node_items) for _ in range(na)]
    kek_specs = [d.draw(keys) for _ in range(nk if kek_kind != "list_short" else max(0, nk - 1))]
    one_kek = d.draw(keys)
    junk_kek = d.draw(JUNK)
    results = []
    for mod in (native, _pure):

        def seq(items: list[tuple]) -> Any:
            built = [build(s) for s in items]
            if seq_kind == "list":
                return built
            if seq_kind == "tuple":
                return tuple(built)
            if seq_kind == "bytes":
                return b"".join(x for x in built if isinstance(x, bytes))
            if seq_kind == "str":
                return "abc"
            if seq_kind == "range":
                return range(len(built))
            if seq_kind == "dict":
                return dict(enumerate(built))
            return None

        if kek_kind == "one":
            kek = build(one_kek)
        elif kek_kind == "tuple":
            kek = tuple(build(s) for s in kek_specs)
        elif kek_kind == "junk":
            kek = build(junk_kek)
        else:
            kek = [build(s) for s in kek_specs]
        results.append(outcome(mod.decrypt_nodes, [kek, seq(key_specs), seq(attr_specs)]))
    assert results[0] == results[1]


@DEFAULT
@given(
    token=maybe_junk(buffer_spec(st.sampled_from([48, 48, 0, 47, 49, 96]))),
    threshold=st.one_of(
        st.tuples(
            st.just("value"), st.sampled_from([0, -1, 2**32, 2**32 - 1, 1 << 100, -(1 << 100)])
        ),
        JUNK,
    ),
    start=st.one_of(
        st.tuples(st.just("value"), st.sampled_from([0, -1, 2**32, 2**32 - 1, 2**32 + 1, 1 << 80])),
        JUNK,
    ),
    count=st.one_of(
        st.tuples(st.just("value"), st.sampled_from([0, 1, -1, 2**32 + 1, 1 << 80, -(1 << 80)])),
        JUNK,
    ),
)
def test_hashcash_search_bad_input(
    token: tuple, threshold: tuple, start: tuple, count: tuple
) -> None:
    # Keep valid searches tiny: a valid (start, count) covers at most 1 try here.
    compare("hashcash_search", [token, threshold, start, count])


def test_set_kernel_bad_names() -> None:
    previous = native.KERNEL
    for bad in ["", "python", "AESNI", "vaes ", None, 3, b"vaes", ["vaes"]]:
        with pytest.raises(ValueError):
            native.set_kernel(bad)
        assert previous == native.KERNEL


def test_readonly_and_noncontiguous_outputs_are_refused_clearly() -> None:
    key, nonce = bytes(16), bytes(8)
    src = bytes(64)
    with pytest.raises(TypeError, match="writable"):
        native.decrypt_mac_into(key, nonce, 0, src, src, None, True)
    with pytest.raises(TypeError, match="writable"):
        native.ctr_xor_into(key, nonce, 0, src, memoryview(bytearray(64)).toreadonly())
    with pytest.raises(ValueError, match="contiguous"):
        native.mac_encrypt_into(key, nonce, 0, src, memoryview(bytearray(128))[::2], None, True)
    with pytest.raises(ValueError, match="as long as"):
        native.ctr_xor_into(key, nonce, 0, src, bytearray(63))


@BIG
@given(st.data(), st.sampled_from(["decrypt_mac_into", "mac_encrypt_into", "mac", "ctr_xor_into"]))
def test_many_more_bad_inputs(d: st.DataObject, name: str) -> None:
    src = d.draw(data)
    specs = [d.draw(keys), d.draw(nonces), d.draw(offsets), src]
    if name != "mac":
        specs.append(d.draw(dst_for(src)))
    if name != "ctr_xor_into":
        specs += [d.draw(mac_ins), d.draw(finals)]
    compare(name, specs, (3, 4) if name != "mac" else (3,))
