"""Every known answer in tests/vectors, on every backend (pure twin and each native kernel)."""

from __future__ import annotations

import hashlib
import io
import struct

import pytest
from Crypto.Cipher import AES

from megafast import crypto
from megafast.errors import IntegrityError
from support.data import salted_plaintext, test_buffer


def u32(words):
    return tuple(w & 0xFFFFFFFF for w in words)


def parse_buffer_expr(expr: str) -> bytes:
    # "testBuffer(8)" / "testBuffer(24, 100, 7)"
    assert expr.startswith("testBuffer(") and expr.endswith(")"), expr
    args = [int(a) for a in expr[len("testBuffer(") : -1].split(",")]
    return test_buffer(*args)


# -- prepare_key / stringhash / login ------------------------------------------------------


def test_prepare_key_raw_bytes(backend, external_vectors):
    for v in external_vectors["prepare_key_raw_bytes"]:
        if "input" in v:
            got = crypto.a32_to_str(crypto.prepare_key(parse_buffer_expr(v["input"])))
            assert got.hex() == v["expect_hex"], v["source"]
        else:
            assert crypto.prepare_key(v["input_a32"]) == u32(v["expect_a32"]), v["source"]


def test_prepare_key_passwords(backend, external_vectors):
    for v in external_vectors["prepare_key_password"]:
        got = crypto.prepare_key(v["password"])
        if "expect_a32" in v:
            assert got == u32(v["expect_a32"]), v["source"]
        elif "expect_hex" in v:
            assert crypto.a32_to_str(got).hex() == v["expect_hex"], v["source"]
        else:
            assert crypto.a32_to_base64(got) == v["expect_b64"], v["source"]


def test_prepare_key_generated(backend, crypto_vectors):
    for v in crypto_vectors["prepare_key"]:
        assert crypto.prepare_key(v["password"]) == tuple(v["key_a32"]), v["password"]
        # mega.py style: a32 words of the latin-1 bytes give the same key for ASCII
        assert crypto.prepare_key(crypto.str_to_a32(v["password"])) == tuple(v["key_a32"])


def test_empty_password_is_the_start_value(backend):
    assert crypto.prepare_key("") == (0x93C467E3, 0x7DB0C7A4, 0xD1BE3F81, 0x0152CB56)


def test_str_to_a32_mega(external_vectors):
    for v in external_vectors["str_to_a32_js"]:
        assert crypto.str_to_a32_mega(v["string"]) == u32(v["expect_a32"]), v["source"]


def test_stringhash_external(backend, external_vectors):
    for v in external_vectors["stringhash"]:
        if "key" in v:
            key = crypto.prepare_key(parse_buffer_expr(v["key"].removeprefix("prepare_key(")[:-1]))
            data = parse_buffer_expr(v["input"])
            got = crypto.base64_url_decode(crypto.stringhash(data, key)).hex()
            assert got == v["expect_hex"], v["source"]
            continue
        if "key_a32" in v:
            key = u32(v["key_a32"])
        else:
            key = crypto.str_to_a32(bytes.fromhex(v["key_hex"]))
        assert crypto.stringhash(v["string"], key) == v["expect_b64"], v["string"]


def test_stringhash_generated(backend, crypto_vectors):
    for v in crypto_vectors["stringhash"]:
        key = crypto.prepare_key(v["password"])
        assert crypto.stringhash(v["email"].lower(), key) == v["uh"]
        assert v["email"].lower() == v["email_used"]


def test_login_v1_user_hash(backend, external_vectors):
    for v in external_vectors["login_v1"]:
        if "expect_uh" in v:
            key = crypto.prepare_key(v["password"])
            assert crypto.stringhash(v["email"].lower(), key) == v["expect_uh"], v["source"]


def test_login_v1_master_key(backend, external_vectors):
    for v in external_vectors["login_v1"]:
        if "k_b64" not in v:
            continue
        pwkey = crypto.prepare_key(v["password"])
        master = crypto.decrypt_key(crypto.base64_to_a32(v["k_b64"]), pwkey)
        if "expect_master_key_b64" in v:
            assert crypto.a32_to_base64(master) == v["expect_master_key_b64"]
        else:
            assert master == u32(v["expect_master_key_a32"])


def test_login_v1_real_account_session_id(external_vectors):
    (v,) = [x for x in external_vectors["login_v1"] if "csid_b64" in x]
    master = crypto.base64_url_decode(v["master_key_b64"])
    privk = AES.new(master, AES.MODE_ECB).decrypt(crypto.base64_url_decode(v["privk_b64"]))
    p, q, d, u = crypto.decode_mpis(privk, 4)
    assert u == crypto.modular_inverse(p, q)
    n, e = crypto.decode_mpis(crypto.base64_url_decode(v["pubk_b64"]), 2)
    assert n == p * q and e == v["expect_e"]
    assert crypto.rsa_decrypt_csid(v["csid_b64"], privk) == v["expect_sid"]


def test_v2_login(crypto_vectors):
    for v in crypto_vectors["v2_login"]:
        pwkey, uh = crypto.derive_v2(v["password"], crypto.base64_url_decode(v["salt_b64"]))
        assert crypto.str_to_a32(pwkey) == tuple(v["password_key_a32"])
        assert uh == v["uh"]


# -- keys and attributes -------------------------------------------------------------------


def test_encrypt_key(crypto_vectors):
    for v in crypto_vectors["encrypt_key"]:
        enc = crypto.encrypt_key(v["plain_a32"], v["key_a32"])
        assert crypto.a32_to_base64(enc) == v["cipher_b64"]
        assert crypto.decrypt_key(enc, v["key_a32"]) == tuple(v["plain_a32"])


def test_key_packing(external_vectors):
    for v in external_vectors["key_packing"]:
        k, iv, mm = crypto.unpack_file_key(v["packed_a32"])
        assert k == tuple(v["expect_key_a32"])
        assert iv == tuple(v["expect_iv_a32"])
        assert mm == tuple(v["expect_meta_mac_a32"])
        assert crypto.pack_file_key(k, iv, mm) == tuple(v["packed_a32"])


def test_attributes_real(external_vectors):
    for v in external_vectors["attributes_real"]:
        enc = crypto.base64_url_decode(v["at_b64"])
        assert crypto.decrypt_attr(enc, v["key_a32"]) == v["expect"]
    # MEGA writes compact raw UTF-8 JSON: re-encrypting the decrypted plaintext reproduces it
    v = external_vectors["attributes_real"][2]
    enc = crypto.base64_url_decode(v["at_b64"])
    attrs = crypto.decrypt_attr(enc, v["key_a32"])
    assert crypto.base64_url_encode(crypto.encrypt_attr(attrs, v["key_a32"])) == v["at_b64"]


def test_attributes_generated(crypto_vectors):
    for v in crypto_vectors["attr"]:
        enc = crypto.base64_url_decode(v["enc_b64"])
        assert crypto.decrypt_attr(enc, v["key_a32"]) == v["attr"]
        again = crypto.encrypt_attr(v["attr"], v["key_a32"])
        assert crypto.decrypt_attr(again, v["key_a32"]) == v["attr"]
        plain = crypto.aes_cbc_decrypt(again, crypto.a32_to_str(v["key_a32"])).rstrip(b"\0")
        name = v["attr"]["n"].encode("utf-8")
        assert plain == b'MEGA{"n":"' + name + b'"}'  # compact, raw UTF-8, like MEGA


def test_decrypt_attr_wrong_key_is_false():
    enc = crypto.encrypt_attr({"n": "x"}, (1, 2, 3, 4))
    assert crypto.decrypt_attr(enc, (1, 2, 3, 5)) is False


# -- chunks ----------------------------------------------------------------------------------


def test_chunks(external_vectors, crypto_vectors):
    for v in external_vectors["chunks"]:
        assert [list(c) for c in crypto.get_chunks(v["size"])] == v["expect"]
    for v in crypto_vectors["chunks"]:
        assert [list(c) for c in crypto.get_chunks(v["size"])] == v["chunks"]
        expected = [] if v["size"] == 0 else v["chunks"]
        assert [list(c) for c in crypto.chunk_bounds(v["size"])] == expected


# -- file content ----------------------------------------------------------------------------


def _ctr_and_mac(backend, key, nonce, plaintext, pieces=1):
    """Encrypt in `pieces` sequential calls, decrypt back in one; return (ciphertext, cipher)."""
    enc = crypto.FileCipher(key, nonce, size=len(plaintext))
    out = bytearray(len(plaintext))
    cuts = sorted({0, len(plaintext)} | {len(plaintext) * i // pieces for i in range(pieces)})
    for a, b in zip(cuts, cuts[1:], strict=False):
        enc.encrypt_into(memoryview(plaintext)[a:b], memoryview(out)[a:b], a)
    dec = crypto.FileCipher(key, nonce, size=len(plaintext))
    assert dec.decrypt(bytes(out), 0) == plaintext
    assert dec.meta_mac() == enc.meta_mac()
    return bytes(out), enc


def test_file_vectors_generated(backend, crypto_vectors):
    for v in crypto_vectors["file"]:
        if v["size"] > 8 << 20 and backend.__name__.endswith("_pure"):
            continue  # covered by the native kernels; keeps the pure run short
        plain = salted_plaintext(v["size"], v["salt"])
        key, nonce = v["ul_key_a32"][:4], v["ul_key_a32"][4:6]
        for pieces in (1, 3):
            ct, fc = _ctr_and_mac(backend, key, nonce, plain, pieces)
            assert hashlib.sha256(ct).hexdigest() == v["ciphertext_sha256"]
            assert [crypto.base64_url_encode(m) for m in fc.chunk_macs.values()] == v[
                "chunk_macs_b64"
            ]
            assert fc.meta_mac_a32() == tuple(v["meta_mac_a32"])
            assert fc.packed_key() == tuple(v["node_key_a32"])
            assert crypto.a32_to_base64(fc.packed_key()) == v["node_key_b64"]
        # decrypting with the node key verifies
        dec = crypto.FileCipher(v["node_key_b64"], size=v["size"])
        assert dec.decrypt(ct) == plain
        dec.verify()


def test_real_mega_files(backend, external_vectors, vectors_dir):
    for v in external_vectors["file_mac_real_links"]["links"]:
        key = (
            v["link"].rsplit("#", 1)[1].split("!")[-1]
            if "#!" in v["link"]
            else v["link"].rsplit("#", 1)[1]
        )
        if "file" in v:
            plain = (vectors_dir / v["file"]).read_bytes()
            assert len(plain) == v["size"]
        else:
            plain = v["content_utf8"].encode()
        fc = crypto.FileCipher(key, size=len(plain))
        ct = fc.encrypt(plain)
        fc.verify()  # MEGA's own client computed the meta-MAC in the link
        if "expect_ciphertext_hex" in v:
            assert ct.hex() == v["expect_ciphertext_hex"]
        dec = crypto.FileCipher(key, size=len(plain))
        assert dec.decrypt(ct) == plain
        dec.verify()


def test_real_file_corruption_is_detected(backend, external_vectors, vectors_dir):
    v = external_vectors["file_mac_real_links"]["links"][0]
    key = v["link"].rsplit("#", 1)[1]
    plain = bytearray((vectors_dir / v["file"]).read_bytes())
    plain[12345] ^= 1
    fc = crypto.FileCipher(key, size=len(plain))
    fc.update_mac(plain)
    with pytest.raises(IntegrityError):
        fc.verify()
    with pytest.raises(ValueError):  # IntegrityError is a ValueError too
        fc.verify()


def test_file_crypto_synthetic(backend, external_vectors):
    for v in external_vectors["file_crypto_synthetic"]:
        if "plaintext" in v:
            plain = parse_buffer_expr(v["plaintext"])
        elif "plaintext_hex" in v:
            plain = bytes.fromhex(v["plaintext_hex"])
        else:
            plain = v["plaintext_utf8"].encode()
        if "packed_key_b64std" in v:
            fc = crypto.FileCipher(
                crypto.base64_url_decode(v["packed_key_b64std"]), size=len(plain)
            )
            fc.update_mac(plain)
            assert fc.meta_mac().hex() == v["expect_meta_mac_hex"]
            continue
        if "key24" in v or "key24_hex" in v:
            k24 = (
                bytes.fromhex(v["key24_hex"])
                if "key24_hex" in v
                else parse_buffer_expr(v["key24"].split(" (")[0])
            )
            key, nonce = k24[:16], k24[16:]
        elif "key_a32" in v:
            key, nonce = v["key_a32"], v["iv_a32"]
        else:  # "empty file, any key"
            key, nonce = (1, 2, 3, 4), (5, 6)
        fc = crypto.FileCipher(key, nonce, size=len(plain))
        ct = fc.encrypt(plain)
        if "expect_ciphertext_hex" in v:
            assert ct.hex() == v["expect_ciphertext_hex"]
        if "expect_ciphertext_sha1" in v:
            assert hashlib.sha1(ct).hexdigest() == v["expect_ciphertext_sha1"]
        if "expect_meta_mac_hex" in v:
            assert fc.meta_mac().hex() == v["expect_meta_mac_hex"]
        if "expect_meta_mac_a32" in v:
            assert fc.meta_mac_a32() == tuple(v["expect_meta_mac_a32"])
        if "expect_packed_key_hex" in v:
            assert crypto.a32_to_str(fc.packed_key()).hex() == v["expect_packed_key_hex"]


def test_empty_file_meta_mac_is_zero(backend):
    fc = crypto.FileCipher((1, 2, 3, 4), (5, 6), size=0)
    assert fc.encrypt(b"") == b""
    assert fc.meta_mac() == bytes(8)
    assert fc.chunk_macs == {}


# -- hashcash and fingerprint -----------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_hashcash(external_vectors, threads):
    # On the backend in use (each native SHA-256 path is checked in test_native_equivalence).
    for v in external_vectors["hashcash"]:
        assert crypto.solve_hashcash(v["challenge"], threads=threads) == v["expect_answer"]
        assert crypto.check_hashcash(v["challenge"], v["expect_answer"])
        token = v["expect_answer"].split(":")[1]
        n = struct.unpack("<I", crypto.base64_url_decode(v["expect_answer"].split(":")[2]))[0]
        wrong = f"1:{token}:{crypto.base64_url_encode(struct.pack('<I', n - 1))}"
        assert not crypto.check_hashcash(v["challenge"], wrong)


def test_fingerprint(external_vectors):
    v = external_vectors["fingerprint"][0]
    for size, expected in v["cases"]:
        content = b"0" * (size - 1)  # "s-1 ASCII '0' characters"
        assert crypto.fingerprint(io.BytesIO(content), v["mtime_ms"] // 1000) == expected
