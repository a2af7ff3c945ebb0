"""How a sync moves bytes: one small interface, so that handing transfers to another engine
(a transfer manager with batched commands) changes this module only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..transfer import ProgressCallback, TransferConfig, UploadResult

__all__ = ["Transfers", "EngineTransfers"]


class Transfers(Protocol):
    def upload(self, path: Path, size: int, progress: ProgressCallback | None) -> UploadResult:
        """Send the file's bytes; returns the completion token and key (no node made yet)."""

    def download(
        self, node: dict[str, Any], target: Path, progress: ProgressCallback | None
    ) -> None:
        """Fetch the file ``node`` to ``target``, replacing it only after the MAC verified."""


class EngineTransfers:
    """One file at a time through ``megafast.transfer`` and ``Mega.download``."""

    def __init__(self, mega: Any, config: TransferConfig | None = None) -> None:
        self.mega = mega
        self.config = config

    def upload(self, path: Path, size: int, progress: ProgressCallback | None) -> UploadResult:
        import os

        from ..errors import UnexpectedAnswerError
        from ..transfer import upload_file

        st = os.lstat(path)
        mega = self.mega

        def get_upload_url(size: int) -> str:
            answer = mega._request({"a": "u", "s": size})
            if not isinstance(answer, dict) or not isinstance(answer.get("p"), str):
                raise UnexpectedAnswerError("unexpected answer to u")
            return str(answer["p"])

        # an interrupted upload of the same unchanged file resumes (the engine's sidecar)
        resume_id = "\0".join(
            (
                "megafast-sync-upload",
                mega.api_url,
                str(mega.root_id),
                os.fspath(path),
                str(st.st_size),
                str(st.st_mtime_ns),
                str(st.st_ino),
            )
        )
        return upload_file(
            mega.http,
            get_upload_url,
            path,
            size,
            config=self.config,
            progress=progress,
            resume_id=resume_id,
        )

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
