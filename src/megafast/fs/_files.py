"""File objects of the ``mega://`` filesystem: a ranged reader and a spooling writer."""

from __future__ import annotations

import queue
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile

from ..errors import ValidationError
from ..transfer import ChunkMap

if TYPE_CHECKING:
    from ._engine import Engine, ReadSource
    from ._filesystem import MegaFileSystem

__all__ = ["MegaReadFile", "MegaWriteFile"]

MiB = 1 << 20
#: Bytes of whole MAC chunks one request of a reader fetches (the reader's read-ahead).
READ_WINDOW = 4 * MiB
#: Bytes a writer without a size hint keeps in memory before it spools to a 0600 temp file.
SPOOL_IN_MEMORY = 16 * MiB
#: Readers with exactly sized windows kept per open file (each holds one connection).
EXACT_READERS = 4


class MegaReadFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec has no types
    """A seekable read-only file (mode ``rb``).

    - Reading the whole file from its start fetches it over parallel connections and checks
      its MAC before returning a byte.
    - Reads that continue where the last one ended (or start at 0) go through one streaming
      reader: each request fetches ``block_size`` bytes (clamped to 1-4 MiB, default 4 MiB) of whole
      MAC chunks, kept as the read-ahead block. Once every chunk of the file has passed
      through it the file's MAC is checked, before the bytes of the block that completed it
      are returned, so a sequential read of the whole file is verified.
    - Other reads (seeks elsewhere) fetch exactly the MAC chunks that hold the range, in one
      request per 4 MiB, so a reader of a few columns of a Parquet file moves little more
      than those columns.

    Every chunk fetched is decrypted with AES-CTR started at that chunk and MAC-ed; a chunk
    fetched again by the same reader must have the same MAC. MEGA keeps only the whole file's
    MAC, so a partial read cannot be verified against the server: it is checked only for
    consistency, and a tampering server could alter bytes that a partial read returns.
    """

    DEFAULT_BLOCK_SIZE = READ_WINDOW

    def __init__(
        self,
        fs: MegaFileSystem,
        engine: Engine,
        path: str,
        source: ReadSource,
        details: dict[str, Any],
        block_size: int | None = None,
        cache_type: str = "none",
        cache_options: dict[str, Any] | None = None,
    ) -> None:
        # other filesystems take larger blocks (s3fs: 50 MiB): clamp rather than refuse
        window = READ_WINDOW if block_size in (None, "default") else int(block_size)  # type: ignore[comparison-overlap]
        window = min(max(window, MiB), READ_WINDOW)
        self._engine = engine
        self._source = source
        self._chunks = ChunkMap(source.size)
        self._get_url: Any = None
        self._stream: Any = None
        self._stream_pos = 0
        self._exact: OrderedDict[int, Any] = OrderedDict()
        self._reader_lock = threading.Lock()
        super().__init__(
            fs,
            path,
            mode="rb",
            block_size=window,
            cache_type=cache_type,
            cache_options=cache_options,
            size=source.size,
        )
        self.details = details

    def _fetch_range(self, start: int, end: int) -> bytes:
        size = self._source.size
        start, end = max(0, start), min(size, end)
        if start >= end:
            return b""
        if start == 0 and end == size:
            return self._engine.read_all(self._source)
        out = bytearray(end - start)
        with self._reader_lock:
            if start in (0, self._stream_pos):
                if self._stream is None:
                    self._stream = self._open(self.blocksize)
                _read_into(self._stream, start, memoryview(out))
                self._stream_pos = end
            else:
                self._read_exact(start, end, memoryview(out))
        return bytes(out)

    def _read_exact(self, start: int, end: int, out: memoryview) -> None:
        """Fill ``out`` with ``[start, end)``: groups of whole chunks of at most 4 MiB, each
        read by a reader whose window is that group (one request each)."""
        chunks = self._chunks
        group_start = chunks.floor(start)
        pos = start
        while pos < end:
            group_end = chunks.chunk_end(group_start)
            while group_end < end and chunks.chunk_end(group_end) - group_start <= READ_WINDOW:
                group_end = chunks.chunk_end(group_end)
            stop = min(end, group_end)
            window = max(MiB, group_end - group_start)
            _read_into(self._exact_reader(window), pos, out[pos - start : stop - start])
            pos = group_start = stop

    def _exact_reader(self, window: int) -> Any:
        reader = self._exact.pop(window, None)
        if reader is None:
            reader = self._open(window)
            if len(self._exact) >= EXACT_READERS:
                self._exact.popitem(last=False)[1].close()
        self._exact[window] = reader
        return reader

    def _open(self, window: int) -> Any:
        if self._get_url is None:
            self._get_url = self._engine.url_source(self._source)  # one ``g`` per file
        return self._engine.open_reader(self._source, window, self._get_url)

    def close(self) -> None:
        try:
            with self._reader_lock:
                for reader in [self._stream, *self._exact.values()]:
                    if reader is not None:
                        reader.close()
                self._stream = None
                self._exact.clear()
        finally:
            super().close()


def _read_into(reader: Any, start: int, out: memoryview) -> None:
    reader.seek(start)
    got = 0
    while got < len(out):
        n = reader.readinto(out[got:])
        if not n:
            raise EOFError(f"the server sent {got} of {len(out)} bytes at offset {start}")
        got += n


class MegaWriteFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec has no types
    """A write-only file (modes ``wb`` and ``xb``): MEGA needs a file's size before its
    first byte, so the bytes are spooled (in memory up to 16 MiB, then a temporary file of
    mode 0600) and uploaded on close, in parallel and MAC-ed. With a ``size`` hint they
    stream to MEGA while they are written instead; writing more or fewer bytes than the hint
    fails the upload and creates nothing. The file appears only once complete; an existing
    file at the path is replaced after the upload succeeded.
    """

    def __init__(
        self,
        fs: MegaFileSystem,
        path: str,
        mode: str,
        autocommit: bool = True,
        size: int | None = None,
        block_size: int | None = None,
    ) -> None:
        super().__init__(fs, path, mode=mode, block_size=block_size or MiB, autocommit=autocommit)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValidationError(f"size must be a non-negative int (bytes), not {size!r}")
        self._size_hint = size
        self._spool: Any = None
        self._stream: _StreamUpload | None = None
        self.node: dict[str, Any] | None = None

    def _initiate_upload(self) -> None:
        if self._size_hint is not None and self.autocommit:
            self._stream = _StreamUpload(self.fs, self.path, self._size_hint)
        else:
            # lives as long as this file object; closed by commit() or discard()
            self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getbuffer()
        if self._stream is not None:
            if data.nbytes:
                self._stream.put(bytes(data))
            if final:
                self.node = self._stream.finish()
            return True
        self._spool.write(data)
        if final and self.autocommit:
            self.commit()
        return True

    def commit(self) -> None:
        if self._spool is None:
            return
        spool, self._spool = self._spool, None
        try:
            size = spool.tell()
            spool.seek(0)
            self.node = self.fs._upload_replacing(spool, size, self.path)
        finally:
            spool.close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not self._closed:
            # a with-block that failed must not leave a truncated file behind
            self.discard()
            self.closed = True
            return
        self.close()

    def discard(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._stream is not None:
            self._stream.abort()
            self._stream = None


class _StreamUpload:
    """An upload fed by ``write`` calls from another thread (the size is known up front)."""

    def __init__(self, fs: MegaFileSystem, path: str, size: int) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._size = size
        self._sent = 0
        self._error: BaseException | None = None
        self._node: dict[str, Any] | None = None
        # the node is created only once the writer finished: a with-block that fails after
        # the last byte went out must not leave a file
        self._decided = threading.Event()
        self._keep = False
        self._thread = threading.Thread(
            target=self._run, args=(fs, path), name="megafast-fs-upload", daemon=True
        )
        self._thread.start()

    def _chunks(self) -> Iterator[bytes]:
        while True:
            data = self._queue.get()
            if data is None:
                return
            yield data

    def _run(self, fs: MegaFileSystem, path: str) -> None:
        try:
            self._node = fs._upload_replacing(
                self._chunks(), self._size, path, confirm=self._confirmed
            )
        except BaseException as exc:  # handed to the writing thread
            self._error = exc
            # unblock a writer waiting on a full queue
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break

    def _confirmed(self) -> bool:
        self._decided.wait()
        return self._keep

    def put(self, data: bytes) -> None:
        self._sent += len(data)
        if self._sent > self._size:
            self.abort()
            raise ValidationError(f"more than the {self._size} bytes announced were written")
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(data, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise self._error or ValidationError("the upload stopped") from None

    def finish(self) -> dict[str, Any]:
        if self._sent != self._size:
            self.abort()
            raise ValidationError(
                f"{self._sent} bytes were written but {self._size} were announced"
            )
        self._keep = True
        self._end()
        if self._error is not None:
            raise self._error
        assert self._node is not None
        return self._node

    def abort(self) -> None:
        self._end()

    def _end(self) -> None:
        self._decided.set()
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
