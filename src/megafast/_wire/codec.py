"""MEGA's encodings in one place: base64url, 32-bit words, and the key forms of nodes.

- :func:`b64encode` writes base64url without padding; :func:`b64decode` is the strict reader
  (raises :class:`~megafast.errors.LinkError`; accepts padding, ``+/`` and stray commas as
  links carry them); :func:`b64_bytes` is the lenient reader for API answers (``None`` when
  the text does not decode, never raises).
- :func:`bytes_to_words` / :func:`words_to_bytes`: big-endian 32-bit words (mega.py's a32).
- :class:`FileKey`: a file's key in its parts (AES key, CTR nonce, meta-MAC) with the packed
  8-word form links and node listings carry, and :func:`attr_key`, the 4-word key attributes
  are encrypted with (a file key folded, a folder key as it is).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import LinkError

__all__ = [
    "FileKey",
    "attr_key",
    "fold",
    "unpack_node_key",
    "b64_bytes",
    "b64decode",
    "b64encode",
    "bytes_to_words",
    "words_to_bytes",
]

#: base64url -> standard base64, for ``bytes.translate`` (hot loops decode inline with it)
B64_TABLE = bytes.maketrans(b"-_", b"+/")
#: 4 and 8 big-endian words (a folder key, a packed file key)
WORDS4 = struct.Struct(">4I")
WORDS8 = struct.Struct(">8I")


def b64encode(data: bytes) -> str:
    """Encode bytes as MEGA's base64url without padding."""
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode MEGA's base64url strictly: :class:`LinkError` when it does not decode.

    Padding, ``+``/``/`` and stray commas (as some links carry them) are accepted."""
    cleaned = text.replace(",", "").replace("=", "").strip()
    cleaned = cleaned.replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise LinkError("not valid base64url") from exc


def b64_bytes(text: str) -> bytes | None:
    """Decode MEGA base64url leniently; ``None`` when it does not decode (never raises)."""
    try:
        # bytes.translate with a table is ~10x faster than str.translate
        return binascii.a2b_base64((text + "==").encode("ascii").translate(B64_TABLE))
    except (binascii.Error, TypeError, ValueError, UnicodeEncodeError, AttributeError):
        return None


def bytes_to_words(data: bytes) -> tuple[int, ...]:
    """Big-endian 32-bit words of ``data`` (its length a multiple of 4)."""
    return struct.unpack(f">{len(data) // 4}I", data)


def words_to_bytes(words: Iterable[int]) -> bytes:
    """``words`` packed as big-endian 32-bit words."""
    words = tuple(words)
    return struct.pack(f">{len(words)}I", *words)


@dataclass(frozen=True)
class FileKey:
    """A file's key: ``aes`` (4 words), ``nonce`` (2 words) and ``meta_mac`` (2 words).

    MEGA packs it in 8 words as ``(aes[i] ^ w[i+4] for i in 0..3) + nonce + meta_mac``, the
    form of links, of node ``k`` entries and of :attr:`packed`.
    """

    aes: tuple[int, int, int, int]
    nonce: tuple[int, int]
    meta_mac: tuple[int, int]

    @classmethod
    def unpack(cls, packed: Iterable[int] | bytes) -> FileKey:
        """From the packed 8 words (or their 32 bytes); ``ValueError`` for another length."""
        if isinstance(packed, (bytes, bytearray, memoryview)):
            if len(packed) != 32:
                raise ValueError(f"a packed file key is 32 bytes, not {len(packed)}")
            w = WORDS8.unpack(bytes(packed))
        else:
            w = tuple(packed)
            if len(w) != 8:
                raise ValueError(f"a packed file key is 8 words, not {len(w)}")
        return cls(fold(w), (w[4], w[5]), (w[6], w[7]))

    @property
    def packed(self) -> tuple[int, ...]:
        """The packed 8 words."""
        a, (n0, n1), (m0, m1) = self.aes, self.nonce, self.meta_mac
        return (a[0] ^ n0, a[1] ^ n1, a[2] ^ m0, a[3] ^ m1, n0, n1, m0, m1)

    @property
    def iv(self) -> tuple[int, int, int, int]:
        """mega.py's ``iv`` field: the nonce and two zero words."""
        return (self.nonce[0], self.nonce[1], 0, 0)

    def node_fields(self) -> dict[str, tuple[int, ...]]:
        """The decrypted key fields of a file node: ``key``, ``k``, ``iv``, ``meta_mac``."""
        return {"key": self.packed, "k": self.aes, "iv": self.iv, "meta_mac": self.meta_mac}


def fold(w: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The AES key of a packed 8-word file key (the one place the fold is written; the node
    listing calls it once per file)."""
    return (w[0] ^ w[4], w[1] ^ w[5], w[2] ^ w[6], w[3] ^ w[7])


def attr_key(key: Iterable[int]) -> tuple[int, ...]:
    """The 4-word key a node's attributes are encrypted with: a folder's 4-word key as it is,
    a file's packed 8 words folded to the AES key; ``ValueError`` for another length."""
    words = tuple(key)
    if len(words) == 4:
        return words
    return FileKey.unpack(words).aes


def unpack_node_key(key: bytes, file: bool) -> dict[str, tuple[int, ...]] | None:
    """The decrypted key fields of a node from its raw key (32 bytes for a file, 16 for a
    folder; a longer folder key keeps all its words as it always has); ``None`` when a file
    key is not 32 bytes."""
    if file:
        if len(key) != 32:
            return None
        return FileKey.unpack(key).node_fields()
    w = WORDS4.unpack(key) if len(key) == 16 else bytes_to_words(key)
    return {"key": w, "k": w}
