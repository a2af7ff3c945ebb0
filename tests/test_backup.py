"""Backups with dated snapshots, retention and restore, against the emulator."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast.errors import NodeNotFoundError, ValidationError
from megafast.sync import backup, list_snapshots, restore
from megafast.sync._backup import PARTIAL, parse_when
from support.sync import fresh_client, remote_children, running_emulator, tree_bytes, write

emu = pytest.fixture(scope="module", name="emu")(running_emulator)
mega = pytest.fixture(name="mega")(fresh_client)

DAY = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)


def _tree(root: Path, n: int = 12) -> None:
    for i in range(n):
        write(root / f"d{i % 3}" / f"f{i}.bin", os.urandom(1000 + i), mtime=1_600_000_000 + i)


def _uploaded(emu: Any) -> int:
    return int(emu.stats().get("upload_bytes", 0))


def _mtimes(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and ".megafast-trash" not in p.parts
    }


def test_unchanged_files_cost_nothing_and_each_snapshot_is_complete(emu, mega, tmp_path):
    src = tmp_path / "src"
    _tree(src)
    first = backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY)
    assert first.ok and len(first.uploaded) == 12 and first.copied == 0
    write(src / "d0" / "f0.bin", b"changed", mtime=1_700_000_000)
    write(src / "new.txt", "new")
    before = _uploaded(emu)
    second = backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY + dt.timedelta(hours=1))
    assert sorted(second.uploaded) == ["d0/f0.bin", "new.txt"] and second.copied == 11
    assert _uploaded(emu) - before == len(b"changed") + 3
    snaps = list_snapshots(mega, "/bk")
    assert [s.name for s in snaps] == ["2026-12-01T090000Z", "2026-12-01T100000Z"]
    assert set(remote_children(mega, f"bk/{snaps[1].name}")) == {"d0", "d1", "d2", "new.txt"}
    assert len(remote_children(mega, f"bk/{snaps[1].name}/d0")) == 4


def test_restore_a_point_in_time_byte_identical_with_mtimes(mega, tmp_path):
    src = tmp_path / "src"
    _tree(src)
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY)
    old_bytes, old_mtimes = tree_bytes(src), _mtimes(src)
    write(src / "d1" / "f1.bin", b"later", mtime=1_700_000_000)
    (src / "d2" / "f2.bin").unlink()
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY + dt.timedelta(days=1))
    back = tmp_path / "restored"
    report = restore(mega, "/bk", "2026-12-01", back, state_dir=tmp_path / "r")
    assert report.ok
    assert tree_bytes(back) == old_bytes
    # MEGA's fingerprint keeps whole seconds: the mtimes come back to the second
    assert {k: v // 10**9 for k, v in _mtimes(back).items()} == {
        k: v // 10**9 for k, v in old_mtimes.items()
    }
    newest = tmp_path / "newest"
    restore(mega, "/bk", "2026-12-02T23:00", newest, state_dir=tmp_path / "r2")
    assert tree_bytes(newest) == tree_bytes(src)
    with pytest.raises(NodeNotFoundError):
        restore(mega, "/bk", "2026-11-30", tmp_path / "none", state_dir=tmp_path / "r3")


def test_retention_keeps_the_newest_per_day_and_week(mega, tmp_path):
    src = tmp_path / "src"
    write(src / "a.txt", "a")
    stamps = [DAY + dt.timedelta(days=d, hours=h) for d in range(10) for h in (0, 5)]
    for when in stamps:
        report = backup(
            mega, src, "/bk", state_dir=tmp_path / "s", now=when, keep_daily=3, keep_weekly=2
        )
    names = [s.name for s in list_snapshots(mega, "/bk")]
    # the last 3 days (newest of each), and the newest of the last 2 ISO weeks
    assert names == [
        "2026-12-06T140000Z",
        "2026-12-08T140000Z",
        "2026-12-09T140000Z",
        "2026-12-10T140000Z",
    ]
    assert report.removed
    trash = {n["a"]["n"] for n in mega.get_files_in_node(4).values()}
    assert "2026-12-01T090000Z" in trash  # removed snapshots go to the Rubbish Bin


def test_an_interrupted_snapshot_never_looks_complete(mega, tmp_path, monkeypatch):
    src = tmp_path / "src"
    _tree(src, 4)
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY)
    write(src / "d0" / "f0.bin", b"changed")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network gone")

    from megafast.sync import _transfers

    monkeypatch.setattr(_transfers, "_upload", broken)
    report = backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY + dt.timedelta(days=1))
    assert "d0/f0.bin" in report.skipped and not report.ok
    monkeypatch.undo()
    # a run killed before the rename leaves a .partial folder: never listed, removed later
    mega.create_folder(f"bk/2026-12-03T000000Z{PARTIAL}")
    assert [s.name for s in list_snapshots(mega, "/bk")] == [
        "2026-12-01T090000Z",
        "2026-12-02T090000Z",
    ]
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY + dt.timedelta(days=3))
    assert not any(n.endswith(PARTIAL) for n in remote_children(mega, "bk"))


def test_a_lost_state_file_reads_fingerprints_and_still_copies(emu, mega, tmp_path):
    src = tmp_path / "src"
    _tree(src, 6)
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY)
    before = _uploaded(emu)
    report = backup(mega, src, "/bk", state_dir=tmp_path / "other", now=DAY + dt.timedelta(1))
    assert report.copied == 6 and not report.uploaded and _uploaded(emu) == before


def test_bad_input(mega, tmp_path):
    with pytest.raises(ValidationError):
        backup(mega, tmp_path / "missing", "/bk", state_dir=tmp_path / "s")
    with pytest.raises(ValidationError):
        backup(mega, tmp_path, "/", state_dir=tmp_path / "s")
    with pytest.raises(ValidationError):
        parse_when("yesterday")
    assert parse_when("2026-12-01") == dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=dt.timezone.utc)
    assert parse_when("2026-12-01T090000Z") == DAY


def test_backup_never_calls_get_files(mega, tmp_path, monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("get_files() called")

    monkeypatch.setattr(Mega, "get_files", refuse)
    src = tmp_path / "src"
    _tree(src, 3)
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY)
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY + dt.timedelta(1))
    restore(mega, "/bk", "2026-12-03", tmp_path / "r", state_dir=tmp_path / "r")


def test_a_tree_of_big_and_small_folders_is_made_in_few_whole_subtree_commands(
    emu, mega, tmp_path, monkeypatch
):
    """With NODES at 8: a folder whose sub-tree holds more is made first (the spine); the
    others go whole, folders and files together, several to a command."""
    from megafast.sync import _snapshot

    monkeypatch.setattr(_snapshot, "NODES", 8)
    src = tmp_path / "src"
    for i in range(12):  # big/ (12 files): spine; its own files go 8 + 4
        write(src / "big" / f"b{i}.bin", os.urandom(100 + i), mtime=1_600_000_000 + i)
    for d in range(5):  # small/s<d>/ (2 files, one sub-folder of 1 file): 5 nodes each
        write(src / "small" / f"s{d}" / "x.bin", os.urandom(50 + d))
        write(src / "small" / f"s{d}" / "y.bin", os.urandom(60 + d))
        write(src / "small" / f"s{d}" / "deep" / "z.bin", os.urandom(70 + d))
    (src / "empty" / "inner").mkdir(parents=True)
    write(src / "top.txt", "top")
    sent: list[list[dict[str, Any]]] = []
    real = mega._batch

    def counting(commands: list[dict[str, Any]]) -> list[Any]:
        sent.append(commands)
        return real(commands)

    monkeypatch.setattr(mega, "_batch", counting)
    first = backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY)
    assert first.ok and len(first.uploaded) == 28
    commands = [c for request in sent for c in request if c.get("a") == "p"]
    assert all(len(c["n"]) <= 8 for c in commands)
    # 28 files and 12 folders below the spine (the snapshot, big, small; made by one p
    # before): 40 nodes in 8 commands, where one command per folder would take 13
    assert sum(len(c["n"]) for c in commands) == 40 and len(commands) == 8
    write(src / "small" / "s1" / "deep" / "z.bin", b"changed")
    second = backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY + dt.timedelta(1))
    assert second.uploaded == ["small/s1/deep/z.bin"] and second.copied == 27
    back = tmp_path / "back"
    assert restore(mega, "/bk", "2026-12-02T12:00", back, state_dir=tmp_path / "r").ok
    assert tree_bytes(back) == tree_bytes(src)
    assert (back / "empty" / "inner").is_dir()


def test_a_snapshot_in_a_shared_folder_carries_its_keys_for_the_share(emu, mega, tmp_path):
    src = tmp_path / "src"
    _tree(src, 6)
    mega.create_folder("bk")
    link = mega.export("bk")
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY)
    write(src / "d1" / "f1.bin", b"changed")
    backup(mega, src, "/bk", state_dir=tmp_path / "s", now=DAY + dt.timedelta(1))
    # a link holder reads every node of both snapshots (the copies and the uploads)
    visitor = Mega(api_url=emu.api_url).get_public_folder(link)
    assert not [n for n in visitor.values() if n.get("undecryptable")]
    names = sorted(n["a"]["n"] for n in visitor.values())
    expected = ["bk", "2026-12-01T090000Z", "2026-12-02T090000Z"] + 2 * [
        *("d0", "d1", "d2"),
        *(f"f{i}.bin" for i in range(6)),
    ]
    assert names == sorted(expected)
