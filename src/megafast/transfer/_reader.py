"""A seekable, verifying random-access reader over a remote MEGA file."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from typing import Any

import requests

from ..errors import IntegrityError, ValidationError
from ._config import MiB, TransferConfig
from ._download import _node_cipher
from ._http import Controller, UrlSource, fetch_range
from ._plan import ChunkMap, check_size

__all__ = ["MegaReader", "open_reader"]

#: Largest window fetched by one request of a reader (bytes of whole MAC chunks).
READER_WINDOW = 4 * MiB


class MegaReader(io.RawIOBase):
    """Read a MEGA file like a local binary file: ``read``, ``readinto``, ``seek``, ``tell``.

    Reads fetch the window of whole MAC chunks around the position (one ranged GET of up to
    4 MiB; the CTR key stream is simply started at that chunk), decrypt it and MAC every
    chunk. MEGA keeps only the file's meta-MAC, so a chunk cannot be checked alone: the
    reader remembers each chunk's MAC, raises :class:`~megafast.errors.IntegrityError` when a
    chunk read again differs, and checks the meta-MAC as soon as every chunk has been read --
    before handing out the bytes of the window that completed the set (so a whole sequential
    read is verified before its last bytes are returned).
    """

    def __init__(
        self,
        http: requests.Session | None,
        get_url: Callable[[bool], str],
        size: int,
        key: Sequence[int],
        config: TransferConfig,
    ) -> None:
        super().__init__()
        self._size = check_size(size)
        self._cipher = _node_cipher(key, self._size)
        self._chunks = ChunkMap(self._size)
        self._ctl = Controller(http, config, 1)
        self._urls = UrlSource(get_url)
        self._window = memoryview(bytearray(min(config.piece_size, READER_WINDOW)))
        self._win_start = 0
        self._win_len = 0
        self._pos = 0
        self._seen: dict[int, bytes] = {}
        self._verified = False
        if self._size == 0:
            self._cipher.verify()
            self._verified = True

    @property
    def size(self) -> int:
        """The file size in bytes."""
        return self._size

    @property
    def verified(self) -> bool:
        """True once every chunk was read and the meta-MAC matched."""
        return self._verified

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._checkClosed()
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence!r}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, b: Any) -> int:
        self._checkClosed()
        out = memoryview(b).cast("B")
        got = 0
        while got < len(out) and self._pos < self._size:
            if not self._win_start <= self._pos < self._win_start + self._win_len:
                self._fill(self._pos)
            at = self._pos - self._win_start
            n = min(len(out) - got, self._win_len - at)
            out[got : got + n] = self._window[at : at + n]
            self._pos += n
            got += n
        return got

    def readall(self) -> bytes:
        out = bytearray(max(0, self._size - self._pos))
        view = memoryview(out)
        got = 0
        while got < len(out):
            n = self.readinto(view[got:])
            if not n:
                break
            got += n
        del view
        return bytes(out[:got])

    def _fill(self, pos: int) -> None:
        chunks = self._chunks
        start = chunks.floor(pos)
        end = chunks.chunk_end(start)
        while end < self._size and chunks.chunk_end(end) - start <= len(self._window):
            end = chunks.chunk_end(end)
        self._win_len = 0  # nothing valid while the window is refilled

        def consume(offset: int, data: memoryview) -> None:
            self._cipher.decrypt_into(data, data, offset)

        fetch_range(self._ctl, self._urls, start, end, self._window[: end - start], consume)
        macs = self._cipher.chunk_macs
        for c in chunks.chunks_in(start, end):
            mac = macs[c]
            if self._seen.setdefault(c, mac) != mac:
                raise IntegrityError(
                    f"the chunk at offset {c} changed between two reads: corrupted data"
                )
        if not self._verified and len(self._seen) == len(chunks):
            self._cipher.verify()
            self._verified = True
        self._win_start, self._win_len = start, end - start

    def close(self) -> None:
        if not self.closed:
            self._ctl.close()
        super().close()


def open_reader(
    http: requests.Session | None,
    get_url: Callable[[bool], str],
    size: int,
    key: Sequence[int],
    *,
    config: TransferConfig | None = None,
) -> MegaReader:
    """A seekable :class:`io.RawIOBase` over a remote file (see :class:`MegaReader`).

    ``get_url(refresh)`` gives the temporary URL, ``size`` is in bytes and ``key`` is the
    packed 8-word node key. Wrap it in :class:`io.BufferedReader` for small reads.
    """
    config = config if config is not None else TransferConfig()
    if not isinstance(config, TransferConfig):
        raise ValidationError("config must be a TransferConfig")
    return MegaReader(http, get_url, size, key, config)
