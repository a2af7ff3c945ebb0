"""The emulator's HTTP front: ``/cs`` (API), ``/dl/<token>`` (downloads), ``/ul/<token>`` (uploads).

HTTP/1.1 keep-alive, one thread per connection. Download bodies go out with ``sendfile``
when no fault or throttle is active; upload bodies are read into a reused buffer and
written with ``pwrite`` at their offset, so no file is ever held in memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._api import MAX_BODY, Body, Pieces, Service, Upload
from ._crypto import b64encode
from ._fileattrs import MAX_FILE_ATTRIBUTE
from ._uploadcheck import PieceChecksum, expected_checksum, piece_ack, uncovered

log = logging.getLogger("megafast.testing")

_BUF = 1 << 20
_SENDFILE_STEP = 1 << 24


class _Drop(Exception):
    """Abandon the connection without an answer (a fault, or a client that went away)."""


def _libc_connect() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).connect
    except (OSError, AttributeError):  # no C library to load (not Linux)
        return None


_CONNECT = _libc_connect() if sys.platform.startswith("linux") else None
_UNSPEC = struct.pack("H14x", socket.AF_UNSPEC)  # a sockaddr of family AF_UNSPEC


def _cut(sock: socket.socket) -> None:
    """End ``sock`` abruptly, as an outage or ``ss -K`` does: on Linux a connect() to
    AF_UNSPEC aborts the connection with a reset (the peer reads what was already queued,
    then ECONNRESET; a thread blocked on the socket wakes with an error); elsewhere a
    shutdown (the peer sees an early end)."""
    with contextlib.suppress(OSError, ValueError):
        fd = sock.fileno()
        if fd >= 0 and _CONNECT is not None and _CONNECT(fd, _UNSPEC, len(_UNSPEC)) == 0:
            return
        sock.shutdown(socket.SHUT_RDWR)


def _pace(done: int, bandwidth: float | None, began: float) -> None:
    """Sleep until ``done`` bytes since ``began`` (monotonic seconds) keep to ``bandwidth``
    bytes/s (None: no limit)."""
    if bandwidth is not None:
        ahead = done / bandwidth - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(ahead)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], service: Service) -> None:
        self.service = service
        self.open_sockets: set[socket.socket] = set()
        self.transfer_sockets: set[socket.socket] = set()  # moving a transfer body now
        self.sockets_lock = threading.Lock()
        self._next_drop: float | None = None
        self.per_ip: dict[str, int] = {}  # open connections per client address
        #: connections the cut clock cut: their handlers stop at once, as the bytes a
        #: client had queued in this kernel's buffers never crossed the emulated link
        self.cut_sockets: set[socket.socket] = set()
        self._closing = threading.Event()
        self.ssl_context: ssl.SSLContext | None = None  # set: HTTPS (see _tls)
        super().__init__(address, _Handler)
        self._clock = threading.Thread(
            target=self._cut_clock, name="megafast-emulator-cuts", daemon=True
        )
        self._clock.start()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        # Known to the cut clock from the moment it is accepted, before its thread runs.
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        # Closed under the lock: the cut clock never acts on a descriptor number that was
        # closed and given to another file meanwhile.
        with self.sockets_lock:
            self.open_sockets.discard(request)
            self.cut_sockets.discard(request)
            super().shutdown_request(request)

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()

    def _cut_clock(self) -> None:
        """The ``cut_every`` fault: at each tick of its clock, cut every open connection."""
        inj = self.service.faults
        while not self._closing.is_set():
            now = time.monotonic()
            tick = inj.next_cut(now)
            if tick is None:
                self._closing.wait(0.05)
                continue
            epoch = inj.cut_epoch
            if self._closing.wait(min(tick - now, 0.05)) or time.monotonic() < tick:
                continue  # a short nap, so that a changed setting takes effect quickly
            if inj.cut_epoch == epoch and inj.faults.cut_every is not None:
                inj.count("cut_ticks")
                inj.count("cut", self.cut_all_connections())

    def cut_all_connections(self) -> int:
        """Cut every open connection at once, as a network outage does (the peer sees a
        reset or an early end); returns how many were cut."""
        with self.sockets_lock:
            socks = list(self.open_sockets)
            self.cut_sockets.update(socks)
            for s in socks:
                _cut(s)
        return len(socks)

    def get_request(self) -> tuple[socket.socket, object]:
        """Accept a connection; with TLS, its handshake happens in its own thread later."""
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def service_actions(self) -> None:
        """Between polls of ``serve_forever``: the ``drop_every`` fault (kills every
        connection moving a transfer body when its jittered timer runs out)."""
        inj = self.service.faults
        now = time.monotonic()
        if inj.faults.drop_every is None:
            self._next_drop = None
            return
        if self._next_drop is None:
            self._next_drop = inj.next_timer_drop(now)
        elif now >= self._next_drop:
            with self.sockets_lock:
                socks = list(self.transfer_sockets)
            for s in socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            if socks:
                inj.count("timer_drop", len(socks))
            self._next_drop = inj.next_timer_drop(now)

    def close_all_connections(self) -> None:
        with self.sockets_lock:
            socks = list(self.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that resets its connection is not an error worth a traceback.
        log.debug("emulator: connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MegaEmulator/1"
    sys_version = ""
    timeout = 300  # seconds of idle keep-alive before the thread gives up
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        limit = self.service.faults.faults.max_connections_per_ip
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)
            ip = self.client_address[0]
            count = self.server.per_ip[ip] = self.server.per_ip.get(ip, 0) + 1
        # a connection beyond the per-address limit gets 429 on its requests, then closes
        self._over_limit = limit is not None and count > limit
        self._buf: bytearray | None = None
        self._entry: dict | None = None
        if self.service.faults.cut_phase("connect"):
            _cut(self.connection)  # the request is never read

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
            ip = self.client_address[0]
            self.server.per_ip[ip] -= 1
            if not self.server.per_ip[ip]:
                del self.server.per_ip[ip]
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("emulator: " + format, *args)

    # --- helpers -----------------------------------------------------------------------

    @property
    def service(self) -> Service:
        return self.server.service

    def _latency(self) -> None:
        delay = self.service.faults.faults.latency
        if delay > 0:
            time.sleep(delay)

    def _reply(
        self,
        status: int,
        body: Body = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Send an answer; a :class:`Pieces` body goes out piece by piece."""
        length, pieces = body if isinstance(body, Pieces) else (len(body), (body,))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "X-Hashcash, X-MEGA-Time-Left")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            for piece in pieces:
                if piece:
                    self.wfile.write(piece)

    def _count(self, n: int) -> None:
        if self._entry is not None:
            self._entry["bytes"] += n

    def _buffer(self) -> bytearray:
        if self._buf is None:
            self._buf = bytearray(_BUF)
        return self._buf

    def _body_length(self) -> int | None:
        """Content-Length, or None for a chunked body; raises ValueError when malformed."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        value = self.headers.get("Content-Length")
        if value is None:
            return 0
        n = int(value)
        if n < 0:
            raise ValueError("negative Content-Length")
        return n

    def _iter_body(self, step: int | None = None, pay: Callable[[int], None] | None = None):
        """Yield memoryviews of the request body (Content-Length or chunked), via one buffer,
        at most ``step`` bytes at a time; ``pay(n)`` runs before ``n`` bytes are read (a
        paced upload waits for its bandwidth first, so a cut during the wait takes nothing)."""
        view = memoryview(self._buffer())[:step]
        length = self._body_length()
        if length is not None:
            yield from self._read_exactly(view, length, pay)
            return
        while True:  # chunked
            line = self.rfile.readline(1024)
            if not line:
                raise _Drop("client closed the connection mid-body")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _Drop("malformed chunked body") from None
            if size < 0:
                raise _Drop("malformed chunked body")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield from self._read_exactly(view, size, pay)
            self.rfile.readline(8)

    def _read_exactly(self, view: memoryview, left: int, pay: Callable[[int], None] | None = None):
        """Yield the next ``left`` bytes of the body as slices of ``view`` (reused)."""
        while left:
            want = min(left, len(view))
            if pay is not None:
                pay(want)
            self._check_cut()
            n = self.rfile.readinto(view[:want])
            if not n:
                raise _Drop("client closed the connection mid-body")
            left -= n
            yield view[:n]

    def _read_body(self, limit: int) -> bytes:
        out = bytearray()
        for piece in self._iter_body():
            out += piece
            if len(out) > limit:
                raise ValueError("body too large")
        return bytes(out)

    def _unexpected(self) -> None:
        """A bug or an input we did not foresee: count it, log it, close this connection
        (the server goes on serving everyone else)."""
        self.service.stats.count("server_errors")
        where = urlsplit(self.path).path  # not the query: it holds session ids
        log.exception("emulator: unexpected error serving %s %s", self.command, where)
        self._drop()

    def _check_cut(self) -> None:
        """Stop when the cut clock cut this connection (what its kernel still buffers is
        not read: those bytes never crossed the emulated link)."""
        if self.connection in self.server.cut_sockets:
            raise _Drop("fault: the connection was cut")

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # --- routing -----------------------------------------------------------------------

    def do_OPTIONS(self) -> None:
        self._reply(
            200,
            headers={
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, X-Hashcash, Range",
            },
        )

    def do_POST(self) -> None:
        self._route(self._route_post)

    def do_GET(self) -> None:
        self._route(self._route_get)

    do_HEAD = do_GET

    def _route(self, serve: Callable[[str, str], None]) -> None:
        """``serve(path, query)``; a fault drop, a client that went away or a bug ends
        this connection only."""
        try:
            if self._over_limit:
                self.service.stats.count("connections_refused")
                self.close_connection = True
                self._reply(429, b"", content_type="text/plain")
                return
            parts = urlsplit(self.path)
            serve(parts.path.rstrip("/"), parts.query)
        except _Drop:
            self._drop()
        except (TimeoutError, ConnectionError, BrokenPipeError, ssl.SSLError):
            self.close_connection = True  # the client went away (or broke TLS)
        except Exception:
            self._unexpected()

    def _route_post(self, path: str, query: str) -> None:
        if path == "/cs":
            self._api(query)
        elif self._route_sc(path, query):
            pass
        elif path.startswith("/ul/"):
            self._transfer("upload", self._upload, path[4:])
        elif path.startswith("/dl/"):  # MEGA's SDK POSTs (an empty body) to download URLs
            try:
                self._read_body(MAX_BODY)
            except ValueError:  # a malformed Content-Length, or a body past the limit
                self.close_connection = True
                self._reply(400)
                return
            self._transfer("download", self._download, path[4:])
        elif path.startswith("/fa/"):
            self._file_attr(path[4:])
        else:
            self.close_connection = True
            self._reply(404)

    def _route_get(self, path: str, query: str) -> None:
        if self._route_sc(path, query):
            pass
        elif path.startswith("/dl/"):
            self._transfer("download", self._download, path[4:])
        elif path in ("", "/"):
            self._reply(200, b"MEGA emulator\n", content_type="text/plain")
        else:
            self._reply(404)

    def end_headers(self) -> None:
        """Send the buffered headers; the ``cut_phase`` fault may cut a transfer's answer
        half-way through them (``headers``) or right after them (``body``)."""
        inj = self.service.faults
        if self._entry is not None and inj.cut_phase("headers"):
            head = b"".join(getattr(self, "_headers_buffer", []))
            self._headers_buffer: list[bytes] = []
            self.wfile.write(head[: len(head) // 2])
            raise _Drop("fault: cut during the headers")
        super().end_headers()
        if self._entry is not None and inj.cut_phase("body"):
            raise _Drop("fault: cut before the first body byte")

    def _file_attr(self, rest: str) -> None:
        """The attribute servers (thumbnails, previews): see :mod:`._fileattrs`."""
        try:
            body = self._read_body(MAX_FILE_ATTRIBUTE)
        except ValueError:
            self.close_connection = True
            self._reply(200, b"-2")
            return
        self._reply(200, self.service.serve_fa(rest, body), content_type="application/octet-stream")

    def send_response(self, code: int, message: str | None = None) -> None:
        if self._entry is not None:
            self._entry["status"] = code
        super().send_response(code, message)

    def _transfer(self, kind: str, serve: Callable[[str], None], rest: str) -> None:
        """Serve one transfer request and record it in the emulator's stats."""
        token, _, where = rest.partition("/")
        self._entry = {"token": token, "where": where, "status": None, "bytes": 0}
        stats = self.service.stats
        stats.transfer_begin()
        with self.server.sockets_lock:
            self.server.transfer_sockets.add(self.connection)
        try:
            serve(rest)
        finally:
            with self.server.sockets_lock:
                self.server.transfer_sockets.discard(self.connection)
            entry, self._entry = self._entry, None
            stats.transfer_end(kind, entry)

    # --- /cs ---------------------------------------------------------------------------

    def _api(self, query: str) -> None:
        self._latency()
        try:
            params = dict(parse_qsl(query, keep_blank_values=True))
            body = self._read_body(MAX_BODY)
        except ValueError:
            self.close_connection = True
            self._reply(200, b"-2")
            return
        client = f"{self.client_address[0]}:{self.client_address[1]}"
        try:
            status, headers, answer = self.service.handle_cs(
                params, body, self.headers.get("X-Hashcash"), client
            )
        except Exception:  # never a 500 from /cs
            log.exception("emulator: /cs failed")
            status, headers, answer = 200, {}, b"-1"
        self._reply(status, answer, headers)

    # --- /sc and its wait URL (GET or POST) ---------------------------------------------

    def _route_sc(self, path: str, query: str) -> bool:
        """Serve ``/sc`` or ``/wsc`` (action packets) and ``/wsp/<token>`` (the long poll);
        False for other paths."""
        changes = self.service.changes
        if path in ("/sc", "/wsc", "/sc/wsc", "/wsc/lp"):
            self._latency()
            with contextlib.suppress(ValueError):
                self._read_body(MAX_BODY)  # clients may POST an empty body
            params = dict(parse_qsl(query, keep_blank_values=True))
            self.service.stats.count("sc_requests")
            if path == "/wsc":  # MEGA's SDK: packets, or where to long-poll (see _changes)
                answer = changes.catch_up(params, self.service.base_url() + "/wsc/lp")
            elif path == "/wsc/lp":
                answer = changes.long_poll(params)
            elif path == "/sc/wsc":
                answer = changes.catch_up(params)
            elif "c" in params and "sn" not in params:  # the SDK's user alerts: none here
                answer = {"c": [], "u": []} if changes.user_of(params) else -15
            else:
                answer = changes.poll(params, self.service.base_url())
            body = b"0" if answer is None else json.dumps(answer, separators=(",", ":")).encode()
            self._reply(200, body)
            return True
        if path.startswith("/wsp/"):
            self._latency()
            with contextlib.suppress(ValueError):
                self._read_body(MAX_BODY)
            token = path[5:].partition("/")[0]
            # an empty body: "poll /sc again" (after news, or after the wait timed out)
            self._reply(200 if changes.wait(token) else 404, b"", content_type="text/plain")
            return True
        return False

    # --- downloads ---------------------------------------------------------------------

    def _download(self, rest: str) -> None:
        self._latency()
        svc = self.service
        token, _, rng = rest.partition("/")
        grant = svc.grants.get(token)
        if grant is None:
            self._reply(404, content_type="text/plain")
            return
        if grant.epoch != svc.epoch or grant.expires < time.time():
            self._reply(403, content_type="text/plain")
            return
        inj = svc.faults
        f = inj.faults
        if f.over_quota:
            inj.count("over_quota")
            self._reply(
                509,
                headers={"X-MEGA-Time-Left": str(f.over_quota_time_left)},
                content_type="text/plain",
            )
            return
        faulty = inj.applies("download")
        if faulty and inj.fire("transfer_error", f.transfer_error_rate, f.transfer_error_limit):
            self._reply(inj.choice(f.transfer_error_statuses), content_type="text/plain")
            return
        size = grant.size
        start, end = 0, size - 1
        status = 200
        extra: dict[str, str] = {}
        try:
            if rng:
                a, _, b = rng.partition("-")
                start = int(a)
                end = int(b) if b else size - 1
            elif self.headers.get("Range"):
                unit, _, spec = self.headers["Range"].partition("=")
                if unit.strip() != "bytes" or "," in spec:
                    raise ValueError
                a, _, b = spec.strip().partition("-")
                if a:
                    start = int(a)
                    end = int(b) if b else size - 1
                else:  # suffix range
                    start = max(0, size - int(b))
                status = 206
        except ValueError:
            self._reply(416, content_type="text/plain")
            return
        end = min(end, size - 1)
        if start < 0 or (start > end and not (size == 0 and start == 0)):
            self._reply(
                416, headers={"Content-Range": f"bytes */{size}"}, content_type="text/plain"
            )
            return
        count = max(0, end - start + 1)
        if status == 206:
            extra["Content-Range"] = f"bytes {start}-{end}/{size}"
        try:
            fd = os.open(grant.path, os.O_RDONLY)
        except OSError:
            self._reply(404, content_type="text/plain")
            return
        try:
            drop_at = self._drop_point(faulty)
            corrupt_at = None
            if faulty and count and inj.fire("corrupt", f.corrupt_rate, f.corrupt_limit):
                corrupt_at = inj.randrange(count)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(count))
            self.send_header("Access-Control-Allow-Origin", "*")
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD" or not count:
                return
            plain = not isinstance(self.connection, ssl.SSLSocket)  # sendfile: no TLS
            paced = f.bandwidth is not None or f.link_bandwidth is not None
            if plain and drop_at is None and corrupt_at is None and not paced:
                self._sendfile(fd, start, count)
            else:
                self._send_loop(fd, start, count, drop_at, corrupt_at, f.bandwidth)
        finally:
            os.close(fd)

    def _drop_point(self, faulty: bool) -> int | None:
        """After how many body bytes this transfer's connection drops (a drop fault that
        fires), or None."""
        inj = self.service.faults
        f = inj.faults
        if (
            faulty
            and f.drop_after_bytes is not None
            and inj.fire("drop", f.drop_rate, f.drop_limit)
        ):
            return f.drop_after_bytes
        return None

    def _sendfile(self, fd: int, offset: int, count: int) -> None:
        sock = self.connection
        sent_total = 0
        while sent_total < count:
            try:
                sent = os.sendfile(
                    sock.fileno(), fd, offset + sent_total, min(count - sent_total, _SENDFILE_STEP)
                )
            except BlockingIOError:
                continue
            if sent == 0:
                raise _Drop("file shorter than promised")
            sent_total += sent
            self._count(sent)

    def _step(self, most: int | None, bandwidth: float | None) -> int | None:
        """Body bytes moved at a time when a cap paces them (a twentieth of a second of the
        tightest), at most ``most``; None when nothing paces them."""
        rates = [r for r in (bandwidth, self.service.faults.faults.link_bandwidth) if r]
        if not rates:
            return None
        step = max(1024, int(min(rates) / 20))
        return step if most is None else min(most, step)

    def _cross_link(self, direction: str, n: int) -> None:
        """Wait while ``n`` body bytes cross the link all connections share (if any)."""
        wait = self.service.faults.link_wait(direction, n)
        if wait > 0:
            time.sleep(wait)

    def _send_loop(
        self,
        fd: int,
        offset: int,
        count: int,
        drop_at: int | None,
        corrupt_at: int | None,
        bandwidth: float | None,
    ) -> None:
        buf = self._buffer()
        view = memoryview(buf)
        step = self._step(len(buf), bandwidth) or len(buf)
        began = time.monotonic()
        done = 0
        while done < count:
            n = min(step, count - done)
            if drop_at is not None and done + n > drop_at:
                n = drop_at - done
                if n <= 0:
                    raise _Drop("fault: connection dropped")
            got = os.preadv(fd, [view[:n]], offset + done)
            if got <= 0:
                raise _Drop("file shorter than promised")
            if corrupt_at is not None and done <= corrupt_at < done + got:
                buf[corrupt_at - done] ^= 0x5A
            self._check_cut()
            self.wfile.write(view[:got])
            done += got
            self._count(got)
            _pace(done, bandwidth, began)
            self._cross_link("download", got)
        if drop_at is not None and done >= drop_at:
            raise _Drop("fault: connection dropped")

    # --- uploads -----------------------------------------------------------------------

    def _upload(self, rest: str) -> None:
        self._latency()
        svc = self.service
        token, _, off = rest.partition("/")
        upload = svc.uploads.get(token)
        params = dict(parse_qsl(urlsplit(self.path).query))
        try:
            offset = int(off) if off else 0
            if offset < 0:
                raise ValueError
            length = self._body_length()
            expected = expected_checksum(params)  # ?d= (or ?c=): checked as MEGA checks it
        except ValueError:
            self._refuse_upload(b"-2", length_known=False)
            return
        if upload is None:
            self._refuse_upload(b"-9")
            return
        if upload.epoch != svc.epoch or upload.expires < time.time():
            self._refuse_upload(b"-8")
            return
        inj = svc.faults
        f = inj.faults
        faulty = inj.applies("upload")
        if faulty and inj.fire("transfer_error", f.transfer_error_rate, f.transfer_error_limit):
            self._refuse_upload(b"", status=inj.choice(f.transfer_error_statuses))
            return
        if offset > upload.size or (length is not None and offset + length > upload.size):
            self._refuse_upload(b"-2")
            return
        check = PieceChecksum() if expected is not None else None
        received = self._receive(upload, offset, self._drop_point(faulty), f.bandwidth, check)
        if received is None:
            self._reply(200, b"-2", content_type="text/plain")
            return
        if check is not None and check.digest() != expected:
            svc.stats.count("upload_checksum_mismatch")
            self._reply(200, b"-14", content_type="text/plain")  # EKEY: send the piece again
            return
        with upload.lock:
            if upload.token is None and upload.add_range(offset, offset + received):
                upload.token = svc.finish_upload(upload)
            svc.save_upload(upload)  # what arrived survives a restart (with --data-dir)
            token_bytes = upload.token
        if token_bytes is None:
            self._reply(200, piece_ack(params), content_type="text/plain")
            return
        body = token_bytes if upload.raw_token else b64encode(token_bytes).encode()
        self._reply(200, body, content_type="text/plain")

    def _refuse_upload(self, body: bytes, status: int = 200, length_known: bool = True) -> None:
        """Answer an upload POST without storing it; read the body first so the client sees
        the answer (not a reset) and the connection stays usable."""
        if length_known:
            for _ in self._iter_body():
                pass
        else:
            self.close_connection = True
        self._reply(status, body, content_type="text/plain")

    def _receive(
        self,
        upload: Upload,
        offset: int,
        drop_at: int | None,
        bandwidth: float | None,
        check: PieceChecksum | None = None,
    ) -> int | None:
        """Write the body at ``offset`` (where no earlier piece has landed); the number of
        bytes, or None when it overflows. ``check`` sums the body as it arrives."""
        with upload.lock:
            done_ranges = [r[:] for r in upload.ranges]
        done = 0
        began = time.monotonic()
        fd = None
        overflow = False
        if upload.token is None:
            try:
                fd = os.open(upload.path, os.O_WRONLY)
            except FileNotFoundError:
                fd = None  # completed meanwhile by a parallel piece: drain, answer the token
        step = self._step(None, bandwidth)
        if bandwidth is not None:
            # A kernel buffer of about 0.1 s of the link: what a client queued beyond it has
            # not crossed the emulated link when a cut comes from outside (ss -K).
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, max(65536, int(bandwidth / 10))
                )
        paid = 0

        def pay(n: int) -> None:
            nonlocal paid
            paid += n
            _pace(paid, bandwidth, began)
            self._cross_link("upload", n)

        try:
            for piece in self._iter_body(step, pay if step is not None else None):
                if drop_at is not None and done + len(piece) > drop_at:
                    raise _Drop("fault: connection dropped")
                if check is not None:
                    check.update(piece)
                at = offset + done
                if at + len(piece) > upload.size:
                    overflow = True
                elif fd is not None:
                    for s, e in uncovered(done_ranges, at, at + len(piece)):
                        os.pwrite(fd, piece[s - at : e - at], s)
                done += len(piece)
                self._count(len(piece))
        finally:
            if fd is not None:
                os.close(fd)
        return None if overflow else done
