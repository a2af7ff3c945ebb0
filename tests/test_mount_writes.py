"""The mount's write path called in-process (its FUSE operations without the kernel), against
the emulator: a write that lands while the file's upload runs is not lost, and the upload
that started while writing is used only when it is the file."""

from __future__ import annotations

import os
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
