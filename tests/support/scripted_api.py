"""A scripted MEGA API: a real HTTP server on 127.0.0.1 whose answers each test chooses."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Script", "ScriptedAPI"]

# an answer is (status, headers, body text) or a float: stall that many seconds, then 200 "[0]"
Script = list[Any]


class ScriptedAPI:
    """A real HTTP server that answers ``/cs`` from a script and records every request."""

    def __init__(self, port: int = 0) -> None:
        self.script: Script = []
        self.default: Any = (200, {}, "[0]")
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.check_hashcash = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = urlsplit(self.path)
                record = {
                    "path": url.path,
                    "params": dict(parse_qsl(url.query)),
                    "body": body,
                    "hashcash": self.headers.get("X-Hashcash"),
                    "conn": id(self.connection),
                }
                with outer.lock:
                    outer.requests.append(record)
                    step = outer.script.pop(0) if outer.script else outer.default
                if callable(step):
                    step = step(record)
                if isinstance(step, float):
                    time.sleep(step)
                    step = (200, {}, "[0]")
                status, headers, text = step
                data = text.encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
