"""A seekable, verifying random-access reader over a remote MEGA file."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Generator, Sequence
from typing import Any

import requests

from ..errors import IntegrityError, ValidationError
from ._config import MiB, TransferConfig
from ._download import _node_cipher
from ._http import Controller, UrlSource, range_steps
from ._plan import ChunkMap, check_size

__all__ = ["MegaReader", "open_reader"]

#: Largest window fetched by one request of a reader (bytes of whole MAC chunks).
READER_WINDOW = 4 * MiB
_DONE = object()


class MegaReader(io.RawIOBase):
    """Read a MEGA file like a local binary file: ``read``, ``readinto``, ``seek``, ``tell``.

    Reads fetch the window of whole MAC chunks around the position (one ranged GET of up to
    4 MiB; the CTR key stream is simply started at that chunk), decrypt it and MAC every
    chunk; a read returns as soon as its own bytes have arrived, not the whole window. MEGA
    keeps only the file's meta-MAC, so a chunk cannot be checked alone: the reader remembers
    each chunk's MAC, raises :class:`~megafast.errors.IntegrityError` when a chunk read again
    differs (such a window is fetched whole before any of it is handed out), and checks the
    meta-MAC as soon as every chunk has been read -- before handing out the bytes of the
    window that completed the set (so a whole sequential read is verified before its last
    bytes are returned).
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
        self._win_start = self._win_end = 0
        self._win_len = 0  # bytes of the window that arrived (decrypted and MAC-ed)
        self._steps: Generator[None, None, None] | None = None
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
        """Fill ``b`` from the position (short only at the end of the file); returns as soon
        as those bytes have arrived, without waiting for the rest of the window. On an
        error the position is where it was."""
        self._checkClosed()
        out = memoryview(b).cast("B")
        got = 0
        begin = self._pos
        try:
            while got < len(out) and self._pos < self._size:
                if not self._win_start <= self._pos < self._win_end:
                    self._open_window(self._pos)
                while self._pos >= self._win_start + self._win_len:
                    self._step()
                at = self._pos - self._win_start
                n = min(len(out) - got, self._win_len - at)
                out[got : got + n] = self._window[at : at + n]
                self._pos += n
                got += n
        except BaseException:
            self._pos = begin
            raise
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

    def _open_window(self, pos: int) -> None:
        """Start fetching the window of whole chunks around ``pos`` (up to the window size).
        A window that re-reads a chunk, or that completes the set of chunks, is fetched
        whole before any of it is handed out: its MACs are checked first."""
        self._drop_window()
        chunks = self._chunks
        start = chunks.floor(pos)
        end = chunks.chunk_end(start)
        while end < self._size and chunks.chunk_end(end) - start <= len(self._window):
            end = chunks.chunk_end(end)
        self._win_start, self._win_end, self._win_len = start, end, 0

        def consume(offset: int, data: memoryview) -> None:
            self._cipher.decrypt_into(data, data, offset)
            self._win_len = offset + len(data) - start

        self._steps = range_steps(
            self._ctl, self._urls, start, end, self._window[: end - start], consume, eager=True
        )
        inside = chunks.chunks_in(start, end)
        rereads = any(c in self._seen for c in inside)
        completes = len(self._seen) + len(inside) == len(chunks)
        if rereads or completes:
            while self._win_len < end - start:
                self._step()

    def _step(self) -> None:
        """Move the window on by one hand-over; check its chunks when it is complete."""
        assert self._steps is not None
        full = self._win_end - self._win_start
        try:
            if next(self._steps, _DONE) is not _DONE and self._win_len < full:
                return
            for _ in self._steps:  # the request ends: its connection goes back to the pool
                pass
        except BaseException:
            self._drop_window()  # a failed window is fetched again by the next read
            raise
        self._steps = None
        self._window_done()

    def _window_done(self) -> None:
        macs = self._cipher.chunk_macs
        for c in self._chunks.chunks_in(self._win_start, self._win_end):
            mac = macs[c]
            if self._seen.setdefault(c, mac) != mac:
                self._drop_window()  # nothing of it is handed out
                raise IntegrityError(
                    f"the chunk at offset {c} changed between two reads: corrupted data"
                )
        if not self._verified and len(self._seen) == len(self._chunks):
            try:
                self._cipher.verify()
            except IntegrityError:
                self._drop_window()  # nothing of the window that failed is handed out
                raise
            self._verified = True

    def _drop_window(self) -> None:
        if self._steps is not None:
            self._steps.close()  # abandons the request
            self._steps = None
        self._win_start = self._win_end = self._win_len = 0

    def close(self) -> None:
        if not self.closed:
            self._drop_window()
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
