"""The streamed ``f`` answer under cuts (issue 18): a cut mid-answer asks again and goes on
past the bytes already handed over once they are checked to be the same; an answer that
changed in between raises instead of being spliced; bytes are handed over as they arrive."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator

import pytest

from megafast._wire.api import ApiClient
from megafast._wire.retry import RetryPolicy
from megafast.errors import MegaError, RetryExhaustedError

BODY = json.dumps([{"f": [{"h": f"H{i:07d}", "t": 0, "s": i} for i in range(20_000)]}]).encode()

Step = Callable[[http.server.BaseHTTPRequestHandler], None]


def _cut_after(n: int, body: bytes = BODY) -> Step:
    def step(h: http.server.BaseHTTPRequestHandler) -> None:
        _head(h, len(body))
        h.wfile.write(body[:n])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(2)

    return step


def _whole(body: bytes = BODY) -> Step:
    def step(h: http.server.BaseHTTPRequestHandler) -> None:
        _head(h, len(body))
        h.wfile.write(body)

    return step


def _stall_after(n: int, release: threading.Event) -> Step:
    def step(h: http.server.BaseHTTPRequestHandler) -> None:
        _head(h, len(BODY))
        h.wfile.write(BODY[:n])
        h.wfile.flush()
        release.wait(30)
        h.wfile.write(BODY[n:])

    return step


def _head(h: http.server.BaseHTTPRequestHandler, length: int) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(length))
    h.end_headers()


class _Api:
    """``POST /cs`` answered by ``script`` in turn (the last step repeats)."""

    def __init__(self, script: list[Step]) -> None:
        self.script = script
        self.calls = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                step = outer.script[min(outer.calls, len(outer.script) - 1)]
                outer.calls += 1
                step(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]  # resets
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[Callable[[list[Step]], _Api]]:
    servers: list[_Api] = []

    def make(script: list[Step]) -> _Api:
        servers.append(_Api(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _client(url: str) -> ApiClient:
    return ApiClient(url, retry=RetryPolicy.fast())


def test_a_listing_cut_twice_is_read_on_past_what_arrived(api) -> None:
    srv = api([_cut_after(70_001), _cut_after(300_003), _whole()])
    assert b"".join(_client(srv.url).stream({"a": "f", "c": 1})) == BODY
    assert srv.calls == 3


def test_a_listing_that_changed_after_a_cut_raises_instead_of_splicing(api) -> None:
    other = BODY.replace(b"H0000001", b"H9999999")
    srv = api([_cut_after(300_000), _whole(other)])
    with pytest.raises(MegaError, match="changed"):
        b"".join(_client(srv.url).stream({"a": "f", "c": 1}))


def test_a_listing_cut_every_time_gives_up(api) -> None:
    srv = api([_cut_after(70_001)])  # the same 70 001 bytes every time: nothing new
    with pytest.raises(RetryExhaustedError):
        b"".join(_client(srv.url).stream({"a": "f", "c": 1}))


def test_listing_bytes_are_handed_over_while_the_connection_is_live(api) -> None:
    release = threading.Event()
    srv = api([_stall_after(200_000, release)])
    chunks = _client(srv.url).stream({"a": "f", "c": 1})
    got: list[bytes] = []
    worker = threading.Thread(target=lambda: got.append(next(chunks)))
    worker.start()
    worker.join(timeout=20)
    returned_while_stalled = not worker.is_alive()
    release.set()
    worker.join(timeout=20)
    assert returned_while_stalled and got and BODY.startswith(got[0])
    assert got[0] + b"".join(chunks) == BODY
