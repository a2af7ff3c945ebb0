"""Generated test data that the known-answer vectors describe by formula."""

from __future__ import annotations

__all__ = ["salted_plaintext", "test_buffer"]


def test_buffer(n: int, start: int = 0, step: int = 1) -> bytes:
    """qgustavor/mega's testBuffer(n, start, step): bytes (start + i*step) % 255."""
    return bytes((start + i * step) % 255 for i in range(n))


test_buffer.__test__ = False  # type: ignore[attr-defined]


def salted_plaintext(size: int, salt: int) -> bytes:
    """mega_crypto_vectors.json's file plaintext: byte i = (i*31 + salt) & 0xff."""
    pattern = bytes((i * 31 + salt) & 0xFF for i in range(256))
    return (pattern * (size // 256 + 1))[:size]
