"""FileCipher: streams at any offset, piece splits, threads, resume state, bad input."""

from __future__ import annotations

import json
import secrets
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from megafast import crypto
from megafast.crypto import _pure
from megafast.errors import IntegrityError, ValidationError

KEY = (0x01234567, 0x89ABCDEF, 0xFEDCBA98, 0x76543210)
NONCE = (0xDEADBEEF, 0xCAFEBABE)


def reference(plain: bytes) -> tuple[bytes, dict[int, bytes], bytes]:
    """Ciphertext, chunk MACs and meta-MAC computed straight from the definition (pycryptodome)."""
    from Crypto.Cipher import AES

    k, n = crypto.a32_to_str(KEY), crypto.a32_to_str(NONCE)
    ct = AES.new(k, AES.MODE_CTR, nonce=n, initial_value=0).encrypt(plain)
    macs = {}
    for start, length in crypto.chunk_bounds(len(plain)):
        block = plain[start : start + length]
        block += bytes(-len(block) % 16)
        macs[start] = AES.new(k, AES.MODE_CBC, iv=n + n).encrypt(block)[-16:]
    fm = bytes(16)
    ecb = AES.new(k, AES.MODE_ECB)
    for m in macs.values():
        fm = ecb.encrypt(bytes(a ^ b for a, b in zip(fm, m, strict=True)))
    w = crypto.str_to_a32(fm)
    return ct, macs, crypto.a32_to_str((w[0] ^ w[1], w[2] ^ w[3])) if macs else bytes(8)


SIZES = [0, 1, 15, 16, 17, 131072 - 1, 131072, 131072 + 1, 131072 + 16, 393216 + 5, 1 << 20]


@pytest.mark.parametrize("size", SIZES)
def test_matches_the_definition(backend, size):
    plain = secrets.token_bytes(size)
    ct, macs, meta = reference(plain)
    enc = crypto.FileCipher(KEY, NONCE, size=size)
    assert enc.encrypt(plain) == ct
    assert enc.chunk_macs == macs
    assert enc.meta_mac() == meta
    dec = crypto.FileCipher(enc.packed_key(), size=size)
    buf = bytearray(ct)
    dec.decrypt_into(buf, buf)  # in place
    assert buf == plain
    dec.verify()


@given(
    size=st.integers(0, 600_000),
    cuts=st.lists(st.floats(0, 1), max_size=6),
)
def test_piece_boundaries_do_not_change_the_result(size, cuts):
    plain = bytes(range(256)) * (size // 256) + bytes(size % 256)
    ct, macs, meta = reference(plain)
    points = sorted({0, size, *(int(c * size) for c in cuts)})
    enc = crypto.FileCipher(KEY, NONCE, size=size)
    out = bytearray(size)
    for a, b in zip(points, points[1:], strict=False):
        enc.encrypt_into(plain[a:b], memoryview(out)[a:b], a)
    assert out == ct
    assert enc.meta_mac() == meta
    dec = crypto.FileCipher(KEY, NONCE, size=size)
    got = b"".join(dec.decrypt(ct[a:b], a) for a, b in zip(points, points[1:], strict=False))
    assert got == plain and dec.chunk_macs == macs


def test_ranges_of_whole_chunks_in_any_order_and_threads(backend):
    size = 6 * (1 << 20) + 12345
    plain = secrets.token_bytes(size)
    ct, macs, meta = reference(plain)
    bounds = crypto.chunk_bounds(size)
    # ranges of 3 chunks each, processed in reverse order from several threads
    ranges = [
        (bounds[i][0], sum(b[1] for b in bounds[i : i + 3])) for i in range(0, len(bounds), 3)
    ]
    dec = crypto.FileCipher(KEY, NONCE, size=size)
    out = bytearray(size)
    view = memoryview(out)

    def work(start: int, length: int) -> None:
        # each range in two pieces, the split not block-aligned
        mid = start + length // 2 + 3
        dec.decrypt_into(ct[start:mid], view[start:mid], start)
        dec.decrypt_into(ct[mid : start + length], view[mid : start + length], mid)

    threads = [threading.Thread(target=work, args=r) for r in reversed(ranges)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == plain
    assert dec.chunk_macs == macs
    assert dec.meta_mac() == meta


def test_ctr_random_access(backend):
    plain = secrets.token_bytes(300_000)
    ct, _, _ = reference(plain)
    fc = crypto.FileCipher(KEY, NONCE)
    for a, b in [(0, 1), (5, 21), (131071, 131090), (299_999, 300_000), (17, 299_983)]:
        assert fc.ctr(ct[a:b], a) == plain[a:b]


def test_state_round_trip_resumes(backend):
    size = 2_000_000
    plain = secrets.token_bytes(size)
    _, _, meta = reference(plain)
    first = crypto.FileCipher(KEY, NONCE, size=size)
    first.update_mac(plain[:777_777])  # stops mid-chunk and mid-block
    state = json.loads(json.dumps(first.state()))
    assert "key" not in json.dumps(state)
    second = crypto.FileCipher.from_state(KEY, state, nonce=NONCE)
    second.update_mac(plain[777_777:], 777_777)
    assert second.meta_mac() == meta


def test_integrity_error_and_packed_key(backend):
    plain = b"hello world" * 1000
    enc = crypto.FileCipher(KEY, NONCE, size=len(plain))
    ct = enc.encrypt(plain)
    packed = enc.packed_key()
    dec = crypto.FileCipher(packed, size=len(plain))
    bad = bytearray(ct)
    bad[-1] ^= 0x80
    dec.decrypt(bytes(bad))
    with pytest.raises(IntegrityError, match="MAC mismatch"):
        dec.verify()


def test_meta_mac_needs_every_chunk():
    fc = crypto.FileCipher(KEY, NONCE, size=300_000)
    fc.update_mac(bytes(131072))
    assert not fc.is_complete()
    with pytest.raises(ValidationError, match="not processed"):
        fc.meta_mac()


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda fc: fc.decrypt(b"x" * 16, -16), ValueError, ">= 0"),
        (lambda fc: fc.decrypt(b"x" * 16, 16), ValidationError, "chunk boundary"),
        (lambda fc: fc.decrypt("text"), TypeError, "bytes-like"),
        (lambda fc: fc.decrypt_into(b"x" * 16, b"y" * 16), TypeError, "writable"),
        (lambda fc: fc.decrypt_into(b"x" * 16, bytearray(15)), ValueError, "as long"),
        (
            lambda fc: fc.decrypt_into(b"x" * 16, memoryview(bytearray(32))[::2]),
            ValueError,
            "contiguous",
        ),
        (lambda fc: fc.encrypt(b"x" * 200), ValueError, "past the end"),
        (lambda fc: fc.ctr_into(b"x", bytearray(1), -1), ValueError, ">= 0"),
    ],
)
def test_bad_input_is_a_clear_error(backend, call, exc, match):
    fc = crypto.FileCipher(KEY, NONCE, size=100)
    with pytest.raises(exc, match=match):
        call(fc)


@pytest.mark.parametrize(
    "args, match",
    [
        (((1, 2, 3),), "8 words"),
        (((1, 2, 3, 4),), "nonce"),
        (((1, 2, 3, 4), (1, 2, 3)), "2 words"),
        (((1,) * 8, (1, 2)), "packed"),
        ((b"\x00" * 15,), "whole number"),
        (("!!!not base64",), "base64"),
    ],
)
def test_bad_keys(args, match):
    with pytest.raises(ValueError, match=match):
        crypto.FileCipher(*args)


def test_bad_input_elsewhere_in_the_api():
    with pytest.raises(ValueError, match="truncated"):
        crypto.decode_mpis(b"\x08\x00\x01", 1)
    with pytest.raises(ValueError, match="truncated"):
        crypto.decode_mpis(b"\x00", 1)
    with pytest.raises(ValueError):
        crypto.base64_url_decode("abcde")
    with pytest.raises(TypeError):
        crypto.prepare_key(3.5)
    with pytest.raises(ValueError, match="16 bytes"):
        crypto.aes_cbc_encrypt(b"x" * 16, b"short")
    with pytest.raises(ValueError, match="multiple of 16"):
        crypto.aes_cbc_encrypt(b"x" * 15, b"k" * 16)
    with pytest.raises(ValueError, match="malformed|unsupported"):
        crypto.solve_hashcash("1:192:abc")
    assert crypto.check_hashcash("garbage", "1:x:y") is False


def test_decrypt_nodes_reports_bad_entries(backend):
    master = secrets.token_bytes(16)
    good_key = crypto.random_key(8)
    k, _, _ = crypto.unpack_file_key(good_key)
    enc_key = crypto.a32_to_str(crypto.encrypt_key(good_key, crypto.str_to_a32(master)))
    attrs = crypto.encrypt_attr({"n": "naïve.txt"}, k)
    folder_key = crypto.random_key(4)
    enc_folder = crypto.a32_to_str(crypto.encrypt_key(folder_key, crypto.str_to_a32(master)))
    folder_attrs = crypto.encrypt_attr({"n": "dir"}, folder_key)
    out = crypto.decrypt_nodes(
        master,
        [enc_key, enc_folder, b"short", enc_key, None, enc_key],
        [attrs, folder_attrs, attrs, attrs[:-1], attrs, folder_attrs],
    )
    assert out[0] == (crypto.a32_to_str(good_key), {"n": "naïve.txt"})
    assert out[1] == (crypto.a32_to_str(folder_key), {"n": "dir"})
    assert out[2] == (None, None)
    assert out[3] == (crypto.a32_to_str(good_key), None)  # truncated attributes
    assert out[4] == (None, None)
    assert out[5][1] is None  # wrong key for these attributes
    with pytest.raises(ValueError, match="differ in length"):
        crypto.decrypt_nodes(master, [enc_key], [])


def test_pure_twin_is_the_reference_module():
    assert _pure.KERNEL == "python"
    assert _pure.available_kernels() == ["python"]
    with pytest.raises(ValueError):
        _pure.set_kernel("aesni")


def test_decrypt_nodes_attributes_cannot_spill_into_neighbours(backend):
    # Parsed together for speed, each node's JSON must still stand alone: crafted texts that
    # would form valid JSON only when joined must not shift other nodes' attributes.
    master = secrets.token_bytes(16)
    texts = [
        b'{"n":"A"},{"n":"X"}',
        b'{"n":"ok1"}',
        b'{"n":"B","z":[1',
        b'{"n":"C"}]}',
        b'{"n":"ok2"} ',
    ]
    enc_keys, enc_attrs = [], []
    for text in texts:
        key = crypto.random_key(4)
        enc_keys.append(crypto.a32_to_str(crypto.encrypt_key(key, crypto.str_to_a32(master))))
        plain = b"MEGA" + text
        plain += bytes(-len(plain) % 16)
        enc_attrs.append(crypto.aes_cbc_encrypt(plain, crypto.a32_to_str(key)))
    attrs = [a for _, a in crypto.decrypt_nodes(master, enc_keys, enc_attrs)]
    assert attrs == [None, {"n": "ok1"}, None, None, {"n": "ok2"}]


class _LyingInt(int):
    """An int subclass whose comparisons claim every range check passes."""

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return True


def test_int_subclasses_cannot_fake_range_checks(backend):
    # a negative offset would reuse key stream; a negative threshold could loop for ever
    with pytest.raises(ValueError, match=">= 0"):
        backend.ctr_xor_into(bytes(16), bytes(8), _LyingInt(-16), b"x", bytearray(1))
    with pytest.raises(ValueError, match="threshold"):
        backend.hashcash_search(bytes(48), _LyingInt(-1), 0, 1)
    with pytest.raises(ValueError, match="within"):
        backend.hashcash_search(bytes(48), 0, _LyingInt(-5), 1)


def running_macs(plain: bytes, step: int) -> dict[int, bytes]:
    """The running MAC every ``step`` bytes into each chunk, from the definition."""
    from Crypto.Cipher import AES

    k, n = crypto.a32_to_str(KEY), crypto.a32_to_str(NONCE)
    out = {}
    for start, length in crypto.chunk_bounds(len(plain)):
        for p in range(start + step, start + length, step):
            out[p] = AES.new(k, AES.MODE_CBC, iv=n + n).encrypt(plain[start:p])[-16:]
    return out


@given(size=st.integers(0, 1_500_000), cuts=st.lists(st.integers(0, 1_500_000), max_size=6))
def test_marks_are_the_running_macs_wherever_the_pieces_end(size, cuts):
    # pieces that end inside an AES block too: their bytes wait for the next piece
    plain = bytes(range(251)) * (size // 251) + bytes(size % 251)
    points = sorted({0, size, *(c for c in cuts if c < size)})
    dec = crypto.FileCipher(KEY, NONCE, size=size, marks=True)
    ct, macs, _ = reference(plain)
    got = b"".join(dec.decrypt(ct[a:b], a) for a, b in zip(points, points[1:], strict=False))
    assert got == plain and dec.chunk_macs == macs
    assert dec.marks == running_macs(plain, crypto.MAC_MARK)
    assert crypto.FileCipher(KEY, NONCE, size=size).marks == {}  # kept only when asked


def test_a_window_between_two_marks_is_checked_from_the_first(backend):
    size = 3 << 20
    plain = secrets.token_bytes(size)
    ct, macs, _ = reference(plain)
    whole = crypto.FileCipher(KEY, NONCE, size=size, marks=True)
    whole.decrypt(ct)
    marks = whole.marks
    step = crypto.MAC_MARK
    a, b = 1280 * 1024 + step, 1280 * 1024 + 3 * step  # inside the chunk at 1280 KiB
    window = crypto.FileCipher(KEY, NONCE, size=size)
    window.continue_from(a, marks[a])
    assert window.decrypt(ct[a:b], a) == plain[a:b]
    assert window.running_mac(b) == marks[b]
    assert window.running_mac(b - 16) is None  # no stream ended there
    c = 1920 * 1024  # to the chunk's end: its MAC
    window.continue_from(c - step, marks[c - step])
    window.decrypt(ct[c - step : c], c - step)
    assert window.chunk_macs == {1280 * 1024: macs[1280 * 1024]}
    for offset, running in ((a + 8, marks[a]), (128 * 1024, marks[a]), (a, b"short")):
        with pytest.raises(ValidationError):
            window.continue_from(offset, running)
