"""Local files of a download against a local attacker (issue 10): planted links at the part
and sidecar names are never followed, a part file that is not safely ours is not adopted,
and names up to NAME_MAX download."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from megafast.errors import IntegrityError
from megafast.transfer import MiB, download_file, part_paths
from megafast.transfer._local import HELPER_BASE_MAX, helper_base
from support.transfer import Remote, content, fast_config

CFG = fast_config(connections=2, piece_size=MiB)


def _victim(tmp_path: Path) -> tuple[Path, bytes, int]:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious data\n")
    victim.chmod(0o640)
    return victim, victim.read_bytes(), victim.stat().st_mode


def _aside(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".suspect-" in p.name)


def test_a_symlink_planted_at_the_part_name_is_not_followed(remote: Remote, tmp_path: Path) -> None:
    data = content(3 * MiB + 5)
    handle, key = remote.add_file(data)
    victim, before, mode = _victim(tmp_path)
    dest = tmp_path / "out" / "file.bin"
    dest.parent.mkdir()
    part, _ = part_paths(dest)
    part.symlink_to(victim)
    download_file(remote.http, remote.url_getter(handle), len(data), key, dest, config=CFG)
    assert dest.read_bytes() == data and not dest.is_symlink()
    assert victim.read_bytes() == before and victim.stat().st_mode == mode
    (aside,) = _aside(dest.parent)
    assert aside.is_symlink()  # the planted link itself was moved aside, untouched


def test_a_symlink_planted_at_the_sidecar_name_is_replaced_not_written_through(
    remote: Remote, tmp_path: Path
) -> None:
    data = content(2 * MiB)
    handle, key = remote.add_file(data)
    victim, before, mode = _victim(tmp_path)
    dest = tmp_path / "file.bin"
    _, sidecar = part_paths(dest)
    sidecar.symlink_to(victim)
    # a corrupted byte: the download fails after sidecars were written, and cleans up
    remote.emu.set_faults(corrupt_rate=1.0, corrupt_limit=1)
    with pytest.raises(IntegrityError):
        download_file(remote.http, remote.url_getter(handle), len(data), key, dest, config=CFG)
    assert victim.read_bytes() == before and victim.stat().st_mode == mode
    assert not dest.exists()
    remote.emu.clear_faults()
    sidecar.symlink_to(victim)
    download_file(remote.http, remote.url_getter(handle), len(data), key, dest, config=CFG)
    assert dest.read_bytes() == data
    assert victim.read_bytes() == before and victim.stat().st_mode == mode


def test_a_world_writable_part_file_is_set_aside_not_adopted(
    remote: Remote, tmp_path: Path
) -> None:
    data = content(MiB + 3)
    handle, key = remote.add_file(data)
    dest = tmp_path / "file.bin"
    part, _ = part_paths(dest)
    part.write_bytes(b"\0" * len(data))  # as another user would pre-create it ...
    part.chmod(0o666)  # ... writable by everyone
    planted = part.stat().st_ino
    download_file(remote.http, remote.url_getter(handle), len(data), key, dest, config=CFG)
    assert dest.read_bytes() == data
    st = dest.stat()
    assert st.st_ino != planted  # the finished file is a file we created
    assert not st.st_mode & 0o022
    (aside,) = _aside(tmp_path)
    assert aside.stat().st_ino == planted


def test_part_files_are_private_until_the_final_rename(remote: Remote, tmp_path: Path) -> None:
    data = content(2 * MiB)
    handle, key = remote.add_file(data)
    dest = tmp_path / "file.bin"
    part, _ = part_paths(dest)
    modes: list[int] = []

    def progress(done: int, total: int) -> None:
        if part.exists():
            modes.append(stat.S_IMODE(part.stat().st_mode))

    old = os.umask(0o022)
    try:
        download_file(
            remote.http,
            remote.url_getter(handle),
            len(data),
            key,
            dest,
            config=fast_config(connections=2, piece_size=MiB, speed_limit=8e6),
            progress=progress,
        )
    finally:
        os.umask(old)
    assert modes and set(modes) == {0o600}
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644


def test_a_remote_name_of_255_bytes_downloads(remote: Remote, tmp_path: Path) -> None:
    data = content(300_000)
    handle, key = remote.add_file(data)
    name = "é" * 127 + "x"  # 255 bytes in UTF-8
    assert len(os.fsencode(name)) == 255
    dest = tmp_path / name
    download_file(remote.http, remote.url_getter(handle), len(data), key, dest, config=CFG)
    assert dest.read_bytes() == data
    assert os.listdir(tmp_path) == [name]


def test_helper_names_always_fit_and_stay_distinct() -> None:
    short = "report.pdf"
    assert helper_base(short) == short
    names = ["a" * 255, "a" * 254 + "b", "é" * 127 + "x", "日本" * 42]
    bases = [helper_base(n) for n in names]
    assert len(set(bases)) == len(bases)
    for base in bases:
        raw = os.fsencode(base)
        assert len(raw) <= HELPER_BASE_MAX
        assert len(raw + b".megafast-part.json") + len(".4194304.deadbeef.tmp") + 1 <= 255
        base.encode("utf-8")  # never cut inside a character
