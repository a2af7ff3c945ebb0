"""The tree jobs the account hands to the transfer engine (``megafast.transfer.TreeJobs``).

The engine (``megafast.transfer``) knows bytes, URLs and keys. Creating nodes, asking for
download and upload URLs and walking remote folders are the account's: the core hands a
:class:`AccountTreeJobs` to every :class:`~megafast.transfer.TransferManager` made for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..transfer._localnames import safe_local_name
from . import downloadjobs, treejobs

if TYPE_CHECKING:
    from ..transfer._manager import TransferManager, TransferResult
    from .core import Core

__all__ = ["AccountTreeJobs"]


class AccountTreeJobs:
    """:class:`~megafast.transfer.TreeJobs` over the tree of ``core``."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def upload_job(self, manager: TransferManager, path: Path, dest: Any) -> treejobs.UploadJob:
        return treejobs.upload_job(manager, path, dest)

    def download_job(
        self, manager: TransferManager, file: Any, dest: Path | None
    ) -> downloadjobs.DownloadJob:
        return downloadjobs.download_job(manager, file, dest)

    def upload_tree(self, manager: TransferManager, directory: Path, dest: Any) -> TransferResult:
        return treejobs.upload_tree(manager, directory, dest)

    def download_tree(
        self, manager: TransferManager, folder: Any, dest: Path | None, tree: Any
    ) -> TransferResult:
        """``folder``: a handle or node of ``tree`` (a public folder's), else of the account's
        tree; downloaded into ``dest`` (default: the current directory) under its own name."""
        root: dict[str, Any] | None
        if tree is None:
            tree = self.core.tree()
            root = self.core.node(folder, "folder")
        else:
            root = tree.nodes.get(folder if isinstance(folder, str) else folder.get("h"))
        if root is None or root.get("t") not in (1, 2):
            raise ValidationError("download_tree needs a folder")
        name = safe_local_name(tree.name_of(root) or root["h"])
        return downloadjobs.download_tree(manager, tree, root, (dest or Path.cwd()) / name)
