"""``megafast http``: files and folders served over HTTP, streamed through the shared reader.

GET and HEAD; one byte range per request (``Range: bytes=a-b``, ``a-`` or ``-n``) answered
with 206, an unsatisfiable one with 416 (``Content-Range: bytes */size``); several ranges
are answered with the whole file (200), as RFC 9110 allows. Every file answer carries
``Accept-Ranges: bytes``, an ``ETag`` (the node handle and size: MEGA never changes a node's
bytes, a new version is a new node), ``Last-Modified`` and a ``Content-Type`` guessed from
the name. A folder is an HTML index (its URL ends in ``/``; without it, a redirect).

URL path segments are the mount's display names, percent-encoded. A path that names
nothing below the served root -- ``..`` included -- gets 404. With a token, a request must
carry ``Authorization: Bearer <token>`` or ``?token=<token>``; with basic auth, the user and
password. The server refuses to bind a non-loopback address without one of them.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import html
import ipaddress
import logging
import mimetypes
import queue
import socket
import threading
import time
import urllib.parse
from email.message import Message
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from .._wire.redact import redact
from ..errors import MegaError
from ..vfs._backend import Backend
from ..vfs._reader import Stream

__all__ = ["MegaHTTPServer", "authorized", "parse_range", "is_loopback"]

log = logging.getLogger("megafast.http")
#: Bytes read from the reader and written to the socket at a time (views of cached chunks).
SEND_BLOCK = 4 << 20
#: Seconds a connection may stay silent (reading a request) or stalled (taking a response).
IDLE_SECONDS = 60.0
#: Connections served at once; more are closed at once (each holds a thread).
MAX_CONNECTIONS = 64
#: Header lines a request may carry, and the longest line (bytes), as the standard library's.
MAX_HEADERS = 100
MAX_LINE = 65536


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """The half-open byte range one ``Range`` header asks for: None for the whole file
    (no header, several ranges, another unit, or a header we do not read), ``"416"`` when
    it cannot be satisfied."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "" or int(last) == 0:
            return "416"
        return max(0, size - int(last)), size
    start = int(first)
    if start >= size:
        return "416"
    end = size if last == "" else min(size, int(last) + 1)
    if end <= start:
        return None
    return start, end


def authorized(
    header: str, query: dict[str, list[str]], token: str | None, basic: str | None
) -> bool:
    """Whether a request with ``Authorization: header`` and ``query`` may pass: always without
    ``token`` and ``basic``; else the bearer token (or ``?token=``) or the basic user:password,
    compared in constant time."""
    if token is None and basic is None:
        return True
    scheme, _, value = header.partition(" ")
    if token is not None:
        given = value.strip() if scheme.lower() == "bearer" else query.get("token", [""])[0]
        if hmac.compare_digest(given.encode(), token.encode()):
            return True
    if basic is not None and scheme.lower() == "basic":
        try:
            given_b = base64.b64decode(value.strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(given_b, basic.encode())
    return False


class _Handler(BaseHTTPRequestHandler):
    server: MegaHTTPServer
    raw_requestline: bytes  # set by handle_one_request before parse_request
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS  # a client that sends nothing for this long is dropped
    # each response is written whole (headers with the first body bytes): no wait for an ACK
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        if log.isEnabledFor(logging.INFO):
            log.info("%s %s", self.address_string(), redact(format % args))

    def parse_request(self) -> bool:
        """The request line and headers, read as :class:`BaseHTTPRequestHandler` reads them
        but without the email parser (a Range GET's parse: 0.108 ms with it, 0.061 ms
        without, timed inside the server). HTTP/1.x only (HTTP/0.9's two-word line gets
        400, 2 and later 505); at most :data:`MAX_HEADERS` lines of :data:`MAX_LINE` bytes
        (else 431); a header line with no name, or folded onto the line before, gets 400."""
        self.command = ""
        self.request_version = "HTTP/1.0"  # the version of an error answered before it is known
        self.close_connection = True
        self.requestline = line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        version = words[2] if len(words) == 3 else ""
        number = version[5:].split(".") if version.startswith("HTTP/") else []
        if len(number) != 2 or not all(n.isdigit() and len(n) <= 10 for n in number):
            self.send_error(400, "Bad request line")
            return False
        major, minor = int(number[0]), int(number[1])
        if major >= 2:
            self.send_error(505)
            return False
        self.request_version = version
        self.command, self.path = words[0], words[1]
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        headers = Message()
        for count in range(MAX_HEADERS + 1):
            raw = self.rfile.readline(MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(raw) > MAX_LINE or count == MAX_HEADERS:
                self.send_error(431, "Header line too long" if count < MAX_HEADERS else None)
                return False
            name, colon, value = str(raw, "iso-8859-1").partition(":")
            if not colon or not name or name != name.strip():
                self.send_error(400, "Bad header line")
                return False
            headers[name] = value.strip()
        self.headers = headers
        keep = headers.get("Connection", "").lower()
        older = (major, minor) < (1, 1)
        self.close_connection = keep == "close" or (older and keep != "keep-alive")
        return True

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- plumbing -------------------------------------------------------------------------
    def _plain(self, code: int, text: str, headers: dict[str, str] | None = None) -> None:
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorized(self, query: dict[str, list[str]]) -> bool:
        return authorized(
            self.headers.get("Authorization", ""), query, self.server.token, self.server.basic
        )

    def _serve(self, head: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if not self._authorized(query):
            self._plain(
                401, "authorization required", {"WWW-Authenticate": 'Basic realm="megafast"'}
            )
            return
        raw = url.path
        parts = [urllib.parse.unquote(p, errors="surrogateescape") for p in raw.split("/") if p]
        if any(p in (".", "..") or "/" in p or "\0" in p for p in parts):
            self._plain(404, "not found")
            return
        view = self.server.backend.view
        handle = view.lookup("/" + "/".join(parts))
        entry = view.entry(handle) if handle is not None else None
        if handle is None or entry is None:
            self._plain(404, "not found")
            return
        if entry.is_dir:
            if not raw.endswith("/"):
                self._plain(301, "moved", {"Location": raw + "/"})
                return
            self._index(handle, parts, head)
            return
        self._file(handle, parts[-1] if parts else "file", entry.size, entry.mtime, head)

    def _index(self, handle: str, parts: list[str], head: bool) -> None:
        view = self.server.backend.view
        title = html.escape("/" + "/".join(parts) + ("/" if parts else ""))
        rows = ['<li><a href="../">../</a></li>'] if parts else []
        for name, h in view.listing(handle):
            entry = view.entry(h)
            slash = "/" if entry is not None and entry.is_dir else ""
            href = urllib.parse.quote(name, safe="", errors="surrogateescape") + slash
            rows.append(f'<li><a href="{href}">{html.escape(name)}{slash}</a></li>')
        body = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><ul>{''.join(rows)}</ul></body></html>\n"
        ).encode("utf-8", "surrogateescape")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _file(self, handle: str, name: str, size: int, mtime: int, head: bool) -> None:
        etag = f'"{handle}-{size}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        wanted = parse_range(self.headers.get("Range"), size)
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range != etag:
            wanted = None
        if wanted == "416":
            self._plain(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
            return
        start, end = wanted if isinstance(wanted, tuple) else (0, size)
        try:
            remote = self.server.backend.remote_file(handle)
            stream = Stream(remote, at=start if end - start > SEND_BLOCK else None)
        except MegaError as exc:  # undecryptable, or a size or key we cannot use
            log.warning("cannot serve %s: %s", redact(self.path), exc)
            self._plain(502, "this file cannot be read")
            return
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.send_response(206 if isinstance(wanted, tuple) else 200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
        if isinstance(wanted, tuple):
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        if head or start >= end:
            self.end_headers()
            return
        block = self._header_block()  # sent with the first bytes: one send, not two
        try:
            pos = start
            while pos < end:
                parts: list[bytes | memoryview] = list(
                    stream.views(pos, min(SEND_BLOCK, end - pos))
                )
                if not parts:
                    raise MegaError("the file ended early")
                pos += sum(len(p) for p in parts)
                if block:
                    parts.insert(0, block)
                    block = b""
                self._send(parts)  # straight from the cache to the socket
        except (MegaError, OSError) as exc:
            self.close_connection = True
            if block:  # nothing was sent yet: an honest error answer
                log.warning("GET %s failed: %s", redact(self.path), exc)
                with contextlib.suppress(OSError):
                    self._plain(502, "this file cannot be read")
                return
            # The status line is gone: the only honest answer left is a cut connection.
            log.warning("GET %s failed after the headers: %s", redact(self.path), exc)
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _header_block(self) -> bytes:
        """The response headers so far and their blank line, taken from the handler's buffer
        (what ``end_headers`` would send)."""
        lines: list[bytes] = getattr(self, "_headers_buffer", [])
        lines.append(b"\r\n")
        self._headers_buffer: list[bytes] = []
        return b"".join(lines)

    def _send(self, parts: list[bytes | memoryview]) -> None:
        """Write ``parts`` to the socket in as few ``sendmsg`` calls as it takes."""
        sock = self.connection
        views = [memoryview(p) for p in parts]
        while views:
            sent = sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views.pop(0))
            if views and sent:
                views[0] = views[0][sent:]


class MegaHTTPServer(HTTPServer):
    """Serves ``backend``'s tree on ``(host, port)``; ``token`` / ``basic`` (``user:password``)
    protect it (required unless ``host`` is a loopback address). Connections are served by
    threads that stay for the next one (daemon threads: the server never waits for them)."""

    def __init__(
        self,
        backend: Backend,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        token: str | None = None,
        basic: str | None = None,
    ) -> None:
        if not is_loopback(host) and token is None and basic is None:
            raise PermissionError(f"serving on {host} (not loopback) needs a token or basic auth")
        self.backend = backend
        self.token = token
        self.basic = basic
        if ":" in host and not host.startswith("["):
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), _Handler)
        self.started = time.time()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._jobs: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._idle = 0  # threads waiting for a connection
        self._threads = 0
        self._count_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to an idle serving thread (a new one only when none is idle:
        no thread start per connection), or close it when :data:`MAX_CONNECTIONS` are served."""
        if not self._slots.acquire(blocking=False):
            log.warning("over %d connections: one from %s closed", MAX_CONNECTIONS, client_address)
            self.shutdown_request(request)
            return
        with self._count_lock:
            start = self._idle == 0
            if start:
                self._threads += 1
            else:
                self._idle -= 1
        self._jobs.put((request, client_address))
        if start:
            try:
                threading.Thread(
                    target=self._serve_connections, daemon=True, name="megafast-http"
                ).start()
            except BaseException:
                with self._count_lock:
                    self._threads -= 1
                raise

    def _serve_connections(self) -> None:
        """A serving thread: one connection after another, until the server closes."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            request, client_address = job
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - one connection's failure, as socketserver does
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
                self._slots.release()
            with self._count_lock:  # not after a BaseException: this thread ends then
                self._idle += 1

    def server_close(self) -> None:
        super().server_close()
        with self._count_lock:
            for _ in range(self._threads):
                self._jobs.put(None)  # idle threads end; busy ones end after their connection

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}/"
