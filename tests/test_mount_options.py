"""``megafast mount`` options and failures: --read-only, public folder links, EIO on corrupted
data, ENOSPC over quota and the upload queue retried on the next mount, --delete-permanently,
a new version of a file from another client. Every test unmounts, even when it fails."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast.testing import MegaEmulator
from mount_helpers import EMAIL, PASSWORD, Cli, fuse_missing, mounted

pytestmark = pytest.mark.skipif(fuse_missing() is not None, reason=str(fuse_missing()))


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest.fixture(autouse=True)
def _no_faults(emulator: MegaEmulator) -> Iterator[None]:
    yield
    emulator.clear_faults()
    emulator.set_storage_quota(EMAIL, 20 * 1024**3)


@pytest.fixture(scope="module")
def mega(emulator: MegaEmulator) -> Mega:
    m = Mega(api_url=emulator.api_url)
    m.login(EMAIL, PASSWORD)
    return m


@pytest.fixture
def cli(emulator: MegaEmulator, tmp_path: Path) -> Cli:
    c = Cli(tmp_path, emulator.api_url)
    c.login()
    return c


def _upload(mega: Mega, tmp_path: Path, name: str, data: bytes, dest: str | None = None) -> str:
    p = tmp_path / "src" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    answer = mega.upload(str(p), dest)
    return str(answer["f"][0]["h"])


def _wait(predicate: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_read_only_refuses_every_change(cli: Cli, mega: Mega, tmp_path: Path) -> None:
    _upload(mega, tmp_path, "ro.txt", b"read me")
    with mounted(cli, tmp_path / "mnt", "--read-only") as m:
        assert (m.path / "ro.txt").read_bytes() == b"read me"
        for action in (
            lambda: (m.path / "new.txt").write_text("x"),
            lambda: os.mkdir(m.path / "newdir"),
            lambda: os.unlink(m.path / "ro.txt"),
            lambda: open(m.path / "ro.txt", "ab").close(),  # noqa: SIM115
        ):
            with pytest.raises(OSError) as info:
                action()
            assert info.value.errno == errno.EROFS


def test_a_public_folder_link_mounts_read_only(cli: Cli, mega: Mega, tmp_path: Path) -> None:
    folder = mega.create_folder("shared-out")["shared-out"]
    _upload(mega, tmp_path, "pub.txt", b"public bytes", folder)
    link = mega.export(node_id=folder)
    with mounted(cli, tmp_path / "mnt", link) as m:
        assert os.listdir(m.path) == ["pub.txt"]
        assert (m.path / "pub.txt").read_bytes() == b"public bytes"
        with pytest.raises(OSError) as info:
            (m.path / "x.txt").write_text("x")
        assert info.value.errno == errno.EROFS


def test_corrupted_bytes_give_eio(
    cli: Cli, mega: Mega, emulator: MegaEmulator, tmp_path: Path
) -> None:
    _upload(mega, tmp_path, "bad.bin", os.urandom(200_000))
    with mounted(cli, tmp_path / "mnt") as m:
        emulator.set_faults(corrupt_rate=1.0)
        with pytest.raises(OSError) as info:
            (m.path / "bad.bin").read_bytes()
        assert info.value.errno == errno.EIO


def test_over_quota_is_enospc_and_the_upload_waits_for_the_next_mount(
    cli: Cli, mega: Mega, emulator: MegaEmulator, tmp_path: Path
) -> None:
    emulator.set_storage_quota(EMAIL, 1)
    with mounted(cli, tmp_path / "mnt") as m:
        f = open(m.path / "queued.txt", "wb")  # noqa: SIM115
        f.write(b"not lost")
        with pytest.raises(OSError) as info:
            f.close()
        assert info.value.errno == errno.ENOSPC
    mega.refresh()
    assert mega.find("queued.txt") is None
    emulator.set_storage_quota(EMAIL, 20 * 1024**3)
    with mounted(cli, tmp_path / "mnt") as m:
        assert (m.path / "queued.txt").read_bytes() == b"not lost"
    log = (cli.home / "mount-mnt.log").read_text()
    assert "queued.txt" in log and "earlier mount finished" in log
    mega.refresh()
    assert mega.find("queued.txt") is not None


def test_delete_permanently_skips_the_rubbish_bin(cli: Cli, mega: Mega, tmp_path: Path) -> None:
    _upload(mega, tmp_path, "gone.txt", b"bye")
    with mounted(cli, tmp_path / "mnt", "--delete-permanently") as m:
        os.unlink(m.path / "gone.txt")
    mega.refresh()
    assert mega.find("gone.txt") is None


def test_a_new_version_from_another_client_replaces_cached_bytes(
    cli: Cli, mega: Mega, tmp_path: Path
) -> None:
    old = _upload(mega, tmp_path, "v.txt", b"version one")
    with mounted(cli, tmp_path / "mnt") as m:
        target = m.path / "v.txt"
        assert target.read_bytes() == b"version one"  # now in the kernel's page cache
        mega.destroy(old)
        _upload(mega, tmp_path, "v.txt", b"version two!")
        assert _wait(lambda: target.exists() and target.read_bytes() == b"version two!", 10)


def test_transfer_quota_exceeded_fails_a_read_at_once(
    cli: Cli, mega: Mega, emulator: MegaEmulator, tmp_path: Path
) -> None:
    _upload(mega, tmp_path, "quota.bin", os.urandom(100_000))
    with mounted(cli, tmp_path / "mnt") as m:
        emulator.set_faults(over_quota=True, over_quota_time_left=3600)
        started = time.monotonic()
        with pytest.raises(OSError) as info:
            (m.path / "quota.bin").read_bytes()
        assert info.value.errno == errno.EIO
        assert time.monotonic() - started < 30  # not the hour the server asked to wait


@pytest.mark.slow
def test_an_upload_cut_by_a_killed_mount_is_finished_by_the_next(
    cli: Cli, mega: Mega, emulator: MegaEmulator, tmp_path: Path
) -> None:
    data = os.urandom(1_500_000)
    src = tmp_path / "cut.bin"
    src.write_bytes(data)
    emulator.set_faults(bandwidth=150_000)  # bytes/s: the upload takes ~10 s
    with mounted(cli, tmp_path / "mnt") as m:
        writer = subprocess.Popen(["cp", str(src), str(m.path / "cut.bin")])
        queues = cli.home / "xdg-state" / "megafast" / "mount-uploads"
        assert _wait(lambda: any("cut.bin" in q.read_text() for q in queues.glob("*/queue.json")))
        m.process.kill()  # mid-upload: no unmount, no cleanup
        m.process.wait()
        writer.wait(timeout=60)
    emulator.clear_faults()
    mega.refresh()
    assert mega.find("cut.bin") is None
    with mounted(cli, tmp_path / "mnt") as m:
        assert (m.path / "cut.bin").read_bytes() == data


def test_allow_other_and_cache_options_reach_the_mount(
    cli: Cli, mega: Mega, tmp_path: Path
) -> None:
    _upload(mega, tmp_path, "opt.bin", os.urandom(300_000))
    cache = tmp_path / "disk-cache"
    args = ("--allow-other", "--cache-dir", str(cache), "--cache-size", "8M")
    with mounted(cli, tmp_path / "mnt", *args) as m:
        line = next(x for x in Path("/proc/mounts").read_text().splitlines() if str(m.path) in x)
        assert "allow_other" in line and "fuse.megafast" in line
        assert len((m.path / "opt.bin").read_bytes()) == 300_000
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert list(cache.glob("*.bin"))  # the ciphertext was kept
