"""Bulk ``put``/``get`` of :class:`~megafast.fs.MegaFileSystem` through one
:class:`~megafast.transfer.TransferManager`: fsspec expands the paths (lists, ``recursive``,
``maxdepth``) and calls ``put_file``/``get_file`` per file; while :func:`collecting` is on
those calls only note the file, and :func:`run_puts`/:func:`run_gets` then move every noted
file with many in flight over one connection pool, their ``u``/``g``/``p`` batched. Each
file is verified as a single ``put_file``/``get_file`` would; every file is tried, and the
first failure is raised after the rest finished."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..transfer import FileProgress, TransferManager, TransferResult, TransferSubscriber

if TYPE_CHECKING:
    from ._engine import ReadSource
    from ._filesystem import MegaFileSystem

__all__ = ["BULK_WORKERS", "Pending", "collecting", "pending", "run_gets", "run_puts"]

BULK_WORKERS = 16  # files in flight at once in a bulk put/get (and the pool's size)


@dataclass
class Pending:
    """The files a bulk call noted: ``(local path, remote path, put_file's kwargs)`` for
    puts, ``(read source, local path)`` for gets."""

    puts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    gets: list[tuple[ReadSource, str]] = field(default_factory=list)


_local = threading.local()


def pending() -> Pending | None:
    """The calling thread's bulk call, when one is collecting."""
    found: Pending | None = getattr(_local, "pending", None)
    return found


@contextlib.contextmanager
def collecting() -> Iterator[Pending]:
    noted = Pending()
    _local.pending = noted
    try:
        yield noted
    finally:
        _local.pending = None


class _Count(TransferSubscriber):
    """fsspec's file-level callback: one step per finished file."""

    def __init__(self, callback: Any) -> None:
        self.callback = callback
        self.lock = threading.Lock()

    def on_done(self, future: Any) -> None:
        with self.lock:
            self.callback.relative_update(1)


class _PutJob:
    def __init__(self, fs: MegaFileSystem, lpath: str, rpath: str, mode: str) -> None:
        self.fs, self.lpath, self.rel, self.mode = fs, lpath, rpath, mode
        self.size = os.path.getsize(lpath)

    def prepare(self, manager: TransferManager) -> None:
        pass  # u is asked for when the file starts, batched with the other workers'

    def run(self, manager: TransferManager, progress: FileProgress) -> str | None:
        node = self.fs._upload_file_to(self.lpath, self.rel, self.mode, progress, manager)
        return str(node["h"])


class _GetJob:
    def __init__(self, fs: MegaFileSystem, src: ReadSource, lpath: str) -> None:
        self.fs, self.src, self.rel, self.size = fs, src, lpath, src.size

    def prepare(self, manager: TransferManager) -> None:
        pass

    def run(self, manager: TransferManager, progress: FileProgress) -> str | None:
        os.makedirs(os.path.dirname(os.path.abspath(self.rel)), exist_ok=True)
        self.fs._engine.download(
            self.src, self.rel, progress, manager=manager, cancel=progress.cancel
        )
        return self.rel


def _manager(fs: MegaFileSystem, callback: Any) -> TransferManager:
    engine = fs._engine
    link = engine._link
    folder = link.handle if link is not None and link.kind == "folder" else None
    return TransferManager(
        engine.mega, workers=BULK_WORKERS, folder=folder, subscribers=[_Count(callback)]
    )


def _run(manager: TransferManager, jobs: list[Any]) -> TransferResult:
    if not jobs:
        manager.shutdown()
        return TransferResult()
    with manager:
        result = manager.run(jobs)
    failed = [*result.failed, *result.cancelled]
    if failed:
        first = failed[0]
        if isinstance(first.error, BaseException):
            raise first.error
        raise OSError(f"{first.rel}: {first.reason}")
    return result


def run_puts(fs: MegaFileSystem, noted: Pending, callback: Any) -> TransferResult:
    """Upload the noted files (``mode`` as ``put_file``'s: ``create`` refuses a taken path)."""
    callback.set_size(len(noted.puts))
    jobs = [_PutJob(fs, lp, rp, kw.get("mode", "overwrite")) for lp, rp, kw in noted.puts]
    return _run(_manager(fs, callback), jobs)


def run_gets(fs: MegaFileSystem, noted: Pending, callback: Any) -> TransferResult:
    """Download the noted files, each replaced locally only once its MAC verified."""
    callback.set_size(len(noted.gets))
    jobs = [_GetJob(fs, src, lpath) for src, lpath in noted.gets]
    return _run(_manager(fs, callback), jobs)
