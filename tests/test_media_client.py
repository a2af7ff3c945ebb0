"""Thumbnails and previews end to end against the emulator: made on upload (files and trees,
on by default, off by option), read back in batches, attached later with ``pfa``, seen by
other clients; the emulator's answers to bad attribute handles; a hostile attribute server;
the CLI's ``thumbnail``/``put --no-thumbnails`` and fsspec's ``thumbnail``."""

from __future__ import annotations

import base64
import io
import logging
import secrets
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from megafast import Mega  # noqa: E402
from megafast.errors import NotFoundError, RequestError, UnexpectedAnswerError  # noqa: E402
from megafast.media import parse_fa  # noqa: E402
from megafast.media._remote import fetch_attrs  # noqa: E402
from megafast.testing import MegaEmulator  # noqa: E402


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))


def _account(emu: MegaEmulator, **options: Any) -> tuple[str, Mega]:
    email = f"m-{secrets.token_hex(4)}@example.com"
    emu.create_account(email, "pw", version=2)
    return email, Mega(options or None, api_url=emu.api_url).login(email, "pw")


@pytest.fixture
def mega(emu: MegaEmulator) -> Mega:
    return _account(emu)[1]


def _photo(path: Path, size: tuple[int, int] = (1600, 1200), seed: int = 0) -> Path:
    Image.new("RGB", size, (seed * 37 % 256, 80, 160)).save(path, "JPEG")
    return path


def _jpeg_size(data: bytes) -> tuple[int, int]:
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    return im.size


def _count_requests(mega: Mega) -> list[str]:
    seen: list[str] = []
    mega.http.hooks["response"].append(lambda r, *a, **k: seen.append(r.request.method))
    return seen


# -- uploads ------------------------------------------------------------------------------
def test_an_uploaded_photo_gets_a_thumbnail_and_a_preview(mega: Mega, tmp_path: Path) -> None:
    answer = mega.upload(_photo(tmp_path / "p.jpg"))
    node = answer["f"][0]
    kinds = sorted(a.type for a in parse_fa(node.get("fa")))
    assert kinds == [0, 1]
    assert _jpeg_size(mega.get_thumbnail(node["h"])) == (200, 200)
    assert _jpeg_size(mega.get_preview(mega.find("p.jpg"))) == (1000, 750)


def test_off_by_keyword_or_by_option(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "p.jpg")
    node = mega.upload(photo, thumbnails=False)["f"][0]
    assert "fa" not in node
    with pytest.raises(NotFoundError, match="no thumbnail"):
        mega.get_thumbnail(node["h"])
    _, off = _account(emu, thumbnails=False)
    assert "fa" not in off.upload(photo)["f"][0]
    handles = off.upload_folder(tmp_path)
    assert all("fa" not in off.find(handle=h) for rel, h in handles.items() if rel != ".")


def test_files_that_are_not_pictures_upload_as_before(
    emu: MegaEmulator, mega: Mega, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.jpg").write_bytes(b"this is not a JPEG" * 100)
    before = emu.stats().get("file_attrs_stored", 0)
    with caplog.at_level(logging.INFO, "megafast.media"):
        assert "fa" not in mega.upload(tmp_path / "notes.txt")["f"][0]
        assert "fa" not in mega.upload(tmp_path / "fake.jpg")["f"][0]
    assert emu.stats().get("file_attrs_stored", 0) == before
    assert "fake.jpg: no thumbnail" in caplog.text
    assert mega.find("fake.jpg") is not None


def test_a_tree_gets_pictures_made_beside_the_transfers(
    mega: Mega, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from megafast.media import _remote

    top = tmp_path / "album"
    (top / "sub").mkdir(parents=True)
    for i in range(12):
        _photo(top / ("sub" if i % 2 else ".") / f"{i}.jpg", (400, 300), i)
    (top / "readme.txt").write_text("x")
    threads: set[str] = set()
    made: list[str] = []
    real = _remote.make_pictures

    def spy(path: Any) -> Any:
        threads.add(threading.current_thread().name)
        made.append(str(path))
        return real(path)

    monkeypatch.setattr(_remote, "make_pictures", spy)
    handles = mega.upload_folder(top)
    photos = [h for rel, h in handles.items() if rel.endswith(".jpg")]
    assert len(photos) == 12
    assert all(t.startswith("megafast-pictures") for t in threads)  # not the transfer workers
    assert "fa" not in mega.find(handle=handles["readme.txt"])
    got = mega.get_thumbnails(photos)
    assert set(got) == set(photos)
    assert all(_jpeg_size(v) == (200, 200) for v in got.values())
    assert len(made) == 12  # the photos only, once each
    made.clear()
    again = mega.upload_folder(top)  # everything is there already: no picture is made
    assert again == handles and made == []


def test_thumbnails_of_a_folder_in_a_few_requests(mega: Mega, tmp_path: Path) -> None:
    top = tmp_path / "many"
    top.mkdir()
    for i in range(40):
        _photo(top / f"{i:02}.jpg", (64, 48), i)
    handles = mega.upload_folder(top)
    nodes = [h for rel, h in handles.items() if rel != "."]
    clusters = {a.cluster for h in nodes for a in parse_fa(mega.find(handle=h)["fa"])}
    assert len(clusters) == 2  # the emulator spreads attributes over two clusters
    seen = _count_requests(mega)
    previews = mega.get_thumbnails(nodes, preview=True)
    assert len(previews) == 40 and all(_jpeg_size(p) == (64, 48) for p in previews.values())
    assert len(seen) <= 3  # one API request (two ufa) and one POST per cluster
    assert mega.get_thumbnails([]) == {}


def test_pfa_attaches_later_and_other_clients_see_it(emu: MegaEmulator, tmp_path: Path) -> None:
    email, mega = _account(emu)
    photo = _photo(tmp_path / "late.jpg")
    handle = mega.upload(photo, thumbnails=False)["f"][0]["h"]
    other = Mega(api_url=emu.api_url).login(email, "pw")
    other.get_files()
    fa = mega.add_thumbnails(handle, photo)
    assert sorted(a.type for a in parse_fa(fa)) == [0, 1]
    assert mega.find(handle=handle)["fa"] == fa
    seen = threading.Event()
    watcher = other.watch(lambda event: seen.set() if event.handle == handle else None)
    try:
        assert seen.wait(20), "no fa packet reached the other client"
    finally:
        watcher.stop()
    assert other.find(handle=handle)["fa"] == fa
    assert _jpeg_size(other.get_thumbnail(handle)) == (200, 200)
    with pytest.raises(Exception, match="no thumbnail can be made"):
        (tmp_path / "x.jpg").write_bytes(b"no")
        mega.add_thumbnails(handle, tmp_path / "x.jpg")


def test_public_folder_thumbnails(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    top = tmp_path / "pub"
    top.mkdir()
    _photo(top / "a.jpg")
    mega.upload_folder(top)
    link = mega.export("pub")
    visitor = Mega(api_url=emu.api_url)
    nodes = visitor.get_public_folder(link)
    files = [n for n in nodes.values() if n.get("t") == 0]
    from megafast._wire.links import parse_link

    got = visitor.get_thumbnails(files, folder=parse_link(link).handle)
    assert [_jpeg_size(v) for v in got.values()] == [(200, 200)]


# -- the emulator's answers to bad handles ------------------------------------------------
def test_bad_attribute_handles(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    node = mega.upload(_photo(tmp_path / "p.jpg"))["f"][0]
    thumb = next(a for a in parse_fa(node["fa"]) if a.type == 0)
    unknown = base64.urlsafe_b64encode(b"\x01" * 8).decode().rstrip("=")
    with pytest.raises(NotFoundError):
        mega._request({"a": "ufa", "fah": unknown, "ssl": 2, "r": 1})
    with pytest.raises(RequestError) as bad:
        mega._request({"a": "ufa", "fah": "!!", "ssl": 2, "r": 1})
    assert bad.value.code == -2
    url = mega._request({"a": "ufa", "fah": thumb.handle_b64, "ssl": 2, "r": 1})["p"]
    # unknown handles are left out of the answer (MEGA's SDK reports those as failed)
    body = requests.post(url, data=b"\x01" * 8 + thumb.handle, timeout=10).content
    handle, length = struct.unpack_from("<8sI", body)
    assert handle == thumb.handle and len(body) == 12 + length
    assert requests.post(url, data=b"\x01" * 7, timeout=10).content == b"-2"
    # attaching or creating with a handle that was never stored
    with pytest.raises(NotFoundError):
        mega._request({"a": "pfa", "n": node["h"], "fa": f"0*{unknown}"})
    with pytest.raises(RequestError) as bad:
        mega._request({"a": "pfa", "n": node["h"], "fa": "0*nonsense"})
    assert bad.value.code == -2
    with pytest.raises(RequestError) as bad:
        mega._request({"a": "ufa", "s": 17, "ssl": 2})
    assert bad.value.code == -2
    put = mega._request({"a": "ufa", "s": 32, "ssl": 2})["p"]
    assert requests.post(put, data=b"x" * 16, timeout=10).content == b"-2"
    assert requests.post(put, data=b"x" * 32, timeout=10).content == b"-9"  # used up


# -- a hostile attribute server -------------------------------------------------------------
@pytest.fixture
def hostile_server() -> Iterator[tuple[str, list[bytes]]]:
    answers: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = answers.pop(0) if answers else b""
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fa", answers
    finally:
        server.shutdown()
        server.server_close()


def test_a_record_overrunning_the_body_is_a_clear_error(
    hostile_server: tuple[str, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from megafast.media import _remote

    url, answers = hostile_server
    handle = b"H" * 8
    node = {
        "h": "AAAAAAAA",
        "t": 0,
        "k": (1, 2, 3, 4),
        "fa": f"5:0*{base64.urlsafe_b64encode(handle).decode().rstrip('=')}",
    }

    def batch(commands: list[dict[str, Any]]) -> list[Any]:
        return [{"p": url} for _ in commands]

    http = requests.Session()
    answers.append(handle + struct.pack("<I", 1 << 20) + b"x" * 32)
    with pytest.raises(UnexpectedAnswerError, match="only 32 follow"):
        fetch_attrs(batch, http, [node], 0)
    answers.append(handle + struct.pack("<I", 5) + b"x" * 5)  # not whole AES blocks: left out
    assert fetch_attrs(batch, http, [node], 0) == {}
    answers.append(b"")  # nothing returned: the file is left out
    assert fetch_attrs(batch, http, [node], 0) == {}
    monkeypatch.setattr(_remote, "MAX_FETCH_ANSWER", 1000)  # an endless answer is cut off
    answers.append(handle + struct.pack("<I", 2048) + b"x" * 2048)
    with pytest.raises(UnexpectedAnswerError, match="over 1000 bytes"):
        fetch_attrs(batch, http, [node], 0)


# -- CLI and fsspec -------------------------------------------------------------------------
def test_cli_thumbnail_and_put_without(
    emu: MegaEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from support.cli_inproc import cli_login, run_cli

    email, _ = _account(emu)
    mega = cli_login(capsys, monkeypatch, tmp_path / "home", emu, email, "pw")
    photo = _photo(tmp_path / "c.jpg")
    code, _, err = run_cli(capsys, "put", str(photo), "-q")
    assert code == 0, err
    out = tmp_path / "thumb.jpg"
    code, _, err = run_cli(capsys, "thumbnail", "/c.jpg", "-o", str(out))
    assert code == 0, err
    assert _jpeg_size(out.read_bytes()) == (200, 200)
    code, _, err = run_cli(capsys, "thumbnail", "/c.jpg", "--preview", "-o", str(out))
    assert code == 0 and _jpeg_size(out.read_bytes()) == (1000, 750), err
    code, _, err = run_cli(capsys, "put", "--no-thumbnails", str(photo), "/d.jpg", "-q")
    assert code == 0, err
    mega.refresh()
    assert "fa" not in mega.find("d.jpg")[1]
    code, _, err = run_cli(capsys, "thumbnail", "/d.jpg", "-o", str(out))
    assert code != 0 and "no thumbnail" in err


def test_fsspec_thumbnail(emu: MegaEmulator, tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    from megafast.fs import MegaFileSystem

    email, mega = _account(emu)
    mega.upload(_photo(tmp_path / "f.jpg"))
    (tmp_path / "n.txt").write_text("x")
    mega.upload(tmp_path / "n.txt")
    fs = MegaFileSystem(email, "pw", api_url=emu.api_url, skip_instance_cache=True)
    assert _jpeg_size(fs.thumbnail("f.jpg")) == (200, 200)
    assert _jpeg_size(fs.thumbnail("f.jpg", preview=True)) == (1000, 750)
    with pytest.raises(FileNotFoundError):
        fs.thumbnail("n.txt")
    fs.put_file(str(_photo(tmp_path / "put.jpg", (300, 200))), "put.jpg")  # fsspec's own upload
    assert _jpeg_size(fs.thumbnail("put.jpg", preview=True)) == (300, 200)
    link = mega.get_link(mega.find("f.jpg"))
    public = MegaFileSystem(link=link, api_url=emu.api_url, skip_instance_cache=True)
    assert _jpeg_size(public.thumbnail("f.jpg")) == (200, 200)


def test_without_pillow_uploads_go_on_as_before(
    emu: MegaEmulator, mega: Mega, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from megafast.media import _remote

    monkeypatch.setattr(_remote, "available", lambda: False)  # as without megafast[media]
    before = emu.stats().get("file_attrs_stored", 0)
    node = mega.upload(_photo(tmp_path / "p.jpg"))["f"][0]
    assert "fa" not in node
    assert emu.stats().get("file_attrs_stored", 0) == before
