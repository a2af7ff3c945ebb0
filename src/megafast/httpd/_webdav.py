"""``megafast webdav``: the same tree, reader and caches over WebDAV (read-only), on wsgidav.

wsgidav asks a :class:`MegaDAVProvider` for resources by path; folders list the display names
of :class:`~megafast.vfs.TreeView` and files hand wsgidav a seekable file object over the
shared :class:`~megafast.vfs.Stream` (wsgidav answers ranges by seeking it). The server is
wsgiref's, threaded; the token / basic-auth rule is the HTTP server's
(:func:`~megafast.httpd._server.authorized`), applied before wsgidav sees a request.
"""

from __future__ import annotations

import io
import mimetypes
import os
import socketserver
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider
from wsgidav.wsgidav_app import WsgiDAVApp

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


class MegaDAVProvider(DAVProvider):  # type: ignore[misc]
    """The backend's tree as read-only WebDAV resources (paths of display names)."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend

    def is_readonly(self) -> bool:
        return True

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


def _guard(
    app: Callable[..., Iterable[bytes]], token: str | None, basic: str | None
) -> Callable[..., Iterable[bytes]]:
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if not authorized(environ.get("HTTP_AUTHORIZATION", ""), query, token, basic):
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="megafast"'), ("Content-Length", "0")],
            )
            return [b""]
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
) -> WSGIServer:
    """A threaded WSGI server of the backend over WebDAV; same auth rule as the HTTP server
    (required unless ``host`` is a loopback address)."""
    if not is_loopback(host) and token is None and basic is None:
        raise PermissionError(f"serving on {host} (not loopback) needs a token or basic auth")
    config = {
        "provider_mapping": {"/": MegaDAVProvider(backend)},
        "simple_dc": {"user_mapping": {"*": True}},  # megafast's own check runs first
        "http_authenticator": {"accept_basic": True, "accept_digest": False},
        "lock_storage": None,
        "property_manager": None,
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": True},
    }
    app = _guard(WsgiDAVApp(config), token, basic)
    return make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
