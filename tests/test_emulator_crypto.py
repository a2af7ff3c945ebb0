"""The emulator's account-creation and seeding crypto against the known answers.

The emulator has its own small crypto module (independent of megafast.crypto, so it can
referee our client); these tests pin it to the vectors in tests/vectors.
"""

from __future__ import annotations

import hashlib

import pytest

from megafast.testing import _crypto as C
from megafast.testing.emulator import MegaEmulator


def _a32(words: list[int]) -> bytes:
    return C.a32_to_bytes([w & 0xFFFFFFFF for w in words])


def test_prepare_key_and_stringhash(external_vectors, crypto_vectors) -> None:
    for case in external_vectors["prepare_key_password"]:
        key = C.prepare_key(C.str_to_a32_mega(case["password"]))
        if "expect_a32" in case:
            assert key == _a32(case["expect_a32"]), case["password"]
        if "expect_b64" in case:
            assert C.b64encode(key) == case["expect_b64"]
        if "expect_hex" in case:
            assert key.hex() == case["expect_hex"]
    for case in crypto_vectors["prepare_key"]:
        assert C.prepare_key(C.str_to_a32_mega(case["password"])) == _a32(case["key_a32"])
    for case in external_vectors["login_v1"]:
        if "expect_uh" in case:
            key = C.prepare_key(C.str_to_a32_mega(case["password"]))
            assert C.stringhash(case["email"], key) == case["expect_uh"]
    for case in crypto_vectors["stringhash"]:
        key = C.prepare_key(C.str_to_a32_mega(case["password"]))
        assert C.stringhash(case["email"], key) == case["uh"]


def test_web_client_string_conversion(external_vectors) -> None:
    for case in external_vectors["str_to_a32_js"]:
        assert C.str_to_a32_mega(case["string"]) == _a32(case["expect_a32"])


def test_v2_derivation(crypto_vectors) -> None:
    for case in crypto_vectors["v2_login"]:
        pwkey, uh = C.derive_v2(case["password"], C.b64decode(case["salt_b64"]))
        assert pwkey == _a32(case["password_key_a32"]) and uh == case["uh"]


def test_master_key_wrapping(external_vectors) -> None:
    for case in external_vectors["login_v1"]:
        if "k_b64" not in case:
            continue
        pwkey = C.prepare_key(C.str_to_a32_mega(case["password"]))
        mk = C.ecb_decrypt(pwkey, C.b64decode(case["k_b64"]))
        if "expect_master_key_b64" in case:
            assert C.b64encode(mk) == case["expect_master_key_b64"]
        else:
            assert mk == _a32(case["expect_master_key_a32"])
        # and account creation wraps it the other way
        assert C.b64encode(C.ecb_encrypt(pwkey, mk)) == case["k_b64"].rstrip("=")


def test_rsa_encodings_match_the_real_2013_account(external_vectors) -> None:
    real = next(c for c in external_vectors["login_v1"] if "privk_b64" in c)
    mk = C.b64decode(real["master_key_b64"])
    plain = C.ecb_decrypt(mk, C.b64decode(real["privk_b64"]))
    p, q, d, u = C.decode_mpis(plain, 4)
    key = C.RsaKey(p, q, real["expect_e"])
    # our key object computes the same d and u, and encodes p, q, d, u as MEGA did
    assert (key.d, key.u) == (d, u)
    assert key.privk_plain().rstrip(b"\0") == plain[: len(key.privk_plain().rstrip(b"\0"))]
    assert C.b64encode(key.pubk()) == real["pubk_b64"]
    # the real csid: an MPI whose header says 2048 bits, 256 bytes long, like ours
    csid = C.b64decode(real["csid_b64"])
    assert csid[:2] == (2048).to_bytes(2, "big") and len(csid) == 2 + 256
    m = pow(int.from_bytes(csid[2:], "big"), d, key.n)
    assert m.bit_length() <= 254 * 8  # a 254-byte number, as make_csid builds
    raw = m.to_bytes((m.bit_length() + 7) // 8, "big")
    assert C.b64encode(raw[:43]) == real["expect_sid"]
    # make_csid under this real key gives a csid that decrypts to the sid the same way
    sid = b"\x6e" + bytes(range(42))
    c = int.from_bytes(C.b64decode(C.make_csid(key, sid))[2:], "big")
    m2 = pow(c, d, key.n)
    assert m2.to_bytes((m2.bit_length() + 7) // 8, "big")[:43] == sid


def test_session_ids_need_a_non_zero_first_byte() -> None:
    key = C.rsa_key()
    with pytest.raises(ValueError):
        C.make_csid(key, b"\0" * 43)
    with pytest.raises(ValueError):
        C.make_csid(key, b"\1" * 42)


def test_file_encryption_matches_the_vectors(crypto_vectors) -> None:
    for case in crypto_vectors["file"]:
        size, salt = case["size"], case["salt"]
        pattern = bytes((i * 31 + salt) & 0xFF for i in range(256))
        plain = (pattern * (size // 256 + 1))[:size]
        ul = case["ul_key_a32"]
        enc = C.FileEncryptor(size, C.a32_to_bytes(ul[:4]), C.a32_to_bytes(ul[4:6]))
        out = b"".join(enc.encrypt(plain[i : i + 100_003]) for i in range(0, size, 100_003))
        assert hashlib.sha256(out).hexdigest() == case["ciphertext_sha256"]
        assert list(C.bytes_to_a32(enc.meta_mac())) == case["meta_mac_a32"]
        assert list(enc.packed_key()) == case["node_key_a32"]


def test_file_mac_of_real_uploads(external_vectors, vectors_dir) -> None:
    for case in external_vectors["file_mac_real_links"]["links"]:
        if "file" in case:
            data = (vectors_dir / case["file"]).read_bytes()
        else:
            data = case["content_utf8"].encode()
        key_words = C.bytes_to_a32(C.b64decode(case["link"].rsplit("#", 1)[1].rsplit("!", 1)[-1]))
        k = C.a32_to_bytes([key_words[i] ^ key_words[i + 4] for i in range(4)])
        enc = C.FileEncryptor(len(data), k, C.a32_to_bytes(key_words[4:6]))
        out = enc.encrypt(data)
        if "expect_ciphertext_hex" in case:
            assert out.hex() == case["expect_ciphertext_hex"]
        assert C.bytes_to_a32(enc.meta_mac()) == tuple(key_words[6:8])


def test_attributes(crypto_vectors, external_vectors) -> None:
    for case in crypto_vectors["attr"]:
        key = _a32(case["key_a32"])
        assert C.decrypt_attr(case["enc_b64"], key) == case["attr"]
        assert C.decrypt_attr(C.encrypt_attr(case["attr"], key), key) == case["attr"]
    for case in external_vectors["attributes_real"]:
        assert C.decrypt_attr(case["at_b64"], _a32(case["key_a32"])) == case["expect"]
    assert C.decrypt_attr("AAAA", bytes(16)) is None
    assert C.decrypt_attr("!!", bytes(16)) is None


def test_totp_matches_rfc6238() -> None:
    # RFC 6238 appendix B, SHA-1 secret "12345678901234567890", last 6 digits
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert C.totp(secret, 59) == "287082"
    assert C.totp(secret, 1111111109) == "081804"
    assert C.totp(secret, 2000000000) == "279037"


def test_accounts_created_by_the_emulator_are_consistent() -> None:
    with MegaEmulator() as emu:
        acct = emu.create_account("c@example.com", "pw", version=1)
        row = emu.store.user_by_email("c@example.com")
        assert row["uh"] == C.stringhash("c@example.com", C.prepare_key(C.str_to_a32_mega("pw")))
        assert C.ecb_decrypt(acct.password_key, C.b64decode(row["k"])) == acct.master_key
        p, q, d, u = C.decode_mpis(C.ecb_decrypt(acct.master_key, C.b64decode(row["privk"])), 4)
        n, e = C.decode_mpis(C.b64decode(row["pubk"]), 2)
        assert n == p * q and u == pow(p, -1, q) and pow(pow(7, e, n), d, n) == 7
        with pytest.raises(ValueError):
            emu.create_account("C@example.com", "again")


def test_fingerprint(external_vectors) -> None:
    for group in external_vectors["fingerprint"]:
        mtime = group["mtime_ms"] // 1000
        for size, expected in group["cases"]:
            data = b"0" * (size - 1)
            got = C.fingerprint(lambda off, n, d=data: d[off : off + n], len(data), mtime)
            assert got == expected, size
