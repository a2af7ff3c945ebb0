"""``megafast webdav``: the mount's tree and reader over WebDAV (wsgidav), read-only; curl as
the client (PROPFIND, ranged GET), auth, paths outside the root, and the command itself."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast.testing import MegaEmulator
from megafast.vfs import Backend
from mount_helpers import EMAIL, PASSWORD, Cli

pytest.importorskip("wsgidav")
CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")
DATA = os.urandom(2_500_000)


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        emu.add_file(EMAIL, DATA, "movie file.bin")
        folder = emu.add_folder(EMAIL, "docs")
        emu.add_file(EMAIL, b"inside", "a/b.txt", folder)
        yield emu


@pytest.fixture(scope="module")
def mega(emulator: MegaEmulator) -> Mega:
    m = Mega(api_url=emulator.api_url)
    m.login(EMAIL, PASSWORD)
    return m


def serve(backend: Backend, **auth: str) -> Iterator[str]:
    from megafast.httpd._webdav import make_webdav_server

    server = make_webdav_server(backend, "127.0.0.1", 0, **auth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        backend.close()


@pytest.fixture(scope="module")
def url(mega: Mega) -> Iterator[str]:
    yield from serve(Backend(mega))


def curl(*args: str) -> tuple[int, bytes]:
    assert CURL is not None
    done = subprocess.run(
        [CURL, "-s", "-o", "-", "-w", "\n%{http_code}", *args], capture_output=True, timeout=60
    )
    body, _, code = done.stdout.rpartition(b"\n")
    return int(code), body


def test_propfind_lists_the_tree_with_escaped_names(url: str) -> None:
    status, body = curl("-X", "PROPFIND", "-H", "Depth: 1", url)
    assert status == 207
    assert b"movie%20file.bin" in body and b"<ns0:getcontentlength>2500000<" in body
    status, body = curl("-X", "PROPFIND", "-H", "Depth: 1", url + "docs/")
    assert status == 207 and b"a%252Fb.txt" in body  # the name 'a/b.txt', escaped once


def test_get_and_ranges(url: str) -> None:
    status, body = curl(url + "movie%20file.bin")
    assert status == 200 and body == DATA
    status, body = curl("-H", "Range: bytes=1000000-1065535", url + "movie%20file.bin")
    assert status == 206 and body == DATA[1000000:1065536]
    status, body = curl(url + "docs/a%252Fb.txt")
    assert status == 200 and body == b"inside"


def test_it_is_read_only(url: str) -> None:
    status, _ = curl("-X", "PUT", "--data-binary", "x", url + "new.txt")
    assert status in (403, 405)
    status, _ = curl("-X", "DELETE", url + "movie%20file.bin")
    assert status in (403, 405)


def test_outside_the_root_is_404(mega: Mega) -> None:
    backend = Backend(mega)
    backend.select_root(mega.find("docs")[0])
    for url in serve(backend):
        assert curl(url + "a%252Fb.txt")[0] == 200
        status, body = curl("--path-as-is", url + "../movie%20file.bin")
        assert status in (400, 404) and DATA[:100] not in body  # wsgidav refuses '..' itself
        status, body = curl("--path-as-is", url + "%2E%2E/movie%20file.bin")
        assert status in (400, 404) and DATA[:100] not in body
        assert curl(url + "movie%20file.bin")[0] == 404


def test_auth(mega: Mega) -> None:
    for url in serve(Backend(mega), basic="me:pw"):
        assert curl(url)[0] == 401
        good = "Authorization: Basic " + base64.b64encode(b"me:pw").decode()
        assert curl("-H", good, "-X", "PROPFIND", "-H", "Depth: 0", url)[0] == 207


def test_the_command_prints_its_url_first(emulator: MegaEmulator, tmp_path: Path) -> None:
    cli = Cli(tmp_path, emulator.api_url)
    cli.login()
    process = subprocess.Popen(
        cli.command("webdav", "--addr", "127.0.0.1:0"),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        assert line.startswith("http://127.0.0.1:"), line
        status, body = curl("-H", "Range: bytes=0-9", line + "movie%20file.bin")
        assert status == 206 and body == DATA[:10]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_writable_put_mkcol_move_delete(mega: Mega, tmp_path: Path) -> None:
    from megafast.httpd._webdav import make_webdav_server

    backend = Backend(mega)
    server = make_webdav_server(backend, "127.0.0.1", 0, read_only=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        assert curl("-X", "MKCOL", url + "dav")[0] == 201
        body = os.urandom(300_000)
        (tmp_path / "up.bin").write_bytes(body)
        assert curl("-T", str(tmp_path / "up.bin"), url + "dav/up.bin")[0] in (200, 201, 204)
        assert curl(url + "dav/up.bin") == (200, body)
        (tmp_path / "up.bin").write_bytes(b"second version")
        assert curl("-T", str(tmp_path / "up.bin"), url + "dav/up.bin")[0] in (200, 201, 204)
        assert curl(url + "dav/up.bin") == (200, b"second version")
        status, _ = curl("-X", "MOVE", "-H", f"Destination: {url}dav/moved.bin", url + "dav/up.bin")
        assert status in (201, 204)
        assert curl(url + "dav/moved.bin") == (200, b"second version")
        assert curl("-X", "DELETE", url + "dav/moved.bin")[0] == 204
        assert curl(url + "dav/moved.bin")[0] == 404
        assert curl("-X", "COPY", "-H", f"Destination: {url}x", url + "dav")[0] == 403
    finally:
        server.shutdown()
        server.server_close()
        backend.close()
    mega.refresh()
    trash = mega.get_node_by_type(4)[0]
    in_trash = [n["a"]["n"] for n in mega.get_files().values() if n.get("a") and n["p"] == trash]
    assert "moved.bin" in in_trash and "up.bin" in in_trash  # deleted, and the first version


def test_a_query_token_never_reaches_the_log(
    mega: Mega, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for url in serve(Backend(mega), token="TOPSECRET"):
        assert curl(url + "movie%20file.bin?token=TOPSECRET")[0] == 200
        assert curl(url + "nothing.bin?token=TOPSECRET")[0] == 404
        assert curl("-X", "PROPFIND", "-H", "Depth: 1", url + "?token=TOPSECRET")[0] == 207
        assert curl(url + "?token=TOPSECRETX")[0] == 401
    assert "TOPSECRET" not in "\n".join(r.getMessage() for r in caplog.records)
    out, err = capfd.readouterr()
    assert "TOPSECRET" not in out + err
