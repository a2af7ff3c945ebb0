"""MEGA's file fingerprint (node attribute ``c``): four CRC32 lanes and the mtime."""

from __future__ import annotations

import os
import struct
import zlib
from typing import BinaryIO

from ._megapy import base64_url_encode, str_to_a32


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
        with open(source, "rb") as fobj:
            return fingerprint(fobj, mtime)
    f = source
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    words = _crc_words(f, size)
    t = int(mtime)
    tb = t.to_bytes(max(1, (t.bit_length() + 7) // 8), "little") if t > 0 else b"\0"
    return base64_url_encode(struct.pack(">4I", *words) + bytes([len(tb)]) + tb)
