"""megafast for asyncio: :class:`AsyncMega` and the async layers it stands on.

``pip install "megafast[aio]"`` brings aiohttp, the HTTP client every API command, the
streamed listing and ``/sc`` go through (see docs/ASYNC.md for why aiohttp).
"""

from __future__ import annotations

from ._api import AsyncApiClient
from ._batch import AsyncBatcher
from ._client import AsyncMega
from ._listing import stream_listing
from ._nodes import Node
from ._reader import AsyncReader
from ._watch import AsyncScChannel, AsyncWatcher

__all__ = [
    "AsyncApiClient",
    "AsyncBatcher",
    "AsyncMega",
    "AsyncReader",
    "AsyncScChannel",
    "AsyncWatcher",
    "Node",
    "stream_listing",
]
