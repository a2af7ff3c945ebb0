"""Parallel, resumable, verified transfers in constant memory.

Downloads plan the file as ranges of whole MAC chunks and fetch them over several
connections; the native kernel decrypts and MACs each block with the GIL released and the
plaintext goes by positional writes into ``<dest>.megafast-part``; the meta-MAC is checked
before the file is renamed into place. Uploads read, MAC and encrypt pieces of whole chunks
and POST them in parallel. Both resume from small sidecars and use reused buffers of
:data:`IO_BLOCK` bytes per connection, so memory does not grow with the file size.

Every transfer uses a private :class:`requests.Session` cloned from the caller's (headers,
proxies, TLS settings, cookies) with a connection pool of ``connections`` connections.
"""

from __future__ import annotations

from .._wire.retry import RetryPolicy
from ._batch import CommandBatcher
from ._config import MiB, ProgressCallback, TransferConfig
from ._download import download_file, download_to_fileobj, part_paths
from ._host import TransferHost, TreeJobs
from ._http import IO_BLOCK, TransferCancelled
from ._manager import (
    BytesProgress,
    FileOutcome,
    FileProgress,
    TransferFuture,
    TransferManager,
    TransferResult,
    TransferSubscriber,
)
from ._plan import ChunkMap
from ._reader import MegaReader, open_reader
from ._sidecar import state_dir
from ._sources import Source
from ._upload import UploadResult, upload_file

__all__ = [
    "TransferHost",
    "TreeJobs",
    "TransferConfig",
    "RetryPolicy",
    "ProgressCallback",
    "UploadResult",
    "Source",
    "download_file",
    "download_to_fileobj",
    "open_reader",
    "upload_file",
    "MegaReader",
    "ChunkMap",
    "part_paths",
    "state_dir",
    "IO_BLOCK",
    "MiB",
    "TransferManager",
    "TransferFuture",
    "TransferSubscriber",
    "TransferResult",
    "FileOutcome",
    "TransferCancelled",
    "FileProgress",
    "CommandBatcher",
    "BytesProgress",
]
