"""The emulator's own crypto: what a registering client and MEGA's server compute.

Deliberately independent of :mod:`megafast.crypto` (it uses pycryptodome and hashlib
directly), so that the emulator is a referee for the client rather than a mirror of it.
Everything here is checked against the known answers in ``tests/vectors``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence

from Crypto.Cipher import AES
from Crypto.PublicKey import RSA

__all__ = [
    "b64decode",
    "b64encode",
    "a32_to_bytes",
    "bytes_to_a32",
    "str_to_a32_mega",
    "prepare_key",
    "stringhash",
    "derive_v2",
    "ecb_encrypt",
    "ecb_decrypt",
    "encrypt_attr",
    "decrypt_attr",
    "chunk_bounds",
    "FileEncryptor",
    "RsaKey",
    "rsa_key",
    "encode_mpi",
    "decode_mpis",
    "make_csid",
    "hashcash_threshold",
    "check_hashcash_answer",
    "totp",
]

_PREPARE_KEY_START = bytes.fromhex("93C467E37DB0C7A4D1BE3F810152CB56")


# --- encodings -------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode base64url (also accepts ``+``, ``/``, padding and stray commas).

    Raises ``ValueError`` on anything else.
    """
    if not isinstance(text, str):
        raise ValueError("base64 text expected")
    text = text.replace(",", "").replace("=", "").replace("+", "-").replace("/", "_")
    if len(text) % 4 == 1:
        raise ValueError("bad base64 length")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise ValueError("bad base64") from exc


def a32_to_bytes(words: Sequence[int]) -> bytes:
    return struct.pack(f">{len(words)}I", *words)


def bytes_to_a32(data: bytes) -> tuple[int, ...]:
    if len(data) % 4:
        data = bytes(data) + b"\0" * (4 - len(data) % 4)
    return struct.unpack(f">{len(data) // 4}I", data)


def str_to_a32_mega(text: str) -> bytes:
    """MEGA web client's string -> a32 conversion (UTF-16 code units), as bytes."""
    units = text.encode("utf-16-be")
    words = [0] * ((len(units) // 2 + 3) // 4)
    for i in range(len(units) // 2):
        c = int.from_bytes(units[2 * i : 2 * i + 2], "big")
        words[i // 4] = (words[i // 4] | (c << (24 - 8 * (i % 4)))) & 0xFFFFFFFF
    return a32_to_bytes(words)


# --- password keys ---------------------------------------------------------------------


def prepare_key(pw: bytes) -> bytes:
    """v1 password key: 65536 rounds of AES over the zero-padded password blocks (16 bytes)."""
    if len(pw) % 16:
        pw = bytes(pw) + b"\0" * (16 - len(pw) % 16)
    blocks = [pw[i : i + 16] for i in range(0, len(pw), 16)]
    if not blocks:
        return _PREPARE_KEY_START
    if len(blocks) == 1:
        # One key: 65536 chained encryptions are CBC over zero blocks with the start as IV.
        out = AES.new(blocks[0], AES.MODE_CBC, iv=_PREPARE_KEY_START).encrypt(bytes(16 * 65536))
        return out[-16:]
    ciphers = [AES.new(b, AES.MODE_ECB) for b in blocks]
    pkey = _PREPARE_KEY_START
    for _ in range(65536):
        for c in ciphers:
            pkey = c.encrypt(pkey)
    return pkey


def stringhash(email: str, pwkey: bytes) -> str:
    """v1 login hash ``uh`` of the lower-cased email under the v1 password key."""
    words = bytes_to_a32(str_to_a32_mega(email.lower()))
    h = [0, 0, 0, 0]
    for i, w in enumerate(words):
        h[i % 4] ^= w
    start = a32_to_bytes(h)
    # 16384 encryptions under one key: CBC over zero blocks with `start` as IV.
    out = AES.new(pwkey, AES.MODE_CBC, iv=start).encrypt(bytes(16 * 16384))[-16:]
    return b64encode(out[0:4] + out[8:12])


def derive_v2(password: str, salt: bytes) -> tuple[bytes, str]:
    """v2 password key (16 bytes) and login hash ``uh`` (PBKDF2-HMAC-SHA512, 100000 rounds)."""
    dk = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, 100000, 32)
    return dk[:16], b64encode(dk[16:])


def ecb_encrypt(key: bytes, data: bytes) -> bytes:
    return AES.new(key, AES.MODE_ECB).encrypt(data)


def ecb_decrypt(key: bytes, data: bytes) -> bytes:
    return AES.new(key, AES.MODE_ECB).decrypt(data)


# --- attributes and file content -------------------------------------------------------


def encrypt_attr(attrs: dict, key16: bytes) -> str:
    """``"MEGA" + compact UTF-8 JSON``, zero-padded, AES-CBC (zero IV), base64url."""
    data = b"MEGA" + json.dumps(attrs, separators=(",", ":"), ensure_ascii=False).encode()
    data += b"\0" * (-len(data) % 16)
    return b64encode(AES.new(key16, AES.MODE_CBC, iv=bytes(16)).encrypt(data))


def decrypt_attr(enc: str, key16: bytes) -> dict | None:
    """The attribute dict, or None when ``enc`` does not decrypt to ``MEGA{"...``."""
    try:
        raw = b64decode(enc)
        if not raw or len(raw) % 16:
            return None
        plain = AES.new(key16, AES.MODE_CBC, iv=bytes(16)).decrypt(raw).rstrip(b"\0")
        if not plain.startswith(b'MEGA{"'):
            return None
        value = json.loads(plain[4:].decode("utf-8"))
        return value if isinstance(value, dict) else None
    except ValueError:
        return None


def chunk_bounds(size: int) -> list[tuple[int, int]]:
    """MEGA's MAC chunks as (start, length): 128 KiB, 256 KiB, ... 1 MiB, then 1 MiB each."""
    out = []
    pos, step = 0, 0
    while pos < size:
        if step < 1024 * 1024:
            step += 128 * 1024
        length = min(step, size - pos)
        out.append((pos, length))
        pos += length
    return out


class FileEncryptor:
    """Encrypt a file the way an uploading client does (CTR + chunk MACs), piece by piece.

    Feed plaintext in order with :meth:`encrypt`; :meth:`packed_key` gives the 8-word node key.
    """

    def __init__(self, size: int, key16: bytes | None = None, nonce8: bytes | None = None):
        self.size = size
        self.key = key16 or secrets.token_bytes(16)
        self.nonce = nonce8 or secrets.token_bytes(8)
        self._ctr = AES.new(self.key, AES.MODE_CTR, nonce=self.nonce, initial_value=0)
        self._ecb = AES.new(self.key, AES.MODE_ECB)
        self._chunks = chunk_bounds(size)
        self._chunk_index = 0
        self._pending = bytearray()  # plaintext of the current, incomplete chunk
        self._file_mac = bytes(16)
        self._pos = 0

    def encrypt(self, plain: bytes) -> bytes:
        if self._pos + len(plain) > self.size:
            raise ValueError("more data than the declared size")
        self._pos += len(plain)
        self._pending += plain
        while self._chunk_index < len(self._chunks):
            length = self._chunks[self._chunk_index][1]
            if len(self._pending) < length:
                break
            self._fold(bytes(self._pending[:length]))
            del self._pending[:length]
            self._chunk_index += 1
        return self._ctr.encrypt(plain)

    def _fold(self, chunk: bytes) -> None:
        padded = chunk + b"\0" * (-len(chunk) % 16)
        iv = self.nonce + self.nonce
        chunk_mac = AES.new(self.key, AES.MODE_CBC, iv=iv).encrypt(padded)[-16:]
        self._file_mac = self._ecb.encrypt(
            bytes(a ^ b for a, b in zip(self._file_mac, chunk_mac, strict=False))
        )

    def meta_mac(self) -> bytes:
        if self._pos != self.size:
            raise ValueError("file not complete")
        w = bytes_to_a32(self._file_mac)
        return a32_to_bytes((w[0] ^ w[1], w[2] ^ w[3])) if self.size else bytes(8)

    def packed_key(self) -> tuple[int, ...]:
        k = bytes_to_a32(self.key)
        iv = bytes_to_a32(self.nonce)
        m = bytes_to_a32(self.meta_mac())
        return (k[0] ^ iv[0], k[1] ^ iv[1], k[2] ^ m[0], k[3] ^ m[1], iv[0], iv[1], m[0], m[1])


# --- RSA, MPIs, sessions ---------------------------------------------------------------


def encode_mpi(n: int, nbytes: int | None = None) -> bytes:
    """MPI: 2-byte big-endian bit length, then the big-endian number.

    With ``nbytes`` the number is written on that many bytes and the header says
    ``nbytes * 8`` (how MEGA writes ``csid``).
    """
    if nbytes is None:
        bits = n.bit_length()
        return bits.to_bytes(2, "big") + n.to_bytes((bits + 7) // 8, "big")
    return (nbytes * 8).to_bytes(2, "big") + n.to_bytes(nbytes, "big")


def decode_mpis(data: bytes, count: int) -> list[int]:
    out = []
    pos = 0
    for _ in range(count):
        if pos + 2 > len(data):
            raise ValueError("truncated MPI")
        bits = int.from_bytes(data[pos : pos + 2], "big")
        n = (bits + 7) // 8
        if pos + 2 + n > len(data):
            raise ValueError("truncated MPI")
        out.append(int.from_bytes(data[pos + 2 : pos + 2 + n], "big"))
        pos += 2 + n
    return out


class RsaKey:
    """An account's RSA key pair (p, q, d, u and the public n, e) in MEGA's encodings."""

    def __init__(self, p: int, q: int, e: int = 17) -> None:
        self.p, self.q, self.e = p, q, e
        self.n = p * q
        # d as MEGA's web client computes it (mod phi), which also lets mega.py rebuild e.
        self.d = pow(e, -1, (p - 1) * (q - 1))
        self.u = pow(p, -1, q)

    @property
    def nbytes(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def privk_plain(self) -> bytes:
        """The four MPIs p, q, d, u, zero-padded to a multiple of 16 bytes."""
        data = b"".join(encode_mpi(x) for x in (self.p, self.q, self.d, self.u))
        return data + b"\0" * (-len(data) % 16)

    def pubk(self) -> bytes:
        return encode_mpi(self.n) + encode_mpi(self.e)

    def encrypt_int(self, m: int) -> int:
        return pow(m, self.e, self.n)


_rsa_lock = threading.Lock()
_rsa_cache: list[RsaKey] = []


def rsa_key(fresh: bool = False) -> RsaKey:
    """A 2048-bit key pair (e = 17, as in MEGA's 2013 accounts).

    Generating one costs about a second, so by default one key per process is shared by
    all accounts; ``fresh=True`` makes a new one.
    """
    with _rsa_lock:
        if fresh or not _rsa_cache:
            while True:
                key = RSA.generate(2048, e=17)
                try:
                    made = RsaKey(key.p, key.q, 17)
                except ValueError:  # e not invertible mod phi: vanishingly rare
                    continue
                break
            if not _rsa_cache:
                _rsa_cache.append(made)
            return made
        return _rsa_cache[0]


def make_csid(key: RsaKey, sid: bytes) -> str:
    """``csid``: the session id (43 bytes, first byte non-zero) followed by random bytes, as a
    254-byte number (like the real account data), RSA-encrypted, as a modulus-sized MPI."""
    if len(sid) != 43 or sid[0] == 0:
        raise ValueError("session id must be 43 bytes with a non-zero first byte")
    plain = sid + secrets.token_bytes(254 - 43)
    c = key.encrypt_int(int.from_bytes(plain, "big"))
    return b64encode(encode_mpi(c, key.nbytes))


# --- hashcash and TOTP -----------------------------------------------------------------


def hashcash_threshold(easiness: int) -> int:
    return (((easiness & 63) << 1) + 1) << ((easiness >> 6) * 7 + 3)


def check_hashcash_answer(token: bytes, easiness: int, prefix: bytes) -> bool:
    """True when BE32(SHA-256(prefix || token * 262144)[0:4]) <= threshold."""
    if len(prefix) != 4 or len(token) != 48:
        return False
    digest = hashlib.sha256(prefix + token * 262144).digest()
    return int.from_bytes(digest[:4], "big") <= hashcash_threshold(easiness)


def totp(secret_b32: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP (HMAC-SHA-1) for a base32 secret."""
    text = secret_b32.replace(" ", "").upper()
    key = base64.b32decode(text + "=" * (-len(text) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    off = digest[-1] & 0x0F
    code = (int.from_bytes(digest[off : off + 4], "big") & 0x7FFFFFFF) % (10**digits)
    return str(code).zfill(digits)


def totp_matches(secret_b32: str, code: object, window: int = 1) -> bool:
    """Accept the code of this 30 s step or of ``window`` steps either side."""
    if not isinstance(code, str) or not (code.isascii() and code.isdigit()) or len(code) != 6:
        return False
    now = time.time()
    return any(
        hmac.compare_digest(totp(secret_b32, now + 30 * i), code)
        for i in range(-window, window + 1)
    )


def fingerprint(read_at: Callable[[int, int], bytes], size: int, mtime: int) -> str:
    """MEGA's fingerprint (attribute ``c``): four CRC32s of sampled content, then the mtime.

    ``read_at(offset, length)`` reads the plaintext; ``mtime`` in seconds.
    """
    if size <= 16:
        words = bytes_to_a32(read_at(0, size) + b"\0" * (16 - size))
    elif size <= 8192:
        data = read_at(0, size)
        words = tuple(zlib.crc32(data[i * size // 4 : (i + 1) * size // 4]) for i in range(4))
    else:
        lanes = []
        for lane in range(4):
            crc = 0
            for block in range(32):
                crc = zlib.crc32(read_at((size - 64) * (lane * 32 + block) // 127, 64), crc)
            lanes.append(crc)
        words = tuple(lanes)
    t = max(0, int(mtime))
    tb = t.to_bytes((t.bit_length() + 7) // 8, "little")
    return b64encode(a32_to_bytes(words) + bytes([len(tb)]) + tb)


def iter_pieces(data: bytes | memoryview, size: int = 1 << 20) -> Iterable[bytes]:
    view = memoryview(data)
    for i in range(0, len(view), size):
        yield bytes(view[i : i + size])
