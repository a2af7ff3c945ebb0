"""The command line resolves remote paths exactly as the library does (``Mega.find``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast.testing import MegaEmulator
from support.cli_inproc import cli_login, run_cli

EMAIL = "paths@example.com"
PASSWORD = "paths password"


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, str]:
    """Run ``megafast argv`` in this process; returns (exit code, stdout)."""
    code, out, _ = run_cli(capsys, *argv, stdin=stdin)
    return code, out


@pytest.fixture
def logged_in(
    tmp_path: Path, emulator: MegaEmulator, monkeypatch: pytest.MonkeyPatch, capsys
) -> Mega:
    return cli_login(capsys, monkeypatch, tmp_path, emulator, EMAIL, PASSWORD)


def test_get_and_find_pick_the_same_node(
    emulator: MegaEmulator, logged_in: Mega, tmp_path: Path, capsys
) -> None:
    top = f"top-{os.urandom(4).hex()}"
    parent = emulator.add_folder(EMAIL, top)
    # Two folders with one name: only the second holds "b" (a walk that takes the first
    # "a" it meets never finds it; Mega.find does).
    emulator.add_folder(EMAIL, "a", parent)
    second_a = emulator.add_folder(EMAIL, "a", parent)
    # In the second "a", a file "b" listed before a folder "b": Mega.find takes the first.
    file_b, _ = emulator.add_file(EMAIL, b"the file b", "b", second_a)
    emulator.add_folder(EMAIL, "b", second_a)

    client = Mega(api_url=emulator.api_url).login(EMAIL, PASSWORD)
    found = client.find(f"{top}/a/b")
    assert found is not None and found[0] == file_b

    code, out = run(capsys, "--json", "ls", f"/{top}/a/b")
    assert code == 0
    assert [entry["handle"] for entry in json.loads(out)] == [file_b]

    out_dir = tmp_path / "out"
    code, _ = run(capsys, "-q", "get", f"/{top}/a/b", "-o", f"{out_dir}/")
    assert code == 0
    assert (out_dir / "b").read_bytes() == b"the file b"


def test_put_uploads_a_folder_with_upload_folder_and_names_are_made_safe(
    emulator: MegaEmulator, logged_in: Mega, tmp_path: Path, capsys
) -> None:
    local = tmp_path / f"tree-{os.urandom(4).hex()}"
    (local / "sub").mkdir(parents=True)
    (local / "one.txt").write_bytes(b"one")
    (local / "sub" / "two.txt").write_bytes(b"two")
    os.symlink(local / "one.txt", local / "link.txt")
    code, out = run(capsys, "--json", "put", str(local), "/")
    assert code == 0
    uploaded = {entry["path"]: entry for entry in json.loads(out)}
    assert set(uploaded) == {f"/{local.name}/one.txt", f"/{local.name}/sub/two.txt"}
    client = Mega(api_url=emulator.api_url).login(EMAIL, PASSWORD)
    found = client.find(f"{local.name}/sub/two.txt")
    assert found is not None and found[0] == uploaded[f"/{local.name}/sub/two.txt"]["handle"]

    # A hostile remote name cannot leave the output folder.
    folder = client.find(local.name)
    assert folder is not None
    emulator.add_file(EMAIL, b"evil", "../../evil.txt", folder[0])
    out_dir = tmp_path / "down"
    code, _ = run(capsys, "-q", "get", f"/{local.name}", "-o", f"{out_dir}/")
    assert code == 0
    assert not (tmp_path / "evil.txt").exists()
    assert (out_dir / local.name / "one.txt").read_bytes() == b"one"
