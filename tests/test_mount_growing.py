"""The pieces of an upload that starts while its file is written, without FUSE: the growing
spool file, the streamed upload against the emulator (through the mount's Backend), and the
guess of a writer's final size from its open files (a real child process)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast.crypto import fingerprint
from megafast.testing import MegaEmulator
from megafast.vfs._backend import Backend
from megafast.vfs._growing import Abandoned, GrowingFile

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")

MiB = 1 << 20


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "spool", os.O_RDWR | os.O_CREAT, 0o600)
    yield fd
    os.close(fd)


def _write(fd: int, grow: GrowingFile, data: bytes, offset: int) -> None:
    os.pwrite(fd, data, offset)
    grow.wrote(offset, len(data))


def test_a_reader_waits_for_the_bytes_it_needs(spool: int) -> None:
    grow = GrowingFile(spool, 3 * MiB)
    got = memoryview(bytearray(MiB))
    done = threading.Event()

    def read() -> None:
        grow.read_at(MiB, got)
        done.set()

    reader = threading.Thread(target=read)
    reader.start()
    _write(spool, grow, b"a" * MiB, 0)
    assert not done.wait(0.2)  # its bytes are not written yet
    _write(spool, grow, b"b" * MiB, MiB)
    assert done.wait(5)
    reader.join()
    assert bytes(got) == b"b" * MiB


@pytest.mark.parametrize(
    ("offset", "length", "why"),
    [(0, 100, "out of order"), (3 * MiB, 10, "out of order"), (MiB, 2 * MiB + 1, "past")],
)
def test_writes_the_upload_cannot_follow_abandon_it(
    spool: int, offset: int, length: int, why: str
) -> None:
    grow = GrowingFile(spool, 3 * MiB)
    _write(spool, grow, b"x" * MiB, 0)
    waiting: list[BaseException] = []

    def wait() -> None:
        try:
            grow.wait_ready(0, 3 * MiB)
        except Abandoned as exc:
            waiting.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    _write(spool, grow, b"y" * length, offset)
    waiter.join(5)
    assert not waiter.is_alive()  # the waiting reader woke up
    assert grow.reason is not None and why in grow.reason
    assert waiting and isinstance(waiting[0], Abandoned)


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[Backend, Mega]]:
    with MegaEmulator() as emu:
        emu.create_account("grow@example.com", "pw")
        mega = Mega(api_url=emu.api_url).login("grow@example.com", "pw")
        yield Backend(mega), mega


def test_a_streamed_upload_makes_the_file_as_written(
    backend: tuple[Backend, Mega], tmp_path: Path
) -> None:
    back, mega = backend
    data = os.urandom(20 * MiB + 12345)
    path = tmp_path / "spool.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        stream = back.stream_upload(fd, len(data))
        for pos in range(0, len(data), MiB):
            os.pwrite(fd, data[pos : pos + MiB], pos)
            stream.wrote(pos, len(data[pos : pos + MiB]))
            time.sleep(0.002)
        assert stream.close_at(len(data))
        result = stream.result()
        assert result is not None
        c = fingerprint(str(path), 1_700_000_000)
        handle = back.put_uploaded(result, back.core.root(), "grown.bin", c)
    finally:
        os.close(fd)
    mega.refresh()
    out = mega.download((handle, mega.get_files()[handle]), str(tmp_path), dest_filename="o")
    assert Path(out).read_bytes() == data


def test_a_file_closed_at_another_size_gives_no_result(
    backend: tuple[Backend, Mega], tmp_path: Path
) -> None:
    back, _ = backend
    fd = os.open(tmp_path / "spool.bin", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        stream = back.stream_upload(fd, 16 * MiB)
        os.pwrite(fd, b"z" * MiB, 0)
        stream.wrote(0, MiB)
        started = time.monotonic()
        assert not stream.close_at(MiB)  # the guess was wrong: the caller uploads the spool
        assert stream.result() is None
        assert time.monotonic() - started < 10
        assert stream.source.reason is not None
    finally:
        os.close(fd)


# -- the guess ----------------------------------------------------------------------------

HOLD = "import sys, time\nfs = [open(p, sys.argv[1]) for p in sys.argv[2:]]\nprint(1, flush=True)\ntime.sleep(60)\n"


def _holding(mode: str, *paths: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, mode, *map(str, paths)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "1"
    return proc


def _guess(tmp_path: Path, mode: str, *sizes: int, mountpoint: str = "/nowhere") -> int | None:
    from megafast.mount._hint import guess_size

    paths = []
    for i, size in enumerate(sizes):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"\0" * size)
        paths.append(p)
    proc = _holding(mode, *paths)
    try:
        return guess_size(proc.pid, mountpoint)
    finally:
        proc.kill()
        proc.wait()


def test_the_one_file_a_process_reads_is_the_guess(tmp_path: Path) -> None:
    assert _guess(tmp_path, "rb", 123_456) == 123_456
    assert _guess(tmp_path, "rb", 5000, 5000) == 5000  # one size


def test_no_guess_when_it_is_not_clear(tmp_path: Path) -> None:
    assert _guess(tmp_path, "rb", 5000, 7000) is None  # two sizes
    assert _guess(tmp_path, "r+b", 5000) is None  # open for writing too
    assert _guess(tmp_path, "rb", 0) is None  # empty
    assert _guess(tmp_path, "rb", 5000, mountpoint=str(tmp_path)) is None  # inside the mount


def test_no_guess_for_a_process_that_is_gone() -> None:
    from megafast.mount._hint import guess_size

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert guess_size(proc.pid, "/nowhere") is None
    assert guess_size(0, "/nowhere") is None
