"""Hostile listings (a public folder or an account's ``f``, from tests/support/hostile.py):
every walk over the tree ends, a cycle or a dangling parent is a TreeError naming the
handles, and no file of a folder download is dropped when names collide."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast.errors import MegaError, TreeError
from support.hostile import RAW_1E400, ROOT, HostileServer

TOP = "TopFoldr"


@pytest.fixture
def public() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


@pytest.fixture
def account() -> Iterator[HostileServer]:
    server = HostileServer(account=True)
    yield server
    server.close()


def client(server: HostileServer) -> Mega:
    m = Mega(api_url=server.url, retry_time=0.5, timeout=10)
    if server.account:
        m.resume_session(server.credentials())
    return m


def ends(call: Callable[[], Any], seconds: float = 30.0) -> Any:
    """Run ``call`` in a thread; fail (instead of hanging the suite) if it has not returned or
    raised within ``seconds``. Returns its result or re-raises its exception."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # handed to the test below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the walk did not end"
    if "error" in box:
        raise box["error"]
    return box.get("result")


def cyclic_public(server: HostileServer) -> None:
    """A public folder whose top lies inside its own sub-folder: TOP -> SUB -> TOP."""
    server.folder(TOP, "SubFoldr", "top")
    server.folder("SubFoldr", TOP, "sub")
    server.file("FileInSb", "SubFoldr", "f.txt", b"data")


def test_public_folder_cycle_is_reported(public: HostileServer, tmp_path: Path) -> None:
    cyclic_public(public)
    m = client(public)
    for call in (
        lambda: m.download_folder_url(public.link, tmp_path),
        lambda: m.download_url(public.link, tmp_path),
        lambda: m.get_public_folder(public.link),
        lambda: m.get_public_url_info(public.link),
    ):
        with pytest.raises(TreeError) as info:
            ends(call)
        assert {TOP, "SubFoldr"} <= set(info.value.handles)
        assert TOP in str(info.value) and "SubFoldr" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_public_folder_disjoint_cycle_and_dangling_parent(
    public: HostileServer, tmp_path: Path
) -> None:
    public.folder(TOP, "OwnerFdr", "top")
    public.file("FileOne1", TOP, "one.txt", b"1")
    public.folder("CycleAAA", "CycleBBB", "a")  # not reachable from the top: dropped silently
    public.folder("CycleBBB", "CycleAAA", "b")
    m = client(public)
    with pytest.raises(TreeError) as info:
        ends(lambda: m.download_folder_url(public.link, tmp_path))
    assert set(info.value.handles) == {"CycleAAA", "CycleBBB"}

    public.nodes[2:] = []
    public.file("Orphan01", "NoSuchPa", "lost.txt", b"2")  # its parent is not in the listing
    with pytest.raises(TreeError) as info:
        ends(lambda: m.download_folder_url(public.link, tmp_path))
    assert "Orphan01" in info.value.handles and "NoSuchPa" in str(info.value)


def test_link_to_a_node_inside_a_cycle(public: HostileServer, tmp_path: Path) -> None:
    cyclic_public(public)
    m = client(public)
    with pytest.raises(TreeError):
        ends(lambda: m.download_folder_url(public.link + "/folder/SubFoldr", tmp_path))


def cyclic_account(server: HostileServer) -> None:
    """An account where folder LOOP1 lies under LOOP2 and LOOP2 under LOOP1."""
    server.folder("Loop0001", "Loop0002", "loop1")
    server.folder("Loop0002", "Loop0001", "loop2")
    server.file("InLoop01", "Loop0002", "in.txt", b"x")
    server.folder("Normal01", ROOT, "normal")


def test_account_walks_end(account: HostileServer, tmp_path: Path) -> None:
    cyclic_account(account)
    m = client(account)
    loop = m.find("Loop0001", handle="Loop0001")
    assert loop is not None
    with pytest.raises(TreeError) as info:
        ends(lambda: m.download(("Loop0001", loop), tmp_path))
    assert set(info.value.handles) == {"Loop0001", "Loop0002"}
    assert list(tmp_path.iterdir()) == []
    # the other walks end too: a lookup by name that climbs to the root names the cycle
    assert set(ends(lambda: m.get_files_in_node("Loop0001"))) == {"Loop0002"}
    assert ends(lambda: m.find("normal"))[0] == "Normal01"
    assert ends(lambda: m.find("loop1/loop2/loop1")) is None
    ends(lambda: m.find("in.txt", exclude_deleted=True))  # ends (the Rubbish Bin is not above)
    tree = m._load_tree()
    with pytest.raises(TreeError):
        ends(lambda: tree.path_of("InLoop01"))
    with pytest.raises(TreeError):
        ends(lambda: list(tree.descendants("Loop0001")))


def test_self_parent(account: HostileServer, tmp_path: Path) -> None:
    account.folder("SelfLoop", "SelfLoop", "me")
    m = client(account)
    node = m.find("x", handle="SelfLoop")
    with pytest.raises(TreeError) as info:
        ends(lambda: m.download(("SelfLoop", node), tmp_path))
    assert info.value.handles == ("SelfLoop",)


COLLIDING = [
    ("FileA001", "a.txt", b"first a"),
    ("FileA002", "a.txt", b"second a"),
    ("FileB001", "b", b"file b"),
    ("FileC001", "c", b"plain c"),
    ("FileC002", "c.megafast-part", b"not a part file"),
    ("FileD001", "d/e", b"slash"),  # made safe: d_e
    ("FileD002", "d_e", b"underscore"),
]


def colliding_tree(server: HostileServer, parent: str) -> None:
    server.folder(TOP, parent, "top")
    for handle, name, data in COLLIDING:
        server.file(handle, TOP, name, data)
    server.folder("FolderB1", TOP, "b")  # a folder named like the file b
    server.file("InsideB1", "FolderB1", "inner.txt", b"inner")


def check_colliding(result: Path) -> None:
    got = {
        p.relative_to(result).as_posix(): p.read_bytes() for p in result.rglob("*") if p.is_file()
    }
    assert got == {
        "a.txt": b"first a",
        "a (1).txt": b"second a",
        "b": b"file b",
        "b (1)/inner.txt": b"inner",
        "c": b"plain c",
        "c (1).megafast-part": b"not a part file",
        "d_e": b"slash",
        "d_e (1)": b"underscore",
    }
    assert dict(result.renamed) == {  # type: ignore[attr-defined]
        "a.txt": "a (1).txt",
        "b": "b (1)",
        "c.megafast-part": "c (1).megafast-part",
        "d_e": "d_e (1)",
    }


def test_public_folder_collisions_lose_nothing(
    public: HostileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    colliding_tree(public, "OwnerFdr")
    result = client(public).download_folder_url(public.link, tmp_path)
    assert result == tmp_path / "top"
    check_colliding(result)
    assert "saved as a (1).txt" in caplog.text


def test_account_folder_collisions_lose_nothing(account: HostileServer, tmp_path: Path) -> None:
    colliding_tree(account, ROOT)
    m = client(account)
    check_colliding(m.download(m.find("top"), tmp_path))


def test_odd_names_and_handles(public: HostileServer, tmp_path: Path) -> None:
    public.folder(TOP, "OwnerFdr", "top")
    public.file("NumName1", TOP, 12345, b"number")  # a name that is not a string
    public.file(["ListHnd1"], TOP, "list-handle.txt", b"x")  # a handle that is a list
    m = client(public)
    result = ends(lambda: m.download_folder_url(public.link, tmp_path))
    assert [p.name for p in result.iterdir()] == ["NumName1"]  # the handle stands in for it
    assert m.get_public_url_info(public.link)["files"] == 1

    public.file("ListPar1", ["ListHnd1"], "list-parent.txt", b"y")  # a parent that is a list
    with pytest.raises(TreeError) as info:
        ends(lambda: m.get_public_folder(public.link))
    assert "ListPar1" in info.value.handles


@pytest.mark.parametrize("size", [10**20, "12", RAW_1E400, [1], -1, 2.5])
def test_huge_and_malformed_sizes(public: HostileServer, tmp_path: Path, size: Any) -> None:
    public.folder(TOP, "OwnerFdr", "top")
    public.file("OddSize1", TOP, "odd.bin", b"abc", s=size)
    m = client(public)
    with contextlib.suppress(MegaError):  # the listing's size is not used for reading
        assert ends(lambda: m.get_public_url_info(public.link))["files"] == 1
    for call in (
        lambda: m.download_folder_url(public.link, tmp_path),
        lambda: m.download_url(public.link + "/file/OddSize1", tmp_path),
    ):
        with pytest.raises(MegaError, match="size"):
            ends(call)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("mode", ["endless", "nested", "redirect"])
def test_hostile_bodies(public: HostileServer, tmp_path: Path, mode: str) -> None:
    public.folder(TOP, "OwnerFdr", "top")
    public.body_mode = mode
    m = Mega(
        {"api_url": public.url, "retry_time": 0.5, "timeout": 10, "max_listing_bytes": 1 << 20}
    )
    with pytest.raises(MegaError):
        ends(lambda: m.download_folder_url(public.link, tmp_path))


def test_redirect_loop_on_a_file_url(public: HostileServer, tmp_path: Path) -> None:
    public.folder(TOP, "OwnerFdr", "top")
    public.file("LoopFile", TOP, "loop.bin", b"abc")
    public.download_mode = "redirect"
    with pytest.raises(MegaError):
        ends(lambda: client(public).download_folder_url(public.link, tmp_path))
    assert not (tmp_path / "top" / "loop.bin").exists()  # only a part file, kept for resuming


def test_a_sync_scan_of_a_folder_inside_its_own_sub_folder_is_a_tree_error(
    account: HostileServer,
) -> None:
    from megafast.sync._ignore import IgnoreRules
    from megafast.sync._remote import RemoteIndex

    cyclic_account(account)
    m = client(account)
    index = RemoteIndex.of(m)
    with pytest.raises(TreeError, match="the synced folder lies inside"):
        ends(lambda: index.scan("Loop0001", IgnoreRules()))
