"""``megafast webdav``: the same tree, reader and caches over WebDAV, on wsgidav.

wsgidav asks a :class:`MegaDAVProvider` for resources by path; folders list the display names
of :class:`~megafast.vfs.TreeView` and files hand wsgidav a seekable file object over the
shared :class:`~megafast.vfs.Stream` (wsgidav answers ranges by seeking it). Unless read-only,
a PUT is spooled to a private file and uploaded when its body is complete (the file it
replaces goes to the Rubbish Bin), MKCOL makes a folder, DELETE moves to the Rubbish Bin and
MOVE is a server move; COPY is refused. The server is
wsgiref's, threaded; the token / basic-auth rule is the HTTP server's
(:func:`~megafast.httpd._server.authorized`), applied before wsgidav sees a request.
"""

from __future__ import annotations

import contextlib
import io
import mimetypes
import os
import socketserver
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    DAVError,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider
from wsgidav.wsgidav_app import WsgiDAVApp

from ..errors import MegaError, OverQuotaError
from ..fs._paths import unescape_name
from ..vfs._backend import Backend
from ..vfs._reader import Stream
from ._server import authorized, is_loopback

__all__ = ["MegaDAVProvider", "make_webdav_server"]


class _StreamFile(io.RawIOBase):
    """A seekable binary file over a :class:`Stream` (what wsgidav reads a GET from)."""

    def __init__(self, stream: Stream, size: int) -> None:
        super().__init__()
        self._stream = stream
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: Any) -> int:
        data = self._stream.read(self._pos, len(b))
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)


class _File(DAVNonCollection):  # type: ignore[misc]
    def __init__(self, path: str, environ: dict[str, Any], backend: Backend, handle: str) -> None:
        super().__init__(path, environ)
        self._backend = backend
        self._handle = handle
        entry = backend.view.entry(handle)
        assert entry is not None
        self._entry = entry

    def get_content_length(self) -> int:
        return self._entry.size

    def get_content_type(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def get_creation_date(self) -> float:
        return float(self._entry.ctime)

    def get_last_modified(self) -> float:
        return float(self._entry.mtime)

    def get_etag(self) -> str:
        return f"{self._handle}-{self._entry.size}"

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> io.BufferedReader:
        stream = Stream(self._backend.remote_file(self._handle))
        return io.BufferedReader(_StreamFile(stream, self._entry.size), buffer_size=1 << 20)

    def begin_write(self, *, content_type: str | None = None) -> Any:
        return self.provider.spool_for(self.path)

    def end_write(self, *, with_errors: bool) -> None:
        node = self._backend.get(self._handle)
        folder = node.parent if node is not None else None
        if folder is None:
            raise DAVError(HTTP_FORBIDDEN)
        self.provider.finish_put(self.path, folder, self.name, self._handle, with_errors)

    def handle_delete(self) -> bool:
        self.provider.remove(self._handle)
        return True

    def handle_move(self, dest_path: str) -> bool:
        self.provider.move(self._handle, dest_path)
        return True

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        raise DAVError(HTTP_FORBIDDEN)  # no server-side copy through WebDAV yet


class _NewFile(DAVNonCollection):  # type: ignore[misc]
    """A file a PUT is about to create (nothing exists on MEGA until its upload)."""

    def __init__(self, path: str, environ: dict[str, Any], folder: str, name: str) -> None:
        super().__init__(path, environ)
        self._folder = folder
        self._name = name

    def get_content_length(self) -> int:
        return 0

    def get_content_type(self) -> str:
        return "application/octet-stream"

    def get_etag(self) -> None:
        return None

    def support_etag(self) -> bool:
        return False

    def get_content(self) -> io.BytesIO:
        return io.BytesIO()

    def begin_write(self, *, content_type: str | None = None) -> Any:
        return self.provider.spool_for(self.path)

    def end_write(self, *, with_errors: bool) -> None:
        self.provider.finish_put(self.path, self._folder, self._name, None, with_errors)


class _Folder(DAVCollection):  # type: ignore[misc]
    def __init__(self, path: str, environ: dict[str, Any], backend: Backend, handle: str) -> None:
        super().__init__(path, environ)
        self._backend = backend
        self._handle = handle
        self._entry = backend.view.entry(handle)

    def get_member_names(self) -> list[str]:
        return [name for name, _ in self._backend.view.listing(self._handle)]

    def get_member(self, name: str) -> Any:
        path = self.path.rstrip("/") + "/" + name
        return self.provider.get_resource_inst(path, self.environ)

    def get_creation_date(self) -> float | None:
        return float(self._entry.ctime) if self._entry is not None else None

    def get_last_modified(self) -> float | None:
        return float(self._entry.mtime) if self._entry is not None else None

    def create_empty_resource(self, name: str) -> _NewFile:
        self.provider.writable()
        path = self.path.rstrip("/") + "/" + name
        return _NewFile(path, self.environ, self._handle, unescape_name(name))

    def create_collection(self, name: str) -> None:
        self.provider.writable()
        self.provider.call(lambda: self._backend.mkdir(self._handle, unescape_name(name)))

    def support_recursive_delete(self) -> bool:
        return True

    def delete(self) -> None:
        self.provider.remove(self._handle)

    def handle_delete(self) -> bool:
        self.provider.remove(self._handle)
        return True

    def handle_move(self, dest_path: str) -> bool:
        self.provider.move(self._handle, dest_path)
        return True

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        raise DAVError(HTTP_FORBIDDEN)


class MegaDAVProvider(DAVProvider):  # type: ignore[misc]
    """The backend's tree as read-only WebDAV resources (paths of display names)."""

    def __init__(self, backend: Backend, *, read_only: bool = True) -> None:
        super().__init__()
        self.backend = backend
        self.read_only = read_only or backend.read_only
        self._spool = tempfile.mkdtemp(prefix="megafast-webdav-")  # 0700
        self._open: dict[str, tuple[str, Any]] = {}

    def is_readonly(self) -> bool:
        return self.read_only

    # -- writes (PUT to a private spool file, uploaded when the body is complete) ---------
    def writable(self) -> None:
        if self.read_only:
            raise DAVError(HTTP_FORBIDDEN)

    def call(self, action: Any) -> Any:
        """Run a change on MEGA; its failure as a WebDAV status."""
        try:
            return action()
        except OverQuotaError:
            raise DAVError(HTTP_INSUFFICIENT_STORAGE) from None
        except PermissionError:
            raise DAVError(HTTP_FORBIDDEN) from None
        except MegaError as exc:
            raise DAVError(HTTP_BAD_GATEWAY, str(exc)) from None

    def spool_for(self, path: str) -> Any:
        self.writable()
        fd, spool = tempfile.mkstemp(dir=self._spool)
        f = os.fdopen(fd, "wb")
        self._open[path] = (spool, f)
        return f

    def finish_put(
        self, path: str, folder: str, name: str, replaces: str | None, with_errors: bool
    ) -> None:
        opened = self._open.pop(path, None)
        if opened is None:
            return
        spool, f = opened
        try:
            f.close()
            if with_errors:
                return
            new = self.call(lambda: self.backend.upload(spool, folder, name, time.time()))
            if replaces is not None and replaces != new:
                self.call(lambda: self.backend.remove(replaces, permanent=False))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(spool)

    def remove(self, handle: str) -> None:
        self.writable()
        if handle == self.backend.view.root():
            raise DAVError(HTTP_FORBIDDEN)
        self.call(lambda: self.backend.remove(handle, permanent=False))

    def move(self, handle: str, dest_path: str) -> None:
        self.writable()
        parts = [p for p in dest_path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise DAVError(HTTP_FORBIDDEN)
        parent = self.backend.view.lookup("/" + "/".join(parts[:-1]))
        if parent is None:
            raise DAVError(HTTP_FORBIDDEN)
        target = self.backend.view.child(parent, parts[-1])
        if target is not None and target != handle:
            self.call(lambda: self.backend.remove(target, permanent=False))
        self.call(lambda: self.backend.move(handle, parent, unescape_name(parts[-1])))

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> Any:
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return None
        handle = self.backend.view.lookup("/" + "/".join(parts))
        entry = self.backend.view.entry(handle) if handle is not None else None
        if handle is None or entry is None:
            return None
        cls = _Folder if entry.is_dir else _File
        return cls(path or "/", environ, self.backend, handle)


class _Body:
    """A request body that ends after ``Content-Length`` bytes (wsgiref hands the socket
    itself to the application, and wsgidav reads a PUT until an empty read)."""

    def __init__(self, raw: Any, length: int) -> None:
        self._raw = raw
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._raw.read(want)
        self._left -= len(data)
        if not data:
            self._left = 0
        return bytes(data)

    def readline(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._raw.readline(want)
        self._left -= len(data)
        return bytes(data)


def _status(start_response: Callable[..., Any], status: str, headers: list[Any]) -> list[bytes]:
    start_response(status, [*headers, ("Content-Length", "0")])
    return [b""]


def _guard(
    app: Callable[..., Iterable[bytes]], token: str | None, basic: str | None
) -> Callable[..., Iterable[bytes]]:
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if not authorized(environ.get("HTTP_AUTHORIZATION", ""), query, token, basic):
            return _status(
                start_response,
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="megafast"')],
            )
        length = environ.get("CONTENT_LENGTH") or ""
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            return _status(start_response, "411 Length Required", [])
        environ["wsgi.input"] = _Body(environ["wsgi.input"], int(length) if length.isdigit() else 0)
        return app(environ, start_response)

    return guarded


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass


def make_webdav_server(
    backend: Backend,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    token: str | None = None,
    basic: str | None = None,
    read_only: bool = True,
) -> WSGIServer:
    """A threaded WSGI server of the backend over WebDAV; same auth rule as the HTTP server
    (required unless ``host`` is a loopback address). Without ``read_only``: PUT, MKCOL,
    DELETE (to the Rubbish Bin) and MOVE."""
    if not is_loopback(host) and token is None and basic is None:
        raise PermissionError(f"serving on {host} (not loopback) needs a token or basic auth")
    config = {
        "provider_mapping": {"/": MegaDAVProvider(backend, read_only=read_only)},
        "simple_dc": {"user_mapping": {"*": True}},  # megafast's own check runs first
        "http_authenticator": {"accept_basic": True, "accept_digest": False},
        "lock_storage": not read_only,  # clients that write LOCK first
        "property_manager": None,
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": True},
    }
    app = _guard(WsgiDAVApp(config), token, basic)
    return make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
