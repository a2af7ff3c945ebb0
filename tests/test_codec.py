"""The one codec module (base64url, words, FileKey), redaction, the csid routine, and the
typed errors and node types the client raises and uses."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from Crypto.Cipher import AES

from megafast import crypto
from megafast._account.session import Credentials
from megafast._tree.nodes import NodeType
from megafast._wire.codec import (
    FileKey,
    attr_key,
    b64_bytes,
    b64decode,
    b64encode,
    bytes_to_words,
    fold,
    unpack_node_key,
    words_to_bytes,
)
from megafast._wire.redact import MARK, redact, redact_link
from megafast._wire.rsa import rsa_decrypt_mpi, rsa_encrypt_key, sid_from_csid
from megafast.client import Mega
from megafast.errors import LinkError, RequestError, UnexpectedAnswerError
from support.scripted_api import ScriptedAPI

# -- base64url and words ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 16, 31, 32, 33])
def test_base64url_round_trips_without_padding(size: int) -> None:
    data = secrets.token_bytes(size)
    text = b64encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64decode(text) == data
    assert b64_bytes(text) == data


def test_strict_decoder_takes_link_variants_and_raises_link_error() -> None:
    data = bytes(range(40))
    text = b64encode(data)
    std = text.replace("-", "+").replace("_", "/")
    assert b64decode(std + "==") == data
    assert b64decode(text[:10] + "," + text[10:]) == data
    with pytest.raises(LinkError):
        b64decode("a")  # one character cannot be base64


@pytest.mark.parametrize("bad", ["\u00e9\u00e9\u00e9\u00e9", None, 12, "a"])
def test_lenient_decoder_never_raises(bad: Any) -> None:
    assert b64_bytes(bad) is None


def test_words_and_bytes_are_big_endian_and_inverse() -> None:
    assert bytes_to_words(b"\x00\x00\x00\x01\xff\xff\xff\xff") == (1, 0xFFFFFFFF)
    data = secrets.token_bytes(32)
    assert words_to_bytes(bytes_to_words(data)) == data
    assert words_to_bytes([]) == b""


# -- FileKey -----------------------------------------------------------------------------------


def test_file_key_unpacks_as_mega_packs_it() -> None:
    packed = bytes_to_words(secrets.token_bytes(32))
    key = FileKey.unpack(packed)
    assert key.aes == tuple(packed[i] ^ packed[i + 4] for i in range(4))
    assert key.nonce == packed[4:6] and key.meta_mac == packed[6:8]
    assert key.packed == packed
    assert key.iv == (packed[4], packed[5], 0, 0)
    assert FileKey.unpack(words_to_bytes(packed)) == key
    assert fold(packed) == key.aes == attr_key(packed)


def test_file_key_agrees_with_file_cipher() -> None:
    cipher = crypto.FileCipher(secrets.token_bytes(16), secrets.token_bytes(8), size=0)
    packed = cipher.packed_key()
    key = FileKey.unpack(packed)
    assert words_to_bytes(key.aes) == bytes(cipher.key)
    assert words_to_bytes(key.nonce) == bytes(cipher.nonce)


@pytest.mark.parametrize("bad", [(1, 2, 3), tuple(range(9)), b"\0" * 31])
def test_file_key_refuses_other_lengths(bad: Any) -> None:
    with pytest.raises(ValueError):
        FileKey.unpack(bad)


def test_attr_key_keeps_folder_keys() -> None:
    assert attr_key((1, 2, 3, 4)) == (1, 2, 3, 4)
    with pytest.raises(ValueError):
        attr_key((1, 2, 3))


def test_node_key_fields() -> None:
    raw = secrets.token_bytes(32)
    fields = unpack_node_key(raw, file=True)
    assert fields is not None
    assert fields["key"] == bytes_to_words(raw)
    assert fields["k"] == FileKey.unpack(raw).aes
    assert unpack_node_key(raw[:16], file=True) is None
    folder = unpack_node_key(raw[:16], file=False)
    assert folder == {"key": bytes_to_words(raw[:16]), "k": bytes_to_words(raw[:16])}


# -- redaction ---------------------------------------------------------------------------------


def test_redact_hides_session_ids_and_link_keys_but_keeps_handles() -> None:
    text = (
        "POST http://h/cs?id=5&sid=SECRETSID123 failed; "
        "https://mega.nz/file/AbCdEfGh#KEYKEYKEY, https://mega.nz/#!AbCdEfGh!LEGACYKEY, "
        "https://mega.nz/folder/FoLdEr12#FOLDERKEY/file/ChIlD123 and #F!FoLdEr12!OLDFOLDERKEY"
    )
    cleaned = redact(text)
    for secret in ("SECRETSID123", "KEYKEYKEY", "LEGACYKEY", "FOLDERKEY", "OLDFOLDERKEY"):
        assert secret not in cleaned
    for kept in ("AbCdEfGh", "FoLdEr12", "id=5", MARK):
        assert kept in cleaned
    assert redact("nothing secret here") == "nothing secret here"


@pytest.mark.parametrize(
    "url",
    ["https://mega.nz/file/short#SECRETKEY", "#SECRETKEY", "x!SECRETKEY", "a" * 200 + "#SECRETKEY"],
)
def test_redact_link_cuts_at_the_key_whatever_the_shape(url: str) -> None:
    shown = redact_link(url)
    assert "SECRETKEY" not in shown and shown.endswith("#...") and len(shown) <= 84


def test_link_errors_never_show_the_key() -> None:
    from megafast._wire.links import parse_link

    with pytest.raises(LinkError) as info:
        parse_link("https://mega.nz/file/AbCdEfGh#SECRETKEYSHORT")
    assert "SECRETKEYSHORT" not in str(info.value)


# -- RSA: one csid routine ---------------------------------------------------------------------


def _vector_privk(external_vectors: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    (v,) = [x for x in external_vectors["login_v1"] if "csid_b64" in x]
    master = crypto.base64_url_decode(v["master_key_b64"])
    privk = AES.new(master, AES.MODE_ECB).decrypt(crypto.base64_url_decode(v["privk_b64"]))
    return v, privk


def test_sid_from_csid_matches_the_real_account_vector(external_vectors: dict[str, Any]) -> None:
    v, privk = _vector_privk(external_vectors)
    assert sid_from_csid(v["csid_b64"], privk) == v["expect_sid"]
    assert sid_from_csid(b64_bytes(v["csid_b64"]) or b"", privk) == v["expect_sid"]
    with pytest.raises(ValueError):
        sid_from_csid("!!!", privk)


def test_rsa_key_round_trip(external_vectors: dict[str, Any]) -> None:
    v, privk = _vector_privk(external_vectors)
    n, e = crypto.decode_mpis(crypto.base64_url_decode(v["pubk_b64"]), 2)
    key = secrets.token_bytes(16)
    assert rsa_decrypt_mpi(rsa_encrypt_key(key, n, e), privk)[:16] == key
    with pytest.raises(ValueError):
        rsa_decrypt_mpi(crypto.encode_mpi(n + 1), privk)  # out of range


# -- typed errors and node types ----------------------------------------------------------------


def test_unexpected_answer_error_is_a_request_error_without_a_code() -> None:
    exc = UnexpectedAnswerError("the answer to f is not an object")
    assert isinstance(exc, RequestError) and exc.code is None
    assert "EUNKNOWN" not in str(exc) and "the answer to f" in str(exc)


def _scripted_client(server: ScriptedAPI, odd_for: str, odd: Any) -> Mega:
    def answer(record: dict[str, Any]) -> Any:
        out = []
        for cmd in json.loads(record["body"]):
            if cmd.get("a") == odd_for:
                out.append(odd)
            elif cmd.get("a") == "ug":
                out.append({"u": "USERHNDL"})
            else:
                out.append(0)
        return (200, {}, json.dumps(out))

    server.default = answer
    m = Mega(api_url=server.url, retry_time=0.2, timeout=5)
    m.resume_session(
        Credentials(sid="S" * 58, master_key=bytes(16), user_handle="USERHNDL").to_dict()
    )
    return m


@pytest.mark.parametrize(
    ("command", "odd", "call"),
    [
        ("f", [1, 2], lambda m, d: m.get_files()),
        ("uq", {"mstrg": "lots"}, lambda m, d: m.get_quota()),
        (
            "g",
            "text",
            lambda m, d: m.get_public_url_info("https://mega.nz/file/AAAAAAAA#" + "A" * 43),
        ),
    ],
)
def test_wrong_shaped_answers_raise_unexpected_answer_error(
    tmp_path: Path, command: str, odd: Any, call: Any
) -> None:
    server = ScriptedAPI()
    try:
        m = _scripted_client(server, command, odd)
        with pytest.raises(UnexpectedAnswerError) as info:
            call(m, tmp_path)
        assert info.value.code is None
    finally:
        server.close()


def test_node_types_are_a_named_int_enum() -> None:
    assert [int(t) for t in NodeType] == [0, 1, 2, 3, 4]
    assert NodeType.RUBBISH == 4 and NodeType(0) is NodeType.FILE
    assert json.dumps({"t": NodeType.FOLDER.value}) == '{"t": 1}'
