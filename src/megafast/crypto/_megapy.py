"""mega.py's crypto helpers, same names, signatures and results.

a32 values are tuples of 32-bit unsigned ints. Differences from mega.py are fixes:
``prepare_key``/``stringhash`` convert ``str`` the way MEGA's web client does (UTF-16 code
units), and attributes are written as compact UTF-8 JSON like MEGA's own clients. The password
key and login hash run in the chosen kernel module (:mod:`._backend`).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import json
import secrets
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from Crypto.Cipher import AES

from ..errors import ValidationError
from . import _backend

A32 = tuple[int, ...]

# -- a32 and base64 (mega.py's names) -------------------------------------------------------


def _bytes(data: Any, name: str = "data") -> bytes:
    if isinstance(data, str):
        return data.encode("latin-1")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{name} must be bytes or str, not {type(data).__name__}")


def a32_to_str(a: Sequence[int]) -> bytes:
    """Pack 32-bit words big-endian (negative words, as JavaScript writes them, are accepted)."""
    try:
        return struct.pack(f">{len(a)}I", *(int(x) & 0xFFFFFFFF for x in a))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a32 values must be a sequence of ints: {exc}") from None


def str_to_a32(b: bytes | str) -> A32:
    """Unpack bytes (``str``: latin-1, like mega.py) into big-endian words, zero-padded."""
    data = _bytes(b, "b")
    if len(data) % 4:
        data += bytes(4 - len(data) % 4)
    return struct.unpack(f">{len(data) // 4}I", data)


def str_to_a32_mega(s: str) -> A32:
    """MEGA's web-client conversion of text to words (UTF-16 code units, not UTF-8).

    Code unit ``c`` at position ``i`` is OR-ed into word ``i // 4`` as
    ``c << (24 - 8 * (i % 4))``, truncated to 32 bits. For ASCII it equals the bytes.
    """
    if not isinstance(s, str):
        raise TypeError(f"expected str, not {type(s).__name__}")
    units = s.encode("utf-16-be", "surrogatepass")
    count = len(units) // 2
    words = [0] * ((count + 3) // 4)
    for i in range(count):
        c = (units[2 * i] << 8) | units[2 * i + 1]
        words[i >> 2] |= (c << (24 - 8 * (i & 3))) & 0xFFFFFFFF
    return tuple(words)


def base64_url_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def base64_url_decode(data: str | bytes) -> bytes:
    """Decode base64url; standard alphabet, ``=`` padding and stray ``,`` are accepted."""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("ascii", "replace")
    if not isinstance(data, str):
        raise TypeError(f"expected str, not {type(data).__name__}")
    s = data.strip().replace(",", "").rstrip("=").replace("+", "-").replace("/", "_")
    if len(s) % 4 == 1:
        raise ValueError(f"invalid base64url string of length {len(s)}")
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64url string: {exc}") from None


def a32_to_base64(a: Sequence[int]) -> str:
    return base64_url_encode(a32_to_str(a))


def base64_to_a32(s: str | bytes) -> A32:
    return str_to_a32(base64_url_decode(s))


# -- plain AES helpers (mega.py's names; zero IV) --------------------------------------------


def _check_key(key: bytes) -> bytes:
    if len(key) != 16:
        raise ValueError(f"AES-128 key must be 16 bytes, got {len(key)}")
    return key


def _check_blocks(data: bytes) -> bytes:
    if len(data) % 16:
        raise ValueError(f"data must be a multiple of 16 bytes, got {len(data)}")
    return data


def aes_cbc_encrypt(data: bytes, key: bytes) -> bytes:
    k = _check_key(_bytes(key, "key"))
    return AES.new(k, AES.MODE_CBC, iv=bytes(16)).encrypt(_check_blocks(_bytes(data)))


def aes_cbc_decrypt(data: bytes, key: bytes) -> bytes:
    k = _check_key(_bytes(key, "key"))
    return AES.new(k, AES.MODE_CBC, iv=bytes(16)).decrypt(_check_blocks(_bytes(data)))


def aes_cbc_encrypt_a32(data: Sequence[int], key: Sequence[int]) -> A32:
    return str_to_a32(aes_cbc_encrypt(a32_to_str(data), a32_to_str(key)))


def aes_cbc_decrypt_a32(data: Sequence[int], key: Sequence[int]) -> A32:
    return str_to_a32(aes_cbc_decrypt(a32_to_str(data), a32_to_str(key)))


def encrypt_key(a: Sequence[int], key: Sequence[int]) -> A32:
    """AES-ECB-encrypt a key (a32) under ``key`` (4 words)."""
    k = _check_key(a32_to_str(key))
    return str_to_a32(AES.new(k, AES.MODE_ECB).encrypt(_check_blocks(a32_to_str(a))))


def decrypt_key(a: Sequence[int], key: Sequence[int]) -> A32:
    """AES-ECB-decrypt a key (a32) under ``key`` (4 words)."""
    k = _check_key(a32_to_str(key))
    return str_to_a32(AES.new(k, AES.MODE_ECB).decrypt(_check_blocks(a32_to_str(a))))


def encrypt_attr(attr: Mapping[str, Any], key: Sequence[int]) -> bytes:
    """Node attributes: ``MEGA`` + compact UTF-8 JSON, zero-padded, AES-CBC with a zero IV."""
    plain = b"MEGA" + json.dumps(attr, ensure_ascii=False, separators=(",", ":")).encode()
    if len(plain) % 16:
        plain += bytes(16 - len(plain) % 16)
    return aes_cbc_encrypt(plain, a32_to_str(key))


def decrypt_attr(attr: bytes, key: Sequence[int]) -> dict[str, Any] | bool:
    """Decrypt node attributes; ``False`` (like mega.py) when the key is wrong."""
    data = _bytes(attr, "attr")
    if not data or len(data) % 16:
        return False
    plain = aes_cbc_decrypt(data, a32_to_str(key))
    return _parse_attr_json(plain[4:].rstrip(b"\0")) if plain.startswith(b'MEGA{"') else False


def _parse_attr_json(raw: bytes) -> dict[str, Any] | bool:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return value if isinstance(value, dict) else False


# -- password key, login hash ---------------------------------------------------------------


def _password_bytes(password: str | bytes | Sequence[int]) -> bytes:
    if isinstance(password, str):
        return a32_to_str(str_to_a32_mega(password))
    if isinstance(password, (bytes, bytearray, memoryview)):
        data = bytes(password)
        return data + bytes(-len(data) % 4)
    if isinstance(password, Sequence) and not isinstance(password, builtins.str):
        return a32_to_str(password)
    raise TypeError(f"password must be str, bytes or a32 words, not {type(password).__name__}")


def prepare_key(arr: str | bytes | Sequence[int]) -> A32:
    """MEGA's v1 password key (65536 AES rounds), as 4 words.

    ``arr`` may be a32 words (mega.py style), a ``str`` (converted like MEGA's web client)
    or raw bytes (zero-padded to whole words).
    """
    return str_to_a32(_backend.kernels.prepare_key(_password_bytes(arr)))


def stringhash(str: str | bytes, aeskey: Sequence[int] | bytes) -> str:  # noqa: A002 (mega.py's name)
    """MEGA's v1 login hash ``uh`` of ``str`` (the lower-cased email) under the password key."""
    text = str
    if not isinstance(text, (bytes, bytearray, memoryview, builtins.str)):
        raise TypeError(f"stringhash expects str or bytes, not {type(text).__name__}")
    if isinstance(aeskey, (bytes, bytearray, memoryview)):
        key = bytes(aeskey)
    else:
        key = a32_to_str(aeskey)
    return base64_url_encode(_backend.kernels.stringhash(_password_bytes(text), key))


def derive_v2(password: str, salt: bytes) -> tuple[bytes, str]:
    """v2 login: PBKDF2-HMAC-SHA512(password UTF-8, salt, 100000, 32) -> (pwkey, uh)."""
    if not isinstance(password, str):
        raise TypeError("password must be str")
    dk = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), bytes(salt), 100000, 32)
    return dk[:16], base64_url_encode(dk[16:])


# -- MPIs and RSA ---------------------------------------------------------------------------


def mpi_to_int(s: bytes) -> int:
    """An MPI (2-byte bit length, then the big-endian number) as an int."""
    data = _bytes(s, "s")
    if len(data) < 2:
        raise ValueError("truncated MPI: no length header")
    return int.from_bytes(data[2:], "big")


def decode_mpis(data: bytes, count: int | None = None) -> list[int]:
    """Read ``count`` MPIs (all, when None) from ``data``; ValueError on truncation."""
    raw = _bytes(data, "data")
    out: list[int] = []
    pos = 0
    while (count is None and pos < len(raw)) or (count is not None and len(out) < count):
        if pos + 2 > len(raw):
            raise ValueError(f"truncated MPI data: MPI {len(out)} has no length header")
        bits = (raw[pos] << 8) | raw[pos + 1]
        size = (bits + 7) // 8
        if pos + 2 + size > len(raw):
            raise ValueError(
                f"truncated MPI data: MPI {len(out)} needs {size} bytes, {len(raw) - pos - 2} left"
            )
        out.append(int.from_bytes(raw[pos + 2 : pos + 2 + size], "big"))
        pos += 2 + size
    return out


def encode_mpi(n: int) -> bytes:
    """An int as an MPI (2-byte bit length, then the big-endian number)."""
    if n < 0:
        raise ValueError("MPIs are non-negative")
    bits = n.bit_length()
    if bits > 0xFFFF:
        raise ValueError("number too large for an MPI")
    return struct.pack(">H", bits) + n.to_bytes((bits + 7) // 8, "big")


def modular_inverse(a: int, m: int) -> int:
    try:
        return pow(a, -1, m)
    except ValueError:
        raise ValueError("modular inverse does not exist") from None


def rsa_decrypt(c: int, p: int, q: int, d: int, u: int | None = None) -> int:
    """RSA decryption with the private factors (CRT); ``u = p^-1 mod q``."""
    if u is None:
        u = modular_inverse(p, q)
    m1 = pow(c % p, d % (p - 1), p)
    m2 = pow(c % q, d % (q - 1), q)
    h = (u * (m2 - m1)) % q
    return m1 + h * p


def rsa_decrypt_csid(csid: str, privk: bytes) -> str:
    """The session id from the login's ``csid`` and the decrypted private key (p, q, d, u)
    (mega.py's name for megafast._wire.rsa.sid_from_csid, the one csid routine)."""
    from .._wire.rsa import sid_from_csid

    return sid_from_csid(csid, privk)


# -- chunks ---------------------------------------------------------------------------------


def get_chunks(size: int) -> Iterator[tuple[int, int]]:
    """mega.py's chunk generator: (start, length) pairs; size 0 yields one (0, 0)."""
    p = 0
    s = 0x20000
    while p + s < size:
        yield (p, s)
        p += s
        if s < 0x100000:
            s += 0x20000
    yield (p, size - p)


def chunk_bounds(size: int) -> list[tuple[int, int]]:
    """MAC chunks of a file as (start, length); empty for an empty file."""
    if size < 0:
        raise ValueError("size must be >= 0")
    return [] if size == 0 else list(get_chunks(size))


# -- file keys ------------------------------------------------------------------------------


def unpack_file_key(packed: Sequence[int]) -> tuple[A32, A32, A32]:
    """8-word node key -> (AES key 4 words, nonce 2 words, meta-MAC 2 words)."""
    if len(packed) != 8:
        raise ValidationError(f"a file key has 8 words, got {len(packed)}")
    from .._wire.codec import fold

    w = tuple(int(x) & 0xFFFFFFFF for x in packed)
    return fold(w), (w[4], w[5]), (w[6], w[7])


def pack_file_key(k: Sequence[int], iv: Sequence[int], meta_mac: Sequence[int]) -> A32:
    """(AES key, nonce, meta-MAC) -> the 8-word node key stored by MEGA."""
    return (
        k[0] ^ iv[0],
        k[1] ^ iv[1],
        k[2] ^ meta_mac[0],
        k[3] ^ meta_mac[1],
        iv[0],
        iv[1],
        meta_mac[0],
        meta_mac[1],
    )


def random_key(words: int = 4) -> A32:
    """Fresh key material from ``secrets``."""
    return str_to_a32(secrets.token_bytes(4 * words))


def make_id(length: int) -> str:
    """A random id of letters and digits (from ``secrets``)."""
    possible = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(possible) for _ in range(length))
