"""The checksum MEGA's upload servers check on each upload piece, and how they answer.

MEGA's SDK (``EncryptByChunks::encrypt`` / ``updateCRC``, src/http.cpp) POSTs each piece to
``<upload URL>/<offset>?d=<checksum>``. The checksum is not a CRC-32: it is 12 bytes, where
byte ``j`` is the XOR of every **encrypted** byte of the piece whose position from the start of
the piece is ``j`` modulo 12; it is sent as base64url without padding (16 characters; an empty
piece gives ``AAAAAAAAAAAAAAAA``). Before April 2021 (SDK commit d074b277a) the same value went
in ``?c=``; the servers then answered an accepted piece with an empty body, and since ``d=``
they answer ``0`` (the SDK treats anything else as an error number, ``-14`` meaning "the
checksum did not match, send the piece again").

:class:`PieceChecksum` computes it as the body streams in; numpy folds it at memory speed when
it is installed, else whole Python integers do (about 200 MB/s).
"""

from __future__ import annotations

from ._crypto import b64decode

try:  # numpy is optional: it only makes the fold faster
    import numpy as _np
except ImportError:  # pragma: no cover - exercised where numpy is absent
    _np = None

SIZE = 12  # bytes in the checksum

__all__ = ["SIZE", "PieceChecksum", "expected_checksum", "piece_ack", "xor12"]


def _fold_numpy(view: memoryview) -> bytes:
    """XOR of the 24-byte words of ``view`` (its length a multiple of 24), folded to 12."""
    words = _np.frombuffer(view, dtype=_np.uint64)
    while len(words) > 3:
        half = (len(words) // 6) * 3
        rest = words[2 * half :]
        folded = words[:half] ^ words[half : 2 * half]
        if len(rest):
            folded[:3] ^= rest
        words = folded
    raw = words.tobytes() if len(words) else bytes(24)
    return bytes(a ^ b for a, b in zip(raw[:12], raw[12:], strict=True))


def _fold_python(view: memoryview) -> bytes:
    """XOR of the 12-byte words of ``view`` (its length a multiple of 12)."""
    acc = 0
    while len(view) > SIZE:
        half = (len(view) // (2 * SIZE)) * SIZE
        if len(view) > 2 * half:
            acc ^= int.from_bytes(view[2 * half :], "little")
        both = int.from_bytes(view[:half], "little") ^ int.from_bytes(
            view[half : 2 * half], "little"
        )
        view = memoryview(both.to_bytes(half, "little"))
    acc ^= int.from_bytes(view, "little")
    return acc.to_bytes(SIZE, "little")


def xor12(data: bytes | bytearray | memoryview) -> bytes:
    """The 12-byte checksum of ``data`` counted from its first byte (see the module)."""
    view = memoryview(data).cast("B")
    step = 24 if _np is not None else SIZE
    whole = len(view) - len(view) % step
    out = bytearray(_fold_numpy(view[:whole]) if _np is not None else _fold_python(view[:whole]))
    for j, byte in enumerate(bytes(view[whole:])):
        out[j % SIZE] ^= byte
    return bytes(out)


class PieceChecksum:
    """The checksum of a piece fed in parts (each part continues where the last ended)."""

    def __init__(self) -> None:
        self._sum = bytearray(SIZE)
        self._pos = 0

    def update(self, part: bytes | bytearray | memoryview) -> None:
        value = xor12(part)
        shift = self._pos % SIZE
        for j in range(SIZE):
            self._sum[(j + shift) % SIZE] ^= value[j]
        self._pos += len(part)

    def digest(self) -> bytes:
        return bytes(self._sum)


def expected_checksum(params: dict[str, str]) -> bytes | None:
    """The checksum a piece's query asks for (``d=`` or the older ``c=``); None when it asks
    for none; ValueError when it is not 12 bytes of base64url."""
    text = params.get("d", params.get("c"))
    if text is None:
        return None
    raw = b64decode(text)
    if len(raw) != SIZE:
        raise ValueError("the upload checksum is not 12 bytes")
    return raw


def piece_ack(params: dict[str, str]) -> bytes:
    """What an accepted piece that does not complete the file answers: ``0`` when its query
    carries ``d=`` (MEGA since 2021), an empty body otherwise."""
    return b"0" if "d" in params else b""


def uncovered(ranges: list[list[int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of [start, end) outside the sorted, merged ``ranges`` already received: a
    piece is written only there, so a piece sent again with a bad checksum cannot spoil bytes
    an earlier good piece stored."""
    out: list[tuple[int, int]] = []
    at = start
    for s, e in ranges:
        if e <= at:
            continue
        if s >= end:
            break
        if s > at:
            out.append((at, s))
        at = max(at, e)
        if at >= end:
            break
    if at < end:
        out.append((at, end))
    return out
