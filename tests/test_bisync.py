"""Two-way sync against the emulator: two machines (two local folders, each its own state)
sharing one MEGA folder, or one folder and another client changing MEGA."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast.sync import StateFileError, SyncSafetyError, TwoWaySync, sync
from megafast.sync._transfers import EngineTransfers
from support.sync import PASSWORD, new_account, running_emulator, tree_bytes, write

emu = pytest.fixture(scope="module", name="emu")(running_emulator)


@pytest.fixture
def account(emu: Any) -> tuple[str, Any]:
    return new_account(emu)


@pytest.fixture
def mega(account: tuple[str, Any]) -> Any:
    return account[1]


@pytest.fixture
def other(emu: Any, account: tuple[str, Any]) -> Any:
    """Another client of the same account (changes MEGA behind the sync's back)."""
    return Mega(api_url=emu.api_url).login(account[0], PASSWORD)


def both(mega: Any, local: Path, state: Path, **kw: Any) -> Any:
    report = sync(mega, local, "/pair", direction="both", state_dir=state, **kw)
    return report


def kinds(report: Any) -> list[tuple[str, str, str]]:
    return sorted((a.side, a.kind, a.path) for a in report.actions)


def _uploaded(emu: Any) -> int:
    return int(emu.stats().get("upload_bytes", 0))


def _downloaded(emu: Any) -> int:
    return int(emu.stats().get("download_bytes", 0))


def test_first_run_merges_and_deletes_nothing(mega, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a / "only-a.txt", "a")
    write(a / "same.txt", "same")
    write(a / "clash.txt", "from a")
    assert both(mega, a, tmp_path / "sa").ok
    write(b / "only-b.txt", "b")
    write(b / "same.txt", "same")
    write(b / "clash.txt", "from b, longer")
    report = both(mega, b, tmp_path / "sb")
    assert report.ok and not any(x.kind == "delete" for x in report.actions)
    assert len(report.conflicts) == 1 and "(conflict " in report.conflicts[0]
    got = tree_bytes(b)
    assert got["only-a.txt"] == b"a" and got["only-b.txt"] == b"b"
    assert got["clash.txt"] == b"from b, longer" and got[report.conflicts[0]] == b"from a"
    both(mega, a, tmp_path / "sa")
    assert tree_bytes(a) == tree_bytes(b)
    assert both(mega, a, tmp_path / "sa").actions == []
    assert both(mega, b, tmp_path / "sb").actions == []


def test_changes_on_both_sides_cross_and_a_rerun_moves_nothing(emu, mega, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(6):
        write(a / "d" / f"f{i}.txt", f"file {i}")
    both(mega, a, tmp_path / "sa")
    both(mega, b, tmp_path / "sb")
    write(a / "d" / "f0.txt", "edited on a")
    (a / "d" / "f1.txt").unlink()
    write(b / "d" / "f2.txt", "edited on b")
    (b / "d" / "f3.txt").unlink()
    write(b / "new" / "n.txt", "new on b")
    both(mega, a, tmp_path / "sa")
    both(mega, b, tmp_path / "sb")
    both(mega, a, tmp_path / "sa")
    expected = {f"d/f{i}.txt": f"file {i}".encode() for i in (4, 5)}
    expected |= {"d/f0.txt": b"edited on a", "d/f2.txt": b"edited on b", "new/n.txt": b"new on b"}
    assert tree_bytes(a) == tree_bytes(b) == expected
    up, down = _uploaded(emu), _downloaded(emu)
    again = both(mega, a, tmp_path / "sa")
    assert again.actions == [] and again.files_unchanged == 5
    assert (_uploaded(emu), _downloaded(emu)) == (up, down)


def test_a_change_wins_over_a_deletion_on_the_other_side(mega, other, tmp_path):
    a = tmp_path / "a"
    write(a / "keep-local.txt", "v1")
    write(a / "keep-remote.txt", "v1")
    both(mega, a, tmp_path / "s")
    # MEGA deletes keep-local.txt, which changes locally
    other.delete(other.find("pair/keep-local.txt")[0])
    write(a / "keep-local.txt", "v2 local")
    # the local copy of keep-remote.txt is deleted while it changes on MEGA
    (a / "keep-remote.txt").unlink()
    handle = other.find_path_descriptor("pair")
    other.upload(str(write(tmp_path / "up" / "keep-remote.txt", "v2 remote")), handle)
    other.delete(other.find("pair/keep-remote.txt")[0])  # the older one of the two
    mega.refresh()
    report = both(mega, a, tmp_path / "s")
    assert not any(x.kind == "delete" for x in report.actions), report.to_dict()
    got = tree_bytes(a)
    assert got == {"keep-local.txt": b"v2 local", "keep-remote.txt": b"v2 remote"}


def test_renames_become_moves_and_known_content_a_server_copy(emu, mega, other, tmp_path):
    a = tmp_path / "a"
    big = os.urandom(300_000)
    write(a / "big.bin", big)
    write(a / "other.bin", os.urandom(200_000))
    both(mega, a, tmp_path / "s")
    up, down = _uploaded(emu), _downloaded(emu)
    os.rename(a / "big.bin", a / "renamed.bin")  # local rename -> a move on MEGA
    write(a / "copy" / "again.bin", big)  # content already there -> a server-side copy
    report = both(mega, a, tmp_path / "s")
    assert kinds(report) == [
        ("up", "copy", "copy/again.bin"),
        ("up", "mkdir", "copy"),
        ("up", "move", "renamed.bin"),
    ]
    # a remote rename and move -> the local file is renamed, nothing downloaded
    node = other.find("pair/other.bin")
    other.rename(node, "other-renamed.bin")
    other.move(node[0], other.find_path_descriptor("pair/copy"))
    mega.refresh()
    report = both(mega, a, tmp_path / "s")
    assert kinds(report) == [("down", "move", "copy/other-renamed.bin")]
    assert (_uploaded(emu), _downloaded(emu)) == (up, down)
    assert sorted(tree_bytes(a)) == ["copy/again.bin", "copy/other-renamed.bin", "renamed.bin"]


def test_too_many_deletions_stop_unless_forced(mega, tmp_path):
    a = tmp_path / "a"
    for i in range(10):
        write(a / f"f{i}.txt", str(i))
    both(mega, a, tmp_path / "s")
    for i in range(6):
        (a / f"f{i}.txt").unlink()
    with pytest.raises(SyncSafetyError, match="delete 6 of 10"):
        both(mega, a, tmp_path / "s")
    assert len(list(mega.get_files_in_node(mega.find_path_descriptor("pair")))) == 10
    assert both(mega, a, tmp_path / "s", max_delete=60).count("delete") == 6


def test_an_empty_or_missing_side_is_not_everything_deleted(mega, other, tmp_path):
    a = tmp_path / "a"
    for i in range(3):
        write(a / f"f{i}.txt", str(i))
    both(mega, a, tmp_path / "s")
    moved = tmp_path / "elsewhere"
    os.rename(a, moved)
    with pytest.raises(SyncSafetyError, match="local folder .* is missing"):
        both(mega, a, tmp_path / "s")
    a.mkdir()  # an unmounted disk: the mount point is there, empty
    with pytest.raises(SyncSafetyError, match="local folder is empty"):
        both(mega, a, tmp_path / "s", force=False, max_delete=100)
    a.rmdir()
    os.rename(moved, a)
    other.rename(other.find("pair"), "pair-moved")
    mega.refresh()
    with pytest.raises(SyncSafetyError, match="MEGA folder /pair is missing"):
        both(mega, a, tmp_path / "s")
    assert sorted(tree_bytes(a)) == ["f0.txt", "f1.txt", "f2.txt"]


def test_a_remote_folder_replaced_by_a_file(mega, other, tmp_path):
    a = tmp_path / "a"
    write(a / "sub" / "x.txt", "x")
    both(mega, a, tmp_path / "s")
    other.delete(other.find_path_descriptor("pair/sub"))
    other.upload(
        str(write(tmp_path / "up" / "sub", "a file now")), other.find_path_descriptor("pair")
    )
    mega.refresh()
    report = both(mega, a, tmp_path / "s")
    assert "replaced by a file" in report.skipped["sub"]
    assert tree_bytes(a) == {"sub/x.txt": b"x"}
    # the synced folder itself replaced by a file
    other.rename(other.find("pair"), "old-pair")
    other.upload(str(write(tmp_path / "up2" / "pair", "file")), other.root_id)
    mega.refresh()
    with pytest.raises(SyncSafetyError, match="is a file"):
        both(mega, a, tmp_path / "s")


def _state_file(state_dir: Path) -> Path:
    (found,) = [p for p in state_dir.iterdir() if p.suffix == ".json"]
    return found


def test_a_truncated_or_planted_state_file_is_refused(mega, tmp_path):
    a = tmp_path / "a"
    for i in range(4):
        write(a / f"f{i}.txt", str(i))
    both(mega, a, tmp_path / "s")
    path = _state_file(tmp_path / "s")
    good = path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(StateFileError, match="damaged or truncated"):
        both(mega, a, tmp_path / "s")
    path.write_bytes(good.replace(b'"count":4', b'"count":9'))
    with pytest.raises(StateFileError, match="truncated"):
        both(mega, a, tmp_path / "s")
    path.write_bytes(good)
    os.chmod(path, 0o666)  # writable by others: may have been planted
    with pytest.raises(StateFileError, match="others may write"):
        both(mega, a, tmp_path / "s")
    os.chmod(path, 0o600)
    if os.geteuid() == 0:
        os.chown(path, 12345, 12345)
        with pytest.raises(StateFileError, match="another user"):
            both(mega, a, tmp_path / "s")
        os.chown(path, 0, 0)
    path.unlink()
    path.symlink_to(tmp_path / "nowhere")
    with pytest.raises(StateFileError):
        both(mega, a, tmp_path / "s")
    path.unlink()
    # resync: merge again, nothing deleted
    (a / "f0.txt").unlink()
    report = both(mega, a, tmp_path / "s", resync=True)
    assert report.ok and report.count("delete") == 0 and (a / "f0.txt").exists()


def test_two_remote_names_differing_only_in_case_on_a_case_insensitive_disk(account, emu, tmp_path):
    email, mega = account
    folder = emu.add_folder(email, "pair")
    emu.add_file(email, b"upper", "Readme.txt", parent=folder)
    emu.add_file(email, b"lower", "README.txt", parent=folder)
    emu.add_file(email, b"fine", "other.txt", parent=folder)
    mega.refresh()
    a = tmp_path / "a"
    a.mkdir()
    report = sync(
        mega, a, "/pair", direction="both", state_dir=tmp_path / "s", case_insensitive=True
    )
    assert set(report.skipped) == {"Readme.txt", "README.txt"}
    assert all("ignores case" in why for why in report.skipped.values())
    assert tree_bytes(a) == {"other.txt": b"fine"}
    assert len(mega.get_files_in_node(folder)) == 3  # nothing deleted on MEGA


def test_clock_skew_never_decides(mega, tmp_path):
    """A local clock far ahead or behind MEGA's: content and the state decide, not which
    mtime is newer (an edit with an older mtime is still sent)."""
    a, b = tmp_path / "a", tmp_path / "b"
    write(a / "future.txt", "made in 2100", mtime=4_102_444_800)
    both(mega, a, tmp_path / "sa")
    both(mega, b, tmp_path / "sb")
    assert int((b / "future.txt").stat().st_mtime) == 4_102_444_800
    write(a / "future.txt", "edited, clock now behind", mtime=1_000_000_000)
    assert kinds(both(mega, a, tmp_path / "sa")) == [("up", "version", "future.txt")]
    both(mega, b, tmp_path / "sb")
    assert (b / "future.txt").read_text() == "edited, clock now behind"


def test_a_name_the_other_side_cannot_hold_is_skipped_and_kept(account, emu, tmp_path):
    email, mega = account
    folder = emu.add_folder(email, "pair")
    emu.add_file(email, b"evil", "../escape.txt", parent=folder)
    mega.refresh()
    a = tmp_path / "a"
    a.mkdir()
    with open(os.fsencode(a) + b"/bad\xff.txt", "wb") as f:
        f.write(b"x")
    report = both(mega, a, tmp_path / "s")
    assert len(report.skipped) == 2 and not report.ok
    assert not (tmp_path / "escape.txt").exists()
    assert len(mega.get_files_in_node(folder)) == 1


def test_two_way_never_calls_get_files(mega, tmp_path, monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("get_files() called")

    monkeypatch.setattr(Mega, "get_files", refuse)
    a = tmp_path / "a"
    write(a / "x.txt", "x")
    assert both(mega, a, tmp_path / "s").ok
    write(a / "x.txt", "y")
    assert both(mega, a, tmp_path / "s").ok


def test_a_dry_run_changes_nothing(mega, tmp_path):
    a = tmp_path / "a"
    write(a / "x.txt", "x")
    report = TwoWaySync(mega, a, "/pair", state_dir=tmp_path / "s").run(dry_run=True)
    assert kinds(report) == [("up", "upload", "x.txt")]
    assert mega.find_path_descriptor("pair") is None


class _ChangingTransfers(EngineTransfers):
    """The first upload's file is appended to right after its bytes were sent."""

    def __init__(self, mega: Any) -> None:
        super().__init__(mega)
        self.uploads = 0

    def upload(self, path: Path, size: int, progress: Any) -> Any:
        result = super().upload(path, size, progress)
        self.uploads += 1
        if self.uploads == 1:
            with open(path, "ab") as f:
                f.write(b" and more")
            st = os.stat(path)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        return result


def test_a_file_changing_while_it_is_read_is_sent_again_never_half_old(mega, tmp_path):
    a = tmp_path / "a"
    write(a / "log.txt", "first part")
    transfers = _ChangingTransfers(mega)
    report = TwoWaySync(mega, a, "/pair", state_dir=tmp_path / "s", transfers=transfers).run()
    assert report.ok and transfers.uploads == 2
    b = tmp_path / "b"
    both(mega, b, tmp_path / "sb")
    assert (b / "log.txt").read_text() == "first part and more"
    assert both(mega, a, tmp_path / "s").actions == []


def test_folder_renames_on_either_side_move_everything_and_leave_no_old_folder(
    emu, mega, other, tmp_path
):
    a = tmp_path / "a"
    for i in range(3):
        write(a / "old" / f"f{i}.bin", os.urandom(5000))
        write(a / "keep" / f"k{i}.bin", os.urandom(5000))
    both(mega, a, tmp_path / "s")
    up, down = _uploaded(emu), _downloaded(emu)
    os.rename(a / "old", a / "new-local")
    report = both(mega, a, tmp_path / "s")
    assert sorted(x.kind for x in report.actions) == ["delete", "mkdir", "move", "move", "move"]
    other.rename(other.find("pair/keep"), "renamed-remotely")
    mega.refresh()
    report = both(mega, a, tmp_path / "s")
    assert sorted(x.kind for x in report.actions) == ["delete", "mkdir", "move", "move", "move"]
    assert (_uploaded(emu), _downloaded(emu)) == (up, down)
    assert sorted(p.name for p in a.iterdir() if p.name != ".megafast-trash") == [
        "new-local",
        "renamed-remotely",
    ]
    mega.refresh()
    remote = {
        n["a"]["n"] for n in mega.get_files_in_node(mega.find_path_descriptor("pair")).values()
    }
    assert remote == {"new-local", "renamed-remotely"}
    assert both(mega, a, tmp_path / "s").actions == []


def test_new_remote_content_already_on_the_disk_is_copied_not_downloaded(
    emu, mega, other, tmp_path
):
    a = tmp_path / "a"
    same, tricky = os.urandom(300_000), os.urandom(200_000)
    write(a / "orig.bin", same, mtime=1_600_000_000)
    write(a / "tricky.bin", tricky, mtime=1_600_000_000)
    both(mega, a, tmp_path / "s")
    # another client uploads the same bytes under new names (other mtimes)
    folder = other.find_path_descriptor("pair")
    for name, data in (("dup.bin", same), ("dup-tricky.bin", tricky)):
        write(tmp_path / "up" / name, data, mtime=1_650_000_000)
        other.upload(str(tmp_path / "up" / name), folder)
    # tricky.bin changes on the disk with its size and mtime kept: the state still calls it
    # unchanged, so it is picked as the source, and the MAC check sends it to a download
    changed = bytes([tricky[0] ^ 1]) + tricky[1:]
    write(a / "tricky.bin", changed, mtime=1_600_000_000)
    down = _downloaded(emu)
    mega.refresh()
    report = both(mega, a, tmp_path / "s")
    assert report.ok, report.to_dict()
    assert kinds(report) == [("down", "copy", "dup.bin"), ("down", "download", "dup-tricky.bin")]
    assert _downloaded(emu) - down == len(tricky)
    got = tree_bytes(a)
    assert got["dup.bin"] == same and got["dup-tricky.bin"] == tricky
    assert got["orig.bin"] == same and got["tricky.bin"] == changed
    assert both(mega, a, tmp_path / "s").actions == []
