"""What the transfer engine is handed by the layer above it (it imports nothing above).

The engine knows bytes, URLs and keys. A :class:`~megafast.transfer.TransferManager` is made
for a :class:`TransferHost` (the account core, or a front end holding one as ``.core``):
the host gives the API client and HTTP session the manager's batcher and workers use, the
default :class:`~megafast.transfer.TransferConfig`, and :class:`TreeJobs`, the jobs that
create nodes, ask for URLs and walk remote folders. Those live above the engine, in the
account layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import requests

    from .._wire.api import ApiClient
    from ._config import TransferConfig
    from ._manager import Job, TransferManager, TransferResult

__all__ = ["HasTransferHost", "TransferHost", "TreeJobs"]


class TreeJobs(Protocol):
    """Jobs over an account's tree, made for one manager (each runs on its workers)."""

    def upload_job(self, manager: TransferManager, path: Path, dest: Any) -> Job:
        """The job uploading the local file ``path`` into the remote folder ``dest``."""
        ...

    def download_job(self, manager: TransferManager, file: Any, dest: Path | None) -> Job:
        """The job downloading the remote file ``file`` into the local folder ``dest``."""
        ...

    def upload_tree(self, manager: TransferManager, directory: Path, dest: Any) -> TransferResult:
        """Upload a local folder (and everything in it) into ``dest``; the outcomes."""
        ...

    def download_tree(
        self, manager: TransferManager, folder: Any, dest: Path | None, tree: Any
    ) -> TransferResult:
        """Download a remote folder (of ``tree``, default the account's) into ``dest``."""
        ...


class TransferHost(Protocol):
    """What a manager needs from the account it works for."""

    @property
    def api_url(self) -> str:
        """The API server (an ``https:`` one gets ``https:`` transfer URLs)."""
        ...

    @property
    def http(self) -> requests.Session:
        """The session the manager's private pool is cloned from."""
        ...

    @property
    def transfer_config(self) -> TransferConfig | None:
        """The default config (``None``: the engine's defaults)."""
        ...

    @property
    def tree_jobs(self) -> TreeJobs:
        """The tree jobs of this account."""
        ...

    def api(self) -> ApiClient:
        """The API client the batcher sends commands with."""
        ...


class HasTransferHost(Protocol):
    """A front end (such as :class:`~megafast.Mega`) that holds a host as ``core``."""

    @property
    def core(self) -> TransferHost: ...
