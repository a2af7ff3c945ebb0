"""Spool files kept for reuse (:class:`megafast.vfs._spool.Spool`): which files are kept,
which one a new file takes, and that none outlives the mount. Real files in a real folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from megafast.vfs._spool import KEEP_MIN, Spool

MiB = 1 << 20


def _spool_file(spool: Spool, size: int, fill: bytes = b"s") -> str:
    fd, path = spool.new_file()
    os.pwrite(fd, fill * size, 0)
    os.close(fd)
    return path


def _kept(spool: Spool) -> list[Path]:
    return sorted(spool.folder.glob("kept-*"))


def test_a_big_spool_file_is_kept_and_a_small_one_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    big, small = _spool_file(spool, KEEP_MIN), _spool_file(spool, KEEP_MIN - 1)
    spool.recycle(big)
    spool.recycle(small)
    assert not os.path.exists(big) and not os.path.exists(small)
    kept = _kept(spool)
    assert [p.stat().st_size for p in kept] == [KEEP_MIN]
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600


def test_kept_files_stay_within_the_cap(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", keep=20 * MiB)
    for _ in range(3):
        spool.recycle(_spool_file(spool, 9 * MiB))
    assert [p.stat().st_size for p in _kept(spool)] == [9 * MiB, 9 * MiB]
    assert list(spool.folder.glob("spool-*")) == []  # the third was deleted
    none = Spool(tmp_path / "none", keep=0)
    none.recycle(_spool_file(none, 9 * MiB))
    assert list(none.folder.iterdir()) == []


def test_reuse_takes_the_smallest_that_fits_cut_to_the_size(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for size, fill in ((12 * MiB, b"a"), (9 * MiB, b"b"), (30 * MiB, b"c")):
        spool.recycle(_spool_file(spool, size, fill))
    got = spool.reuse(10 * MiB)
    assert got is not None
    fd, path, stale = got
    try:
        assert stale == 10 * MiB and os.fstat(fd).st_size == 10 * MiB  # the 12 MiB one, cut
        assert os.pread(fd, 1, 0) == b"a"
        assert Path(path).name.startswith("spool-")
    finally:
        os.close(fd)
    assert sorted(p.stat().st_size for p in _kept(spool)) == [9 * MiB, 30 * MiB]
    # none fits: the biggest, as it is
    got = spool.reuse(40 * MiB)
    assert got is not None
    os.close(got[0])
    assert got[2] == 30 * MiB
    assert spool.drop_kept() == 9 * MiB
    assert _kept(spool) == []
    assert spool.reuse(MiB) is None


def test_a_new_spool_deletes_what_an_earlier_mount_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.recycle(_spool_file(spool, KEEP_MIN))
    assert len(_kept(spool)) == 1
    again = Spool(tmp_path / "spool")  # the mount stopped without dropping them
    assert _kept(again) == []
    assert again.reuse(KEEP_MIN) is None


def test_a_kept_file_gone_from_the_folder_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.recycle(_spool_file(spool, KEEP_MIN))
    for p in _kept(spool):
        p.unlink()  # another process cleaned the folder
    assert spool.reuse(KEEP_MIN) is None
