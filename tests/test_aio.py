"""AsyncMega against the emulator: logins and sessions, listing and find, tree changes,
links, public files and folders, uploads and downloads of paths, bytes, streams and trees,
open(), watch(), and one batched request for many concurrent commands."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from megafast import Mega
from megafast._tree.nodes import NodeType
from megafast.aio import AsyncMega, Node
from megafast.errors import (
    LoginError,
    NodeNotFoundError,
    TwoFactorRequiredError,
    ValidationError,
    WrongKeyError,
)
from megafast.testing import MegaEmulator

pytestmark = [pytest.mark.asyncio, pytest.mark.filterwarnings("error")]

EMAIL, PASSWORD = "async@example.com", "async password"


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.configure_sc(wait_timeout=1.0)
        yield emu


@pytest.fixture
def account(emulator: MegaEmulator, request: pytest.FixtureRequest) -> str:
    """A fresh account per test (its email), with two files and a folder."""
    email = f"{request.node.name.replace('[', '-').replace(']', '')[:40]}@example.com"
    emulator.create_account(email, PASSWORD)
    folder = emulator.add_folder(email, "docs")
    emulator.add_file(email, b"alpha" * 100, "a.txt", folder)
    emulator.add_file(email, b"top", "top.bin")
    return email


@pytest_asyncio.fixture
async def m(emulator: MegaEmulator, account: str) -> AsyncIterator[AsyncMega]:
    async with AsyncMega(emulator.api_url) as client:
        await client.login(account, PASSWORD)
        yield client


async def test_login_listing_and_find(m: AsyncMega) -> None:
    found = await m.find("docs/a.txt")
    assert isinstance(found, Node) and found.is_file and found.size == 500
    assert found.name == "a.txt" and "key" not in repr(found)
    assert (await m.find("top.bin")) is not None
    assert await m.find("docs/missing") is None
    names = sorted([n.name or "" async for n in m.iter_nodes()])
    assert names == ["docs", "top.bin"]
    deep = [n.name async for n in m.iter_nodes(recursive=True)]
    assert sorted(deep) == ["a.txt", "docs", "top.bin"]
    assert await m.path_of(found) == "Cloud Drive/docs/a.txt"
    assert (await m.root(NodeType.RUBBISH)).name == "Rubbish Bin"
    with pytest.raises(NodeNotFoundError):
        await m.node("NoSuchNd")


async def test_wrong_password_and_two_factor(emulator: MegaEmulator, account: str) -> None:
    async with AsyncMega(emulator.api_url) as client:
        with pytest.raises(LoginError):
            await client.login(account, "wrong")
        with pytest.raises(ValidationError):
            await client.find("x")  # not logged in
    emulator.create_account("mfa-async@example.com", "pw", mfa_secret="JBSWY3DPEHPK3PXP")
    async with AsyncMega(emulator.api_url) as client:
        with pytest.raises(TwoFactorRequiredError):
            await client.login("mfa-async@example.com", "pw")
        acct = emulator.account("mfa-async@example.com")
        await client.login("mfa-async@example.com", "pw", mfa=acct.totp())
        assert (await client.find("Cloud Drive")) is not None


async def test_sessions_resume_and_logout(
    emulator: MegaEmulator, m: AsyncMega, tmp_path: Path
) -> None:
    saved = m.dump_session()
    assert "sid" in saved and "sid" not in repr(m)
    # the synchronous client reads the same session
    assert Mega(api_url=emulator.api_url).resume_session(json.dumps(saved)).find("top.bin")
    path = tmp_path / "session.json"
    path.write_text(json.dumps(saved))
    async with AsyncMega(emulator.api_url) as again:
        await again.resume_session(path)
        assert (await again.find("docs/a.txt")) is not None
        await again.logout()
        with pytest.raises(ValidationError):
            await again.find("docs")


async def test_anonymous_login(emulator: MegaEmulator) -> None:
    async with AsyncMega(emulator.api_url) as client:
        await client.login_anonymous()
        node = await client.upload_bytes(b"x" * 10, "anon.bin")
        assert node.size == 10


async def test_create_rename_move_delete(m: AsyncMega, emulator: MegaEmulator) -> None:
    made = await m.create_folder("one/two/three")
    assert made.name == "three" and await m.path_of(made) == "Cloud Drive/one/two/three"
    again = await m.create_folder("one/two")  # existing folders are reused
    assert again.handle == (await m.find("one/two")).handle  # type: ignore[union-attr]
    file = await m.find("top.bin")
    assert file is not None
    renamed = await m.rename(file, "renamed.bin")
    moved = await m.move(renamed, made)
    assert await m.path_of(moved) == "Cloud Drive/one/two/three/renamed.bin"
    trashed = await m.delete(moved)
    assert (await m.path_of(trashed)).startswith("Rubbish Bin/")
    await m.destroy(trashed)
    with pytest.raises(NodeNotFoundError):
        await m.node(trashed)
    with pytest.raises(ValidationError):
        await m.rename(made, "a/b")
    # the server agrees: another client sees the same tree
    other = Mega(api_url=emulator.api_url)
    other.login(m.creds.email or "", PASSWORD)  # type: ignore[union-attr]
    assert other.find("one/two/three") is not None
    assert other.find("renamed.bin") is None


async def test_links_and_public_files_and_folders(m: AsyncMega, tmp_path: Path) -> None:
    file = await m.find("docs/a.txt")
    folder = await m.find("docs")
    assert file is not None and folder is not None
    file_link, folder_link = await asyncio.gather(m.get_link(file), m.get_link(folder))
    assert "/file/" in file_link and "/folder/" in folder_link
    assert await m.public_info(file_link) == {"name": "a.txt", "size": 500}
    info = await m.public_info(folder_link)
    assert info == {"name": "docs", "size": 500, "files": 1, "folders": 1}
    nodes = await m.public_folder(folder_link)
    assert [n.name for n in nodes] == ["docs", "a.txt"]
    async with AsyncMega(m.api_url) as anonymous:  # public links need no login
        assert await anonymous.download_bytes(file_link) == b"alpha" * 100
        path = await anonymous.download(file_link, tmp_path)
        assert path.read_bytes() == b"alpha" * 100
        inner = f"{folder_link}/file/{nodes[1].handle}"
        assert await anonymous.download_bytes(inner) == b"alpha" * 100
    imported = await m.import_public_file(file_link, name="copy.txt")
    assert await m.download_bytes(imported) == b"alpha" * 100
    wrong = file_link[: file_link.index("#") + 1] + "A" * 43
    with pytest.raises(WrongKeyError):
        await m.public_info(wrong)


async def test_many_concurrent_get_links_are_few_requests(
    m: AsyncMega, emulator: MegaEmulator
) -> None:
    folder = await m.create_folder("many")
    await asyncio.gather(*(m.upload_bytes(b"%d" % i, f"f{i}.txt", folder) for i in range(50)))
    files = [n async for n in m.iter_nodes(folder)]
    emulator.reset_stats()
    links = await asyncio.gather(*(m.get_link(f) for f in files * 20))  # 1,000 calls
    assert len(links) == 1000 and len(set(links)) <= 50 * 20
    assert emulator.stats()["api_requests"] <= 15  # a few batches, not 1,000 requests


async def test_uploads_and_downloads(m: AsyncMega, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    seen: list[tuple[int, int]] = []
    node = await m.upload(src, progress=lambda done, total: seen.append((done, total)))
    assert node.name == "src.bin" and node.size == len(data)
    assert seen and seen[-1] == (len(data), len(data))
    assert src.read_bytes() == data  # the source is untouched
    out = tmp_path / "out"
    out.mkdir()
    got: list[int] = []

    async def on_progress(done: int, total: int) -> None:  # a coroutine function works too
        got.append(done)

    path = await m.download(node, out, progress=on_progress)
    assert path == out / "src.bin" and path.read_bytes() == data
    await asyncio.sleep(0)
    assert got and got[-1] == len(data)
    assert await m.download_bytes(node) == data
    sink = io.BytesIO()
    assert await m.download_to(node, sink) == len(data) and sink.getvalue() == data
    # streams: a file object and an async iterable
    from_file = await m.upload_stream(io.BytesIO(b"file object"), "fo.bin", 11)
    assert await m.download_bytes(from_file) == b"file object"

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"async ", b"chunks ", b"arrive"):
            await asyncio.sleep(0)
            yield part

    from_async = await m.upload_stream(chunks(), "async.bin", 19)
    assert await m.download_bytes(from_async) == b"async chunks arrive"
    with pytest.raises(ValidationError):
        await m.upload_bytes(b"x", "bad/name")


async def test_trees(m: AsyncMega, tmp_path: Path) -> None:
    top = tmp_path / "album"
    (top / "2026" / "june").mkdir(parents=True)
    (top / "2026" / "june" / "a.jpg").write_bytes(b"a" * 5000)
    (top / "cover.png").write_bytes(b"c" * 70)
    totals: list[int] = []
    folder = await m.upload_tree(top, progress=lambda done, total: totals.append(total))
    assert folder.name == "album" and totals and totals[-1] == 5070
    assert (await m.find("album/2026/june/a.jpg")) is not None
    dest = tmp_path / "restore"
    dest.mkdir()
    written = await m.download_tree(folder, dest)
    assert (written / "2026" / "june" / "a.jpg").read_bytes() == b"a" * 5000
    assert (written / "cover.png").read_bytes() == b"c" * 70
    again = tmp_path / "again"
    again.mkdir()
    assert await m.download(folder, again) == again / "album"  # a folder: the whole tree
    assert (again / "album" / "cover.png").read_bytes() == b"c" * 70


async def test_bad_arguments_are_validation_errors(emulator: MegaEmulator) -> None:
    with pytest.raises(ValidationError, match="unknown options"):
        AsyncMega(emulator.api_url, options={"retry": 1})
    with pytest.raises(ValidationError):
        AsyncMega(emulator.api_url, workers=0)


async def test_open_reads_like_a_file(m: AsyncMega) -> None:
    data = bytes(range(256)) * 10_000
    node = await m.upload_bytes(data, "big.bin")
    async with await m.open(node) as reader:
        assert reader.size == len(data)
        assert await reader.read(10) == data[:10]
        reader.seek(2_000_000)
        assert await reader.read(5) == data[2_000_000:2_000_005]
        assert reader.tell() == 2_000_005
        assert await reader.read() == data[2_000_005:]


async def test_watch_applies_changes_made_elsewhere(m: AsyncMega, emulator: MegaEmulator) -> None:
    watcher = await m.watch()
    email = m.creds.email  # type: ignore[union-attr]
    emulator.add_folder(email, "made elsewhere")

    async def first_new() -> Any:
        async for event in watcher:
            if event.kind == "new":
                return event

    event = await asyncio.wait_for(first_new(), 20)
    assert event.path == "Cloud Drive/made elsewhere"
    assert await m.find("made elsewhere") is not None
    await watcher.aclose()


async def test_close_leaves_nothing_open(emulator: MegaEmulator, account: str) -> None:
    import threading

    before = {t.ident for t in threading.enumerate()}
    client = AsyncMega(emulator.api_url)
    await client.login(account, PASSWORD)
    await client.download_bytes(await client.find("top.bin"))  # type: ignore[arg-type]
    await client.close()
    await client.close()  # twice is fine
    assert client.api._session is None
    left = [t for t in threading.enumerate() if t.ident not in before and "megafast" in t.name]
    assert not left


async def test_watch_catches_up_a_long_answer(m: AsyncMega, emulator: MegaEmulator) -> None:
    watcher = await m.watch()
    email = m.creds.email  # type: ignore[union-attr]
    for i in range(1500):  # one /sc answer of many packets, read in many pieces
        emulator.add_folder(email, f"folder {i:04d} " + "x" * 200)
    events = await asyncio.wait_for(watcher.catch_up(), 60)
    assert len([e for e in events if e.kind == "new"]) == 1500
    assert await m.find(f"folder 1499 {'x' * 200}") is not None


async def test_it_stands_on_the_core(m: AsyncMega) -> None:
    from megafast._account.core import Core
    from megafast.errors import MegaError

    assert isinstance(m.core, Core)
    found = await m.find("docs/a.txt")
    assert found is not None and m.core.get(found.handle) == found  # the core's typed node
    assert m.core.credentials is m.creds and m.core.loaded_tree is await m.tree()
    with pytest.raises(MegaError, match="event loop"):
        m.core.request({"a": "uq"})  # a blocking call on the loop's thread refuses
    # from a worker thread the core's request goes through the async client
    assert "mstrg" in await asyncio.to_thread(m.core.request, {"a": "uq"})


async def test_own_changes_are_known_by_their_sequence_tags(m: AsyncMega) -> None:
    """The async client asks ``v=3`` as the sync one does: a command's answer gives the tag
    its packets carry, and the watcher takes a packet with one of those tags as our own
    (here a deletion already applied, which is not reported again nor forces a reload)."""
    folder = await m.create_folder("tagged")
    watcher = await m.watch()
    await watcher.catch_up()
    watcher.self_id = None  # only the tag tells it is ours
    await m.delete(folder)
    if folder.handle in watcher.store:
        watcher.store.remove(folder.handle)  # as a client that applied its own change
    assert len(m.api.own_seqtags._tags) >= 2  # p and d were answered with their tags
    events = await asyncio.wait_for(watcher.catch_up(), 20)
    assert [e.kind for e in events if e.kind in ("reload", "delete")] == []
    await watcher.aclose()
