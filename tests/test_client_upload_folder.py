"""Mega.upload_folder: whole local trees, end to end against the emulator."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from megafast import Mega
from megafast.errors import SourceNotFoundError
from megafast.testing import MegaEmulator
from megafast.transfer import TransferResult


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha",
        "empty.bin": b"",
        "sub/b.bin": secrets.token_bytes(300_000),
        "sub/deeper/c.txt": "naïve ☃".encode(),
        "sub/deeper/ünï.dat": secrets.token_bytes(17),
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty-folder").mkdir()
    (root / "link-to-a").symlink_to(root / "a.txt")
    return files


@pytest.fixture()
def logged_in(emu: MegaEmulator) -> Mega:
    email = f"tree-{secrets.token_hex(4)}@example.com"
    emu.create_account(email, "pw")
    return Mega(api_url=emu.api_url).login(email, "pw")


def test_uploads_a_tree_and_it_downloads_back(logged_in: Mega, tmp_path: Path) -> None:
    src = tmp_path / "photos"
    files = make_tree(src)
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    seen: list[tuple[int, int]] = []
    handles = logged_in.upload_folder(src, progress=lambda d, t: seen.append((d, t)))

    total = sum(len(d) for d in files.values())
    assert set(handles) == {".", "sub", "sub/deeper", "empty-folder", *files}
    assert seen and seen[-1] == (total, total)
    assert all(d <= t for d, t in seen)
    for rel, data in files.items():
        handle, node = logged_in.find(f"photos/{rel}")
        assert handle == handles[rel]
        out = tmp_path / "out" / rel.replace("/", "_")
        out.parent.mkdir(exist_ok=True)
        assert logged_in.download((handle, node), out.parent, out.name).read_bytes() == data
    assert logged_in.find("photos/empty-folder")[1]["t"] == 1
    assert logged_in.find("photos/link-to-a") is None  # symlinks are skipped
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # untouched


def test_uploading_again_reuses_the_folders(logged_in: Mega, tmp_path: Path) -> None:
    src = tmp_path / "docs"
    (src / "x").mkdir(parents=True)
    (src / "x" / "1.txt").write_bytes(b"one")
    dest = logged_in.create_folder("backups")["backups"]
    first = logged_in.upload_folder(src, dest)
    result = TransferResult()
    second = logged_in.upload_folder(os.fspath(src), dest, result=result)
    assert first == second  # the same folders, and the file already there is not sent again
    assert [(o.rel, o.status) for o in result.skipped] == [("x/1.txt", "skipped")]
    assert not result.succeeded and result.ok
    logged_in.refresh()
    assert logged_in.find("backups/docs/x")[0] == first["x"]


def test_a_missing_folder_is_a_clear_error(logged_in: Mega, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no such folder"):
        logged_in.upload_folder(tmp_path / "nope")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(SourceNotFoundError):
        logged_in.upload_folder(tmp_path / "file")
