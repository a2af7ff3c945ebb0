"""This client's own changes come back through ``/sc`` after it applied them to its tree.
An echo of an earlier change must not undo a later one: an upload moved (or renamed, or
deleted) before the upload's ``t`` packet arrives stays where it was put. The packets are
the emulator's, read over HTTP and applied one at a time, checking the tree after each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast._tree.watch import ScChannel, apply_packet
from megafast.testing import MegaEmulator

EMAIL, PASSWORD = "echo@example.com", "echo pw"


@pytest.fixture()
def mega() -> Iterator[Mega]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        m = Mega(api_url=emu.api_url).login(EMAIL, PASSWORD)
        m.get_files()
        yield m


def _echoes(m: Mega, sn: str, kinds: list[str]) -> list[dict[str, Any]]:
    """The packets after ``sn``: their kinds must be ``kinds``."""
    assert m.core.sid is not None
    channel = ScChannel(m.core.api_url, m.core.sid, sn, timeout=10)
    packets: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(packets) < len(kinds) and time.monotonic() < deadline:
        got, _ = channel.poll(wait=False)
        packets += got
    assert [p["a"] for p in packets] == kinds
    return packets


def _replay(m: Mega, packets: list[dict[str, Any]], check: Any) -> None:
    tree = m.core.loaded_tree
    keyring = m.core.keyring
    assert tree is not None and keyring is not None
    for packet in packets:
        apply_packet(tree.store, keyring, packet, m.request_id, m.core.api_client.own_seqtags)
        check(packet)


def _uploaded(m: Mega, tmp_path: Path) -> tuple[str, str]:
    """A file uploaded: its handle, and the tree's ``sn`` before it."""
    tree = m.core.loaded_tree
    assert tree is not None and tree.store.sn
    sn = tree.store.sn
    src = tmp_path / "a.txt"
    src.write_text("echo")
    h = m.upload(str(src))["f"][0]["h"]
    return h, sn


def test_an_upload_moved_before_its_echo_stays_moved(mega: Mega, tmp_path: Path) -> None:
    tree = mega.core.loaded_tree
    assert tree is not None and tree.store.sn
    sn = tree.store.sn
    folder = mega.create_folder("dest")["dest"]
    h, _ = _uploaded(mega, tmp_path)
    mega.move(h, folder)

    def moved(packet: dict[str, Any]) -> None:
        assert h in tree.store, f"the file vanished after {packet['a']}"
        assert tree.store.parent_of(h) == folder, f"moved back by {packet['a']}"

    _replay(mega, _echoes(mega, sn, ["t", "t", "d", "t"]), moved)  # mkdir, upload, move


def test_an_upload_renamed_twice_keeps_the_last_name(mega: Mega, tmp_path: Path) -> None:
    h, sn = _uploaded(mega, tmp_path)
    mega.rename(h, "b.txt")
    mega.rename(h, "c.txt")
    tree = mega.core.loaded_tree
    assert tree is not None

    def named(packet: dict[str, Any]) -> None:
        assert tree.name_of(tree.nodes[h]) == "c.txt", f"renamed back by {packet}"

    _replay(mega, _echoes(mega, sn, ["t", "u", "u"]), named)


def test_an_upload_deleted_before_its_echo_stays_deleted(mega: Mega, tmp_path: Path) -> None:
    h, sn = _uploaded(mega, tmp_path)
    mega.destroy(h)
    tree = mega.core.loaded_tree
    assert tree is not None

    def gone(packet: dict[str, Any]) -> None:
        assert h not in tree.store, f"brought back by {packet['a']}"

    _replay(mega, _echoes(mega, sn, ["t", "d"]), gone)


def test_another_clients_change_still_applies(mega: Mega, tmp_path: Path) -> None:
    """A change by another session after ours is applied over our local one."""
    h, sn = _uploaded(mega, tmp_path)
    mega.rename(h, "mine.txt")
    other = Mega(api_url=mega.core.api_url).login(EMAIL, PASSWORD)
    other.rename(h, "theirs.txt")
    tree = mega.core.loaded_tree
    assert tree is not None
    _replay(mega, _echoes(mega, sn, ["t", "u", "u"]), lambda _p: None)
    assert tree.name_of(tree.nodes[h]) == "theirs.txt"


def test_a_folder_tree_deleted_before_its_echoes_stays_deleted(mega: Mega) -> None:
    """The echoes of folders made under a folder deleted here since are left out (not an
    unknown parent, which would list the whole tree again)."""
    tree = mega.core.loaded_tree
    assert tree is not None and tree.store.sn
    sn = tree.store.sn
    made = mega.create_folder("x/y/z")
    mega.destroy(made["x"])

    def gone(packet: dict[str, Any]) -> None:
        assert not any(h in tree.store for h in made.values()), f"brought back by {packet}"

    _replay(mega, _echoes(mega, sn, ["t", "t", "t", "d"]), gone)


def test_old_marks_are_swept_once_their_echoes_have_passed() -> None:
    from megafast._tree.nodes import Keyring
    from megafast._tree.nodestore import NodeStore
    from megafast._wire.seqtag import OwnTags

    tags = OwnTags()
    for st in ("1", "2", "3"):
        tags.add(st)
    store = NodeStore()
    store.own_marks = {f"h{i}": (1, "1") for i in range(5000)}
    store.own_marks["later"] = (1, "3")
    apply_packet(store, Keyring(b"\0" * 16, "me"), {"a": "k", "st": "2"}, None, tags)
    assert store.own_marks == {"later": (1, "3")}


def test_a_change_is_marked_with_the_tag_of_its_own_threads_command() -> None:
    """Two threads' commands answered in one order and applied in the other: each mark is
    its own command's tag (never a later command's), and a mark never goes back."""
    import threading

    from megafast._tree.nodes import Keyring, NodeTree
    from megafast._wire.seqtag import OwnTags

    tags = OwnTags()
    tree = NodeTree(keyring=Keyring(b"\0" * 16, "me"))
    tree.own_clock = tags.latest
    answered = threading.Event()
    seen: dict[str, tuple[int, str]] = {}

    def command(tag: str, wait: bool) -> None:
        tags.add(tag)  # this thread's answer
        if wait:
            answered.wait(5)  # applied only after the other thread's later answer
        else:
            answered.set()
        seen[tag] = tags.latest()
        tree._mark(["x"])

    older = threading.Thread(target=command, args=("5", True))
    older.start()
    newer = threading.Thread(target=command, args=("6", False))
    newer.start()
    older.join(5)
    newer.join(5)
    assert seen == {"5": (1, "5"), "6": (1, "6")}
    assert tree.store.own_marks["x"] == (1, "6")  # the older command's apply kept the newer
    assert tags.latest() == (1, "6")  # a thread without commands: the newest
    assert tags.order("10") is None
    tags.add("10")
    assert tags.order("10") == (2, "10")  # after "6": longer tags come later


def test_marks_stay_bounded_without_a_watcher() -> None:
    from megafast._tree import nodestore
    from megafast._tree.nodes import Keyring, NodeTree
    from megafast._wire.seqtag import tag_key

    clock = (str(n) for n in range(1, 1_000_000))
    tree = NodeTree(keyring=Keyring(b"\0" * 16, "me"))
    tree.own_clock = lambda: tag_key(next(clock))
    for i in range(nodestore._MARKS_MAX + 10):
        tree._mark([f"h{i}"])
    assert len(tree.store.own_marks) <= nodestore._MARKS_MAX
    assert f"h{nodestore._MARKS_MAX + 9}" in tree.store.own_marks  # the newest stay
