"""Bulk put/get of the mega:// filesystem: many files through one transfer manager."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from megafast.errors import IntegrityError
from megafast.fs import MegaFileSystem


@pytest.fixture
def fs(fs_options) -> MegaFileSystem:
    return MegaFileSystem(**fs_options)


@pytest.fixture
def base(fs) -> str:
    path = f"bulk-{uuid.uuid4().hex[:8]}"
    fs.makedirs(path)
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_recursive_put_and_get_of_many_files_batch_their_requests(fs_emulator, fs, base, tmp_path):
    src = tmp_path / "src"
    for i in range(90):
        path = src / f"d{i % 3}" / f"f{i:03}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(50 + i))
    before = fs_emulator.stats()["api_requests"]
    fs.put(str(src), f"{base}/up", recursive=True)
    put_requests = fs_emulator.stats()["api_requests"] - before
    # one file at a time: a u and a p each (180 requests); batched about 40 (fewer under load)
    assert put_requests < 90, put_requests
    assert len(fs.find(f"{base}/up")) == 90
    before = fs_emulator.stats()["api_requests"]
    fs.get(f"{base}/up", str(tmp_path / "down"), recursive=True)
    get_requests = fs_emulator.stats()["api_requests"] - before
    assert get_requests < 60, get_requests  # one at a time: a g per file (90)
    assert _tree(tmp_path / "down") == _tree(src)
    assert not [p for p in (tmp_path / "down").rglob("*megafast-part*")]


def test_list_put_overwrites_and_refuses_with_create_mode(fs, base, tmp_path):
    local = []
    for i in range(5):
        path = tmp_path / f"l{i}.bin"
        path.write_bytes(bytes([i]) * (1000 + i))
        local.append(str(path))
    remote = [f"{base}/r{i}.bin" for i in range(5)]
    fs.pipe_file(remote[2], b"old content")
    fs.put(local, remote)  # overwrite (the default): the old r2 is replaced
    assert [n["name"] for n in fs.ls(base)].count(f"{base}/r2.bin") == 1
    assert fs.cat_file(remote[2]) == bytes([2]) * 1002
    (tmp_path / "l2.bin").write_bytes(b"newer")
    fresh = str(tmp_path / "l9.bin")
    Path(fresh).write_bytes(b"nine")
    with pytest.raises(FileExistsError):
        fs.put([local[2], fresh], [remote[2], f"{base}/r9.bin"], mode="create")
    assert fs.cat_file(remote[2]) == bytes([2]) * 1002  # left as it was
    assert fs.cat_file(f"{base}/r9.bin") == b"nine"  # the other file still went


def test_bulk_get_of_corrupted_bytes_replaces_nothing(fs_emulator, fs, base, tmp_path):
    for name in ("one", "two", "three"):
        fs.pipe_file(f"{base}/{name}.txt", name.encode() * 100)
    (tmp_path / "two").write_bytes(b"kept")
    fs_emulator.set_faults(corrupt_rate=1.0, transfer_faults="download")
    try:
        with pytest.raises(IntegrityError):
            fs.get(
                [f"{base}/{n}.txt" for n in ("one", "two", "three")],
                [str(tmp_path / n) for n in ("one", "two", "three")],
            )
    finally:
        fs_emulator.clear_faults()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two"]
    assert (tmp_path / "two").read_bytes() == b"kept"
