"""Thumbnails and previews from the other ways files are uploaded, against the emulator:
``upload_fileobj`` (bytes, a seekable file object, a stream that gets none), one-way and
two-way sync runs, and AsyncMega's ``upload``, ``upload_bytes`` and ``upload_tree``; each on
by default and off by option. A node counts when its ``fa`` holds a thumbnail (0) and a
preview (1) and the thumbnail read back decodes as a 200x200 JPEG."""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from megafast import Mega  # noqa: E402
from megafast.aio import AsyncMega  # noqa: E402
from megafast.media import parse_fa  # noqa: E402
from megafast.sync import Sync, TwoWaySync  # noqa: E402
from megafast.testing import MegaEmulator  # noqa: E402


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def account(emu: MegaEmulator) -> str:
    email = f"s-{secrets.token_hex(4)}@example.com"
    emu.create_account(email, "pw", version=2)
    return email


def _login(emu: MegaEmulator, email: str, **options: Any) -> Mega:
    return Mega(options or None, api_url=emu.api_url).login(email, "pw")


def _photo_bytes(size: tuple[int, int] = (900, 600), seed: int = 0) -> bytes:
    im = Image.linear_gradient("L").resize(size).convert("RGB")
    im.putpixel((seed % size[0], 0), (255, 0, 0))  # distinct photos
    out = io.BytesIO()
    im.save(out, "JPEG")
    return out.getvalue()


def _has_pictures(mega: Mega, node: dict[str, Any]) -> bool:
    """The node has a thumbnail and a preview, and the thumbnail is a 200x200 JPEG."""
    kinds = sorted(a.type for a in parse_fa(node.get("fa")))
    if kinds != [0, 1]:
        return False
    im = Image.open(io.BytesIO(mega.get_thumbnail(node["h"])))
    assert im.format == "JPEG" and im.size == (200, 200)
    return True


def _remote(emu: MegaEmulator, email: str, name: str) -> dict[str, Any]:
    """The file node called ``name``, as a fresh client lists it."""
    reader = _login(emu, email)
    found = reader.find(name)
    assert found is not None, name
    return dict(found[1])


# -- upload_fileobj ---------------------------------------------------------------------------
def test_upload_fileobj_of_bytes_and_of_a_seekable_file(
    emu: MegaEmulator, account: str, tmp_path: Path
) -> None:
    mega = _login(emu, account)
    node = mega.upload_fileobj(_photo_bytes(seed=1), "mem.jpg")["f"][0]
    assert _has_pictures(mega, node)
    path = tmp_path / "disk.jpg"
    path.write_bytes(_photo_bytes(seed=2))
    with open(path, "rb") as fh:
        node = mega.upload_fileobj(fh, "disk.jpg")["f"][0]
    assert _has_pictures(mega, node)
    # the pictures were read from the file first, and then the whole file was uploaded
    back = io.BytesIO()
    mega.download_to_fileobj(node["h"], back)
    assert back.getvalue() == path.read_bytes()


def test_upload_fileobj_of_a_stream_or_with_thumbnails_off_gets_none(
    emu: MegaEmulator, account: str
) -> None:
    mega = _login(emu, account)
    data = _photo_bytes(seed=3)
    stream = iter([data[:1000], data[1000:]])
    node = mega.upload_fileobj(stream, "stream.jpg", size=len(data))["f"][0]
    assert "fa" not in node
    node = mega.upload_fileobj(data, "off.jpg", thumbnails=False)["f"][0]
    assert "fa" not in node
    quiet = _login(emu, account, thumbnails=False)
    assert "fa" not in quiet.upload_fileobj(io.BytesIO(data), "quiet.jpg")["f"][0]
    # not an image after all: uploaded as it is, with no pictures
    node = mega.upload_fileobj(b"not a jpeg at all", "fake.jpg")["f"][0]
    assert "fa" not in node and node["s"] == len(b"not a jpeg at all")


# -- sync runs -----------------------------------------------------------------------------
def test_one_way_sync_uploads_make_pictures(
    emu: MegaEmulator, account: str, tmp_path: Path
) -> None:
    local = tmp_path / "up"
    local.mkdir()
    (local / "a.jpg").write_bytes(_photo_bytes(seed=4))
    (local / "notes.txt").write_text("no picture for this")
    mega = _login(emu, account)
    report = Sync(mega, local, "/synced", state_dir=tmp_path / "st").run()
    assert report.bytes_uploaded == sum(p.stat().st_size for p in local.iterdir())
    assert _has_pictures(mega, _remote(emu, account, "a.jpg"))
    assert "fa" not in _remote(emu, account, "notes.txt")
    # off for one sync
    (local / "b.jpg").write_bytes(_photo_bytes(seed=5))
    Sync(mega, local, "/synced", state_dir=tmp_path / "st", thumbnails=False).run()
    assert "fa" not in _remote(emu, account, "b.jpg")


def test_two_way_sync_uploads_make_pictures(
    emu: MegaEmulator, account: str, tmp_path: Path
) -> None:
    local = tmp_path / "both"
    local.mkdir()
    (local / "c.jpg").write_bytes(_photo_bytes(seed=6))
    mega = _login(emu, account)
    TwoWaySync(mega, local, "/both", state_dir=tmp_path / "st").run()
    assert _has_pictures(mega, _remote(emu, account, "c.jpg"))
    quiet = _login(emu, account, thumbnails=False)  # the client's option turns it off
    (local / "d.jpg").write_bytes(_photo_bytes(seed=7))
    TwoWaySync(quiet, local, "/both", state_dir=tmp_path / "st").run()
    assert "fa" not in _remote(emu, account, "d.jpg")


# -- AsyncMega -----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_async_uploads_make_pictures(emu: MegaEmulator, account: str, tmp_path: Path) -> None:
    path = tmp_path / "e.jpg"
    path.write_bytes(_photo_bytes(seed=8))
    top = tmp_path / "tree"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "f.jpg").write_bytes(_photo_bytes(seed=9))
    async with AsyncMega(emu.api_url) as m:
        await m.login(account, "pw")
        await m.upload(path)
        await m.upload_bytes(_photo_bytes(seed=10), "g.jpg")
        await m.upload_tree(top)
        await m.upload_bytes(_photo_bytes(seed=11), "h.jpg", thumbnails=False)
    mega = _login(emu, account)
    for name in ("e.jpg", "g.jpg", "f.jpg"):
        assert _has_pictures(mega, _remote(emu, account, name)), name
    assert "fa" not in _remote(emu, account, "h.jpg")


# -- stored while the file uploads -----------------------------------------------------------
def test_pictures_are_stored_while_the_file_uploads(
    emu: MegaEmulator, account: str, tmp_path: Path
) -> None:
    from megafast.transfer import MiB, TransferConfig

    # a photo followed by 3 MiB of other bytes (Pillow reads up to the JPEG's end), sent
    # at 3 MiB/s: the pictures' POSTs come back before the file's last piece does
    path = tmp_path / "slow.jpg"
    path.write_bytes(_photo_bytes(seed=12) + bytes(3 * MiB))
    mega = _login(emu, account)
    stored: list[float] = []  # when each picture's POST was answered
    mega.http.hooks["response"].append(
        lambda r, *a, **k: stored.append(time.monotonic()) if "/fa/put/" in r.url else None
    )
    sent: list[float] = []  # when the file's last byte was acknowledged

    def progress(done: int, total: int) -> None:
        if done == total and not sent:
            sent.append(time.monotonic())

    config = TransferConfig(connections=1, piece_size=1 * MiB, speed_limit=3 * MiB)
    node = mega.upload(path, config=config, progress=progress)["f"][0]
    assert _has_pictures(mega, node)
    assert len(stored) == 2 and len(sent) == 1
    assert max(stored) < sent[0]


def test_on_key_gives_the_key_the_node_key_folds_to(
    emu: MegaEmulator, account: str, tmp_path: Path
) -> None:
    from megafast._wire.codec import fold, words_to_bytes
    from megafast.transfer import upload_file

    mega = _login(emu, account)
    given: list[bytes] = []
    result = upload_file(
        mega.http,
        lambda size: str(mega._request({"a": "u", "s": size})["p"]),
        b"x" * 5000,
        on_key=given.append,
    )
    assert given == [words_to_bytes(fold(tuple(result.key)))]


def test_sync_cli_no_thumbnails(emu: MegaEmulator, account: str, tmp_path: Path) -> None:
    from megafast._cli.context import Context
    from megafast._cli.registry import all_commands
    from megafast.cli import build_parser

    local = tmp_path / "cli"
    local.mkdir()
    (local / "i.jpg").write_bytes(_photo_bytes(seed=13))
    mega = _login(emu, account)
    for flags, name in (((), "/cli-on"), (("--no-thumbnails",), "/cli-off")):
        argv = ["--progress", "never", "sync", str(local), name, *flags]
        args = build_parser().parse_args([*argv, "--state-dir", str(tmp_path / name[1:])])
        ctx = Context(args)
        ctx._client = mega
        assert all_commands()[args.command].handler(ctx) == 0
    reader = _login(emu, account)
    on, off = reader.find("cli-on/i.jpg"), reader.find("cli-off/i.jpg")
    assert on is not None and off is not None
    assert _has_pictures(reader, dict(on[1])) and "fa" not in off[1]


def test_pictures_stored_ahead_when_no_storing_thread_can_start(
    emu: MegaEmulator, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # at interpreter shutdown no new pool work is taken: the pictures are stored on the
    # thread that made them, and store() returns instead of waiting forever
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from megafast.media import _remote
    from megafast.media._pictures import pictures_from_image

    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    monkeypatch.setattr(_remote, "_storers", lambda: closed)
    mega = _login(emu, account)
    made = pictures_from_image(io.BytesIO(_photo_bytes(seed=14)), "ahead.jpg")
    pictures = _remote.PendingPictures.made("ahead.jpg", made)
    key = secrets.token_bytes(16)
    pictures.store_ahead(mega.core.batch, mega.http, key)
    got: list[str | None] = []
    waiter = threading.Thread(
        target=lambda: got.append(pictures.store(mega.core.batch, mega.http, key)), daemon=True
    )
    waiter.start()
    waiter.join(20)
    assert not waiter.is_alive(), "store() waits forever"
    assert got and got[0] is not None
    assert sorted(a.type for a in parse_fa(got[0])) == [0, 1]


def test_an_upload_makes_its_pictures_when_no_pictures_thread_can_start(
    emu: MegaEmulator, account: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # at interpreter shutdown (a thread still uploading after the main one ended) no pool
    # takes new work: the pictures are made on the uploading thread, the upload goes on
    from concurrent.futures import ThreadPoolExecutor

    from megafast.media import _remote

    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    monkeypatch.setattr(_remote, "_executor", lambda: closed)
    monkeypatch.setattr(_remote, "_storers", lambda: closed)
    path = tmp_path / "late.jpg"
    path.write_bytes(_photo_bytes(seed=15))
    mega = _login(emu, account)
    assert _has_pictures(mega, mega.upload(path)["f"][0])
    assert _has_pictures(mega, mega.upload_fileobj(_photo_bytes(seed=16), "late2.jpg")["f"][0])
