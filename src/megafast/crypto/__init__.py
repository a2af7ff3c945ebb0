"""MEGA's cryptography: mega.py's helper names, plus the fast file and node kernels.

Everything mega.py's ``mega.crypto`` offers is here with the same signature and result
(a32 values are tuples of 32-bit unsigned ints), so ``from megafast import crypto`` can replace
``from mega import crypto``. Differences are fixes: MACs are right for empty files and for
files whose last chunk is 1 to 16 bytes; ``prepare_key``/``stringhash`` convert ``str`` the way
MEGA's web client does (UTF-16 code units), which matters for non-ASCII passwords; attributes
are written as compact UTF-8 JSON like MEGA's own clients.

The hot loops run in the native extension when it is built (``BACKEND == "native"``), else in
the pure-Python twin; ``KERNEL`` says which AES path runs.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import concurrent.futures
import hashlib
import json
import os
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from Crypto.Cipher import AES

from ..errors import HashcashError, IntegrityError, ValidationError
from . import _backend

__all__ = [
    "BACKEND",
    "KERNEL",
    "FileCipher",
    "a32_to_base64",
    "a32_to_str",
    "aes_cbc_decrypt",
    "aes_cbc_decrypt_a32",
    "aes_cbc_encrypt",
    "aes_cbc_encrypt_a32",
    "base64_to_a32",
    "base64_url_decode",
    "base64_url_encode",
    "check_hashcash",
    "chunk_bounds",
    "cpu_features",
    "decode_mpis",
    "decrypt_attr",
    "decrypt_key",
    "decrypt_nodes",
    "derive_v2",
    "encode_mpi",
    "encrypt_attr",
    "encrypt_key",
    "fingerprint",
    "get_chunks",
    "hashcash_threshold",
    "make_id",
    "modular_inverse",
    "mpi_to_int",
    "parse_hashcash",
    "prepare_key",
    "random_key",
    "rsa_decrypt",
    "rsa_decrypt_csid",
    "solve_hashcash",
    "str_to_a32",
    "str_to_a32_mega",
    "stringhash",
    "unpack_file_key",
    "pack_file_key",
]

BACKEND: str = _backend.BACKEND
A32 = tuple[int, ...]


def __getattr__(name: str) -> Any:
    # KERNEL follows set_kernel() in tests, so it is read from the kernel module each time.
    if name == "KERNEL":
        return _backend.kernels.KERNEL
    raise AttributeError(f"module 'megafast.crypto' has no attribute {name!r}")


def cpu_features() -> dict[str, bool]:
    """CPU features the native backend detected (empty for the pure backend)."""
    return dict(_backend.kernels.cpu_features())


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
    if isinstance(password, Sequence):
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
    """The session id from the login's ``csid`` and the decrypted private key (p, q, d, u)."""
    p, q, d, u = decode_mpis(privk, 4)
    if p < 3 or q < 3:
        raise ValueError("invalid RSA private key")
    (c,) = decode_mpis(base64_url_decode(csid), 1)
    m = rsa_decrypt(c, p, q, d, u)
    raw = m.to_bytes(max(1, (m.bit_length() + 7) // 8), "big")
    return base64_url_encode(raw[:43])


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
    w = [int(x) & 0xFFFFFFFF for x in packed]
    k = (w[0] ^ w[4], w[1] ^ w[5], w[2] ^ w[6], w[3] ^ w[7])
    return k, (w[4], w[5]), (w[6], w[7])


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


def _key_words(key: Any, name: str) -> A32:
    if isinstance(key, str):
        key = base64_url_decode(key)
    if isinstance(key, (bytes, bytearray, memoryview)):
        data = bytes(key)
        if len(data) % 4:
            raise ValidationError(f"{name} must be a whole number of 32-bit words")
        return str_to_a32(data)
    if isinstance(key, Sequence):
        return tuple(int(x) & 0xFFFFFFFF for x in key)
    raise TypeError(f"{name} must be words, bytes or base64url text, not {type(key).__name__}")


_CHUNK_START_LIMIT = 4608 << 10


def _is_chunk_start(offset: int) -> bool:
    if offset >= _CHUNK_START_LIMIT:
        return (offset - _CHUNK_START_LIMIT) % (1 << 20) == 0
    return offset in (
        0,
        128 << 10,
        384 << 10,
        768 << 10,
        1280 << 10,
        1920 << 10,
        2688 << 10,
        3584 << 10,
    )


class FileCipher:
    """AES-CTR and chunk MACs of one file, at any offset, from any number of streams.

    ``key`` is the packed 8-word node key (8 ints, 32 bytes or base64url) -- the nonce and the
    expected meta-MAC come from it -- or the 4-word AES key with ``nonce`` (2 words / 8 bytes).
    ``size`` (bytes) is needed to know where the last chunk ends.

    MAC-ing calls (``decrypt*``, ``encrypt*``, ``update_mac``) at ``offset`` must start on a MAC
    chunk boundary or exactly where an earlier MAC-ing call ended; several such streams may be
    in flight at once, from several threads (ranges made of whole chunks are independent).
    ``ctr``/``ctr_into`` only en/decrypt (random access, no MAC).
    """

    def __init__(self, key: Any, nonce: Any = None, *, size: int | None = None) -> None:
        words = _key_words(key, "key")
        self.expected_meta_mac: bytes | None = None
        if len(words) == 8:
            if nonce is not None:
                raise ValidationError("nonce is part of a packed 8-word key: do not pass it")
            k, iv, mm = unpack_file_key(words)
            self.expected_meta_mac = a32_to_str(mm)
        elif len(words) == 4:
            if nonce is None:
                raise ValidationError("a 4-word AES key needs the 2-word nonce")
            k = words
            iv = _key_words(nonce, "nonce")
            if len(iv) != 2:
                raise ValidationError(f"nonce must be 2 words (8 bytes), got {len(iv)} words")
        else:
            raise ValidationError(
                f"key must be 8 words (node key) or 4 words (AES key), got {len(words)}"
            )
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValidationError(f"size must be a non-negative int, got {size!r}")
        self.key: bytes = a32_to_str(k)
        self.nonce: bytes = a32_to_str(iv)
        self.size: int | None = size
        self._lock = threading.Lock()
        self._chunk_macs: dict[int, bytes] = {}
        # next offset of an unfinished stream -> (running MAC or None, pending plaintext < 16 bytes)
        self._streams: dict[int, tuple[bytes | None, bytes]] = {}

    # -- public properties
    @property
    def key_a32(self) -> A32:
        return str_to_a32(self.key)

    @property
    def nonce_a32(self) -> A32:
        return str_to_a32(self.nonce)

    @property
    def chunk_macs(self) -> dict[int, bytes]:
        """Completed chunks: start offset -> 16-byte chunk MAC."""
        with self._lock:
            return dict(sorted(self._chunk_macs.items()))

    def add_chunk_macs(self, macs: Mapping[int, bytes]) -> None:
        """Adopt chunk MACs computed elsewhere (for example by another FileCipher, or a resume)."""
        with self._lock:
            for start, m in macs.items():
                if len(m) != 16 or not _is_chunk_start(int(start)):
                    raise ValidationError(f"bad chunk MAC entry at offset {start}")
                self._chunk_macs[int(start)] = bytes(m)

    # -- CTR only
    def ctr_into(self, src: Any, dst: Any, offset: int = 0) -> None:
        """dst = src XOR key stream at byte ``offset`` (no MAC)."""
        _backend.kernels.ctr_xor_into(self.key, self.nonce, offset, src, dst)

    def ctr(self, data: Any, offset: int = 0) -> bytes:
        out = bytearray(len(memoryview(data).cast("B")))
        self.ctr_into(data, out, offset)
        return bytes(out)

    # -- CTR + MAC
    def decrypt_into(self, src: Any, dst: Any, offset: int = 0) -> None:
        """CTR-decrypt ``src`` into ``dst`` (may be ``src``) and MAC the plaintext."""
        self._process(src, dst, offset, "dec")

    def decrypt(self, data: Any, offset: int = 0) -> bytes:
        out = bytearray(len(memoryview(data).cast("B")))
        self._process(data, out, offset, "dec")
        return bytes(out)

    def encrypt_into(self, src: Any, dst: Any, offset: int = 0) -> None:
        """MAC the plaintext ``src``, then CTR-encrypt it into ``dst`` (may be ``src``)."""
        self._process(src, dst, offset, "enc")

    def encrypt(self, data: Any, offset: int = 0) -> bytes:
        out = bytearray(len(memoryview(data).cast("B")))
        self._process(data, out, offset, "enc")
        return bytes(out)

    def update_mac(self, plaintext: Any, offset: int = 0) -> None:
        """MAC plaintext without en/decrypting it."""
        self._process(plaintext, None, offset, "mac")

    def _take_stream(self, offset: int) -> tuple[bytes | None, bytes]:
        with self._lock:
            state = self._streams.pop(offset, None)
        if state is not None:
            return state
        if _is_chunk_start(offset):
            return None, b""
        raise ValidationError(
            f"MAC stream cannot start at offset {offset}: start on a MAC chunk boundary "
            "or where an earlier piece ended"
        )

    def _process(self, src: Any, dst: Any, offset: int, mode: str) -> None:
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if isinstance(src, str) or src is None:
            raise TypeError(f"data must be a bytes-like object, not {type(src).__name__}")
        sv = memoryview(src)
        if not sv.c_contiguous:
            raise ValueError("data must be a C-contiguous buffer")
        sv = sv.cast("B")
        n = len(sv)
        if dst is not None:
            dv = memoryview(dst)
            if dv.readonly:
                raise TypeError("dst must be a writable buffer")
            if not dv.c_contiguous:
                raise ValueError("dst must be a C-contiguous buffer")
            dv = dv.cast("B")
            if len(dv) != n:
                raise ValueError(f"dst must be as long as the data ({n} bytes), got {len(dv)}")
        else:
            dv = None
        size = self.size
        end = offset + n
        if size is not None and end > size:
            raise ValueError(f"data runs past the end of the file ({end} > {size} bytes)")
        running, pending = self._take_stream(offset)
        k = _backend.kernels
        key, nonce = self.key, self.nonce
        done_all: list[tuple[int, bytes]] = []
        pos = offset
        i = 0
        final_at_end = size is not None and end == size

        def plain_piece(a: int, b: int) -> bytes:
            # The plaintext of src[a:b] (small pieces: partial blocks), written to dst as needed.
            seg = sv[a:b]
            if mode == "dec":
                k.ctr_xor_into(key, nonce, offset + a, seg, dv[a:b])
                return bytes(dv[a:b])
            plain = bytes(seg)
            if mode == "enc":
                k.ctr_xor_into(key, nonce, offset + a, seg, dv[a:b])
            return plain

        if pending:
            take = min(16 - len(pending), n)
            block = pending + plain_piece(0, take)
            i, pos = take, offset + take
            block_final = size is not None and pos == size
            if len(block) == 16 or block_final:
                done, running = k.mac(key, nonce, pos - len(block), block, running, block_final)
                done_all.extend(done)
                pending = b""
            else:
                pending = block
        if i < n:
            rem = n - i
            body = rem if final_at_end else rem - rem % 16
            if body:
                seg = sv[i : i + body]
                if mode == "dec":
                    done, running = k.decrypt_mac_into(
                        key, nonce, pos, seg, dv[i : i + body], running, final_at_end
                    )
                elif mode == "enc":
                    done, running = k.mac_encrypt_into(
                        key, nonce, pos, seg, dv[i : i + body], running, final_at_end
                    )
                else:
                    done, running = k.mac(key, nonce, pos, seg, running, final_at_end)
                done_all.extend(done)
                i += body
                pos += body
            if i < n:
                pending = plain_piece(i, n)
                pos = end
        elif n == 0 and final_at_end and running is not None:
            done, running = k.mac(key, nonce, pos, b"", running, True)
            done_all.extend(done)
        with self._lock:
            for start, m in done_all:
                self._chunk_macs[start] = m
            if pending or running is not None:
                self._streams[pos] = (running, pending)

    # -- results
    def _missing_chunks(self) -> list[int]:
        if self.size is None:
            raise ValidationError("the file size is unknown: pass size= to FileCipher")
        with self._lock:
            return [s for s, _ in chunk_bounds(self.size) if s not in self._chunk_macs]

    def is_complete(self) -> bool:
        """True when every chunk of the file has its MAC."""
        return not self._missing_chunks()

    def meta_mac(self) -> bytes:
        """The 8-byte meta-MAC (needs ``size`` and every chunk MAC-ed)."""
        missing = self._missing_chunks()
        if missing:
            raise ValidationError(
                f"{len(missing)} MAC chunk(s) not processed yet (first at offset {missing[0]})"
            )
        assert self.size is not None
        with self._lock:
            macs = b"".join(self._chunk_macs[s] for s, _ in chunk_bounds(self.size))
        return _backend.kernels.fold_meta_mac(self.key, macs)

    def meta_mac_a32(self) -> A32:
        return str_to_a32(self.meta_mac())

    def verify(self, expected: Any = None) -> None:
        """Raise :class:`IntegrityError` unless the meta-MAC equals ``expected`` (default: the key's)."""
        if expected is None:
            expected = self.expected_meta_mac
            if expected is None:
                raise ValidationError("no expected meta-MAC: pass one, or build from a packed key")
        exp = (
            a32_to_str(expected)
            if isinstance(expected, Sequence) and not isinstance(expected, (bytes, bytearray))
            else bytes(expected)
        )
        if not secrets.compare_digest(self.meta_mac(), exp):
            raise IntegrityError(
                "MAC mismatch: the content does not match its key (corrupted data or wrong key)"
            )

    def packed_key(self) -> A32:
        """The 8-word node key (AES key, nonce and meta-MAC) for the ``p`` command and links."""
        return pack_file_key(self.key_a32, self.nonce_a32, self.meta_mac_a32())

    # -- resume
    def state(self) -> dict[str, Any]:
        """JSON-serialisable MAC progress (no key material beyond MACs): see :meth:`from_state`."""
        with self._lock:
            return {
                "version": 1,
                "size": self.size,
                "chunk_macs": {
                    str(s): base64_url_encode(m) for s, m in sorted(self._chunk_macs.items())
                },
                "streams": {
                    str(p): [None if r is None else base64_url_encode(r), base64_url_encode(pend)]
                    for p, (r, pend) in self._streams.items()
                },
            }

    @classmethod
    def from_state(cls, key: Any, state: Mapping[str, Any], nonce: Any = None) -> FileCipher:
        """A FileCipher that continues from :meth:`state`."""
        try:
            if state.get("version") != 1:
                raise ValueError("unknown state version")
            fc = cls(key, nonce, size=state.get("size"))
            fc.add_chunk_macs(
                {int(s): base64_url_decode(m) for s, m in state["chunk_macs"].items()}
            )
            for p, (r, pend) in state.get("streams", {}).items():
                fc._streams[int(p)] = (
                    None if r is None else base64_url_decode(r),
                    base64_url_decode(pend),
                )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"invalid FileCipher state: {exc}") from None
        return fc


# -- bulk node decryption -------------------------------------------------------------------


def decrypt_nodes(
    kek: bytes | Sequence[bytes],
    enc_keys: Sequence[bytes | None],
    enc_attrs: Sequence[bytes | None],
) -> list[tuple[bytes | None, dict[str, Any] | None]]:
    """Decrypt many node keys and attributes at once.

    ``kek``: the 16-byte key that encrypts the node keys (the master key), or one per node.
    Returns (decrypted key or None, attributes dict or None) per node; a node that cannot be
    decrypted is reported with None, never raised.
    """
    raw = _backend.kernels.decrypt_nodes(kek, enc_keys, enc_attrs)
    return [
        (key, attrs)
        for (key, _), attrs in zip(raw, _parse_attr_batch([js for _, js in raw]), strict=True)
    ]


_json_decoder = json.JSONDecoder()
_scan_once = _json_decoder.scan_once


def _parse_attr_batch(items: Sequence[bytes | None]) -> list[dict[str, Any] | None]:
    """Parse many attribute JSON texts quickly, each one on its own.

    The texts are decoded and joined once, then the C scanner parses each at its own offset;
    a value must end exactly where its text ends, so no text can spill into its neighbour
    (a plain ``json.loads("[" + ",".join(...) + "]")`` would let a crafted attribute shift
    every later node's attributes). Anything unusual falls back to ``json.loads`` per item.
    """
    texts: list[str | None] = []
    for js in items:
        if js is None:
            texts.append(None)
            continue
        try:
            texts.append(js.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
    joined = "".join(t for t in texts if t is not None)
    out: list[dict[str, Any] | None] = []
    pos = 0
    for t in texts:
        if t is None:
            out.append(None)
            continue
        end = pos + len(t)
        value: Any = None
        try:
            value, stop = _scan_once(joined, pos)
            if stop != end:
                value = json.loads(t)  # trailing spaces and the like: parse it alone
        except (StopIteration, ValueError, RecursionError):
            try:
                value = json.loads(t)
            except (ValueError, RecursionError):
                value = None
        out.append(value if isinstance(value, dict) else None)
        pos = end
    return out


# -- hashcash (HTTP 402) --------------------------------------------------------------------


def hashcash_threshold(easiness: int) -> int:
    """The largest accepted hash prefix for an easiness value (0..255)."""
    if not 0 <= easiness <= 255:
        raise ValueError(f"easiness must be 0..255, got {easiness}")
    return (((easiness & 63) << 1) + 1) << ((easiness >> 6) * 7 + 3)


def parse_hashcash(header_value: str) -> tuple[int, int, bytes]:
    """``1:<easiness>:<timestamp>:<token>`` -> (easiness, timestamp, 48-byte token)."""
    if not isinstance(header_value, str):
        raise ValidationError("the X-Hashcash challenge must be text")
    parts = header_value.strip().split(":")
    if len(parts) != 4 or parts[0] != "1":
        raise ValidationError("unsupported X-Hashcash challenge (expected 1:easiness:time:token)")
    try:
        easiness, stamp = int(parts[1]), int(parts[2])
        token = base64_url_decode(parts[3])
    except ValueError:
        raise ValidationError("malformed X-Hashcash challenge") from None
    if not 0 <= easiness <= 255 or len(token) != 48:
        raise ValidationError("malformed X-Hashcash challenge (easiness or token length)")
    return easiness, stamp, token


def solve_hashcash(header_value: str, threads: int | None = None, timeout: float = 300.0) -> str:
    """Answer an X-Hashcash challenge: returns the value of the answer header.

    Searches n = 0, 1, 2, ... on ``threads`` threads (default: all cores) in ordered batches,
    so the answer is the smallest valid n, the same for any thread count.
    """
    easiness, _, token = parse_hashcash(header_value)
    threshold = hashcash_threshold(easiness)
    workers = max(1, threads or os.cpu_count() or 1)
    batch = getattr(_backend.kernels, "HASHCASH_BATCH", 4)  # tries per call (SIMD width)
    deadline = time.monotonic() + timeout
    search = _backend.kernels.hashcash_search
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="hashcash") as pool:
        pending: list[concurrent.futures.Future[int]] = []
        nxt = 0
        try:
            while True:
                while len(pending) < 2 * workers and nxt < 1 << 32:
                    pending.append(
                        pool.submit(search, token, threshold, nxt, min(batch, (1 << 32) - nxt))
                    )
                    nxt += batch
                if not pending:
                    raise HashcashError("no hashcash answer exists in the 32-bit space")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HashcashError(f"hashcash not solved within {timeout:g} s")
                try:
                    n = pending[0].result(timeout=remaining)
                except concurrent.futures.TimeoutError:
                    raise HashcashError(f"hashcash not solved within {timeout:g} s") from None
                pending.pop(0)
                if n >= 0:
                    return f"1:{base64_url_encode(token)}:{base64_url_encode(struct.pack('<I', n))}"
        finally:
            for f in pending:
                f.cancel()


def check_hashcash(header_value: str, answer: str) -> bool:
    """True when ``answer`` (``1:<token>:<prefix>``) solves the challenge ``header_value``."""
    try:
        easiness, _, token = parse_hashcash(header_value)
        parts = answer.strip().split(":")
        if len(parts) != 3 or parts[0] != "1" or base64_url_decode(parts[1]) != token:
            return False
        prefix = base64_url_decode(parts[2])
    except (ValueError, AttributeError):
        return False
    if len(prefix) != 4:
        return False
    n = struct.unpack("<I", prefix)[0]
    return _backend.kernels.hashcash_search(token, hashcash_threshold(easiness), n, 1) == n


# -- fingerprint (attribute "c") ------------------------------------------------------------


def _crc_words(f: BinaryIO, size: int) -> list[int]:
    if size <= 16:
        data = f.read(size)
        return list(str_to_a32(data + bytes(16 - len(data))))
    if size <= 8192:
        data = f.read(size)
        return [zlib.crc32(data[i * size // 4 : (i + 1) * size // 4]) for i in range(4)]
    crcs = []
    for lane in range(4):
        crc = 0
        for block in range(32):
            f.seek((size - 64) * (lane * 32 + block) // 127)
            crc = zlib.crc32(f.read(64), crc)
        crcs.append(crc)
    return crcs


def fingerprint(source: str | os.PathLike[str] | BinaryIO, mtime: int | float) -> str:
    """MEGA's file fingerprint (attribute ``c``): four CRC32s and the mtime (seconds)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return fingerprint(f, mtime)
    f = source
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    words = _crc_words(f, size)
    t = int(mtime)
    tb = t.to_bytes(max(1, (t.bit_length() + 7) // 8), "little") if t > 0 else b"\0"
    return base64_url_encode(struct.pack(">4I", *words) + bytes([len(tb)]) + tb)


def make_id(length: int) -> str:
    """A random id of letters and digits (from ``secrets``)."""
    possible = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(possible) for _ in range(length))
