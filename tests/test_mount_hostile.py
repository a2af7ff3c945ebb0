"""A hostile public folder seen through the mount's layer (megafast.vfs) and the HTTP server:
names POSIX cannot hold, twins, a cycle, a huge declared size (tests/support/hostile.py)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from megafast import Mega
from megafast.errors import MegaError, TreeError
from megafast.httpd import MegaHTTPServer
from megafast.vfs import Backend
from support.hostile import HostileServer
from support.transfer import fast_config

TOP = "TopFoldr"


@pytest.fixture
def public() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


def backend(server: HostileServer) -> Backend:
    mega = Mega(api_url=server.url, retry_time=0.5, timeout=10)
    return Backend(mega, server.link, config=fast_config(connections=2))


def ends(call: Callable[[], Any], seconds: float = 30.0) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "did not end"
    if "error" in box:
        raise box["error"]
    return box.get("result")


def walk(b: Backend) -> list[str]:
    """Every display path below the root (a breadth-first walk, as ``find`` does)."""
    view = b.view
    out: list[str] = []
    todo = [("", view.root())]
    while todo:
        path, h = todo.pop()
        for name, child in view.listing(h):
            out.append(f"{path}/{name}")
            entry = view.entry(child)
            if entry is not None and entry.is_dir and len(out) < 100_000:
                todo.append((f"{path}/{name}", child))
    return out


def test_names_posix_cannot_hold_are_escaped_and_twins_both_show(public: HostileServer) -> None:
    public.folder(TOP, "", "top")
    public.file("Slashed1", TOP, "a/b", b"slash")
    public.file("DotDot01", TOP, "..", b"dots")
    public.file("NulName1", TOP, "x\x00y", b"nul")
    public.file("TwinOne1", TOP, "twin.txt", b"first")
    public.file("TwinTwo1", TOP, "twin.txt", b"second")
    b = backend(public)
    try:
        paths = ends(lambda: walk(b))
        assert sorted(paths) == sorted(
            ["/a%2Fb", "/%2E%2E", "/x%00y", "/twin.txt", "/twin (1).txt"]
        )
        first = b.remote_file(b.view.lookup("/twin.txt") or "")
        second = b.remote_file(b.view.lookup("/twin (1).txt") or "")
        assert {first.read(0, 100), second.read(0, 100)} == {b"first", b"second"}
        assert b.remote_file(b.view.lookup("/%2E%2E") or "").read(0, 10) == b"dots"
    finally:
        b.close()


def test_a_cycle_cannot_make_a_walk_endless(public: HostileServer) -> None:
    public.folder(TOP, "SubFoldr", "top")
    public.folder("SubFoldr", TOP, "sub")
    public.file("FileInSb", "SubFoldr", "f.txt", b"data")
    b = backend(public)
    try:
        with pytest.raises(TreeError) as info:  # refused at once, naming the cycle
            ends(b.load)
        assert "TopFoldr" in str(info.value) and "SubFoldr" in str(info.value)
    finally:
        b.close()


def test_a_huge_declared_size_is_shown_but_never_allocated(public: HostileServer) -> None:
    public.folder(TOP, "", "top")
    public.file("HugeFile", TOP, "huge.bin", b"tiny", s=1 << 52)
    b = backend(public)
    try:
        h = b.view.lookup("/huge.bin")
        assert h is not None
        entry = b.view.entry(h)
        assert entry is not None and entry.size == 1 << 52
        f = b.remote_file(h)
        with pytest.raises(MegaError):
            ends(lambda: f.read((1 << 51) + 3, 1 << 20))
    finally:
        b.close()


def test_http_404_for_escaped_climbs(public: HostileServer) -> None:
    public.folder(TOP, "", "top")
    public.file("DotDot01", TOP, "..", b"dots")
    b = backend(public)
    server = MegaHTTPServer(b, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(server.url + "%252E%252E", timeout=30) as resp:
            assert resp.read() == b"dots"  # the node named '..' under its escaped name
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.url + "..", timeout=30)
        assert info.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
        b.close()
