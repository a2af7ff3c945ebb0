"""Sync under bad input and faults: symlinks, special files, impossible names, files that
change while sent, hostile local trees, and a process killed at random points."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from megafast.sync import Sync, sync
from megafast.sync._transfers import EngineTransfers
from support.sync import (
    PASSWORD,
    new_account,
    remote_children,
    running_emulator,
    tree_bytes,
    write,
)

emu = pytest.fixture(scope="module", name="emu")(running_emulator)


@pytest.fixture
def account(emu: Any) -> tuple[str, Any]:
    return new_account(emu)


@pytest.fixture
def mega(account: tuple[str, Any]) -> Any:
    return account[1]


def test_symlinks_and_special_files_are_reported_and_protected(mega, tmp_path):
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "not to be synced")
    src = tmp_path / "src"
    write(src / "real.txt", "r")
    os.symlink(outside / "secret.txt", src / "link.txt")
    os.symlink(outside, src / "linkdir")
    os.mkfifo(src / "pipe")
    report = sync(mega, src, "/backup", state_dir=tmp_path / "st")
    assert not report.ok
    assert set(report.skipped) == {"link.txt", "linkdir", "pipe"}
    assert "symbolic link" in report.skipped["link.txt"]
    assert set(remote_children(mega, "backup")) == {"real.txt"}
    # a remote file where the local side has a symlink is not deleted by --delete
    write(tmp_path / "other" / "link.txt", "remote one")
    mega.upload(tmp_path / "other" / "link.txt", dest=mega.find_path_descriptor("backup"))
    report = sync(mega, src, "/backup", state_dir=tmp_path / "st", delete=True)
    assert not [a for a in report.actions if a.kind == "delete"]
    assert "link.txt" in remote_children(mega, "backup")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_files_are_skipped_and_reported(mega, tmp_path):
    src = tmp_path / "src"
    write(src / "ok.txt", "fine")
    locked = write(src / "locked.txt", "no")
    locked.chmod(0)
    report = sync(mega, src, "/backup", state_dir=tmp_path / "st")
    assert report.skipped == {"locked.txt": "cannot read: Permission denied"}
    assert set(remote_children(mega, "backup")) == {"ok.txt"}


def test_a_file_vanishing_before_it_is_read_is_reported(mega, tmp_path, monkeypatch):
    import megafast.sync._plan as plan_module

    src = tmp_path / "src"
    write(src / "ok.txt", "fine")
    write(src / "gone.txt", "soon gone")
    real = plan_module.read_fingerprint

    def vanish(path: Path, *args: Any) -> Any:
        if path.name == "gone.txt":
            path.unlink()
        return real(path, *args)

    monkeypatch.setattr(plan_module, "read_fingerprint", vanish)
    report = sync(mega, src, "/backup", state_dir=tmp_path / "st")
    assert list(report.skipped) == ["gone.txt"] and "cannot read" in report.skipped["gone.txt"]
    assert set(remote_children(mega, "backup")) == {"ok.txt"}


def test_local_names_megas_cannot_hold_are_skipped(mega, tmp_path):
    src = tmp_path / "src"
    write(src / "fine.txt", "x")
    bad = os.fsencode(src) + b"/bad\xff.txt"
    with open(bad, "wb") as f:
        f.write(b"x")
    report = sync(mega, src, "/backup", state_dir=tmp_path / "st")
    (name,) = report.skipped
    assert "UTF-8" in report.skipped[name]
    assert set(remote_children(mega, "backup")) == {"fine.txt"}


def test_remote_names_that_cannot_exist_locally_are_skipped(emu, account, tmp_path):
    email, mega = account
    folder = emu.add_folder(email, "backup")
    emu.add_file(email, b"ok", "good.txt", parent=folder)
    emu.add_file(email, b"evil", "../escape.txt", parent=folder)
    emu.add_file(email, b"dots", "..", parent=folder)
    mega.refresh()
    dst = tmp_path / "dst"
    report = sync(mega, dst, "/backup", direction="down", state_dir=tmp_path / "st")
    assert not report.ok and len(report.skipped) == 2
    assert tree_bytes(dst) == {"good.txt": b"ok"}
    assert not (tmp_path / "escape.txt").exists()


def test_down_never_writes_through_a_planted_symlink(mega, tmp_path):
    src = tmp_path / "src"
    write(src / "sub" / "payload.txt", "payload")
    write(src / "top.txt", "top")
    sync(mega, src, "/backup", state_dir=tmp_path / "st")
    dst = tmp_path / "dst"
    dst.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    os.symlink(victim, dst / "sub")  # another user plants a link where a folder will go
    os.symlink(victim / "top-target", dst / "top.txt.megafast-part")
    report = sync(mega, dst, "/backup", direction="down", state_dir=tmp_path / "st")
    assert list(victim.iterdir()) == []
    assert (dst / "top.txt").read_text() == "top"
    assert not report.ok and "sub" in report.skipped


class ChangingTransfers(EngineTransfers):
    """Appends to the file right after its first upload finished (as a writer would)."""

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


def test_a_file_changing_while_sent_is_sent_again_never_half_old(mega, tmp_path):
    src = tmp_path / "src"
    write(src / "log.txt", "first part")
    transfers = ChangingTransfers(mega)
    report = Sync(mega, src, "/backup", state_dir=tmp_path / "st", transfers=transfers).run()
    assert report.ok and transfers.uploads == 2
    children = remote_children(mega, "backup")
    assert list(children) == ["log.txt"] and children["log.txt"]["s"] == len("first part and more")
    dst = tmp_path / "dst"
    sync(mega, dst, "/backup", direction="down", state_dir=tmp_path / "st2")
    assert (dst / "log.txt").read_text() == "first part and more"


_CHILD = textwrap.dedent(
    """
    import sys
    from megafast import Mega
    from megafast.sync import sync
    api, email, password, local, state, direction = sys.argv[1:7]
    mega = Mega(api_url=api).login(email, password)
    print("ready", flush=True)
    sync(mega, local, "/backup", direction=direction, state_dir=state, delete=True)
    print("done", flush=True)
    """
)


def _killed_run(
    emu: Any, email: str, local: Path, state: Path, direction: str, delay: float
) -> bool:
    """Run a sync in a child process and SIGKILL it ``delay`` seconds after it logged in;
    True when it finished first."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD,
            emu.api_url,
            email,
            PASSWORD,
            str(local),
            str(state),
            direction,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    return child.returncode == 0


def test_a_sync_killed_at_random_points_leaves_nothing_misread(emu, account, tmp_path):
    email, mega = account
    rng = random.Random(1414)
    src = tmp_path / "src"
    for i in range(40):
        write(src / f"d{i % 4}" / f"f{i:02}.bin", rng.randbytes(rng.choice((10, 5000, 300_000))))
    # per connection: a run has many files in flight, so the cap is low enough to cut it short
    emu.set_faults(bandwidth=250_000, latency=0.005)
    state = tmp_path / "state"
    dst = tmp_path / "dst"
    finished: list[bool] = []
    try:
        for round_ in range(5):
            if round_ == 2:  # change things between kills: edits, a rename, a deletion
                write(src / "d0" / "f00.bin", b"edited after a crash")
                os.rename(src / "d1" / "f01.bin", src / "d2" / "renamed.bin")
                (src / "d3" / "f03.bin").unlink()
            finished.append(_killed_run(emu, email, src, state, "up", rng.uniform(0.05, 0.8)))
        for _ in range(2):
            finished.append(
                _killed_run(
                    emu, email, dst, tmp_path / "state-down", "down", rng.uniform(0.05, 0.5)
                )
            )
    finally:
        emu.clear_faults()
    assert finished.count(False) >= 4  # most runs really were cut short
    mega.refresh()
    final = sync(mega, src, "/backup", state_dir=state, delete=True)
    assert final.ok, final.to_dict()
    assert sync(mega, src, "/backup", state_dir=state, delete=True).actions == []
    down = sync(
        mega, dst, "/backup", direction="down", state_dir=tmp_path / "state-down", delete=True
    )
    assert down.ok, down.to_dict()
    assert tree_bytes(dst) == tree_bytes(src)
    assert not list(dst.rglob("*.megafast-part"))
    again = sync(
        mega, dst, "/backup", direction="down", state_dir=tmp_path / "state-down", delete=True
    )
    assert again.actions == []
