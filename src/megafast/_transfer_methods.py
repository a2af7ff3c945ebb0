"""The data half of :class:`~megafast.Mega`'s interface: public links (making and reading
them), downloads, uploads and streams (mega.py's names and megafast's streaming ones).

:class:`TransferMethods` only states the signatures and documents them; each method hands
over to :mod:`megafast._account.transfers` (orchestration), :mod:`megafast._account.sources` (public links
and folders) or :mod:`megafast._account.nodeops` (importing a public file). ``Mega`` inherits it, so
the two halves are one class to callers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._account import nodeops as _nodeops
from ._account import sources as _sources
from ._account import transfers as _transfers
from ._wire.links import parse_link
from ._wire.passlinks import protect, unlock
from .errors import LinkError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._account.core import Core
    from ._account.nodeops import NodeRef
    from .client import Mega
    from .transfer import (
        ProgressCallback,
        TransferConfig,
        TransferManager,
        TransferResult,
        TransferSubscriber,
    )

__all__ = ["TransferMethods"]


class TransferMethods:
    """Downloads, uploads and public links of :class:`~megafast.Mega` (see there)."""

    def _core(self) -> Core:
        return cast("Mega", self).core

    # ------------------------------------------------------------------------------------
    # links to the account's nodes (megafast._account.nodeops)
    # ------------------------------------------------------------------------------------
    def get_link(self, file: NodeRef, *, password: str | None = None) -> str:
        """The public link of a file (creates it if needed); with ``password`` a
        password-protected ``#P!`` link instead."""
        return protect(_nodeops.get_link(self._core(), file), password)

    def get_upload_link(self, file: Mapping[str, Any]) -> str:
        """The public link of a file just uploaded (``file`` is :meth:`upload`'s answer)."""
        return _nodeops.get_upload_link(self._core(), file)

    def get_folder_link(self, file: NodeRef) -> str:
        """The public link of a folder that is already exported (see :meth:`export`)."""
        return _nodeops.get_folder_link(self._core(), file)

    def export(
        self, path: str | None = None, node_id: str | None = None, *, password: str | None = None
    ) -> str:
        """Create (or return) the public link of the file or folder at ``path`` or
        ``node_id``. Folders are shared with a fresh key first. With ``password``: a
        password-protected ``#P!`` link to it (made locally; the plain link still works)."""
        return protect(_nodeops.export(self._core(), path, node_id), password)

    # ------------------------------------------------------------------------------------
    # public files and folders (megafast._account.sources)
    # ------------------------------------------------------------------------------------
    @staticmethod
    def _parse_url(url: str) -> str:
        """``handle!key`` of a public link (mega.py's helper)."""
        link = parse_link(url)
        return f"{link.handle}!{link.key_b64}"

    def get_public_url_info(self, url: str, *, password: str | None = None) -> dict[str, Any]:
        """``{'size': bytes, 'name': str}`` of a public file link; for a folder link also
        the counts of ``files`` and ``folders`` (size is the total of its files).
        ``password``: of a ``#P!`` link (here and in every method taking a link)."""
        return _sources.public_url_info(self._core(), unlock(url, password))

    def get_public_file_info(self, file_handle: str, file_key: str | bytes) -> dict[str, Any]:
        """``{'size': bytes, 'name': str}`` of a public file; a wrong key raises
        :class:`~megafast.errors.WrongKeyError`."""
        return _sources.public_file_info(self._core(), file_handle, file_key)

    def import_public_url(
        self,
        url: str,
        dest_node: NodeRef | None = None,
        dest_name: str | None = None,
        *,
        password: str | None = None,
    ) -> Any:
        """Copy a public file into the account (default: the Cloud Drive)."""
        link = parse_link(unlock(url, password))
        if link.kind != "file":
            raise LinkError("only file links can be imported")
        return self.import_public_file(link.handle, link.key_b64, dest_node, dest_name)

    def import_public_file(
        self,
        file_handle: str,
        file_key: str | bytes,
        dest_node: NodeRef | None = None,
        dest_name: str | None = None,
    ) -> Any:
        """Copy a public file (handle and key) into the account; returns the ``p`` answer."""
        return _nodeops.import_public_file(
            self._core(), file_handle, file_key, dest_node, dest_name
        )

    def get_public_folder(
        self, url: str, *, password: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """All nodes of a public folder link: ``{handle: node}`` like :meth:`get_files`
        (undecryptable nodes included, marked ``undecryptable``). A link to a node inside
        the folder lists that node and what is below it."""
        return _sources.public_folder(self._core(), unlock(url, password))

    # ------------------------------------------------------------------------------------
    # transfers (megafast._account.transfers)
    # ------------------------------------------------------------------------------------
    def download(
        self,
        file: NodeRef | None,
        dest_path: str | os.PathLike[str] | None = None,
        dest_filename: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        result: TransferResult | None = None,
        subscribers: Iterable[TransferSubscriber] = (),
    ) -> Path:
        """Download a file (a ``(handle, node)`` from :meth:`find`) into ``dest_path``
        (default: the current directory) and return the file's path. A folder is
        downloaded recursively through a :class:`~megafast.transfer.TransferManager` (many
        files at once; a re-run skips the files already verified) and its local path
        returned; pass ``result=TransferResult()`` to get every file's outcome (it is filled
        even when a file fails and :class:`~megafast.errors.TransferError` is raised after
        the others were transferred); ``subscribers``
        (:class:`~megafast.transfer.TransferSubscriber`) watch each file of a folder. Entries
        whose local name is taken get ``name (1).ext``...: the returned folder's ``renamed``
        lists them. The content is verified (MAC)."""
        return _transfers.download(
            self._core(), file, dest_path, dest_filename, progress, config, result, subscribers
        )

    def download_url(
        self,
        url: str,
        dest_path: str | os.PathLike[str] | None = None,
        dest_filename: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        result: TransferResult | None = None,
        subscribers: Iterable[TransferSubscriber] = (),
        password: str | None = None,
    ) -> Path:
        """Download a public link: a file, a file or folder inside a folder link, or a
        whole folder (recursively, like :meth:`download_folder_url`; ``result`` and
        ``subscribers`` apply to folders). Returns the local path. ``password``: of a
        password-protected ``#P!`` link (a wrong one raises
        :class:`~megafast.errors.WrongPasswordError` before anything is downloaded)."""
        return _transfers.download_url(
            self._core(),
            unlock(url, password),
            dest_path,
            dest_filename,
            progress,
            config,
            result,
            subscribers,
        )

    def download_folder_url(
        self,
        url: str,
        dest_path: str | os.PathLike[str] | None = None,
        dest_filename: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        result: TransferResult | None = None,
        subscribers: Iterable[TransferSubscriber] = (),
        password: str | None = None,
    ) -> Path:
        """Download a public folder link (or the node inside it the link names); a folder
        goes through a :class:`~megafast.transfer.TransferManager` like :meth:`download`
        (``result``, ``subscribers`` and the returned folder's ``renamed``: the same as
        there)."""
        return _transfers.download_folder_url(
            self._core(),
            unlock(url, password),
            dest_path,
            dest_filename,
            progress,
            config,
            result,
            subscribers,
        )

    def download_to_fileobj(
        self,
        file: NodeRef | str,
        fileobj: Any,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
    ) -> int:
        """Write a file's verified content, in order, to a writable binary ``fileobj``;
        ``file`` is a node, a handle or a public link. Returns the size in bytes. The MAC
        is checked at the end: on :class:`~megafast.errors.IntegrityError` discard what
        was written."""
        return _transfers.download_to_fileobj(self._core(), file, fileobj, progress, config)

    def open(self, file: NodeRef | str, *, config: TransferConfig | None = None) -> Any:
        """A seekable, read-only binary file object over a remote file (a node, a handle
        or a public link); whole MAC chunks are verified as they are read."""
        return _transfers.open_remote(self._core(), file, config)

    def upload(
        self,
        filename: str | os.PathLike[str],
        dest: NodeRef | None = None,
        dest_filename: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        resume: bool = True,
        thumbnails: bool | None = None,
    ) -> dict[str, Any]:
        """Upload a local file into ``dest`` (a folder handle or node; default: the Cloud
        Drive) and return the API's answer (``{'f': [new node]}``), as mega.py does.

        ``resume``: an interrupted upload of the same (unchanged) file to the same folder,
        name, account and server continues where it stopped while its upload URL is valid
        (a sidecar holds the URL and key; the data sent before is checked against the file
        before anything new is sent). ``resume=False`` (or ``config.resume=False``) starts over.
        ``thumbnails``: give an image (or a video, with ffmpeg) a thumbnail and a preview
        (default: the ``thumbnails`` option, on when Pillow is installed); one that cannot be
        made is logged and skipped, never failing the upload.
        """
        core = self._core()
        pics = _pics(core, thumbnails)
        return _transfers.upload(
            core, filename, dest, dest_filename, progress, config, resume, pics
        )

    def upload_folder(
        self,
        directory: str | os.PathLike[str],
        dest: NodeRef | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        resume: bool = True,
        result: TransferResult | None = None,
        subscribers: Iterable[TransferSubscriber] = (),
        follow_symlinks: bool = False,
        thumbnails: bool | None = None,
    ) -> dict[str, str]:
        """Upload a local folder tree into ``dest`` (default: the Cloud Drive), like
        ``cp -r``: the folder itself is created (or reused) there, with every sub-folder
        and regular file below it. Symlinks are skipped (a link inside the folder may point
        anywhere, a private key for one) unless ``follow_symlinks``; special files and
        folders that cannot be read are skipped too, each with a logged warning.

        Returns ``{relative path: handle}`` with ``"."`` for the top folder and POSIX
        paths (``"sub/file.txt"``) below it. ``progress(done, total)`` covers the bytes of
        the whole tree. The files go through a :class:`~megafast.transfer.TransferManager`
        (many at once, batched commands); a file already there with the same size and
        fingerprint is skipped (and listed), an interrupted file resumes like :meth:`upload`.
        A file that fails does not stop the others: :class:`~megafast.errors.TransferError`
        is raised at the end. ``result``: a :class:`~megafast.transfer.TransferResult` to
        fill with every file's outcome, the renamed and the ignored entries; ``subscribers``
        (:class:`~megafast.transfer.TransferSubscriber`) watch each file. With
        ``follow_symlinks`` the files go one at a time, not through the manager (``result``
        and ``subscribers`` are then not used). ``thumbnails``: as for :meth:`upload` (the
        pictures are made on their own threads while the files upload).
        """
        core = self._core()
        return _transfers.upload_folder(
            core,
            directory,
            dest,
            progress,
            config,
            resume,
            result,
            subscribers,
            follow_symlinks,
            _pics(core, thumbnails),
        )

    def transfers(
        self,
        *,
        workers: int = 16,
        config: TransferConfig | None = None,
        subscribers: Iterable[TransferSubscriber] = (),
    ) -> TransferManager:
        """A :class:`~megafast.transfer.TransferManager` bound to this client: queue many
        uploads and downloads (``upload``, ``download``, ``upload_tree``, ``download_tree``)
        over one connection pool of ``workers`` connections; use it as a context manager."""
        from .transfer import TransferManager

        mega = cast("Mega", self)
        return TransferManager(mega, workers=workers, config=config, subscribers=subscribers)

    def upload_fileobj(
        self,
        fileobj: Any,
        name: str,
        dest: NodeRef | None = None,
        *,
        size: int | None = None,
        mtime: float | None = None,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        resume: bool = True,
        thumbnails: bool | None = None,
    ) -> dict[str, Any]:
        """Upload a binary file object (or bytes, or an iterable of bytes) as ``name`` into
        ``dest``; ``size`` in bytes is needed when it cannot be found by seeking. Returns the
        API's answer like :meth:`upload`. A seekable source read from its start also gets a
        fingerprint (``mtime``: seconds, default now). ``resume``: as for :meth:`upload`, for
        bytes and seekable sources (a stream cannot be read again, so it always starts over).
        ``thumbnails``: as for :meth:`upload`, for an image ``name`` given as bytes (made
        while they upload) or as a seekable file object at its start (read once before it
        uploads); a stream gets none (it cannot be read twice).
        """
        core = self._core()
        pics = _pics(core, thumbnails)
        return _transfers.upload_fileobj(
            core, fileobj, name, dest, size, mtime, progress, config, resume, pics
        )


def _pics(core: Core, thumbnails: bool | None) -> bool:
    """Whether an upload makes thumbnails: the keyword, else the client's option."""
    return thumbnails if thumbnails is not None else core.options.get("thumbnails") is not False
