"""File attributes (thumbnails, previews) on the wire: their encryption, a node's ``fa``
string, and the records the attribute servers answer with. Pure functions, no I/O.

- Data: AES-128-CBC with a zero IV, zero-padded to a multiple of 16 bytes, under the node's
  file key folded to 128 bits; at most 16 MiB (MEGA's SDK, ``MegaClient::putfa``).
- A node's ``fa``: ``<cluster>:<type>*<handle>`` joined by ``/`` (type 0 thumbnail, 1
  preview; the handle is 8 bytes in base64url). A new node's ``p`` carries ``<type>*<handle>``
  without the cluster; the server adds it.
- A fetch answer: records of ``[handle 8][u32 little-endian length][data]``, one per handle
  the server knows; the handles it does not know are left out.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from .._wire.codec import b64_bytes, b64encode, words_to_bytes
from ..errors import UnexpectedAnswerError, ValidationError

__all__ = [
    "THUMBNAIL",
    "PREVIEW",
    "MAX_ATTRIBUTE",
    "FileAttr",
    "encrypt_attr_data",
    "decrypt_attr_data",
    "parse_fa",
    "new_node_fa",
    "parse_records",
    "node_aes_key",
]

THUMBNAIL = 0
PREVIEW = 1
#: MEGA's SDK sends attributes shorter than this (bytes, after padding)
MAX_ATTRIBUTE = 16 * 1024 * 1024
_HEADER = struct.Struct("<8sI")
_ITEM_RE = re.compile(r"^(?:(?P<cluster>\d+):)?(?P<type>\d+)\*(?P<h>[A-Za-z0-9_-]{11})$")


@dataclass(frozen=True)
class FileAttr:
    """One attribute named in a node's ``fa``: its ``cluster`` (the server group that holds
    it), ``type`` (0 thumbnail, 1 preview...) and 8-byte ``handle``."""

    cluster: int
    type: int
    handle: bytes

    @property
    def handle_b64(self) -> str:
        """The handle as ``fa`` writes it."""
        return b64encode(self.handle)


def node_aes_key(node: Mapping[str, object]) -> bytes:
    """The 16-byte key a file's attributes are encrypted with (the folded file key ``k`` of a
    decrypted node); :class:`~megafast.errors.ValidationError` for a node without one."""
    key = node.get("k")
    if isinstance(key, (tuple, list)) and len(key) == 8:
        key = tuple(key[i] ^ key[i + 4] for i in range(4))
    if not isinstance(key, (tuple, list)) or len(key) != 4 or node.get("t") != 0:
        raise ValidationError("only a decrypted file has thumbnails and previews")
    return words_to_bytes(tuple(int(w) for w in key))


def _cipher(key: bytes) -> object:
    from Crypto.Cipher import AES

    if len(key) != 16:
        raise ValidationError("a file attribute key is 16 bytes")
    return AES.new(key, AES.MODE_CBC, iv=bytes(16))


def encrypt_attr_data(data: bytes, key: bytes) -> bytes:
    """``data`` zero-padded to 16 bytes and AES-128-CBC encrypted (zero IV) under ``key``."""
    padded = bytes(data) + bytes(-len(data) % 16)
    if not data or len(padded) >= MAX_ATTRIBUTE:
        raise ValidationError(f"a file attribute is 1 byte to {MAX_ATTRIBUTE - 16} bytes")
    return _cipher(key).encrypt(padded)  # type: ignore[attr-defined,no-any-return]


def decrypt_attr_data(data: bytes, key: bytes) -> bytes:
    """The plaintext of an encrypted attribute. A JPEG loses the zero padding after its end
    marker; other data keeps it (MEGA's apps hand it on as it is)."""
    if not data or len(data) % 16:
        raise UnexpectedAnswerError("a file attribute's length is not a multiple of 16 bytes")
    plain: bytes = _cipher(key).decrypt(bytes(data))  # type: ignore[attr-defined]
    if plain.startswith(b"\xff\xd8"):
        end = plain.rfind(b"\xff\xd9")
        if end >= 0 and not plain[end + 2 :].strip(b"\0"):
            return plain[: end + 2]
    return plain


def parse_fa(fa: object) -> list[FileAttr]:
    """The attributes named in a node's ``fa`` string; items that do not parse (other
    attribute kinds such as media info, or garbage from a hostile server) are left out."""
    if not isinstance(fa, str):
        return []
    out: list[FileAttr] = []
    for item in fa.split("/"):
        m = _ITEM_RE.match(item)
        if not m:
            continue
        handle = b64_bytes(m.group("h"))
        if handle is None or len(handle) != 8:
            continue
        out.append(FileAttr(int(m.group("cluster") or 0), int(m.group("type")), handle))
    return out


def find_attr(fa: object, kind: int) -> FileAttr | None:
    """The node's attribute of type ``kind`` (the last one when ``fa`` names several)."""
    found = [a for a in parse_fa(fa) if a.type == kind]
    return found[-1] if found else None


def new_node_fa(handles: Mapping[int, bytes]) -> str:
    """The ``fa`` of a new node's ``p`` item: ``0*<h>/1*<h>`` (type -> 8-byte handle)."""
    return "/".join(f"{t}*{b64encode(h)}" for t, h in sorted(handles.items()))


def parse_records(body: bytes, wanted: Iterable[bytes] | None = None) -> dict[bytes, bytes]:
    """The records of an attribute fetch answer: ``{handle: encrypted data}``.

    A record whose length runs past the end of ``body`` (a cut or hostile answer) raises
    :class:`~megafast.errors.UnexpectedAnswerError`, as does a record over 16 MiB; with
    ``wanted``, records of handles not asked for are left out."""
    want = set(wanted) if wanted is not None else None
    return {h: data for h, data in _records(body) if want is None or h in want}


def _records(body: bytes) -> Iterator[tuple[bytes, bytes]]:
    view = memoryview(body)
    at = 0
    while at < len(view):
        if at + _HEADER.size > len(view):
            raise UnexpectedAnswerError(
                f"a file attribute record is cut short: {len(view) - at} bytes of a header"
            )
        handle, length = _HEADER.unpack_from(view, at)
        at += _HEADER.size
        if length > MAX_ATTRIBUTE:
            raise UnexpectedAnswerError(f"a file attribute record claims {length} bytes")
        if at + length > len(view):
            raise UnexpectedAnswerError(
                f"a file attribute record claims {length} bytes, only {len(view) - at} follow"
            )
        yield bytes(handle), bytes(view[at : at + length])
        at += length
