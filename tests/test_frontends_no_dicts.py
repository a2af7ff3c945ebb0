"""No front end lists the account through mega.py's dicts (issue 19).

``Mega.get_files``, ``NodeTree.visible``, ``NodeStore.visible`` and ``NodeStore.iter_nodes``
(the paths that make a dict for every node of the account: ~2 GB at a million nodes) are made
to raise, and every node dict made is counted; then the command line (``ls -l``, ``ls -R``,
``du``, ``find``, ``get``, ``put``, ``mv``, ``link``, ``rm``), a sync and the ``mega://``
filesystem run against the emulator and must still work. Listings over an account of a few
hundred nodes may make only a handful of dicts (the facade's operations take one node's).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast._tree.nodes import NodeTree
from megafast._tree.nodestore import NodeStore
from megafast.testing import MegaEmulator
from support.cli_inproc import cli_login, run_cli

EMAIL = "nodicts@example.com"
PASSWORD = "no dicts password"
FILES = 300  # nodes in /bulk: a listing that made a dict per node would be seen


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        bulk = emu.add_folder(EMAIL, "bulk")
        for i in range(FILES // 30):
            sub = emu.add_folder(EMAIL, f"sub{i:02d}", bulk)
            for j in range(30):
                emu.add_file(EMAIL, b"x" * (i + j), f"f{i:02d}-{j:02d}.txt", sub)
        yield emu


@pytest.fixture
def dicts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The whole-account dict paths raise; the returned list grows by one per node dict."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a front end made a dict of every node of the account")

    for owner, name in (
        (Mega, "get_files"),
        (NodeTree, "visible"),
        (NodeStore, "visible"),
        (NodeStore, "iter_nodes"),
    ):
        monkeypatch.setattr(owner, name, refuse)
    made: list[int] = []
    real = NodeStore._dict

    def counted(self: NodeStore, slot: int, attrs: object = None) -> dict[str, object]:
        made.append(slot)
        return real(self, slot, attrs)

    monkeypatch.setattr(NodeStore, "_dict", counted)
    return made


@pytest.fixture
def cli(
    tmp_path: Path, emulator: MegaEmulator, monkeypatch: pytest.MonkeyPatch, capsys, dicts
) -> Mega:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return cli_login(capsys, monkeypatch, tmp_path, emulator, EMAIL, PASSWORD)


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, (argv, err)
    return out


def test_the_command_line_lists_and_changes_without_node_dicts(
    cli: Mega, capsys, dicts: list[int], tmp_path: Path
) -> None:
    for argv in (
        ("ls", "-l", "/"),
        ("ls", "-R", "/"),
        ("--json", "ls", "-R", "-l", "/bulk"),
        ("du", "-d", "3", "-a", "/"),
        ("find", "/", "--name", "f0*"),
        ("--no-cache", "ls", "-R", "/"),
    ):
        dicts.clear()
        ok(capsys, *argv)
        assert len(dicts) < 10, (argv, len(dicts))
    assert "bulk/sub09/f09-29.txt" in ok(capsys, "ls", "-R", "/").splitlines()
    assert len(json.loads(ok(capsys, "--json", "ls", "-R", "/bulk"))) == FILES + FILES // 30
    assert ok(capsys, "du", "/bulk").split()[1:3] == [str(FILES), "files"]
    assert len(ok(capsys, "find", "/", "--name", "f0*").splitlines()) == 300

    local = tmp_path / "up"
    (local / "inner").mkdir(parents=True)
    (local / "inner" / "one.bin").write_bytes(os.urandom(3000))
    (local / "two.txt").write_bytes(b"two")
    ok(capsys, "mkdir", "/dest")
    ok(capsys, "put", str(local), "/dest")
    ok(capsys, "put", str(local / "two.txt"), "/dest/renamed.txt")
    out_dir = tmp_path / "down"
    ok(capsys, "-q", "get", "/dest/up", "/bulk/sub00/f00-01.txt", "-o", f"{out_dir}/")
    assert (out_dir / "up" / "inner" / "one.bin").read_bytes() == (
        local / "inner" / "one.bin"
    ).read_bytes()
    assert (out_dir / "f00-01.txt").read_bytes() == b"x"
    ok(capsys, "mv", "/dest/renamed.txt", "/dest/up/moved.txt")
    assert "https://" in ok(capsys, "link", "/dest/up/moved.txt")
    ok(capsys, "rm", "-r", "/dest/up/inner")
    found = ok(capsys, "find", "/dest")
    assert found.splitlines() == ["/dest/", "/dest/up/", "/dest/up/moved.txt", "/dest/up/two.txt"]


def test_a_public_folder_link_is_listed_without_node_dicts(
    cli: Mega, capsys, emulator: MegaEmulator, dicts: list[int]
) -> None:
    found = cli.find("bulk/sub03")
    assert found is not None
    link = emulator.export(found[0])
    dicts.clear()
    listed = ok(capsys, "ls", "-R", link).splitlines()
    assert len(listed) == 30 and "f03-00.txt" in listed
    assert ok(capsys, "du", link).split()[:2] == [str(sum(3 + j for j in range(30))), "30"]
    assert len(dicts) < 5


def test_sync_runs_without_the_accounts_dicts(
    emulator: MegaEmulator, dicts: list[int], tmp_path: Path
) -> None:
    from megafast.sync import sync

    mega = Mega(api_url=emulator.api_url).login(EMAIL, PASSWORD)
    local = tmp_path / "synced"
    (local / "a").mkdir(parents=True)
    (local / "a" / "x.txt").write_bytes(b"x" * 100)
    (local / "y.bin").write_bytes(os.urandom(5000))
    report = sync(mega, local, "/synced", state_dir=tmp_path / "state")
    assert report.ok and report.count("upload") == 2
    again = sync(mega, local, "/synced", state_dir=tmp_path / "state")
    assert again.actions == [] and again.files_unchanged == 2


def test_the_filesystem_works_without_node_dicts_of_the_account(
    emulator: MegaEmulator, dicts: list[int]
) -> None:
    from megafast.fs import MegaFileSystem

    fs = MegaFileSystem(
        email=EMAIL, password=PASSWORD, api_url=emulator.api_url, skip_instance_cache=True
    )
    dicts.clear()
    assert len(fs.ls("bulk/sub01")) == 30
    assert fs.info("bulk/sub01/f01-02.txt")["size"] == 3
    assert len(dicts) < 50  # the folder's own, never the account's
    assert len(fs.find("bulk")) == FILES
    fs.pipe_file("fsdir/new.bin", b"new bytes")
    assert fs.cat_file("fsdir/new.bin") == b"new bytes"
    fs.mv("fsdir/new.bin", "fsdir/moved.bin")
    assert fs.ls("fsdir", detail=False) == ["fsdir/moved.bin"]
    fs.rm("fsdir", recursive=True)
    assert not fs.exists("fsdir")
