"""Declared sizes (issue 10): validated, chunk plans computed on demand, and free disk
space checked before a download creates anything."""

from __future__ import annotations

import io
import os
import random
import tracemalloc
from pathlib import Path

import pytest

from megafast import crypto as mc
from megafast.errors import TransferError, ValidationError
from megafast.transfer import (
    ChunkMap,
    MiB,
    download_file,
    download_to_fileobj,
    open_reader,
    upload_file,
)
from megafast.transfer._plan import MAX_FILE_SIZE

KEY = tuple(random.getrandbits(32) for _ in range(8))
BAD_SIZES = ["5", float("inf"), 5.0, [5], None, True, -1, 10**20, MAX_FILE_SIZE + 1]


def _no_url(refresh: bool) -> str:
    raise AssertionError("no request may be made for a bad size")


@pytest.mark.parametrize("size", BAD_SIZES, ids=repr)
def test_bad_declared_sizes_raise_a_megafast_error(size: object, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        ChunkMap(size)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        download_file(None, _no_url, size, KEY, tmp_path / "x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        download_to_fileobj(None, _no_url, size, KEY, io.BytesIO())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        open_reader(None, _no_url, size, KEY)  # type: ignore[arg-type]
    if size is not None:
        with pytest.raises(ValidationError):
            upload_file(None, lambda n: "http://127.0.0.1:9", iter([b"x"]), size)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_chunk_map_matches_the_reference_chunks() -> None:
    sizes = [0, 1, 15, 16, 131071, 131072, 131073, 4608 * 1024 - 1, 4608 * 1024]
    sizes += [4608 * 1024 + 1, 7 * MiB, 77 * MiB + 5]
    sizes += [random.randrange(1, 64 * MiB) for _ in range(40)]
    for size in sizes:
        chunks = ChunkMap(size)
        bounds = mc.chunk_bounds(size)
        assert chunks.starts == [s for s, _ in bounds] and len(chunks) == len(bounds)
        for start, length in bounds:
            assert chunks.chunk_end(start) == start + length
            assert chunks.floor(start + length - 1) == start
            assert chunks.is_boundary(start)
        if size:
            assert chunks.completed_by(0, size) == chunks.starts
            assert chunks.chunks_in(0, size) == chunks.starts


def test_chunk_plans_take_memory_independent_of_the_file_size() -> None:
    tracemalloc.start()
    try:
        chunks = ChunkMap(MAX_FILE_SIZE)
        assert len(chunks) > 8_000_000_000
        ranges = chunks.plan(16 * MiB, only={0, 131072, 5 * MiB - 512 * 1024})
        assert ranges == [(0, 384 * 1024), (4608 * 1024, 5632 * 1024)]
        assert chunks.chunk_end(MAX_FILE_SIZE - 1 - (MAX_FILE_SIZE - 1 - 4608 * 1024) % MiB)
        assert chunks.completed_by(10 * MiB, 10 * MiB + 5) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_download_larger_than_the_free_space_fails_before_creating_files(
    tmp_path: Path,
) -> None:
    st = os.statvfs(tmp_path)
    free = st.f_bavail * st.f_frsize
    size = free + 10 * (1 << 30)
    with pytest.raises(TransferError) as info:
        download_file(None, _no_url, size, KEY, tmp_path / "big.bin")
    text = str(info.value)
    assert "need" in text and "have" in text and str(size) in text
    assert os.listdir(tmp_path) == []
