"""The ``sync`` and ``versions`` CLI module (registered by the CLI's command registry; here
its parser and handlers run on their own, with the CLI's Context)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from megafast._cli import sync as cli_sync
from support.sync import fresh_client, running_emulator, write

emu = pytest.fixture(scope="module", name="emu")(running_emulator)


mega = pytest.fixture(name="mega")(fresh_client)


def _run(mega: Any, *argv: str) -> tuple[int, Any]:
    """Parse ``argv`` with megafast's own parser (the sync module registered itself on
    import) and run the command with the given client in place of the stored session."""
    from megafast._cli.context import Context
    from megafast._cli.registry import all_commands
    from megafast.cli import build_parser

    args = build_parser().parse_args(["--progress", "never", *argv])
    ctx = Context(args)
    ctx._client = mega
    return all_commands()[args.command].handler(ctx), ctx


def test_sync_up_with_json_then_nothing_to_do(mega, tmp_path, capsys):
    src = tmp_path / "src"
    write(src / "a.txt", "hello")
    state = str(tmp_path / "st")
    code, _ = _run(mega, "sync", str(src), "/backup", "--state-dir", state, "--json")
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] and report["actions"][0]["action"] == "upload"
    code, _ = _run(mega, "sync", str(src), "/backup", "--state-dir", state)
    out = capsys.readouterr().out
    assert code == 0 and "nothing to do" in out


def test_dry_run_prints_the_plan_with_sizes(mega, tmp_path, capsys):
    src = tmp_path / "src"
    write(src / "big.bin", b"x" * 3000)
    write(src / "skip.tmp", "x")
    code, _ = _run(
        mega,
        "sync",
        str(src),
        "mega:/backup",
        "--dry-run",
        "--exclude",
        "*.tmp",
        "--state-dir",
        str(tmp_path / "st"),
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "upload    big.bin  2.9 KiB" in out and "skip.tmp" not in out and "would do" in out
    assert mega.find_path_descriptor("backup") is None


def test_skipped_paths_give_exit_code_3(mega, tmp_path, capsys):
    src = tmp_path / "src"
    write(src / "a.txt", "a")
    os.symlink("/etc/passwd", src / "link")
    code, _ = _run(mega, "sync", str(src), "/backup", "--state-dir", str(tmp_path / "st"))
    out = capsys.readouterr().out
    assert code == cli_sync.EXIT_PARTIAL and "skipped   link: symbolic link" in out


def test_sync_down_and_delete_into_the_trash(mega, tmp_path, capsys):
    src = tmp_path / "src"
    write(src / "a.txt", "a")
    state = str(tmp_path / "st")
    _run(mega, "sync", str(src), "/backup", "--state-dir", state)
    dst = tmp_path / "dst"
    dst.mkdir()
    write(dst / "extra.txt", "mine")
    code, _ = _run(mega, "sync", "/backup", str(dst), "--delete", "--state-dir", state)
    assert code == 0
    assert (dst / "a.txt").read_text() == "a" and not (dst / "extra.txt").exists()
    assert list((dst / ".megafast-trash").glob("*/extra.txt"))


def test_versions_command_lists_and_removes(mega, tmp_path, capsys):
    src = tmp_path / "src"
    state = str(tmp_path / "st")
    write(src / "doc.txt", "one")
    _run(mega, "sync", str(src), "/backup", "--state-dir", state)
    write(src / "doc.txt", "two!")
    _run(mega, "sync", str(src), "/backup", "--state-dir", state)
    capsys.readouterr()
    code, _ = _run(mega, "versions", "/backup/doc.txt", "--json")
    (version,) = json.loads(capsys.readouterr().out)["versions"]
    assert code == 0 and version["size"] == 3
    code, _ = _run(mega, "versions", "/backup/doc.txt", "--remove")
    assert code == 0 and "removed 1" in capsys.readouterr().out
    code, _ = _run(mega, "versions", "/backup/doc.txt")
    assert "no older versions" in capsys.readouterr().out
    from megafast._cli.errors import CommandError

    with pytest.raises(CommandError):
        _run(mega, "versions", "/backup/missing.txt")
