"""The native kernels give exactly the pure twin's results, on every native kernel.

``megafast.crypto._pure`` is the reference (DESIGN.md, "Kernel module contract"); every
function is compared on random keys, sizes around the MAC chunk boundaries, unaligned CTR
offsets, offsets near the 2**68 end of the counter space, in-place and separate buffers.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterator

import pytest
from Crypto.Cipher import AES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megafast.crypto import _pure

native = pytest.importorskip("megafast.crypto._native")
KERNELS = native.available_kernels()

KIB = 1024
MIB = 1 << 20
CHUNK_STARTS = [128 * KIB * i * (i + 1) // 2 for i in range(9)] + [
    4608 * KIB + j * MIB for j in range(1, 4)
]
# Sizes at and around the chunk edges (128K+-16, 384K+-1, ...).
EDGE_SIZES = sorted(
    {0, 1, 15, 16, 17, 31, 32, 33, 255, 256, 4095, 4096}
    | {b + d for b in CHUNK_STARTS[1:] for d in (-17, -16, -1, 0, 1, 15, 16)}
)
MAX_OFFSET = (1 << 68) - 1

quick = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
slowish = settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)

keys = st.binary(min_size=16, max_size=16)
nonces = st.binary(min_size=8, max_size=8)
sizes = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 3 * MIB))
# 16-aligned offsets: chunk starts, just inside/before them, anywhere, and near 2**68.
aligned_offsets = st.one_of(
    st.sampled_from(CHUNK_STARTS),
    st.builds(
        lambda b, d: max(0, b + d), st.sampled_from(CHUNK_STARTS), st.sampled_from([-16, 16, 4096])
    ),
    st.integers(0, 1 << 40).map(lambda x: x * 16),
    st.integers(0, 1 << 20).map(lambda x: (1 << 68) - 16 * MIB - 16 * x),
)


def data_of(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# The VAES kernel without AVX-512 (16 registers) is what VAES CPUs without AVX-512 run.
KERNEL_PARAMS = KERNELS + (["vaes-avx2"] if "avx2" in native._vaes_variants() else [])


@pytest.fixture(params=KERNEL_PARAMS)
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    previous = native.KERNEL
    name, _, variant = request.param.partition("-")
    native.set_kernel(name)
    native._set_vaes_variant(variant or "auto")
    assert name == native.KERNEL
    try:
        yield request.param
    finally:
        native._set_vaes_variant("auto")
        native.set_kernel(previous)


def chunk_start(offset: int) -> int:
    return _pure.chunk_span(offset)[0]


def mac_in_for(offset: int, seed: int) -> bytes | None:
    """Any 16 bytes continue a chunk; None at a chunk boundary (as the contract demands)."""
    return None if chunk_start(offset) == offset else data_of(16, seed ^ 0x5A5A)


# -- CTR ------------------------------------------------------------------------------------


@slowish
@given(
    key=keys,
    nonce=nonces,
    offset=st.one_of(st.integers(0, 1 << 40), st.integers(MAX_OFFSET - 4 * MIB, MAX_OFFSET)),
    size=sizes,
    seed=st.integers(0, 2**32),
    in_place=st.booleans(),
)
@pytest.mark.usefixtures("kernel")
def test_ctr_xor_into_matches_pure(
    key: bytes, nonce: bytes, offset: int, size: int, seed: int, in_place: bool
) -> None:
    size = min(size, MAX_OFFSET + 1 - offset)
    src = data_of(size, seed)
    want = bytearray(size)
    _pure.ctr_xor_into(key, nonce, offset, src, want)
    if in_place:
        got = bytearray(src)
        native.ctr_xor_into(key, nonce, offset, got, got)
    else:
        got = bytearray(size)
        native.ctr_xor_into(key, nonce, offset, memoryview(src), got)
    assert got == want


@pytest.mark.usefixtures("kernel")
def test_ctr_matches_pycryptodome_at_unaligned_offsets() -> None:
    key, nonce = bytes(range(16)), bytes(range(100, 108))
    stream = AES.new(key, AES.MODE_CTR, nonce=nonce, initial_value=3).encrypt(bytes(5000))
    for skip in range(0, 48):
        out = bytearray(4000)
        native.ctr_xor_into(key, nonce, 48 + skip, bytes(4000), out)
        assert out == stream[skip : skip + 4000]


# -- chunk MACs -----------------------------------------------------------------------------

MAC_FUNCS = ["mac", "decrypt_mac_into", "mac_encrypt_into"]


def call(mod: object, name: str, key, nonce, offset, src, dst, mac_in, final, marks=None):  # noqa: ANN001, ANN201
    fn = getattr(mod, name)
    if name == "mac":
        return fn(key, nonce, offset, src, mac_in, final, marks)
    return fn(key, nonce, offset, src, dst, mac_in, final, marks)


@slowish
@given(
    key=keys,
    nonce=nonces,
    offset=aligned_offsets,
    size=sizes,
    seed=st.integers(0, 2**32),
    final=st.booleans(),
    in_place=st.booleans(),
    name=st.sampled_from(MAC_FUNCS),
)
@pytest.mark.usefixtures("kernel")
def test_mac_functions_match_pure(
    key: bytes,
    nonce: bytes,
    offset: int,
    size: int,
    seed: int,
    final: bool,
    in_place: bool,
    name: str,
) -> None:
    if not final:
        size -= size % 16
    size = min(size, MAX_OFFSET + 1 - offset)
    if not final:
        size -= size % 16
    src = data_of(size, seed)
    mac_in = mac_in_for(offset, seed)
    want_dst = bytearray(size)
    want = call(_pure, name, key, nonce, offset, src, want_dst, mac_in, final)
    if in_place:
        got_dst = bytearray(src)
        got = call(native, name, key, nonce, offset, got_dst, got_dst, mac_in, final)
    else:
        got_dst = bytearray(size)
        got = call(native, name, key, nonce, offset, src, got_dst, mac_in, final)
    assert got == want
    if name != "mac":
        assert got_dst == want_dst
    elif in_place:
        assert got_dst == src  # mac() never writes


@slowish
@given(
    key=keys,
    nonce=nonces,
    size=st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 6 * MIB)),
    cuts=st.lists(st.integers(0, 6 * MIB // 16), max_size=8),
    seed=st.integers(0, 2**32),
    name=st.sampled_from(MAC_FUNCS),
)
@pytest.mark.usefixtures("kernel")
def test_pieces_chained_with_mac_in_give_the_whole_file_macs(
    key: bytes, nonce: bytes, size: int, cuts: list[int], seed: int, name: str
) -> None:
    """Splitting a file at any 16-byte points and chaining mac_out -> mac_in changes nothing."""
    src = data_of(size, seed)
    whole_dst = bytearray(size)
    whole = call(_pure, name, key, nonce, 0, src, whole_dst, None, True)
    points = sorted({0, size} | {16 * c for c in cuts if 16 * c < size})
    buf = bytearray(src)  # in place, piece by piece
    done: list[tuple[int, bytes]] = []
    running = None
    for a, b in zip(points, points[1:], strict=False):
        piece = memoryview(buf)[a:b]
        got_done, running = call(native, name, key, nonce, a, piece, piece, running, b == size)
        done += got_done
    if size == 0:
        done, running = call(native, name, key, nonce, 0, buf, buf, None, True)
    assert running is None
    assert (done, None) == whole
    if name != "mac":
        assert buf == whole_dst


@pytest.mark.parametrize("name", MAC_FUNCS)
@pytest.mark.usefixtures("kernel")
def test_many_chunks_in_one_call_match_pure(name: str) -> None:
    """16 MiB + a tail from a mid-chunk offset: all eight chains busy, then the ragged end."""
    key, nonce = bytes(range(16)), bytes(range(8))
    offset = 384 * KIB + 4096
    src = data_of(16 * MIB + 100, 7)
    mac_in = bytes(range(16, 32))
    want_dst, got_dst = bytearray(len(src)), bytearray(len(src))
    want = call(_pure, name, key, nonce, offset, src, want_dst, mac_in, True)
    got = call(native, name, key, nonce, offset, src, got_dst, mac_in, True)
    assert got == want
    assert len(got[0]) == 18  # 6 growing chunks from 384K, 12 of 1 MiB, the tail
    assert got_dst == want_dst


@slowish
@given(
    key=keys,
    nonce=nonces,
    offset=aligned_offsets,
    size=st.one_of(sizes, st.integers(0, 10 * MIB)),
    seed=st.integers(0, 2**32),
    final=st.booleans(),
    name=st.sampled_from(MAC_FUNCS),
)
@pytest.mark.usefixtures("kernel")
def test_marks_match_pure_and_change_nothing_else(
    key: bytes, nonce: bytes, offset: int, size: int, seed: int, final: bool, name: str
) -> None:
    size = min(size, MAX_OFFSET + 1 - offset)
    if not final:
        size -= size % 16
    src = data_of(size, seed)
    mac_in = mac_in_for(offset, seed)
    plain = call(native, name, key, nonce, offset, src, bytearray(size), mac_in, final)
    want_marks: list[tuple[int, bytes]] = []
    got_marks: list[tuple[int, bytes]] = [(-1, b"kept")]  # marks are added after what is there
    want = call(_pure, name, key, nonce, offset, src, bytearray(size), mac_in, final, want_marks)
    got = call(native, name, key, nonce, offset, src, bytearray(size), mac_in, final, got_marks)
    assert got == want == plain
    assert got_marks == [(-1, b"kept"), *want_marks]


@pytest.mark.usefixtures("kernel")
def test_marks_are_the_running_macs_every_64_kib_into_a_chunk() -> None:
    """Each mark is the running MAC from its chunk's start, at every MARK into the chunk
    where the chunk goes on (not at a chunk's start or end, nor at the end of the file)."""
    key, nonce = bytes(range(16)), bytes(range(8))
    size = 6 * MIB + 100  # growing chunks, a 1 MiB one, then a ragged last chunk
    src = data_of(size, 11)
    marks: list[tuple[int, bytes]] = []
    done, running = native.mac(key, nonce, 0, src, None, True, marks)
    assert running is None and len(done) == 10
    assert native.MARK == _pure.MARK == 64 * KIB
    want_at = [
        p
        for start, end in zip([c for c, _ in done], [c for c, _ in done[1:]] + [size], strict=True)
        for p in range(start + native.MARK, end, native.MARK)
    ]
    assert [p for p, _ in marks] == want_at
    assert 4608 * KIB + MIB - 64 * KIB in want_at and 4608 * KIB + MIB not in want_at
    for p, state in marks:
        start = chunk_start(p - 16)
        assert _pure.mac(key, nonce, start, src[start:p], None, False) == ([], state)


def test_marks_must_be_a_list() -> None:
    key, nonce = bytes(16), bytes(8)
    for mod in (native, _pure):
        with pytest.raises(TypeError, match="marks must be a list or None, not tuple"):
            mod.mac(key, nonce, 0, bytes(16), None, True, ())


@pytest.mark.usefixtures("kernel")
def test_empty_and_boundary_cases_match_pure() -> None:
    key, nonce, m = bytes(16), bytes(8), bytes(range(16))
    cases = [
        (0, b"", None, True),
        (0, b"", None, False),
        (16, b"", m, True),
        (16, b"", m, False),
        (128 * KIB, b"", None, True),
        (0, bytes(128 * KIB), None, False),
        (0, bytes(128 * KIB), None, True),
        (0, bytes(1), None, True),
        (128 * KIB - 16, bytes(16), m, False),
        (128 * KIB - 16, bytes(17), m, True),
    ]
    for offset, src, mac_in, final in cases:
        for name in MAC_FUNCS:
            dst_a, dst_b = bytearray(len(src)), bytearray(len(src))
            want = call(_pure, name, key, nonce, offset, src, dst_a, mac_in, final)
            got = call(native, name, key, nonce, offset, src, dst_b, mac_in, final)
            assert got == want, (offset, len(src), final, name)
            assert dst_a == dst_b


# -- small kernels --------------------------------------------------------------------------


@quick
@given(key=keys, macs=st.lists(st.binary(min_size=16, max_size=16), max_size=40))
@pytest.mark.usefixtures("kernel")
def test_fold_meta_mac_matches_pure(key: bytes, macs: list[bytes]) -> None:
    blob = b"".join(macs)
    assert native.fold_meta_mac(key, blob) == _pure.fold_meta_mac(key, bytearray(blob))


@settings(max_examples=12, deadline=None)
@given(pw=st.binary(max_size=40).map(lambda b: b[: len(b) - len(b) % 4]))
@pytest.mark.usefixtures("kernel")
def test_prepare_key_matches_pure(pw: bytes) -> None:
    assert native.prepare_key(pw) == _pure.prepare_key(pw)


@pytest.mark.usefixtures("kernel")
def test_prepare_key_of_three_blocks_matches_pure() -> None:
    pw = bytes(range(44))
    assert native.prepare_key(pw) == _pure.prepare_key(pw)


@quick
@given(data=st.binary(max_size=120).map(lambda b: b[: len(b) - len(b) % 4]), key=keys)
@pytest.mark.usefixtures("kernel")
def test_stringhash_matches_pure(data: bytes, key: bytes) -> None:
    assert native.stringhash(data, key) == _pure.stringhash(data, key)


def _encrypted_node(rnd: random.Random, kek: bytes, kind: int) -> tuple[bytes | None, bytes | None]:
    """A node in one of several shapes: good file/folder, bad attrs, odd lengths, None."""
    key = rnd.randbytes(32 if kind % 2 else 16)
    attr_key = (
        bytes(a ^ b for a, b in zip(key[:16], key[16:], strict=True)) if len(key) == 32 else key
    )
    name = "".join(rnd.choice("abcé漢\0 ") for _ in range(rnd.randrange(0, 40)))
    plain = b'MEGA{"n":"' + name.encode() + b'"}'
    if kind in (4, 5):
        plain = b"MEGX" + plain[4:]
    plain += bytes(-len(plain) % 16 + 16 * rnd.randrange(0, 2))
    enc_attr: bytes | None = AES.new(attr_key, AES.MODE_CBC, iv=bytes(16)).encrypt(plain)
    enc_key: bytes | None = AES.new(kek, AES.MODE_ECB).encrypt(key)
    if kind == 6:
        enc_attr = enc_attr[:-3]
    elif kind == 7:
        enc_key = enc_key + b"\1" * 8  # 24 bytes: unusable key
    elif kind == 8:
        enc_key = None
    elif kind == 9:
        enc_attr = None
    elif kind == 10:
        enc_attr = b""
    return enc_key, enc_attr


@quick
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(0, 30),
    per_node=st.booleans(),
    kinds=st.lists(st.integers(0, 10), min_size=30, max_size=30),
)
@pytest.mark.usefixtures("kernel")
def test_decrypt_nodes_matches_pure(seed: int, n: int, per_node: bool, kinds: list[int]) -> None:
    rnd = random.Random(seed)
    keks = [rnd.randbytes(16) for _ in range(n)] if per_node else [rnd.randbytes(16)] * n
    nodes = [_encrypted_node(rnd, keks[i], kinds[i]) for i in range(n)]
    enc_keys = [k for k, _ in nodes]
    enc_attrs = [
        bytearray(a) if a is not None and i % 3 == 0 else a for i, (_, a) in enumerate(nodes)
    ]
    kek = keks if per_node else (keks[0] if keks else bytes(16))
    got = native.decrypt_nodes(kek, enc_keys, enc_attrs)
    assert got == _pure.decrypt_nodes(kek, enc_keys, enc_attrs)
    for (key, attrs), kind in zip(got, kinds, strict=False):
        if kind in (0, 1, 2, 3):
            assert key is not None and attrs is not None and attrs.startswith(b'{"n":"')


def _hash_head(token: bytes, n: int) -> int:
    h = hashlib.sha256(struct.pack("<I", n))
    h.update(token * 262144)
    return int.from_bytes(h.digest()[:4], "big")


@settings(max_examples=6, deadline=None)
@given(
    token=st.binary(min_size=48, max_size=48),
    start=st.one_of(st.just(0), st.integers(0, (1 << 32) - 9)),
    count=st.integers(0, 9),
    pick=st.integers(0, 8),
)
@pytest.mark.usefixtures("kernel")
def test_hashcash_search_matches_pure(token: bytes, start: int, count: int, pick: int) -> None:
    heads = [_hash_head(token, start + i) for i in range(count)]
    # A threshold met first at a chosen position (or never, when count is 0).
    threshold = heads[pick % count] if count else 0
    want = _pure.hashcash_search(token, threshold, start, count)
    assert native.hashcash_search(token, threshold, start, count) == want
    if count:
        first = next(i for i, h in enumerate(heads) if h <= threshold)
        assert want == start + first


def test_hashcash_search_at_the_top_of_the_32_bit_space() -> None:
    token = bytes(range(48))
    top = (1 << 32) - 5
    heads = [_hash_head(token, top + i) for i in range(5)]
    for name in KERNELS:
        native.set_kernel(name)
        try:
            assert native.hashcash_search(token, max(heads), top, 5) == top + heads.index(
                next(h for h in heads if h <= max(heads))
            )
            assert native.hashcash_search(token, 0xFFFFFFFF, top + 4, 1) == top + 4
        finally:
            native.set_kernel(KERNELS[-1])


@pytest.mark.parametrize("path", native._hashcash_paths())
def test_every_hashcash_sha256_path_finds_the_first_hit(path: str) -> None:
    """AVX-512 (32 and 16 tries at once), SHA-NI (4 and 1) and portable code agree."""
    token = random.Random(path).randbytes(48)
    count = 3 if path == "portable" else 53  # 32 + 16 + 4 + 1 for the fast paths
    start = (1 << 32) - count
    heads = [_hash_head(token, start + i) for i in range(count)]
    for pick in sorted({0, 2, 17, 33, 49, 52} & set(range(count))):
        threshold = heads[pick]
        want = start + next(i for i, h in enumerate(heads) if h <= threshold)
        assert native._hashcash_search_path(token, threshold, start, count, path) == want
    below = min(heads) - 1
    if below >= 0:
        assert native._hashcash_search_path(token, below, start, count, path) == -1


@quick
@given(data=st.binary(max_size=300), use_sha_ni=st.booleans())
def test_sha256_helper_matches_hashlib(data: bytes, use_sha_ni: bool) -> None:
    assert native._sha256(data, use_sha_ni) == hashlib.sha256(data).digest()


def test_kernel_choice_is_visible_and_forced() -> None:
    assert KERNELS[0] == "portable"
    assert native.KERNEL in KERNELS
    features = native.cpu_features()
    assert set(features) >= {"aes", "vaes", "avx2", "avx512f", "sha_ni"}
    assert ("aesni" in KERNELS) == features["aes"]
    previous = native.KERNEL
    try:
        for name in KERNELS:
            native.set_kernel(name)
            assert name == native.KERNEL
    finally:
        native.set_kernel(previous)
    with pytest.raises(ValueError):
        native.set_kernel("python")
    assert previous == native.KERNEL
