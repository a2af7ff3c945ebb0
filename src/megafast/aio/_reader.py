"""``AsyncMega.open()``: a remote file read like a local one, awaited."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from .._account.sources import decrypt_at
from ..transfer import open_reader
from ._bridge import run_in_thread
from ._nodes import NodeRef
from ._transfers import _fetch, _source, _url_getter

if TYPE_CHECKING:
    from ._client import AsyncMega


class AsyncReader:
    """A remote file read like a local one, awaited: ``await r.read(n)``, ``r.seek(pos)``,
    ``r.tell()``; ``async with``. Reads run in a worker thread (whole MAC chunks fetched,
    decrypted and checked; see :class:`megafast.transfer.MegaReader`)."""

    def __init__(self, m: AsyncMega, reader: Any) -> None:
        self._m = m
        self._reader = reader

    @property
    def size(self) -> int:
        return int(self._reader.size)

    def tell(self) -> int:
        return int(self._reader.tell())

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return int(self._reader.seek(offset, whence))

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from the position (all the rest for -1); b"" at the end."""
        data = await run_in_thread(self._m.executor, lambda cancel: self._reader.read(size))
        return bytes(data or b"")

    async def close(self) -> None:
        self._reader.close()

    async def __aenter__(self) -> AsyncReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open(m: AsyncMega, file: NodeRef | str) -> AsyncReader:  # noqa: A001
    """Open a remote file (Node, handle or public link) for reading: an :class:`AsyncReader`."""
    source, _ = await _source(m, file)
    data = await _fetch(m, source)
    if source.by_link:
        decrypt_at(data.get("at", ""), source.key)
    loop = asyncio.get_running_loop()
    reader = open_reader(
        m.http, _url_getter(m, loop, source), source.size, source.key, config=m.config
    )
    return AsyncReader(m, reader)
