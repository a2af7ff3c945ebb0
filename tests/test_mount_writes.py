"""The mount's write path called in-process (its FUSE operations without the kernel), against
the emulator: a write that lands while the file's upload runs is not lost, and the upload
that started while writing is used only when it is the file."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from megafast import Mega
from megafast.testing import MegaEmulator
from megafast.vfs._backend import Backend
from megafast.vfs._spool import Spool
from mount_helpers import fuse_missing

pytestmark = pytest.mark.skipif(fuse_missing() is not None, reason=str(fuse_missing()))

MiB = 1 << 20


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[tuple[Any, Mega]]:
    from megafast.mount._ops import MegaOperations

    # 2 MB/s a connection: an upload of a few MiB is still running when the file is closed
    with MegaEmulator(faults={"bandwidth": 2e6}) as emu:
        emu.create_account("w@example.com", "pw")
        mega = Mega(api_url=emu.api_url).login("w@example.com", "pw")
        backend = Backend(mega)
        backend.load()
        yield MegaOperations(backend, Spool(tmp_path / "spool")), mega
        backend.close()


def _fi(flags: int = os.O_WRONLY) -> SimpleNamespace:
    return SimpleNamespace(flags=flags, fh=0, direct_io=0)


def _written(fs: Any, path: str, data: bytes, guess: int) -> tuple[SimpleNamespace, Any]:
    """Create ``path`` with a guessed size (what the writer's open source file would say)
    and write ``data`` in order, 1 MiB at a time: its open file and its state."""
    fi = _fi()
    fs.create(path, 0o644, fi)
    w = fs._handles[fi.fh]
    w.guess = guess
    for pos in range(0, len(data), MiB):
        assert fs.write(path, memoryview(data)[pos : pos + MiB], pos, fi) == len(
            data[pos : pos + MiB]
        )
    return fi, w


def _content(mega: Mega, name: str, tmp_path: Path) -> bytes:
    mega.refresh()
    found = mega.find(name)
    assert found is not None
    out = mega.download(found, str(tmp_path), dest_filename=f"{name}.back")
    return Path(out).read_bytes()


def test_the_upload_started_while_writing_becomes_the_node(
    ops: tuple[Any, Mega], tmp_path: Path
) -> None:
    fs, mega = ops
    data = os.urandom(12 * MiB)
    fi, w = _written(fs, "/a.bin", data, guess=len(data))
    assert w.stream is not None  # started by the first write
    fs.flush("/a.bin", fi)
    fs.release("/a.bin", fi)
    assert _content(mega, "a.bin", tmp_path) == data
    assert fs.spool.pending() == []


def test_a_write_while_the_upload_runs_is_uploaded_after(
    ops: tuple[Any, Mega], tmp_path: Path
) -> None:
    fs, mega = ops
    first = os.urandom(4 * MiB)
    fi, w = _written(fs, "/b.bin", first, guess=len(first))
    flushing = threading.Thread(target=fs.flush, args=("/b.bin", fi))
    flushing.start()
    deadline = time.monotonic() + 10
    while w.stream is not None and time.monotonic() < deadline:
        time.sleep(0.001)  # the close has taken its look at the file
    fs.write("/b.bin", b"late" * 1024, 0, fi)  # lands while the upload runs
    flushing.join(60)
    assert not flushing.is_alive()
    assert w.dirty  # not forgotten: uploaded again at the next flush
    fs.release("/b.bin", fi)
    assert _content(mega, "b.bin", tmp_path) == b"late" * 1024 + first[4096:]


def test_a_file_that_outgrows_its_guess_is_uploaded_from_the_spool(
    ops: tuple[Any, Mega], tmp_path: Path
) -> None:
    fs, mega = ops
    data = os.urandom(10 * MiB)
    fi, w = _written(fs, "/c.bin", data, guess=9 * MiB)
    assert w.stream is not None and w.stream.source.reason is not None  # abandoned
    fs.release("/c.bin", fi)
    assert _content(mega, "c.bin", tmp_path) == data


def test_a_huge_guess_starts_no_upload(ops: tuple[Any, Mega]) -> None:
    fs, _ = ops
    fi = _fi()
    fs.create("/d.bin", 0o644, fi)
    fs.truncate("/d.bin", (1 << 40) + MiB, fi)  # an ftruncate says the size: too big to take
    w = fs._handles[fi.fh]
    assert w.guess == (1 << 40) + MiB
    fs.write("/d.bin", b"x" * MiB, 0, fi)
    assert w.stream is None
    fs.truncate("/d.bin", MiB, fi)
    fs.release("/d.bin", fi)


def _kept(fs: Any) -> list[Path]:
    return sorted(fs.spool.folder.glob("kept-*"))


def _closed(fs: Any, path: str, fi: SimpleNamespace) -> None:
    fs.flush(path, fi)
    fs.release(path, fi)


def test_a_file_spooled_over_a_kept_one_has_only_its_own_bytes(
    ops: tuple[Any, Mega], tmp_path: Path
) -> None:
    """The second file (guessed at the kept file's size, then written shorter) takes the
    first one's spool file: what it reads, stats and uploads is its own bytes."""
    fs, mega = ops
    first = os.urandom(12 * MiB)
    fi, _ = _written(fs, "/k1.bin", first, guess=len(first))
    _closed(fs, "/k1.bin", fi)
    assert [p.stat().st_size for p in _kept(fs)] == [12 * MiB]
    second = os.urandom(10 * MiB)
    fi, w = _written(fs, "/k2.bin", second, guess=12 * MiB)
    assert _kept(fs) == [] and w.stale == 12 * MiB  # it took the kept file
    assert fs.getattr("/k2.bin")["st_size"] == len(second)
    assert fs.read("/k2.bin", MiB, len(second) - 10, fi) == second[-10:]
    _closed(fs, "/k2.bin", fi)
    assert _content(mega, "k2.bin", tmp_path) == second
    assert _content(mega, "k1.bin", tmp_path) == first


def test_gaps_in_a_file_over_a_kept_one_read_as_zeros(
    ops: tuple[Any, Mega], tmp_path: Path
) -> None:
    """A write past the end and a truncate up leave zeros behind, never the earlier
    file's bytes."""
    fs, mega = ops
    fi, _ = _written(fs, "/g1.bin", b"\xff" * 12 * MiB, guess=12 * MiB)
    _closed(fs, "/g1.bin", fi)
    head, tail = os.urandom(MiB), os.urandom(MiB)
    fi, w = _written(fs, "/g2.bin", head, guess=9 * MiB)
    assert w.stale == 9 * MiB
    assert fs.write("/g2.bin", tail, 3 * MiB, fi) == MiB  # a gap of 2 MiB
    fs.truncate("/g2.bin", 6 * MiB, fi)  # and 2 MiB more, set by the size
    want = head + bytes(2 * MiB) + tail + bytes(2 * MiB)
    assert fs.read("/g2.bin", 8 * MiB, 0, fi) == want
    _closed(fs, "/g2.bin", fi)
    assert _content(mega, "g2.bin", tmp_path) == want


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs of its own (needs root, as mount does)."""
    path = tmp_path / "small"
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_kept_spool_files_make_room_when_the_disk_is_full(
    ops: tuple[Any, Mega], tmp_path: Path, small_disk: Path
) -> None:
    """A write that finds no space deletes the kept files and is tried again once."""
    from megafast.mount._ops import MegaOperations

    base, mega = ops
    fs = MegaOperations(base.backend, Spool(small_disk / "spool"))
    fi, _ = _written(fs, "/d1.bin", os.urandom(24 * MiB), guess=24 * MiB)
    _closed(fs, "/d1.bin", fi)
    assert len(_kept(fs)) == 1
    data = os.urandom(50 * MiB)  # no guess: a new spool file, beside the kept 24 MiB
    fi, _ = _written(fs, "/d2.bin", data, guess=0)
    assert _kept(fs) == []
    _closed(fs, "/d2.bin", fi)
    assert _content(mega, "d2.bin", tmp_path) == data


def test_a_file_unlinked_while_open_is_never_uploaded(
    ops: tuple[Any, Mega], tmp_path: Path
) -> None:
    """rm while a program writes: later writes and the close do not bring it back (its
    upload stops too), and its spool file does not stay behind."""
    fs, mega = ops
    fi, w = _written(fs, "/u.bin", os.urandom(9 * MiB), guess=10 * MiB)
    stream = w.stream
    assert stream is not None
    fs.unlink("/u.bin")
    assert stream.source.reason is not None  # the upload was dropped
    assert fs.write("/u.bin", b"more", 9 * MiB, fi) == 4
    assert fs.read("/u.bin", 4, 9 * MiB, fi) == b"more"  # still readable through its handle
    _closed(fs, "/u.bin", fi)
    mega.refresh()
    assert mega.find("u.bin") is None
    assert list(fs.spool.folder.glob("spool-*")) == []
    assert fs.spool.pending() == []


def test_a_file_removed_while_its_upload_runs_does_not_come_back(
    ops: tuple[Any, Mega], tmp_path: Path
) -> None:
    """rm lands after the close took its look and while the upload is still sending: the
    node the upload makes is removed too."""
    fs, mega = ops
    fi, w = _written(fs, "/late.bin", os.urandom(4 * MiB), guess=4 * MiB)
    flushing = threading.Thread(target=fs.flush, args=("/late.bin", fi))
    flushing.start()
    deadline = time.monotonic() + 10
    while w.stream is not None and time.monotonic() < deadline:
        time.sleep(0.001)  # the close has taken its look: the upload is on its way
    assert flushing.is_alive()
    fs.unlink("/late.bin")
    flushing.join(60)
    assert not flushing.is_alive()
    fs.release("/late.bin", fi)
    mega.refresh()
    assert mega.find("late.bin", exclude_deleted=True) is None  # in the Rubbish Bin at most
    assert fs.spool.pending() == []
