"""The fuzz test of API answers (tests/test_hostile_fuzz.py), on the async path: random JSON
shapes for every command AsyncMega parses, through a scripted server over real HTTP.
Whatever comes back, a call returns or raises a megafast error, nothing else; and hostile
listings (cycles, dangling parents, odd names and sizes) give megafast errors too."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from megafast._account.session import Credentials
from megafast._wire.retry import RetryPolicy
from megafast.aio import AsyncMega
from megafast.errors import MegaError, TreeError
from support.hostile import ROOT, HostileServer
from support.scripted_api import ScriptedAPI
from support.servers import FUZZ_SETTINGS, scripted_per_module  # noqa: F401 (a fixture)
from test_client_odd_answers import MASTER, USER
from test_hostile_fuzz import FOLDER_LINK, LINK, answers, json_values, listings

pytestmark = pytest.mark.filterwarnings("error")

Call = Callable[[AsyncMega, Path], Awaitable[Any]]


async def _login(m: AsyncMega, d: Path) -> Any:
    async with AsyncMega(m.api_url, retry=RetryPolicy.fast(), options={"retry_time": 0.2}) as fresh:
        return await fresh.login("a@b.example", "pw")


async def _file(m: AsyncMega) -> Any:
    return await m.find("docs/a.txt")


CALLS: list[tuple[str, Call]] = [
    ("us0", _login),
    ("us", _login),
    ("ug", lambda m, d: m.get_user()),
    ("f", lambda m, d: m.find("docs/a.txt")),
    ("f", lambda m, d: m.children()),
    ("f", lambda m, d: _walk(m)),
    ("f", lambda m, d: _then(m, "docs", lambda n: m.download_tree(n, d))),
    ("p", lambda m, d: m.create_folder("new")),
    ("a", lambda m, d: _then(m, "docs/a.txt", lambda n: m.rename(n, "b.txt"))),
    ("m", lambda m, d: _then(m, "docs/a.txt", m.delete)),
    ("d", lambda m, d: _then(m, "docs/a.txt", m.destroy)),
    ("l", lambda m, d: _then(m, "docs/a.txt", m.get_link)),
    ("s2", lambda m, d: _then(m, "docs", m.get_link)),
    ("g", lambda m, d: m.public_info(LINK)),
    ("g", lambda m, d: _then(m, "docs/a.txt", lambda n: m.download(n, d))),
    ("g", lambda m, d: m.download_bytes(LINK)),
    ("g", lambda m, d: _then(m, "docs/a.txt", m.open)),
    ("f", lambda m, d: m.public_folder(FOLDER_LINK)),
    ("f", lambda m, d: m.public_info(FOLDER_LINK)),
    ("u", lambda m, d: m.upload(d / "src.bin")),
    ("p", lambda m, d: m.upload_bytes(b"0123456789", "x.bin")),
]


async def _walk(m: AsyncMega) -> list[Any]:
    return [n async for n in m.iter_nodes(recursive=True)]


async def _then(m: AsyncMega, path: str, action: Callable[[Any], Awaitable[Any]]) -> Any:
    node = await m.find(path)
    if node is not None:
        result = await action(node)
        if hasattr(result, "close") and asyncio.iscoroutinefunction(result.close):
            await result.close()
        return result
    return None


async def _run(url: str, call: Call, tmp: Path) -> None:
    creds = Credentials(sid="S" * 58, master_key=MASTER, user_handle=USER)
    async with AsyncMega(
        url, retry=RetryPolicy.fast(), timeout=5, options={"retry_time": 0.2}
    ) as m:
        with contextlib.suppress(MegaError):
            await m.resume_session(creds.to_dict())  # asks ug: its answer may be the odd one
            await call(m, tmp)


@pytest.mark.parametrize(
    ("command", "call"), CALLS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CALLS)]
)
@FUZZ_SETTINGS
@given(data=st.data())
def test_random_answers_raise_only_megafast_errors(
    scripted: ScriptedAPI, command: str, call: Call, data: st.DataObject
) -> None:
    odd = data.draw(listings() if command == "f" else json_values, label="answer")
    whole = data.draw(st.booleans(), label="whole batch")
    scripted.default = answers(command, odd, whole)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("error")
        (Path(tmp) / "src.bin").write_bytes(b"0123456789")
        asyncio.run(_run(scripted.url, call, Path(tmp)))


# -- hostile listings (tests/support/hostile.py) --------------------------------------------------
@pytest.mark.parametrize("shape", ["cycle", "dangling", "same names", "odd sizes", "endless"])
def test_hostile_listings_give_megafast_errors(shape: str, tmp_path: Path) -> None:
    server = HostileServer(account=True)
    try:
        if shape == "cycle":
            server.folder("CycleA01", "CycleB01", "a")
            server.folder("CycleB01", "CycleA01", "b")
        elif shape == "dangling":
            server.file("Dangle01", "NoParent", "lost.txt", b"lost")
        elif shape == "same names":
            server.file("SameNam1", ROOT, "x.txt", b"one")
            server.file("SameNam2", ROOT, "x.txt", b"two")
        elif shape == "odd sizes":
            server.file("OddSize1", ROOT, "big.txt", b"data", s=10**20)
            server.file("OddSize2", ROOT, "neg.txt", b"data", s=-5)
        else:
            server.body_mode = "endless_listing"

        async def scenario() -> None:
            options = {"retry_time": 2.0, "max_listing_bytes": 4 << 20}
            async with AsyncMega(server.url, retry=RetryPolicy.fast(), options=options) as m:
                await m.resume_session(server.credentials())
                with contextlib.suppress(MegaError):
                    nodes = [n async for n in m.iter_nodes(recursive=True)]
                    for node in nodes:
                        if node.is_file:
                            with contextlib.suppress(MegaError):
                                await m.download(node, tmp_path)
                    if shape == "same names":
                        found = await m.find("x.txt")
                        assert found is not None and found.handle == "SameNam1"
                    if shape == "endless":
                        raise AssertionError("an endless listing was read to its end")

        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        server.close()


def test_a_walk_that_comes_back_to_its_top_is_a_tree_error() -> None:
    # the root's parent is its own sub-folder: the walk from the root would go round forever
    server = HostileServer(account=True)
    try:
        server.folder("LoopDir1", ROOT, "loop")
        server.file("LoopFil1", "LoopDir1", "f.txt", b"data")
        server.nodes[0]["p"] = "LoopDir1"

        async def scenario() -> int:
            async with AsyncMega(server.url, retry=RetryPolicy.fast()) as m:
                await m.resume_session(server.credentials())
                seen = 0
                with pytest.raises(TreeError, match="inside its own sub-folder"):
                    async for _ in m.iter_nodes(recursive=True):
                        seen += 1
                        assert seen < 100, "the walk went round the cycle"
                return seen

        assert asyncio.run(asyncio.wait_for(scenario(), 60)) <= 2
    finally:
        server.close()


def test_a_folder_download_that_comes_back_to_its_folder_is_a_tree_error(tmp_path: Path) -> None:
    # a folder whose parent is its own sub-folder, downloaded by handle: no endless nesting
    server = HostileServer(account=True)
    try:
        server.folder("CycleA01", "CycleB01", "a")
        server.folder("CycleB01", "CycleA01", "b")
        server.file("CycleF01", "CycleB01", "f.txt", b"data")

        async def scenario() -> None:
            async with AsyncMega(server.url, retry=RetryPolicy.fast()) as m:
                await m.resume_session(server.credentials())
                with pytest.raises(TreeError, match="inside its own sub-folder"):
                    await m.download_tree("CycleA01", tmp_path)

        asyncio.run(asyncio.wait_for(scenario(), 60))
        assert len(list(tmp_path.rglob("*"))) <= 3  # a/, a/b/ at most: no endless nesting
    finally:
        server.close()
