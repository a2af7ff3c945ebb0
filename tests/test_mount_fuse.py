"""The FUSE layer's plumbing (megafast.mount._fuse): the kernel's read-ahead of a mount, and
reads and writes through the copy-saving mfusepy subclass, on a real mount."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast.testing import MegaEmulator
from mount_helpers import EMAIL, PASSWORD, Cli, fuse_missing, mounted

pytestmark = pytest.mark.skipif(fuse_missing() is not None, reason=str(fuse_missing()))


def test_read_ahead_is_not_set_for_a_path_that_is_no_fuse_mount(tmp_path: Path) -> None:
    from megafast.mount._fuse import raise_read_ahead

    assert raise_read_ahead(str(tmp_path)) is False


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        cli = Cli(tmp_path / "home", emu.api_url)
        cli.login()
        with mounted(cli, tmp_path / "mnt") as m:
            yield m.path


def test_the_mount_gets_a_larger_read_ahead_where_allowed(mount: Path) -> None:
    from megafast.mount._fuse import READ_AHEAD_KB

    st = os.stat(mount)
    bdi = Path(f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb")
    if os.geteuid() != 0 or not bdi.exists():
        pytest.skip("only root may set a mount's read-ahead")
    deadline = time.monotonic() + 10  # set by a thread of the mount once it answers
    while int(bdi.read_text()) != READ_AHEAD_KB and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(bdi.read_text()) == READ_AHEAD_KB


def test_large_and_odd_writes_and_reads_round_trip(mount: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 4097)
    target = mount / "round.bin"
    with open(target, "wb", buffering=0) as f:
        for at in range(0, len(data), 1_000_003):  # writes of odd sizes, some over 1 MiB
            f.write(data[at : at + 1_000_003])
    assert target.stat().st_size == len(data)
    with open(target, "rb", buffering=0) as f:
        got = bytearray()
        while chunk := f.read(3 << 20):
            got += chunk
    assert got == data


def test_the_mount_keeps_no_access_times(mount: Path) -> None:
    # MEGA has none; with them the kernel asks for the attributes again after every read
    fields = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    options = next(f[3] for f in fields if len(f) > 3 and f[1] == str(mount))
    assert "noatime" in options.split(",")
