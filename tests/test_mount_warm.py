"""``megafast mount`` on a warm node cache: it starts from the cache (no listing of the whole
tree), lists folders without a request, and writes the cache again at unmount only when
changes were applied. Every test unmounts, even when it fails."""

from __future__ import annotations

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
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MegaEmulator]:
    here = tmp_path_factory.mktemp("content")
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        for i in range(3):
            folder = emu.add_folder(EMAIL, f"folder {i}")
            for j in range(20):
                emu.add_file(EMAIL, f"{i} {j}\n".encode(), f"file {j:02d}.txt", folder)
        (here / "top.txt").write_text("top")
        emu.add_file(EMAIL, str(here / "top.txt"), "top.txt")
        yield emu


@pytest.fixture
def cli(emulator: MegaEmulator, tmp_path: Path) -> Cli:
    c = Cli(tmp_path, emulator.api_url)
    c.login()
    # a first command lists the tree and writes the node cache
    subprocess.run(c.command("ls", "/"), env=c.env, capture_output=True, check=True, timeout=120)
    return c


def _cache_file(cli: Cli) -> Path:
    files = list((cli.home / ".cache" / "megafast").glob("*.mfcache"))
    assert len(files) == 1, files
    return files[0]


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def test_a_warm_mount_lists_nothing_and_ls_makes_no_request(
    cli: Cli, emulator: MegaEmulator
) -> None:
    emulator.reset_stats()
    with mounted(cli, cli.home / "mnt") as m:
        assert sorted(os.listdir(m.path)) == ["folder 0", "folder 1", "folder 2", "top.txt"]
        started = emulator.stats()
        assert started.get("commands", {}).get("f", 0) == 0  # the cache, not a listing
        emulator.reset_stats()
        for folder in ("", "folder 1"):
            out = subprocess.run(
                ["ls", "-l", str(m.path / folder)], capture_output=True, text=True, check=True
            )
            assert ("file 19.txt" in out.stdout) == bool(folder)
        assert emulator.stats().get("api_requests", 0) == 0


def test_unmount_rewrites_the_cache_only_after_changes(
    cli: Cli, emulator: MegaEmulator, tmp_path: Path
) -> None:
    cache = _cache_file(cli)
    before = _identity(cache)
    with mounted(cli, cli.home / "mnt") as m:
        assert "top.txt" in os.listdir(m.path)
    assert _identity(cache) == before  # nothing changed: not written again

    other = Mega(api_url=emulator.api_url)
    other.login(EMAIL, PASSWORD)
    (tmp_path / "new.txt").write_text("new")
    with mounted(cli, cli.home / "mnt") as m:
        other.upload(str(tmp_path / "new.txt"))
        deadline = time.monotonic() + 20
        while not (m.path / "new.txt").exists():
            assert time.monotonic() < deadline, "the change never reached the mount"
            time.sleep(0.05)
    assert _identity(cache) != before  # the change is saved with the tree
    # the next start reads the tree from the cache again
    emulator.reset_stats()
    with mounted(cli, cli.home / "mnt") as m:
        assert (m.path / "new.txt").read_text() == "new"
        assert emulator.stats().get("commands", {}).get("f", 0) == 0
