"""The command line against a local attacker (symlinks planted in a folder to upload) and a
hostile server (names with control characters, links written with %23), in-process against
the emulator."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast._cli.text import printable
from megafast._wire.codec import b64encode
from megafast.testing import MegaEmulator
from support.cli_inproc import cli_login, run_cli

EMAIL = "hostile-cli@example.com"
PASSWORD = "hostile cli password"


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest.fixture
def logged_in(
    emulator: MegaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> Mega:
    return cli_login(capsys, monkeypatch, tmp_path, emulator, EMAIL, PASSWORD)


run = run_cli


def planted(tmp_path: Path) -> tuple[Path, bytes]:
    """A folder to upload holding a symlink to a secret outside it, a symlink to a folder
    outside it, and a symlink to its own parent (a loop once followed)."""
    secret = secrets.token_bytes(32)
    outside = tmp_path / "outside"
    (outside / "keys").mkdir(parents=True)
    (outside / "id_rsa").write_bytes(secret)
    (outside / "keys" / "other").write_bytes(b"other secret")
    top = tmp_path / f"up-{secrets.token_hex(4)}"
    (top / "sub").mkdir(parents=True)
    (top / "a.txt").write_bytes(b"a")
    (top / "sub" / "b.txt").write_bytes(b"b")
    os.symlink(outside / "id_rsa", top / "key-link")
    os.symlink(outside / "keys", top / "keys-link")
    os.symlink(top, top / "sub" / "loop")
    return top, secret


def test_put_dir_skips_symlinks_and_counts_them(
    logged_in: Mega, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top, _ = planted(tmp_path)
    code, out, err = run(capsys, "--json", "put", str(top), "/")
    assert code == 0
    assert {e["path"] for e in json.loads(out)} == {f"/{top.name}/a.txt", f"/{top.name}/sub/b.txt"}
    code, _, err = run(capsys, "put", str(top), "/")
    assert code == 0
    assert "skipped 3 symlinks" in err and "--follow-symlinks" in err
    assert "key-link" in err
    logged_in.refresh()
    assert logged_in.find(f"{top.name}/key-link") is None
    assert logged_in.find(f"{top.name}/keys-link") is None  # not even an empty folder


def test_put_follow_symlinks_uploads_targets_and_ends_on_a_loop(
    logged_in: Mega, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top, secret = planted(tmp_path)
    code, out, err = run(capsys, "--json", "put", "--follow-symlinks", str(top), "/")
    assert code == 0
    paths = {e["path"] for e in json.loads(out)}
    assert paths == {
        f"/{top.name}/{p}" for p in ("a.txt", "sub/b.txt", "key-link", "keys-link/other")
    }
    logged_in.refresh()
    got = logged_in.find(f"{top.name}/key-link")
    assert got is not None and got[1]["s"] == len(secret)
    assert logged_in.find(f"{top.name}/sub/loop") is None  # the loop is not walked


def test_library_upload_folder_symlinks(logged_in: Mega, tmp_path: Path) -> None:
    top, _ = planted(tmp_path)
    handles = logged_in.upload_folder(top)
    assert set(handles) == {".", "sub", "a.txt", "sub/b.txt"}
    handles = logged_in.upload_folder(top, follow_symlinks=True)
    assert set(handles) == {".", "sub", "a.txt", "sub/b.txt", "key-link", "keys-link",
                            "keys-link/other"}  # fmt: skip


EVIL = "evil\x1b[2J\rfake\nline\u202etxt.exe"


def test_control_characters_are_escaped_except_in_json(
    emulator: MegaEmulator, logged_in: Mega, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = f"ctl-{secrets.token_hex(4)}"
    handle = logged_in.create_folder(folder)[folder]
    emulator.add_file(EMAIL, b"x", EVIL, handle)
    code, out, _ = run(capsys, "ls", folder)
    assert code == 0
    assert out.splitlines() == ["evil\\033[2J\\rfake\\nline\\u202etxt.exe"]
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    code, out, _ = run(capsys, "--json", "ls", folder)
    assert [e["name"] for e in json.loads(out)] == [EVIL]  # exact
    code, _, err = run(capsys, "get", f"{folder}/{EVIL}", "-o", "/nonexistent-dir/x/")
    assert "\x1b" not in err and "\r" not in err


def test_printable() -> None:
    assert printable("plain name.txt") == "plain name.txt"
    assert printable("a\tb\\c\x00\x7f\x9b") == "a\\tb\\\\c\\000\\177\\233"
    assert printable("ünïcödé ✓") == "ünïcödé ✓"


def test_cli_errors_redact_percent_encoded_links(
    logged_in: Mega, capsys: pytest.CaptureFixture[str]
) -> None:
    key = b64encode(secrets.token_bytes(32))
    for link in (
        f"https://mega.nz/file/AbCdEfGh%23{key}",
        f"https://mega.nz/%23%21AbCdEfGh%21{key}",
        f"mega.nz/file/AbCdEfGh%2523{key}",
    ):
        for argv in (("get", link), ("--json", "get", link), ("cat", link), ("import", link)):
            code, out, err = run(capsys, *argv)
            assert code != 0
            assert key not in err and key not in out, (argv, err)
