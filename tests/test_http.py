"""``megafast http``: ranges, 416, HEAD, ETag, index pages, 404 outside the root, auth, and
ffprobe/ffmpeg reading and seeking a video over HTTP; against the emulator, for real."""

from __future__ import annotations

import base64
import logging
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast.errors import MegaError
from megafast.httpd import MegaHTTPServer, parse_range
from megafast.testing import MegaEmulator
from megafast.vfs import Backend
from mount_helpers import (
    EMAIL,
    PASSWORD,
    Cli,
    ffmpeg_seek_frame,
    ffprobe_duration,
    make_video,
)

DATA = os.urandom(3_000_000)


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest.fixture(scope="module")
def mega(emulator: MegaEmulator, tmp_path_factory: pytest.TempPathFactory) -> Mega:
    here = tmp_path_factory.mktemp("files")
    mega = Mega(api_url=emulator.api_url)
    mega.login(EMAIL, PASSWORD)
    (here / "data.bin").write_bytes(DATA)
    mega.upload(str(here / "data.bin"))
    folder = mega.create_folder("docs")["docs"]
    (here / "note.txt").write_text("a note")
    mega.upload(str(here / "note.txt"), folder)
    (here / "secret.txt").write_text("outside")
    mega.upload(str(here / "secret.txt"))
    return mega


def _serve(backend: Backend, **auth: Any) -> Iterator[MegaHTTPServer]:
    server = MegaHTTPServer(backend, "127.0.0.1", 0, **auth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        backend.close()


@pytest.fixture(scope="module")
def server(mega: Mega) -> Iterator[MegaHTTPServer]:
    yield from _serve(Backend(mega))


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Any:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_get_whole_file(server: MegaHTTPServer) -> None:
    status, headers, body = get(server.url + "data.bin")
    assert status == 200 and body == DATA
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["ETag"].startswith('"')


def test_single_ranges_and_416(server: MegaHTTPServer) -> None:
    url = server.url + "data.bin"
    status, headers, body = get(url, {"Range": "bytes=1000000-1065535"})
    assert status == 206 and body == DATA[1000000:1065536]
    assert headers["Content-Range"] == f"bytes 1000000-1065535/{len(DATA)}"
    status, _, body = get(url, {"Range": "bytes=-100"})
    assert status == 206 and body == DATA[-100:]
    status, _, body = get(url, {"Range": f"bytes={len(DATA) - 10}-"})
    assert status == 206 and body == DATA[-10:]
    status, headers, _ = get(url, {"Range": f"bytes={len(DATA)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(DATA)}"
    status, _, body = get(url, {"Range": "bytes=0-1,5-6"})  # several ranges: the whole file
    assert status == 200 and body == DATA


def test_head_etag_and_content_type(server: MegaHTTPServer) -> None:
    status, headers, body = get(server.url + "docs/note.txt", method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == "6"
    assert headers["Content-Type"] == "text/plain"
    status, _, _ = get(server.url + "docs/note.txt", {"If-None-Match": headers["ETag"]})
    assert status == 304


def test_index_pages_and_redirect(server: MegaHTTPServer) -> None:
    status, headers, body = get(server.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'href="data.bin"' in body and b'href="docs/"' in body
    request = urllib.request.Request(server.url + "docs")
    with urllib.request.urlopen(request, timeout=60) as resp:  # follows the 301
        assert resp.url.endswith("/docs/") and b"note.txt" in resp.read()


def test_a_file_read_again_is_served_without_a_look_at_the_tree(
    server: MegaHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = server.backend
    first = get(server.url + "data.bin", {"Range": "bytes=0-99"})
    looks: list[str] = []
    real = Backend.get

    def spy(self: Backend, handle: str) -> Any:
        looks.append(handle)
        return real(self, handle)

    monkeypatch.setattr(Backend, "get", spy)
    again = get(server.url + "data.bin", {"Range": "bytes=0-99"})
    assert again[2] == first[2] == DATA[:100]
    assert looks == []  # the reader state was known: no node parsed again
    handle = backend.view.lookup("/data.bin")
    assert handle is not None and backend.remote_file(handle) is backend.remote_file(handle)


def _raw(server: MegaHTTPServer, request: bytes) -> bytes:
    """Send ``request`` as it is; everything the server answers until it closes (5 s)."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=5) as sock:
        sock.sendall(request)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            out += b"<still open>"
    return out


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /data.bin\r\n\r\n", b"400"),  # HTTP/0.9's form
        (b"GET /data.bin HTTP/x.1\r\n\r\n", b"400"),
        (b"GET /data.bin HTTP/2.0\r\n\r\n", b"505"),
        (b"GET /data.bin HTTP/1.1\r\nHost x\r\n\r\n", b"400"),  # no colon
        (b"GET /data.bin HTTP/1.1\r\n: x\r\n\r\n", b"400"),  # no name
        (b"GET /data.bin HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", b"400"),
        (b"GET /data.bin HTTP/1.1\r\n" + b"A: b\r\n" * 101 + b"\r\n", b"431"),
        (b"GET /data.bin HTTP/1.1\r\nA: " + b"b" * 70000 + b"\r\n\r\n", b"431"),
    ],
)
def test_bad_requests_get_an_error_and_a_closed_connection(
    server: MegaHTTPServer, request_bytes: bytes, status: bytes
) -> None:
    answer = _raw(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert not answer.endswith(b"<still open>")


def test_connections_stay_open_as_http_1_0_and_1_1_say(server: MegaHTTPServer) -> None:
    get_range = b"GET /data.bin HTTP/1.1\r\nRange: bytes=0-9\r\nX-Case: y\r\n\r\n"
    two = _raw(server, get_range + get_range.replace(b"X-Case: y", b"connection: Close"))
    assert two.count(b"HTTP/1.1 206") == 2 and two.endswith(DATA[:10])  # then closed
    old = _raw(server, b"GET /data.bin HTTP/1.0\r\nrange: BYTES=0-9\r\n\r\n")
    assert old.startswith(b"HTTP/1.1 206") and old.endswith(DATA[:10])  # closed after one
    kept = _raw(server, b"GET /data.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert kept.endswith(b"<still open>")


def test_paths_outside_the_root_get_404(mega: Mega) -> None:
    docs = mega.find("docs")[0]
    backend = Backend(mega)
    backend.select_root(docs)
    for server in _serve(backend):
        assert get(server.url + "note.txt")[0] == 200
        for path in ("../secret.txt", "%2E%2E/secret.txt", "docs/../../secret.txt", "secret.txt"):
            status, _, body = get(server.url + path)
            assert status == 404, path
            assert b"outside" not in body


def test_auth_token_and_basic(mega: Mega) -> None:
    for server in _serve(Backend(mega), token="s3cret"):
        assert get(server.url + "data.bin", method="HEAD")[0] == 401
        assert get(server.url + "data.bin?token=wrong", method="HEAD")[0] == 401
        assert get(server.url + "data.bin?token=s3cret", method="HEAD")[0] == 200
        auth = {"Authorization": "Bearer s3cret"}
        assert get(server.url + "data.bin", auth, method="HEAD")[0] == 200
    for server in _serve(Backend(mega), basic="me:pw"):
        good = {"Authorization": "Basic " + base64.b64encode(b"me:pw").decode()}
        bad = {"Authorization": "Basic " + base64.b64encode(b"me:no").decode()}
        assert get(server.url, bad)[0] == 401
        assert get(server.url, good)[0] == 200


def test_a_query_token_never_reaches_the_log(
    mega: Mega, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = Backend(mega)
    for server in _serve(backend, token="TOPSECRET"):
        assert get(server.url + "data.bin?token=TOPSECRET", method="HEAD")[0] == 200
        assert get(server.url + "data.bin?a=1&token=TOPSECRETX")[0] == 401
        with socket.create_connection((server.server_address[0], server.server_port)) as s:
            s.sendall(b"GET /data.bin?token=TOPSECRET BAD/9\r\n\r\n")  # a 400
            s.recv(4096)

        def fail(handle: Any) -> Any:
            raise MegaError("cannot read")

        monkeypatch.setattr(backend, "remote_file", fail)  # the failure path logs the path
        assert get(server.url + "data.bin?token=TOPSECRET")[0] == 502
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "data.bin" in text and "400" in text and "cannot serve" in text
    assert "TOPSECRET" not in text


def test_non_loopback_needs_auth(mega: Mega) -> None:
    with pytest.raises(PermissionError):
        MegaHTTPServer(Backend(mega), "0.0.0.0", 0)


def test_parse_range_rules() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 5)
    assert parse_range("bytes=2-", 10) == (2, 10)
    assert parse_range("bytes=-3", 10) == (7, 10)
    assert parse_range("bytes=-30", 10) == (0, 10)
    assert parse_range("bytes=10-", 10) == "416"
    assert parse_range("bytes=-0", 10) == "416"
    assert parse_range("bytes=5-2", 10) is None
    assert parse_range("items=1-2", 10) is None
    assert parse_range("bytes=a-b", 10) is None


def test_ffprobe_and_ffmpeg_seek_over_http(mega: Mega, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4")
    mega.upload(str(video))
    for server in _serve(Backend(mega)):
        url = server.url + "clip.mp4"
        assert abs(ffprobe_duration(url) - 4.0) < 0.5
        ffmpeg_seek_frame(url, 3.0, tmp_path / "frame.png")


def test_the_command_prints_its_url_first(
    emulator: MegaEmulator, mega: Mega, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, emulator.api_url)
    cli.login()
    process = subprocess.Popen(
        cli.command("http", "--addr", "127.0.0.1:0"),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        assert line.startswith("http://127.0.0.1:") and line.endswith("/"), line
        status, _, body = get(line + "data.bin", {"Range": "bytes=0-9"})
        assert status == 206 and body == DATA[:10]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_command_refuses_a_public_address_without_auth(
    emulator: MegaEmulator, mega: Mega, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, emulator.api_url)
    cli.login()
    started = time.monotonic()
    done = subprocess.run(
        cli.command("http", "--addr", "0.0.0.0:0"), env=cli.env, capture_output=True, timeout=60
    )
    assert done.returncode != 0 and b"token or basic auth" in done.stderr
    assert time.monotonic() - started < 60


def test_connections_are_capped_and_idle_ones_time_out(
    mega: Mega, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from megafast.httpd import _server

    monkeypatch.setattr(_server, "MAX_CONNECTIONS", 2)
    monkeypatch.setattr(_server._Handler, "timeout", 1.0)
    for server in _serve(Backend(mega)):
        port = server.server_address[1]
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        time.sleep(0.2)
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(server.url, timeout=5).read()
        time.sleep(1.5)  # the idle ones are dropped after the handler's timeout
        for s in idle:
            s.close()
        assert get(server.url)[0] == 200


def test_command_line_mistakes_are_one_line_errors(emulator: MegaEmulator, tmp_path: Path) -> None:
    cli = Cli(tmp_path, emulator.api_url)
    cli.login()
    for args, text in (
        (["http", "--addr", "nonsense"], "--addr is HOST:PORT"),
        (["http", "--basic-auth", "nocolon"], "USER:PASSWORD"),
        (["http", "/no/such/folder", "--addr", "127.0.0.1:0"], "no such folder"),
        (["mount", "a", "b", "c"], "at most REMOTE and MOUNTPOINT"),
        (["mount", str(tmp_path / "missing")], "not a folder"),
        (["http", "--memory-cache", "lots"], "not a size"),
    ):
        done = subprocess.run(cli.command(*args), env=cli.env, capture_output=True, timeout=60)
        err = done.stderr.decode()
        assert done.returncode != 0 and text in err and "Traceback" not in err, (args, err)


def test_parse_bytes() -> None:
    from megafast._cli.serve_fs import parse_bytes

    assert parse_bytes("64M") == 64 << 20
    assert parse_bytes("1.5GiB") == 3 << 29
    assert parse_bytes("100") == 100


def test_serving_threads_stay_for_the_next_connection(server: MegaHTTPServer) -> None:
    # no thread start per connection: one after another, they are served by the same thread
    url = server.url + "docs/note.txt"
    before = {t.ident for t in threading.enumerate() if t.name == "megafast-http"}
    for _ in range(5):
        status, _, body = get(url, {"Range": "bytes=2-5"})
        assert (status, body) == (206, b"note")
        # the serving thread is idle again once it has closed the connection (a moment after
        # the client has read the answer): the next connection goes to it
        deadline = time.monotonic() + 5
        while not server._idle and time.monotonic() < deadline:
            time.sleep(0.001)
    after = {t.ident for t in threading.enumerate() if t.name == "megafast-http"}
    assert after and len(after - before) <= 1


def test_a_file_failing_its_mac_before_any_byte_is_sent_gets_502(
    emulator: MegaEmulator, mega: Mega
) -> None:
    # the whole small file is checked before its bytes go out: the status line is still ours
    for server in _serve(Backend(mega)):
        emulator.set_faults(corrupt_rate=1.0)
        try:
            status, _, body = get(server.url + "docs/note.txt")
        finally:
            emulator.clear_faults()
        assert status == 502 and b"a note" not in body
