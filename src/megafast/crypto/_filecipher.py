"""``FileCipher``: AES-CTR and chunk MACs of one file, at any offset, from many streams."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import IntegrityError, ValidationError
from . import _backend
from ._megapy import (
    A32,
    a32_to_str,
    base64_url_decode,
    base64_url_encode,
    chunk_bounds,
    pack_file_key,
    str_to_a32,
    unpack_file_key,
)


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

    With ``marks`` the MAC-ing calls also keep the running MAC at every
    :data:`~megafast.crypto.MAC_MARK` bytes into a chunk (:attr:`marks`): a later read of
    part of a chunk is checked from the mark before it to the mark after it
    (:meth:`continue_from`, :meth:`running_mac`), without the rest of the chunk.
    """

    def __init__(
        self, key: Any, nonce: Any = None, *, size: int | None = None, marks: bool = False
    ) -> None:
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
        self._marks: dict[int, bytes] | None = {} if marks else None

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

    @property
    def marks(self) -> dict[int, bytes]:
        """Running MACs kept at the marks passed so far (``marks=True``): offset -> 16 bytes."""
        with self._lock:
            return dict(sorted((self._marks or {}).items()))

    def continue_from(self, offset: int, running: bytes) -> None:
        """Start a MAC stream at ``offset`` inside a chunk (a multiple of 16, not a chunk
        start) from ``running``, the chunk's running MAC there (a mark kept earlier)."""
        if offset % 16 or offset < 0 or _is_chunk_start(offset) or len(running) != 16:
            raise ValidationError(f"no MAC stream can continue at offset {offset}")
        with self._lock:
            self._streams[offset] = (bytes(running), b"")

    def running_mac(self, offset: int) -> bytes | None:
        """The running MAC of the stream that ended at ``offset`` on a whole block, if any."""
        with self._lock:
            running, pending = self._streams.get(offset, (None, b""))
        return None if pending else running

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
        if dst is None:
            if mode != "mac":
                raise TypeError("dst must be a writable buffer, not None")
            dv = sv  # MAC-only calls write nothing: dv is never written in that mode
        else:
            dv = memoryview(dst)
            if dv.readonly:
                raise TypeError("dst must be a writable buffer")
            if not dv.c_contiguous:
                raise ValueError("dst must be a C-contiguous buffer")
            dv = dv.cast("B")
            if len(dv) != n:
                raise ValueError(f"dst must be as long as the data ({n} bytes), got {len(dv)}")
        size = self.size
        end = offset + n
        if size is not None and end > size:
            raise ValueError(f"data runs past the end of the file ({end} > {size} bytes)")
        running, pending = self._take_stream(offset)
        k = _backend.kernels
        marks: list[tuple[int, bytes]] | None = [] if self._marks is not None else None
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
                done, running = k.mac(
                    key, nonce, pos - len(block), block, running, block_final, marks
                )
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
                        key, nonce, pos, seg, dv[i : i + body], running, final_at_end, marks
                    )
                elif mode == "enc":
                    done, running = k.mac_encrypt_into(
                        key, nonce, pos, seg, dv[i : i + body], running, final_at_end, marks
                    )
                else:
                    done, running = k.mac(key, nonce, pos, seg, running, final_at_end, marks)
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
            if marks:
                assert self._marks is not None
                self._marks.update(marks)
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
