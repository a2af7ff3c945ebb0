"""Sync against the emulator (a real HTTP server): what moves, what stays, what is kept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from megafast.crypto import fingerprint
from megafast.sync import Sync, list_versions, remove_versions, sync
from megafast.transfer import CommandBatcher
from support.sync import (
    fresh_client,
    remote_children,
    running_emulator,
    tree_bytes,
    write,
)

emu = pytest.fixture(scope="module", name="emu")(running_emulator)


mega = pytest.fixture(name="mega")(fresh_client)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _up(mega: Any, local: Path, state_dir: Path, **kw: Any) -> Any:
    return sync(mega, local, "/backup", state_dir=state_dir, **kw)


def _down(mega: Any, local: Path, state_dir: Path, **kw: Any) -> Any:
    return sync(mega, local, "/backup", direction="down", state_dir=state_dir, **kw)


def _uploaded(emu: Any) -> int:
    """Bytes the emulator received (it counts a piece after its answer is sent: wait for that)."""
    emu.wait_idle()
    return int(emu.stats().get("upload_bytes", 0))


def test_second_run_right_after_a_sync_does_nothing(emu, mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "a.txt", "alpha")
    write(src / "sub" / "deep" / "b.bin", os.urandom(200_000))
    write(src / "empty", b"")
    first = _up(mega, src, state_dir)
    assert first.ok and first.count("upload") == 3 and first.count("mkdir") == 2
    assert first.bytes_uploaded == 200_005
    before = _uploaded(emu)
    again = _up(mega, src, state_dir)
    assert again.actions == [] and again.files_unchanged == 3 and again.bytes_uploaded == 0
    assert _uploaded(emu) == before
    # down into an empty folder, then down again: nothing the second time
    dst = tmp_path / "dst"
    assert _down(mega, dst, state_dir).count("download") == 3
    assert tree_bytes(dst) == tree_bytes(src)
    assert _down(mega, dst, state_dir).actions == []


def test_uploads_carry_megas_fingerprint_and_downloads_take_its_mtime(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    path = write(src / "photo.jpg", os.urandom(50_000), mtime=1_600_000_000)
    _up(mega, src, state_dir)
    node = remote_children(mega, "backup")["photo.jpg"]
    assert node["a"]["c"] == fingerprint(path, 1_600_000_000)
    dst = tmp_path / "dst"
    _down(mega, dst, state_dir)
    assert int((dst / "photo.jpg").stat().st_mtime) == 1_600_000_000


def test_only_the_changed_files_move(emu, mega, tmp_path, state_dir):
    src = tmp_path / "src"
    for i in range(30):
        write(src / f"f{i:02}.txt", f"content {i}")
    _up(mega, src, state_dir)
    before = _uploaded(emu)
    for i in (3, 17):
        write(src / f"f{i:02}.txt", f"changed content {i}!")
    report = _up(mega, src, state_dir)
    assert sorted(a.path for a in report.actions) == ["f03.txt", "f17.txt"]
    assert {a.kind for a in report.actions} == {"version"}
    assert report.files_unchanged == 28
    assert _uploaded(emu) - before == len("changed content 3!") + len("changed content 17!")


def test_a_new_mtime_with_the_same_content_sends_no_bytes(emu, mega, tmp_path, state_dir):
    src = tmp_path / "src"
    path = write(src / "same.bin", os.urandom(10_000), mtime=1_500_000_000)
    _up(mega, src, state_dir)
    before = _uploaded(emu)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    report = _up(mega, src, state_dir)
    assert [a.kind for a in report.actions] == ["touch"]
    assert _uploaded(emu) == before
    assert remote_children(mega, "backup")["same.bin"]["a"]["c"] == fingerprint(path, 1_700_000_000)
    assert _up(mega, src, state_dir).actions == []


def test_same_size_and_mtime_but_new_content_is_a_change_without_the_state(
    mega, tmp_path, state_dir
):
    src = tmp_path / "src"
    path = write(src / "x.bin", b"A" * 5000, mtime=1_500_000_000)
    _up(mega, src, state_dir)
    write(path, b"B" * 5000, mtime=1_500_000_000)
    # the state's size+mtime pre-check would skip it; a fresh pair compares fingerprints
    report = _up(mega, src, tmp_path / "other-state")
    assert [a.kind for a in report.actions] == ["version"]


def test_a_local_rename_is_a_server_move_with_no_bytes_sent(emu, mega, tmp_path, state_dir):
    src = tmp_path / "src"
    data = os.urandom(3_000_000)
    write(src / "big.bin", data)
    _up(mega, src, state_dir)
    before = _uploaded(emu)
    (src / "moved").mkdir()
    os.rename(src / "big.bin", src / "moved" / "renamed.bin")
    report = _up(mega, src, state_dir, delete=True)
    assert [(a.kind, a.path, a.source) for a in report.actions if a.kind != "mkdir"] == [
        ("move", "moved/renamed.bin", "big.bin")
    ]
    assert _uploaded(emu) == before and report.bytes_copied == len(data)
    assert "big.bin" not in remote_children(mega, "backup")
    assert tree_bytes(_fresh_down(mega, tmp_path)) == tree_bytes(src)


def _fresh_down(mega: Any, tmp_path: Path) -> Path:
    dst = tmp_path / f"check{len(list(tmp_path.iterdir()))}"
    report = sync(mega, dst, "/backup", direction="down", state_dir=tmp_path / "check-state")
    assert report.ok, report.to_dict()
    return dst


def test_content_already_in_the_account_is_copied_on_the_server(emu, mega, tmp_path, state_dir):
    data = os.urandom(400_000)
    mega.upload_fileobj(data, "elsewhere.bin", mtime=1_600_000_000)
    src = tmp_path / "src"
    write(src / "copy.bin", data, mtime=1_600_000_000)
    before = _uploaded(emu)
    report = _up(mega, src, state_dir)
    assert [a.kind for a in report.actions] == ["copy"]
    assert _uploaded(emu) == before
    assert not report.notes


def test_a_copy_candidate_gives_the_right_content_whatever_the_server_does(
    mega, tmp_path, state_dir
):
    data = os.urandom(400_000)
    mega.upload_fileobj(data, "elsewhere.bin", mtime=1_600_000_000)
    src = tmp_path / "src"
    write(src / "copy.bin", data, mtime=1_600_000_000)
    # same CRC samples and size, other bytes: the MAC check must refuse it as a copy source
    other = bytearray(data)
    other[1000] ^= 0xFF  # not in the fingerprint's samples of a 400 kB file
    write(src / "lookalike.bin", bytes(other), mtime=1_600_000_000)
    assert fingerprint(src / "lookalike.bin", 0) == fingerprint(src / "copy.bin", 0)
    report = _up(mega, src, state_dir)
    assert report.ok
    assert tree_bytes(_fresh_down(mega, tmp_path)) == tree_bytes(src)


def test_overwrite_asks_for_a_version_or_a_replacement(mega, tmp_path, state_dir, monkeypatch):
    sent: list[dict[str, Any]] = []
    real = CommandBatcher.submit  # a sync run's new nodes go through its manager's batcher

    def spy(self: CommandBatcher, command: dict[str, Any]) -> Any:
        sent.append(command)
        return real(self, command)

    monkeypatch.setattr(CommandBatcher, "submit", spy)
    src = tmp_path / "src"
    write(src / "doc.txt", "v1")
    _up(mega, src, state_dir)
    old = remote_children(mega, "backup")["doc.txt"]["h"]
    write(src / "doc.txt", "version 2")
    _up(mega, src, state_dir)
    write(src / "doc.txt", "version three")
    _up(mega, src, state_dir, versions=False)
    puts = [c for c in sent if c.get("a") == "p" and c["n"][0].get("ov")]
    assert len(puts) == 2
    assert puts[0]["n"][0]["ov"] == old and puts[0]["n"][0]["vb"] == 1
    assert puts[1]["n"][0]["vb"] == 0


def test_the_old_file_becomes_a_version_or_is_replaced(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "doc.txt", "v1")
    _up(mega, src, state_dir)
    write(src / "doc.txt", "version 2")
    _up(mega, src, state_dir)
    children = remote_children(mega, "backup")
    assert list(children) == ["doc.txt"]
    (older,) = list_versions(mega, children["doc.txt"]["h"])
    assert older["s"] == 2
    assert remove_versions(mega, children["doc.txt"]["h"]) == 1
    assert list_versions(mega, children["doc.txt"]["h"]) == []
    write(src / "doc.txt", "version three")
    _up(mega, src, state_dir, versions=False)
    children = remote_children(mega, "backup")
    assert list(children) == ["doc.txt"] and children["doc.txt"]["s"] == len("version three")
    assert list_versions(mega, children["doc.txt"]["h"]) == []  # replaced, not kept
    assert _up(mega, src, state_dir).actions == []


def test_deletions_are_opt_in_and_go_to_the_rubbish_bin(emu, mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "keep.txt", "k")
    write(src / "gone.txt", "g")
    write(src / "old" / "inside.txt", "i")
    _up(mega, src, state_dir)
    (src / "gone.txt").unlink()
    (src / "old" / "inside.txt").unlink()
    (src / "old").rmdir()
    assert _up(mega, src, state_dir).actions == []
    assert set(remote_children(mega, "backup")) == {"keep.txt", "gone.txt", "old"}
    report = _up(mega, src, state_dir, delete=True)
    assert sorted((a.kind, a.path) for a in report.actions) == [
        ("delete", "gone.txt"),
        ("delete", "old"),
    ]
    assert set(remote_children(mega, "backup")) == {"keep.txt"}
    rubbish = {n["a"]["n"] for n in mega.get_files_in_node(4).values()}
    assert {"gone.txt", "old"} <= rubbish


def test_local_deletions_go_to_a_dated_trash_unless_permanent(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "a.txt", "a")
    write(src / "b.txt", "b")
    _up(mega, src, state_dir)
    dst = tmp_path / "dst"
    _down(mega, dst, state_dir)
    write(dst / "local-only.txt", "mine")
    assert _down(mega, dst, state_dir).actions == []  # no --delete: kept
    report = _down(mega, dst, state_dir, delete=True)
    assert [(a.kind, a.path) for a in report.actions] == [("delete", "local-only.txt")]
    trashed = list((dst / ".megafast-trash").glob("*/local-only.txt"))
    assert len(trashed) == 1 and trashed[0].read_text() == "mine"
    write(dst / "again.txt", "x")
    _down(mega, dst, state_dir, delete_permanently=True)
    assert not (dst / "again.txt").exists()
    assert not list((dst / ".megafast-trash").glob("*/again.txt"))


def test_dry_run_lists_the_plan_and_changes_nothing(emu, mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "a.txt", "a" * 10)
    write(src / "d" / "b.txt", "b" * 20)
    report = _up(mega, src, state_dir, dry_run=True)
    assert report.dry_run
    assert sorted((a.kind, a.path, a.size) for a in report.actions) == [
        ("mkdir", "d", 0),
        ("upload", "a.txt", 10),
        ("upload", "d/b.txt", 20),
    ]
    assert mega.find_path_descriptor("backup") is None
    assert not state_dir.exists() or not list(state_dir.iterdir())
    assert _up(mega, src, state_dir).count("upload") == 2


def test_exclude_include_and_the_ignore_file(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / ".megafastignore", "*.log\nbuild/\n")
    write(src / "app.log", "x")
    write(src / "keep.log", "x")
    write(src / "build" / "out.o", "x")
    write(src / "src" / "main.c", "x")
    write(src / "src" / "main.tmp", "x")
    report = _up(mega, src, state_dir, patterns=[("exclude", "*.tmp"), ("include", "keep.log")])
    assert sorted(a.path for a in report.actions if a.kind == "upload") == [
        "keep.log",
        "src/main.c",
    ]
    # ignored remote files are never deleted either
    write(tmp_path / "x.log", "remote log")
    mega.upload(tmp_path / "x.log", dest=mega.find_path_descriptor("backup"))
    report = _up(mega, src, state_dir, delete=True, exclude=["*.tmp"], include=["keep.log"])
    assert report.actions == []


def test_both_sides_changed_keeps_both_going_up(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "notes.txt", "base")
    _up(mega, src, state_dir)
    other = tmp_path / "elsewhere"
    node = remote_children(mega, "backup")["notes.txt"]
    mega.destroy(node["h"])
    write(other / "notes.txt", "remote edit")
    mega.upload(other / "notes.txt", dest=mega.find_path_descriptor("backup"))
    write(src / "notes.txt", "local edit")
    report = _up(mega, src, state_dir)
    assert [a.kind for a in report.actions] == ["conflict"] and len(report.conflicts) == 1
    names = remote_children(mega, "backup")
    conflict = [n for n in names if "(conflict " in n]
    assert len(conflict) == 1 and "notes.txt" in names
    dst = _fresh_down(mega, tmp_path)
    assert (dst / "notes.txt").read_text() == "local edit"
    assert (dst / conflict[0]).read_text() == "remote edit"
    # the conflict copy is kept even with --delete, and the next run does nothing
    assert _up(mega, src, state_dir, delete=True).actions == []


def test_both_sides_changed_keeps_both_going_down(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "notes.txt", "base")
    _up(mega, src, state_dir)
    dst = tmp_path / "dst"
    _down(mega, dst, state_dir)
    write(src / "notes.txt", "remote edit!")
    _up(mega, src, state_dir)
    write(dst / "notes.txt", "local edit")
    report = _down(mega, dst, state_dir)
    assert [a.kind for a in report.actions] == ["conflict"]
    assert (dst / "notes.txt").read_text() == "local edit"
    assert (dst / report.conflicts[0]).read_text() == "remote edit!"
    assert _down(mega, dst, state_dir, delete=True).actions == []


def test_down_keeps_a_local_edit_in_the_trash_when_it_replaces_it(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "f.txt", "one")
    _up(mega, src, state_dir)
    dst = tmp_path / "dst"
    _down(mega, dst, tmp_path / "s2")
    write(dst / "f.txt", "my local edit")
    report = _down(mega, dst, tmp_path / "s2")
    assert [a.kind for a in report.actions] == ["version"]
    assert (dst / "f.txt").read_text() == "one"
    assert [p.read_text() for p in (dst / ".megafast-trash").glob("*/f.txt")] == ["my local edit"]


def test_remote_rename_is_a_local_move_going_down(emu, mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "a.bin", os.urandom(100_000))
    _up(mega, src, state_dir)
    dst = tmp_path / "dst"
    _down(mega, dst, tmp_path / "s2")
    node = remote_children(mega, "backup")["a.bin"]
    mega.rename((node["h"], node), "b.bin")
    served = emu.stats().get("download_bytes", 0)
    report = _down(mega, dst, tmp_path / "s2", delete=True)
    assert [(a.kind, a.path, a.source) for a in report.actions] == [("move", "b.bin", "a.bin")]
    assert emu.stats().get("download_bytes", 0) == served
    assert tree_bytes(dst) == {"b.bin": (src / "a.bin").read_bytes()}


def test_state_file_is_private_and_a_damaged_one_is_not_trusted(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "a.txt", "a")
    _up(mega, src, state_dir)
    (state_file,) = list(state_dir.iterdir())
    assert state_file.stat().st_mode & 0o777 == 0o600
    state_file.write_text("{not json")
    report = _up(mega, src, state_dir)
    assert report.actions == [] and report.files_unchanged == 1
    assert any("not used" in n for n in report.notes)


def test_sync_object_sees_its_own_changes_on_the_next_run(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "a.txt", "a")
    job = Sync(mega, src, "/backup", state_dir=state_dir)
    assert job.run().count("upload") == 1
    write(src / "b.txt", "b")
    assert [a.path for a in job.run().actions] == ["b.txt"]
    assert job.run().actions == []


def test_dry_run_down_into_a_missing_folder_creates_nothing(mega, tmp_path, state_dir):
    src = tmp_path / "src"
    write(src / "a.txt", "abc")
    _up(mega, src, state_dir)
    dst = tmp_path / "not-yet"
    report = _down(mega, dst, state_dir, dry_run=True)
    assert [(a.kind, a.path, a.size) for a in report.actions] == [("download", "a.txt", 3)]
    assert not dst.exists()


def test_files_synced_into_a_shared_folder_are_readable_by_its_link(emu, mega, tmp_path):
    from megafast import Mega

    mega.create_folder("backup")
    link = mega.export("backup")  # a folder link: the folder now has a share key
    src = tmp_path / "src"
    write(src / "a.txt", "for everyone")
    write(src / "sub" / "b.bin", os.urandom(70_000))
    report = _up(mega, src, tmp_path / "state")
    assert report.ok and report.count("upload") == 2
    visitor = Mega(api_url=emu.api_url)
    (tmp_path / "visitor").mkdir()
    out = visitor.download_folder_url(link, dest_path=tmp_path / "visitor")
    assert tree_bytes(Path(out)) == tree_bytes(src)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_sync_of_many_small_files_batches_its_requests(emu, mega, tmp_path, state_dir, direction):
    src = tmp_path / "src"
    files = {f"d{i % 4}/f{i:03}.txt": os.urandom(100 + i) for i in range(120)}
    for rel, data in files.items():
        write(src / rel, data)
    if direction == "down":
        _up(mega, src, tmp_path / "state-up")
    before = emu.stats()["api_requests"]
    if direction == "up":
        report = _up(mega, src, state_dir)
    else:
        report = _down(mega, tmp_path / "dst", state_dir)
        assert tree_bytes(tmp_path / "dst") == files
    assert report.ok and report.count(f"{'up' if direction == 'up' else 'down'}load") == 120
    # one file at a time took 2 (u, p) or 1 (g) requests per file: 240 or 120
    assert emu.stats()["api_requests"] - before < (100 if direction == "up" else 70)
    if direction == "up":
        children = remote_children(mega, "backup/d1")
        assert len(children) == 30 and children["f001.txt"]["s"] == 101
