"""How a sync moves bytes: one small interface, so that handing transfers to another engine
changes this module only. The default, :class:`ManagerTransfers`, runs a sync's uploads and
downloads through one :class:`~megafast.transfer.TransferManager` (one connection pool, many
files in flight, batched ``u``/``g``/``p``); :class:`EngineTransfers` moves one file at a time."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from .._account.sources import checked_g_answer, checked_u_answer, node_size
from ..errors import ValidationError
from ..transfer import (
    ProgressCallback,
    TransferConfig,
    TransferManager,
    UploadResult,
    download_file,
    upload_file,
)

__all__ = ["Transfers", "EngineTransfers", "ManagerTransfers", "SYNC_WORKERS"]

SYNC_WORKERS = 16  # files in flight at once in a sync run (and the shared pool's size)


class Transfers(Protocol):
    def upload(self, path: Path, size: int, progress: ProgressCallback | None) -> UploadResult:
        """Send the file's bytes; returns the completion token and key (no node made yet)."""

    def download(
        self, node: dict[str, Any], target: Path, progress: ProgressCallback | None
    ) -> None:
        """Fetch the file ``node`` to ``target``, replacing it only after the MAC verified."""


def _upload(
    mega: Any,
    call: Callable[[dict[str, Any]], Any],
    path: Path,
    size: int,
    progress: ProgressCallback | None,
    **engine: Any,
) -> UploadResult:
    """The engine's upload of ``path`` (``call`` sends the ``u``); an interrupted upload of
    the same unchanged file (same path, size, mtime and inode) resumes from its sidecar."""
    st = os.lstat(path)
    parts = (mega.api_url, str(mega.root_id), os.fspath(path), str(st.st_size))
    resume_id = "\0".join(("megafast-sync-upload", *parts, str(st.st_mtime_ns), str(st.st_ino)))

    def get_upload_url(size: int) -> str:
        return checked_u_answer(call({"a": "u", "s": size}))

    return upload_file(
        engine.pop("http", mega.http),
        get_upload_url,
        path,
        size,
        progress=progress,
        resume_id=resume_id,
        **engine,
    )


class EngineTransfers:
    """One file at a time through ``megafast.transfer`` and ``Mega.download``."""

    def __init__(self, mega: Any, config: TransferConfig | None = None) -> None:
        self.mega = mega
        self.config = config

    def upload(self, path: Path, size: int, progress: ProgressCallback | None) -> UploadResult:
        return _upload(self.mega, self.mega._request, path, size, progress, config=self.config)

    def download(
        self, node: dict[str, Any], target: Path, progress: ProgressCallback | None
    ) -> None:
        self.mega.download(
            node["h"],
            dest_path=target.parent,
            dest_filename=target.name,
            progress=progress,
            config=self.config,
        )


class ManagerTransfers:
    """A sync run's files through one :class:`TransferManager`: the executor runs its
    transfer actions as the manager's jobs (``running()`` gives the manager while a run
    lasts), and every ``u``, ``g`` and new-node ``p`` goes through its command batcher."""

    def __init__(
        self, mega: Any, config: TransferConfig | None = None, workers: int = SYNC_WORKERS
    ) -> None:
        self.mega = mega
        self.config = config
        self.workers = workers
        self.manager: TransferManager | None = None
        self._local = threading.local()  # the cancel event of the file a worker runs

    @contextlib.contextmanager
    def running(self) -> Iterator[TransferManager]:
        manager = TransferManager(self.mega, workers=self.workers, config=self.config)
        self.manager = manager
        try:
            yield manager
        finally:
            self.manager = None
            manager.shutdown(cancel=True)

    def set_cancel(self, cancel: threading.Event | None) -> None:
        """The cancel event of the file the calling worker thread moves now."""
        self._local.cancel = cancel

    def _manager(self) -> TransferManager:
        if self.manager is None:
            raise RuntimeError("ManagerTransfers is used outside running()")
        return self.manager

    def upload(self, path: Path, size: int, progress: ProgressCallback | None) -> UploadResult:
        manager = self._manager()
        return _upload(
            self.mega,
            manager.call,
            path,
            size,
            progress,
            http=manager.http,
            config=manager.config,
            shared_session=True,
            cancel=getattr(self._local, "cancel", None),
        )

    def download(
        self, node: dict[str, Any], target: Path, progress: ProgressCallback | None
    ) -> None:
        manager = self._manager()
        size = node_size(node)
        command: dict[str, Any] = {"a": "g", "g": 1, "n": node["h"]}
        if self.mega.api_url.startswith("https:"):
            command["ssl"] = 2

        def get_url(refresh: bool) -> str:
            answer = checked_g_answer(manager.call(command))
            if answer.get("s") != size:
                raise ValidationError(
                    f"the size in the answer to g ({answer.get('s')!r}) is not the listing's"
                    f" ({size})"
                )
            return str(answer["g"])

        download_file(
            manager.http,
            get_url,
            size,
            tuple(node["key"]),
            target,
            config=manager.config,
            progress=progress,
            resume_id=node["h"],
            shared_session=True,
            cancel=getattr(self._local, "cancel", None),
        )
