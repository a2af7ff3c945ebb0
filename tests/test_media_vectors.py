"""Known answers for password-protected (``#P!``) links and thumbnail ciphertext
(tests/vectors/media_vectors.json; its README names the sources).

Two ``#P!`` links were made by MEGAcmd (MEGA's own SDK) and published with their password in
EliuX/MEGAcmd4J's tests; the rest, and the thumbnail ciphertext, were computed with the
independent implementation below (hashlib, hmac and pycryptodome only, written from MEGA's
SDK's description, not from megafast's code). The tests check that this implementation
reproduces every vector and that megafast does too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from Crypto.Cipher import AES


# -- the independent implementation -----------------------------------------------------------
def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(alg: int, mac_key: bytes, data: bytes) -> bytes:
    if alg == 2:
        return hmac.new(mac_key, data, hashlib.sha256).digest()
    return hmac.new(data, mac_key, hashlib.sha256).digest()  # alg 1: arguments swapped


def indep_open(url: str, password: str) -> str:
    """The plain link behind a #P! link (AssertionError when the HMAC does not match)."""
    raw = _unb64u(url.split("#P!", 1)[1])
    alg, kind = raw[0], raw[1]
    keylen = 32 if kind == 1 else 16
    salt = raw[8:40]
    enc = raw[40 : 40 + keylen]
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 100000, 64)
    assert hmac.compare_digest(_tag(alg, dk[32:], raw[: 40 + keylen]), raw[40 + keylen :])
    key = bytes(a ^ b for a, b in zip(enc, dk, strict=False))
    return f"https://mega.nz/{'file' if kind == 1 else 'folder'}/{b64u(raw[2:8])}#{b64u(key)}"


def indep_make(alg: int, kind: str, handle: str, key: bytes, password: str, salt: bytes) -> str:
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 100000, 64)
    body = bytes([alg, 1 if kind == "file" else 0]) + _unb64u(handle) + salt
    body += bytes(a ^ b for a, b in zip(key, dk, strict=False))
    return "https://mega.nz/#P!" + b64u(body + _tag(alg, dk[32:], body))


def indep_encrypt_attr(data: bytes, aes_key: bytes) -> bytes:
    padded = data + b"\0" * (-len(data) % 16)
    return AES.new(aes_key, AES.MODE_CBC, iv=b"\0" * 16).encrypt(padded)


# -- the vectors ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def media_vectors(vectors_dir: Path) -> dict[str, Any]:
    path = vectors_dir / "media_vectors.json"
    if not path.is_file():  # a vector set from before these known answers (MEGAFAST_VECTORS)
        pytest.skip(f"{vectors_dir} has no media_vectors.json")
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def test_the_independent_implementation_gives_every_link(media_vectors: dict[str, Any]) -> None:
    for v in media_vectors["password_links"]:
        assert indep_open(v["url"], v["password"]) == v["plain"]


def test_megafast_opens_every_link(media_vectors: dict[str, Any]) -> None:
    from megafast._wire.passlinks import decrypt_link

    published = [v for v in media_vectors["password_links"] if v["source"] != "computed"]
    assert len(published) == 2  # the two made by MEGAcmd
    for v in media_vectors["password_links"]:
        assert decrypt_link(v["url"], v["password"]) == v["plain"]


def test_megafast_makes_the_computed_links(media_vectors: dict[str, Any]) -> None:
    from megafast._wire.passlinks import encrypt_link

    for v in media_vectors["password_links"]:
        if v["source"] != "computed":
            continue
        alg = _unb64u(v["url"].split("#P!")[1])[0]
        made = encrypt_link(v["plain"], v["password"], alg=alg, salt=bytes(range(32)))
        assert made == v["url"]


def test_thumbnail_ciphertext(media_vectors: dict[str, Any], vectors_dir: Path) -> None:
    from megafast.media import decrypt_attr_data, encrypt_attr_data, parse_fa, parse_records

    t = media_vectors["thumbnail"]
    plain = (vectors_dir / t["plaintext_file"]).read_bytes()
    assert hashlib.sha256(plain).hexdigest() == t["plaintext_sha256"]
    key = bytes.fromhex(t["aes_key_hex"])
    words = t["file_key_words"]
    folded = b"".join((words[i] ^ words[i + 4]).to_bytes(4, "big") for i in range(4))
    assert folded == key
    cipher = base64.b64decode(t["ciphertext_b64"])
    assert hashlib.sha256(cipher).hexdigest() == t["ciphertext_sha256"]
    assert indep_encrypt_attr(plain, key) == cipher
    assert encrypt_attr_data(plain, key) == cipher
    assert decrypt_attr_data(cipher, key) == plain  # the zero padding after the JPEG is cut
    handle = bytes.fromhex(t["attribute_handle_hex"])
    record = handle + len(cipher).to_bytes(4, "little") + cipher
    assert hashlib.sha256(record).hexdigest() == t["fetch_record_sha256"]
    assert parse_records(record) == {handle: cipher}
    (attr,) = parse_fa(t["fa"])
    assert (attr.cluster, attr.type, attr.handle) == (811, 0, handle)
