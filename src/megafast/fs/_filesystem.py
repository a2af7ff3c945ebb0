"""``MegaFileSystem``: MEGA as an fsspec filesystem (protocol ``mega``)."""

from __future__ import annotations

import datetime as dt
import errno
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK, NoOpCallback
from fsspec.spec import AbstractFileSystem

from ..errors import ValidationError
from . import _many
from ._auth import forget_login, login_once
from ._engine import Engine, check_name, forget_engine, shared_engine
from ._files import MegaReadFile, MegaWriteFile
from ._lookup import checksum_of, entry, folder_handle, listing, newest, node_at
from ._paths import PROTOCOL, split_path, strip_path

if TYPE_CHECKING:
    from ..transfer import TransferManager

__all__ = ["MegaFileSystem"]

_SECRET_OPTIONS = ("password", "mfa")
_LINK_PREFIXES = ("https://", "http://", "mega.nz/", "mega.co.nz/")


class MegaFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec has no types
    """MEGA as a filesystem: ``fsspec.filesystem("mega", ...)`` or ``mega://`` URLs.

    Credentials, first match wins: ``email``/``password`` (and ``mfa``, a code or a callable
    giving one), ``session`` (text from :meth:`megafast.Mega.dump_session` or a session file),
    ``$MEGAFAST_SESSION``, then the session the CLI stored with ``megafast login``.
    ``link``: a public folder or file link instead of an account (read-only; paths are inside
    the folder, or the file's name). ``api_url``: the API server; ``transfer``: a
    :class:`~megafast.transfer.TransferConfig` for every transfer.

    Paths start at the Cloud Drive (``mega://photos/2026/a.jpg`` or ``photos/2026/a.jpg``);
    a ``/`` inside a node name is written ``%2F`` and ``%`` is written ``%25`` (see
    :mod:`megafast.fs._paths`). A public file link given as a path reads that file.
    The node tree is fetched once and kept current by this filesystem's own changes;
    :meth:`invalidate_cache` with no path fetches it again to see other clients' changes.
    """

    protocol = PROTOCOL
    root_marker = ""

    def __init__(
        self,
        email: str | None = None,
        password: str | None = None,
        *,
        mfa: Any = None,
        session: str | dict[str, Any] | os.PathLike[str] | None = None,
        link: str | None = None,
        api_url: str | None = None,
        transfer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        stored: dict[str, Any] | None = None
        if link is None and email is None and session is None:
            session = os.environ.get("MEGAFAST_SESSION") or None
            if session is None:
                from .._cli.session import load_session

                stored = load_session()
                if stored is None:
                    raise ValidationError(
                        "no MEGA credentials: pass email/password, session or link in "
                        "storage_options, set MEGAFAST_SESSION, or run `megafast login`"
                    )
                session = stored["session"]
                api_url = api_url or stored.get("api_url")
        if isinstance(session, dict):
            import json

            session = json.dumps(session)
        elif isinstance(session, os.PathLike) or (
            isinstance(session, str) and not session.lstrip().startswith("{")
        ):
            try:  # a session file: carry its text, so that pickles work on other machines
                session = Path(session).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValidationError(f"cannot read the session file: {exc.strerror}") from None
        self._api_url = api_url
        self._transfer = transfer
        if link is not None:  # a #P! link is opened with password= (WrongPasswordError)
            from .._wire.passlinks import unlock

            link = unlock(link, password)
        self._link = link
        self._session: str | None = session
        if email is not None:
            self._session, mega = login_once(self._new_mega, email, password, mfa)
            if mega is not None:
                shared_engine(self._identity(), lambda: Engine(mega))

    # -- credentials, pickling ------------------------------------------------------------
    def _new_mega(self) -> Any:
        from ..client import Mega

        return Mega(api_url=self._api_url, transfer=self._transfer)

    def _identity(self) -> str:
        if self._link is not None:
            return f"link\0{self._api_url}\0{self._link}"
        return f"session\0{self._api_url}\0{self._session}"

    @property
    def _engine(self) -> Engine:
        def make() -> Engine:
            if self._link is not None:
                return Engine(self._new_mega(), link=self._link)
            return Engine(self._new_mega().login(session=self._session))

        return shared_engine(self._identity(), make)

    def _rebuild_options(self) -> dict[str, Any]:
        options = {k: v for k, v in self._options.items() if k not in _SECRET_OPTIONS}
        if self._link is not None:
            options["link"] = self._link  # a #P! link's plain link: no password needed
        else:
            options.pop("email", None)
            options["session"] = self._session
        if self._api_url is not None:
            options["api_url"] = self._api_url
        return options

    @property
    def storage_options(self) -> dict[str, Any]:
        """The constructor's options with the password replaced by the session."""
        return self._rebuild_options()

    @storage_options.setter
    def storage_options(self, value: dict[str, Any]) -> None:
        self._options = {k: v for k, v in value.items() if k not in _SECRET_OPTIONS}

    def __reduce__(self) -> Any:
        from fsspec.spec import make_instance

        return make_instance, (type(self), (), self._rebuild_options())

    def to_dict(self, *, include_password: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = super().to_dict(include_password=include_password)
        if not include_password:
            out.pop("session", None)
        return out

    def logout(self) -> None:
        """End the session on the server (every instance sharing it stops working)."""
        engine = self._engine
        with engine.lock:
            engine.mega.logout()
        forget_engine(self._identity())
        forget_login(str(self._session))

    # -- paths and lookups ----------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
        if text.startswith(_LINK_PREFIXES) and "#" in text:
            return text  # a public link, kept whole
        return strip_path(text)

    @classmethod
    def _parent(cls, path: str) -> str:
        path = cls._strip_protocol(path)
        return path.rsplit("/", 1)[0] if "/" in path else ""

    def _find(self, path: str) -> tuple[Engine, dict[str, Any] | None, str]:
        """(engine, node or None, stripped path)."""
        path = self._strip_protocol(path)
        if path.startswith(_LINK_PREFIXES):
            link_fs = type(self)(link=path, api_url=self._api_url, transfer=self._transfer)
            return link_fs._engine, link_fs._engine.link_file(), path
        engine = self._engine
        with engine.lock:
            return engine, node_at(engine, path), path

    def _existing(self, path: str) -> tuple[Engine, dict[str, Any], str]:
        engine, node, path = self._find(path)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or folder on MEGA", path)
        return engine, node, path

    # -- listing and metadata -------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        engine, node, path = self._find(path)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or folder on MEGA", path)
        entries = listing(engine, node, path)
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        _, node, path = self._existing(path)
        return entry(path, node)

    def thumbnail(self, path: str, preview: bool = False) -> bytes:
        """The thumbnail (200x200) or, with ``preview``, the preview (up to 1000x1000) of
        the file at ``path``, as JPEG bytes; FileNotFoundError when it has none."""
        from ..errors import NotFoundError

        engine, node, path = self._existing(path)
        try:
            with engine.lock:
                if preview:
                    return bytes(engine.mega.get_preview(node, folder=engine.folder))
                return bytes(engine.mega.get_thumbnail(node, folder=engine.folder))
        except NotFoundError:
            what = "preview" if preview else "thumbnail"
            raise FileNotFoundError(errno.ENOENT, f"this file has no {what}", path) from None

    def modified(self, path: str) -> dt.datetime:
        """The file's modification time (from its fingerprint; else when it was stored)."""
        return dt.datetime.fromtimestamp(self.info(path)["mtime"], tz=dt.timezone.utc)

    def created(self, path: str) -> dt.datetime:
        """When MEGA stored the node."""
        return dt.datetime.fromtimestamp(self.info(path)["created"], tz=dt.timezone.utc)

    def checksum(self, path: str) -> int:
        """An int that changes when the file does: the digest of MEGA's fingerprint (``c``:
        sparse CRC-32s and the mtime), the size and the content MAC in the node key, which a
        server-side copy keeps. A folder's is the digest of its handle."""
        return checksum_of(self._existing(path)[1])

    def invalidate_cache(self, path: str | None = None) -> None:
        """With no path, fetch the node tree again (to see changes made by other clients).
        With a path, nothing to do: this filesystem's own changes are already in the tree."""
        if path is None:
            self._engine.refresh()

    # -- folders --------------------------------------------------------------------------
    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        engine, node, path = self._find(path)
        if node is not None:
            raise FileExistsError(errno.EEXIST, "already exists on MEGA", path)
        check_name((split_path(path) or [""])[-1])
        with engine.lock:
            folder_handle(engine, self._parent(path), create_parents)
            folder_handle(engine, path, True)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        engine, node, path = self._find(path)
        if node is not None and (not exist_ok or node.get("t") == 0):
            raise FileExistsError(errno.EEXIST, "already exists on MEGA", path)
        with engine.lock:
            folder_handle(engine, path, True)

    def rmdir(self, path: str) -> None:
        engine, node, path = self._existing(path)
        if node.get("t") == 0:
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", path)
        with engine.lock:
            if next(engine.tree()[0].child_nodes(node["h"]), None) is not None:
                raise OSError(errno.ENOTEMPTY, "folder not empty", path)
            engine.destroy(node["h"])

    # -- removing, moving, copying --------------------------------------------------------
    def rm_file(self, path: str) -> None:
        engine, node, path = self._existing(path)
        if node.get("t") != 0:
            raise IsADirectoryError(errno.EISDIR, "a folder (use rm recursive=True)", path)
        engine.destroy(node["h"])

    def _rm(self, path: str) -> None:
        if self.isdir(path):
            self.rmdir(path)
        else:
            self.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete for good (not to the Rubbish Bin). ``recursive`` removes a folder with
        everything in it in one command; with ``maxdepth`` only what lies within it goes."""
        paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        if maxdepth is not None or not recursive:
            for p in reversed(sorted(paths)):
                self._rm(p)
            return
        removed: list[str] = []
        for p in sorted(paths):
            if any(p.startswith(r + "/") for r in removed):
                continue
            engine, node, p = self._existing(p)
            engine.destroy(node["h"])
            removed.append(p)

    def _target(self, source: dict[str, Any], path: str) -> tuple[str, str | None]:
        """Where ``source`` lands for ``path``: (parent path, name), and the handle of an
        existing file there that the new node replaces."""
        engine, existing, path = self._find(path)
        if existing is not None and existing.get("t") != 0:
            if source.get("t") == 0:
                raise IsADirectoryError(errno.EISDIR, "a folder is in the way", path)
            raise FileExistsError(errno.EEXIST, "a folder is already there", path)
        return path, existing["h"] if existing is not None else None

    def mv(
        self, path1: str, path2: str, recursive: bool = False, maxdepth: Any = None, **kwargs: Any
    ) -> None:
        """Move and/or rename on the server (no data moves); replaces a file at ``path2``."""
        engine, node, path1 = self._existing(path1)
        engine._writable()
        path2, replaced = self._target(node, path2)
        if path2 == path1:
            return
        if path2.startswith(path1 + "/"):
            raise ValidationError(f"cannot move {path1!r} into itself")
        name = check_name(split_path(path2)[-1])
        with engine.lock:
            parent = folder_handle(engine, self._parent(path2), True)
            if parent != node.get("p"):
                engine.mega.move(node["h"], parent)
            if name != engine.tree()[0].name_of(node):
                engine.mega.rename(node["h"], name)
            if replaced is not None and replaced != node["h"]:
                engine.destroy(replaced)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy on the server: the copy shares the source's content and key (no transfer).
        ``path1`` may be a public file link: the file is imported into the account."""
        engine, node, path1 = self._existing(path1)
        if node.get("t") != 0:
            self.makedirs(path2, exist_ok=True)
            return
        public = engine.public_file_handle()
        if engine is not self._engine and public is None:
            raise ValidationError("server-side copies work inside the account; use get/put")
        path2, replaced = self._target(node, path2)
        if path2 == path1:
            return
        dest = self._engine
        with dest.lock:
            parent = folder_handle(dest, self._parent(path2), True)
            dest.copy(node, parent, check_name(split_path(path2)[-1]), public)
            if replaced is not None:
                dest.destroy(replaced)

    # -- file contents --------------------------------------------------------------------
    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: Any = None,
        autocommit: bool = True,
        cache_options: Any = None,
        **kwargs: Any,
    ) -> Any:
        if mode == "rb":
            engine, node, path = self._existing(path)
            if node.get("t") != 0:
                raise IsADirectoryError(errno.EISDIR, "a folder, not a file", path)
            return MegaReadFile(
                self,
                engine,
                path,
                engine.read_source(node),
                entry(path, node),
                block_size=block_size,
                cache_type=kwargs.get("cache_type", "none"),
                cache_options=cache_options,
            )
        if mode in ("wb", "xb"):
            engine, found, path = self._find(path)
            engine._writable()
            if found is not None and found.get("t") != 0:
                raise IsADirectoryError(errno.EISDIR, "a folder is in the way", path)
            if found is not None and mode == "xb":
                raise FileExistsError(errno.EEXIST, "already exists on MEGA", path)
            check_name((split_path(path) or [""])[-1])
            return MegaWriteFile(self, path, mode, autocommit, kwargs.get("size"), block_size)
        raise ValueError(f"mode {mode!r} is not supported by mega:// (rb, wb, xb)")

    def _upload_replacing(
        self,
        source: Any,
        size: int | None,
        path: str,
        progress: Any = None,
        confirm: Callable[[], bool] | None = None,
        manager: TransferManager | None = None,
    ) -> dict[str, Any]:
        """Upload ``source`` to ``path``; a file already there is deleted once the new one
        exists (so nothing is lost when the upload fails). ``manager``: a bulk put's."""
        engine = self._engine
        parts = split_path(path)
        name = check_name(parts[-1] if parts else "")
        with engine.lock:
            parent = folder_handle(engine, self._parent(path), True)
            tree, _ = engine.tree()
            old = newest([n for n in tree.children_named(parent, name) if n.get("a")])
        if old is not None and old.get("t") != 0:
            raise IsADirectoryError(errno.EISDIR, "a folder is in the way", path)
        cancel = getattr(progress, "cancel", None)  # a bulk put's FileProgress
        node = engine.upload(
            source,
            size,
            parent,
            name,
            progress=progress,
            confirm=confirm,
            manager=manager,
            cancel=cancel,
        )
        if old is not None:
            engine.destroy(old["h"])
        return node

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """The bytes ``[start, end)`` (negative values count from the end); the whole file
        comes over parallel connections and is MAC-checked before it is returned."""
        with self._open(path, "rb") as f:
            size = f.size
            lo = 0 if start is None else (max(0, size + start) if start < 0 else start)
            hi = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
            return f._fetch_range(lo, hi) if lo < hi else b""

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        _, node, path = self._find(path)
        if mode == "create" and node is not None:
            raise FileExistsError(errno.EEXIST, "already exists on MEGA", path)
        data = bytes(value)
        self._upload_replacing(io.BytesIO(data), len(data), path)

    def put_file(
        self,
        lpath: str,
        rpath: str,
        callback: Any = DEFAULT_CALLBACK,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> None:
        """Upload a local file (parallel, MAC-ed, resumable after an interruption)."""
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        noted = _many.pending()
        if noted is not None:  # a bulk put: moved with the others when all are known
            noted.puts.append((os.fspath(lpath), rpath, {"mode": mode}))
            return
        self._upload_file_to(os.fspath(lpath), rpath, mode, _progress(callback))

    def _upload_file_to(
        self, lpath: str, rpath: str, mode: str, progress: Any, manager: Any = None
    ) -> dict[str, Any]:
        if mode == "create" and self.exists(rpath):
            raise FileExistsError(errno.EEXIST, "already exists on MEGA", rpath)
        size = os.path.getsize(lpath)
        if progress is not None:
            progress(0, size)
        return self._upload_replacing(lpath, size, rpath, progress, manager=manager)

    def put(
        self,
        lpath: Any,
        rpath: Any,
        recursive: bool = False,
        callback: Any = DEFAULT_CALLBACK,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        """fsspec's ``put`` (lists, globs, ``recursive``), its files through one transfer
        manager: many in flight, batched commands (see :mod:`megafast.fs._many`)."""
        with _many.collecting() as noted:
            super().put(lpath, rpath, recursive=recursive, maxdepth=maxdepth, **kwargs)
        _many.run_puts(self, noted, callback)

    def get(
        self,
        rpath: Any,
        lpath: Any,
        recursive: bool = False,
        callback: Any = DEFAULT_CALLBACK,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        """fsspec's ``get``, its files through one transfer manager (as :meth:`put`)."""
        with _many.collecting() as noted:
            super().get(rpath, lpath, recursive=recursive, maxdepth=maxdepth, **kwargs)
        _many.run_gets(self, noted, callback)

    def get_file(
        self,
        rpath: str,
        lpath: Any,
        callback: Any = DEFAULT_CALLBACK,
        outfile: Any = None,
        **kwargs: Any,
    ) -> None:
        """Download to a local path (parallel, resumable; the target is replaced only after
        the MAC verified) or to a writable file object."""
        engine, node, rpath = self._existing(rpath)
        if node.get("t") != 0:
            if isinstance(lpath, (str, os.PathLike)):
                os.makedirs(lpath, exist_ok=True)
            return
        src = engine.read_source(node)
        noted = _many.pending()
        if noted is not None and outfile is None and isinstance(lpath, (str, os.PathLike)):
            noted.gets.append((src, os.fspath(lpath)))  # a bulk get: moved with the others
            return
        callback.set_size(src.size)
        target = outfile if outfile is not None else lpath
        if hasattr(target, "write"):
            engine.download_to(src, target, _progress(callback))
            return
        target = os.fspath(target)
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        engine.download(src, target, _progress(callback))


def _progress(callback: Any) -> Any:
    """The engine's ``progress(done, total)`` for an fsspec callback (None for a no-op one)."""
    if isinstance(callback, NoOpCallback):
        return None

    def report(done: int, total: int) -> None:
        callback.set_size(total)
        callback.absolute_update(done)

    return report
