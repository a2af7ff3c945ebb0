"""Uploads that start while a file is written into the mount (a guess of its final size).

Real programs write into a real FUSE mount: ``cp``, and a writer process of our own that
holds its source open (as ``cp`` does) or sets the size first with ``ftruncate``, and can
pause half-way, so that the test sees bytes reach the emulator before the file is closed.
Wrong guesses (a shorter or longer file, a write out of order) must still give the right
file, and ``ss -K`` cutting every connection from outside must not lose a byte. Skipped,
with the reason, where /dev/fuse or fusermount3 (or, for the cut, ``ss -K``) is missing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from megafast import Mega
from megafast.testing import MegaEmulator
from megafast.vfs._tree import fingerprint_mtime
from mount_helpers import Mounted, account_emulator, account_mount, fuse_missing, second_client
from support.cuts import OutsideCutter, ss_kill_unavailable

pytestmark = pytest.mark.skipif(fuse_missing() is not None, reason=str(fuse_missing()))

MiB = 1 << 20
SIZE = 24 * MiB
T = TypeVar("T")

# A writer process: it opens its source for reading first (the mount's guess of the size,
# as with cp), or with "truncate" opens none and sets the size with ftruncate. "pause"
# modes stop after three quarters, say so on stdout and go on at a line on stdin.
WRITER = r"""
import os, sys
src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
fin = None if mode.startswith("truncate") else open(src, "rb")
data = open(src, "rb").read() if fin is None else fin.read()
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
if mode.startswith("truncate"):
    os.ftruncate(fd, len(data))
body = data
if mode == "short":
    body = data[: len(data) // 2]
elif mode == "long":
    body = data + b"more" * 300_000
stop = len(body) * 3 // 4 if mode.endswith("pause") else len(body)
step = 1 << 20
for pos in range(0, stop, step):
    os.pwrite(fd, body[pos : min(pos + step, stop)], pos)
if mode.endswith("pause"):
    print("paused", flush=True)
    sys.stdin.readline()
for pos in range(stop, len(body), step):
    os.pwrite(fd, body[pos : pos + step], pos)
if mode == "rewrite":
    os.pwrite(fd, b"\x00" * 4096, 5 * step + 100)  # back over bytes already sent
os.close(fd)
"""


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    # 8 MB/s a connection: a 24 MiB file takes a moment, so uploads overlap the writes
    with account_emulator(faults={"bandwidth": 8e6}) as emu:
        yield emu


@pytest.fixture(scope="module")
def other(emulator: MegaEmulator) -> Mega:
    return second_client(emulator)


@pytest.fixture(scope="module")
def mount(emulator: MegaEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mounted]:
    with account_mount(emulator, tmp_path_factory.mktemp("home")) as m:
        yield m


def _source(tmp_path: Path, name: str, size: int = SIZE) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def _remote_bytes(mega: Mega, name: str, tmp_path: Path) -> bytes:
    mega.refresh()
    found = mega.find(name)
    assert found is not None, f"{name} is not in the account"
    out = tmp_path / "back"
    out.mkdir(exist_ok=True)
    mega.download(found, str(out), dest_filename=name)
    return (out / name).read_bytes()


def _writer(src: Path, dst: Path, mode: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(src), str(dst), mode], text=True, **kwargs
    )


def _while_paused(src: Path, dst: Path, mode: str, during: Callable[[], T]) -> T:
    """Run the writer in a ``pause`` mode and ``during()`` while it is paused (the file
    three quarters written and still open); the writer then finishes. Returns what
    ``during`` gave."""
    proc = _writer(src, dst, mode, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline().strip() == "paused"
        result = during()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return result


def _uploaded_while_paused(emulator: MegaEmulator, src: Path, dst: Path, mode: str) -> int:
    """The bytes the emulator received for uploads while the writer was paused."""

    def received() -> int:
        deadline = time.monotonic() + 30
        while emulator.stats().get("upload_bytes", 0) < 8 * MiB and time.monotonic() < deadline:
            time.sleep(0.05)
        return int(emulator.stats().get("upload_bytes", 0))

    emulator.reset_stats()
    return _while_paused(src, dst, mode, received)


def test_upload_starts_while_the_file_is_written(
    mount: Mounted, emulator: MegaEmulator, other: Mega, tmp_path: Path
) -> None:
    src = _source(tmp_path, "streamed.bin")
    received = _uploaded_while_paused(emulator, src, mount.path / "streamed.bin", "pause")
    assert received >= 8 * MiB  # bytes went out before the file was closed
    assert _remote_bytes(other, "streamed.bin", tmp_path) == src.read_bytes()


def test_a_size_set_first_with_ftruncate_is_a_guess_too(
    mount: Mounted, emulator: MegaEmulator, other: Mega, tmp_path: Path
) -> None:
    src = _source(tmp_path, "sized.bin")
    received = _uploaded_while_paused(emulator, src, mount.path / "sized.bin", "truncate-pause")
    assert received >= 8 * MiB
    assert _remote_bytes(other, "sized.bin", tmp_path) == src.read_bytes()


@pytest.mark.parametrize("mode", ["short", "long", "rewrite"])
def test_a_wrong_guess_still_gives_the_written_file(
    mount: Mounted, other: Mega, tmp_path: Path, mode: str
) -> None:
    src = _source(tmp_path, f"{mode}.src")
    dst = mount.path / f"{mode}.bin"
    assert _writer(src, dst, mode).wait(timeout=120) == 0
    data = src.read_bytes()
    want = {
        "short": data[: len(data) // 2],
        "long": data + b"more" * 300_000,
        "rewrite": data[: 5 * MiB + 100] + b"\x00" * 4096 + data[5 * MiB + 100 + 4096 :],
    }[mode]
    got = _remote_bytes(other, f"{mode}.bin", tmp_path)
    assert len(got) == len(want)
    assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest()
    assert dst.stat().st_size == len(want)


def test_cp_of_a_big_file_keeps_its_bytes_fingerprint_and_mtime(
    mount: Mounted, other: Mega, tmp_path: Path
) -> None:
    src = _source(tmp_path, "cp.bin")
    os.utime(src, (1_600_000_000, 1_600_000_000))
    subprocess.run(
        ["cp", "--preserve=timestamps", str(src), str(mount.path / "cp.bin")],
        check=True,
        timeout=120,
    )
    assert _remote_bytes(other, "cp.bin", tmp_path) == src.read_bytes()
    node = other.find("cp.bin")
    assert node is not None
    assert fingerprint_mtime(node[1]["a"]["c"]) == 1_600_000_000
    assert (mount.path / "cp.bin").stat().st_mtime == 1_600_000_000


_SS_REASON = ss_kill_unavailable()


@pytest.mark.skipif(_SS_REASON is not None, reason=_SS_REASON or "")
def test_cp_survives_ss_kill_of_every_connection(
    mount: Mounted, emulator: MegaEmulator, other: Mega, tmp_path: Path
) -> None:
    """Every TCP connection to the emulator (uploads, API, /sc) cut from outside while cp
    writes and its upload streams."""
    src = _source(tmp_path, "cut.bin", 32 * MiB)
    port = int(emulator.api_url.rsplit(":", 1)[1].split("/")[0])
    with OutsideCutter(port, 0.3) as cutter:
        subprocess.run(["cp", str(src), str(mount.path / "cut.bin")], check=True, timeout=300)
    assert cutter.cuts >= 1
    assert _remote_bytes(other, "cut.bin", tmp_path) == src.read_bytes()


def test_a_source_on_a_fuse_mount_gives_no_guess(mount: Mounted, other: Mega) -> None:
    """A file the writer reads through a FUSE mount (this one, seen under another path, as
    a bind mount would show it) is never looked at: its stat could come back here."""
    from megafast.mount._hint import guess_size

    (mount.path / "held.bin").write_bytes(b"h" * 5000)
    hold = "import sys, time\nf = open(sys.argv[1], 'rb')\nprint(1, flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", hold, str(mount.path / "held.bin")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "1"
        assert guess_size(proc.pid, "/some/other/path") is None
    finally:
        proc.kill()
        proc.wait()


def test_big_files_copied_one_after_another_reuse_the_spool_space(
    mount: Mounted, other: Mega, tmp_path: Path
) -> None:
    """An uploaded big file's spool file is kept (0600), and the next big file is spooled
    over it: a shorter one after it still has only its own bytes, a longer one grows it."""
    home = mount.path.parent
    sources = [
        _source(tmp_path, f"reuse{i}.bin", size * MiB) for i, size in enumerate((20, 12, 28))
    ]
    seen: list[set[str]] = []
    for src in sources:
        subprocess.run(["cp", str(src), str(mount.path / src.name)], check=True, timeout=120)
        kept = list(home.rglob("kept-*"))
        assert kept and all(p.stat().st_mode & 0o777 == 0o600 for p in kept)
        seen.append({p.name for p in kept})
    for before, after in zip(seen[:-1], seen[1:], strict=True):
        assert len(after) == len(before) and after != before  # took one, gave one back
    for src in sources:
        assert (mount.path / src.name).stat().st_size == src.stat().st_size
        assert _remote_bytes(other, src.name, tmp_path) == src.read_bytes()


def test_a_file_removed_while_written_stays_removed(
    mount: Mounted, other: Mega, tmp_path: Path
) -> None:
    """A program writes, the file is removed (``rm`` from another process), the program
    writes on and closes: the file does not come back, in the mount or the account."""
    src = _source(tmp_path, "removed.src", 12 * MiB)
    dst = mount.path / "removed.bin"
    _while_paused(src, dst, "pause", lambda: subprocess.run(["rm", str(dst)], check=True))
    assert not dst.exists()
    _assert_not_in_account(other, "removed.bin")


def _assert_not_in_account(other: Mega, name: str) -> None:
    """Neither ``name`` nor a libfuse stand-in name (``.fuse_hidden…``) is in the account."""
    other.refresh()
    names = [n["a"]["n"] for n in other.get_files().values() if n.get("a")]
    assert not any(n == name or n.startswith(".fuse_hidden") for n in names), names


def test_an_open_file_removed_stays_usable_and_is_never_uploaded(
    mount: Mounted, other: Mega
) -> None:
    """The temporary-file pattern: open, write, unlink, write, fstat, read back, close."""
    script = (
        "import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)\n"
        "os.write(fd, b'x' * 5000)\n"
        "os.unlink(sys.argv[1])\n"
        "os.write(fd, b'y' * 100)\n"
        "print(os.fstat(fd).st_size, len(os.pread(fd, 10000, 0)), os.path.exists(sys.argv[1]))\n"
        "os.close(fd)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(mount.path / "scratch.tmp")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5100", "5100", "False"]
    _assert_not_in_account(other, "scratch.tmp")


def test_a_file_removed_while_open_for_reading_goes_to_the_bin_by_its_name(
    mount: Mounted, other: Mega, tmp_path: Path
) -> None:
    """``rm`` of a file a program is reading: the program reads on to the end, and the
    Rubbish Bin holds the file under its own name (never libfuse's ``.fuse_hidden…``)."""
    data = os.urandom(3 * MiB)
    (mount.path / "reading.bin").write_bytes(data)
    reader = (
        "import sys\n"
        "f = open(sys.argv[1], 'rb')\n"
        "head = f.read(1000)\n"
        "print('open', flush=True)\n"
        "sys.stdin.readline()\n"
        "rest = f.read()\n"
        "f.close()\n"
        "print(len(head) + len(rest))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", reader, str(mount.path / "reading.bin")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline().strip() == "open"
        subprocess.run(["rm", str(mount.path / "reading.bin")], check=True, timeout=30)
        assert not (mount.path / "reading.bin").exists()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == str(len(data))
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    other.refresh()
    bin_node = other.get_node_by_type(4)
    assert bin_node is not None
    trash = bin_node[0]
    nodes = [n for n in other.get_files().values() if n.get("a")]
    assert any(n["a"]["n"] == "reading.bin" and n["p"] == trash for n in nodes)
    assert not any(n["a"]["n"].startswith(".fuse_hidden") for n in nodes)
