"""What an upload reads: paths, file objects, buffers and iterables, behind one interface."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ._download import pread_into
from ._plan import check_size

__all__ = ["Source", "open_source"]


class Source:
    """Plaintext to upload. Positional sources can be re-read at any offset; the others
    (pipes, iterators) are read once, in order."""

    size: int
    positional: bool = True
    identity: str | None = None  # what a resume must find unchanged

    def read_at(self, offset: int, buf: memoryview) -> None:
        raise NotImplementedError

    def read_next(self, buf: memoryview) -> None:
        raise NotImplementedError

    def wait_ready(self, begin: int, end: int) -> None:
        """Return once the bytes ``[begin, end)`` can be read. A positional source that
        grows while it is uploaded (a file still being written) waits here, before the
        piece's POST starts; the others are ready at once."""

    def finish(self) -> None:
        """Called after a successful upload (checks that a stream has no extra bytes)."""

    def close(self) -> None:
        pass


def _short_source() -> ValidationError:
    return ValidationError("the source ended before `size` bytes: it changed or size is wrong")


class _FdSource(Source):
    """A regular file read with positional reads (no shared position, no lock)."""

    def __init__(self, fd: int, base: int, size: int, own: bool) -> None:
        self.fd, self.base, self.size, self.own = fd, base, size, own

    def read_at(self, offset: int, buf: memoryview) -> None:
        if pread_into(self.fd, buf, self.base + offset) != len(buf):
            raise _short_source()

    def close(self) -> None:
        if self.own:
            os.close(self.fd)


class _SeekableSource(Source):
    """A seekable file object without a usable descriptor (BytesIO, ...)."""

    def __init__(self, fileobj: Any, base: int, size: int) -> None:
        self.fileobj, self.base, self.size = fileobj, base, size
        self.lock = threading.Lock()

    def read_at(self, offset: int, buf: memoryview) -> None:
        with self.lock:
            self.fileobj.seek(self.base + offset)
            got = 0
            while got < len(buf):
                n = _read_into(self.fileobj, buf[got:])
                if not n:
                    raise _short_source()
                got += n


class _BufferSource(Source):
    def __init__(self, data: Any) -> None:
        self.view = memoryview(data).cast("B")
        self.size = len(self.view)

    def read_at(self, offset: int, buf: memoryview) -> None:
        buf[:] = self.view[offset : offset + len(buf)]


def _read_into(fileobj: Any, buf: memoryview) -> int:
    readinto = getattr(fileobj, "readinto", None)
    if readinto is not None:
        n = readinto(buf)
        return n or 0
    data = fileobj.read(len(buf))
    buf[: len(data)] = data
    return len(data)


class _StreamSource(Source):
    """A pipe-like file object or an iterable of bytes, read once in order."""

    positional = False

    def __init__(self, src: Any, size: int) -> None:
        self.size = size
        self.fileobj = src if hasattr(src, "read") else None
        self.iterator: Iterator[Any] | None = None if self.fileobj else iter(src)
        self.left = memoryview(b"")

    def _more(self, want: int) -> bool:
        if self.fileobj is not None:
            data = self.fileobj.read(want)
        else:
            assert self.iterator is not None
            data = next(self.iterator, None)
            while data is not None and len(data) == 0:
                data = next(self.iterator, None)
        if not data:
            return False
        if isinstance(data, str):
            raise TypeError("the source gave text; upload bytes")
        self.left = memoryview(data).cast("B")
        return True

    def read_next(self, buf: memoryview) -> None:
        got = 0
        while got < len(buf):
            if not self.left and not self._more(len(buf) - got):
                raise _short_source()
            take = min(len(self.left), len(buf) - got)
            buf[got : got + take] = self.left[:take]
            self.left = self.left[take:]
            got += take

    def finish(self) -> None:
        if self.left or self._more(1):
            raise ValidationError("the source has more than `size` bytes")


def open_source(source: Any, size: int | None) -> Source:
    if size is not None:
        check_size(size)
    if isinstance(source, Source):
        if size is not None and size != source.size:
            raise ValidationError(f"size {size} does not match the source ({source.size} bytes)")
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ValidationError("the source path is not a regular file")
            if size is not None and size != st.st_size:
                raise ValidationError(f"size {size} does not match the file ({st.st_size} bytes)")
        except BaseException:
            os.close(fd)
            raise
        src: Source = _FdSource(fd, 0, st.st_size, own=True)
        src.identity = (
            f"path:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_dev}:{st.st_ino}"
        )
        return src
    if isinstance(source, (bytes, bytearray, memoryview)):
        src = _BufferSource(source)
        if size is not None and size != src.size:
            raise ValidationError(f"size {size} does not match the data ({src.size} bytes)")
        return src
    if hasattr(source, "read"):
        seekable = False
        with contextlib.suppress(AttributeError, OSError, ValueError):
            seekable = bool(source.seekable())
        if seekable:
            base = source.tell()
            end = source.seek(0, os.SEEK_END)
            source.seek(base)
            avail = end - base
            if size is None:
                size = avail
            elif size > avail:
                raise ValidationError(f"size {size} is more than the file object holds ({avail})")
            fd = -1
            if isinstance(source, (io.BufferedReader, io.FileIO)):
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    fd = source.fileno()
            if fd >= 0:
                return _FdSource(fd, base, size, own=False)
            return _SeekableSource(source, base, size)
        if size is None:
            raise ValidationError("size is needed for a file object that cannot seek")
        return _StreamSource(source, size)
    if isinstance(source, Iterable) and not isinstance(source, str):
        if size is None:
            raise ValidationError("size is needed to upload from an iterator")
        return _StreamSource(source, size)
    raise ValidationError(
        f"cannot upload from {type(source).__name__}: give a path, a binary file object, "
        "bytes or an iterable of bytes"
    )
