"""The streamed ``f`` listing into a NodeStore, without blocking the event loop.

The answer's chunks come from :meth:`AsyncApiClient.stream` as they arrive; each (about a
MiB) is handed to the existing :class:`~megafast._tree.listing.ListingParser` in a worker thread,
one at a time, while the loop reads the next one. The parser's scanner and bulk decryption
release the GIL, so the loop keeps running; the Python part of a chunk takes a few
milliseconds, less than the interpreter's switch interval lets one thread hold the GIL.
A cancelled listing waits for the chunk being parsed (bounded) before it re-raises, so no
thread is left working.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from .._tree.listing import ListingParser
from .._tree.nodes import Keyring
from .._tree.nodestore import NodeStore
from ._api import AsyncApiClient

__all__ = ["stream_listing", "exported_folders"]

#: the command that lists a whole account (or, with ``folder=``, a public folder)
LIST_ALL: dict[str, Any] = {"a": "f", "c": 1, "r": 1}
LIST_FOLDER: dict[str, Any] = {"a": "f", "c": 1, "r": 1, "ca": 1}


async def stream_listing(
    api: AsyncApiClient,
    keyring: Keyring,
    executor: Executor | None = None,
    *,
    folder: str | None = None,
) -> tuple[NodeStore, dict[str, Any]]:
    """List the account (or the public folder ``folder``) into a new NodeStore: (store,
    the answer's other top-level values: ``ok``, ``s``, ``sn``...). The store's ``sn`` is
    set; errors are :mod:`megafast.errors` classes (ValidationError for malformed text)."""
    parser = ListingParser(keyring)
    loop = asyncio.get_running_loop()
    parsing: asyncio.Future[Any] | None = None

    async def sink(chunk: bytes) -> None:
        nonlocal parsing
        if parsing is not None:  # one chunk at a time: the parser is not thread-safe
            await asyncio.shield(parsing)  # a cancel leaves the chunk in hand to finish
        parsing = loop.run_in_executor(executor, parser.feed, chunk)

    try:
        command = LIST_FOLDER if folder is not None else LIST_ALL
        await api.stream(dict(command), sink, folder=folder)
        if parsing is not None:
            await asyncio.shield(parsing)
        closing = loop.run_in_executor(executor, parser.close)
        parsing = closing
        store = await asyncio.shield(closing)
    except BaseException:
        if parsing is not None and not parsing.done():
            await asyncio.wait([parsing])  # let the chunk in hand finish: no thread left
            if not parsing.cancelled():
                parsing.exception()  # retrieved: the first error is the one raised
        raise
    if folder is None:
        store.share_keys = keyring.share_keys
        store.exported = exported_folders(parser.meta)
    return store, parser.meta


def exported_folders(meta: dict[str, Any]) -> set[str]:
    """The folders an ``f`` answer's ``s`` lists as exported (``u`` = ``EXP``).
    (The same rule as megafast._account.livetree.list_all, where it is inline.)"""
    shares = meta.get("s")
    return {
        item["h"]
        for item in (shares if isinstance(shares, list) else ())
        if isinstance(item, dict) and item.get("u") == "EXP" and isinstance(item.get("h"), str)
    }
