"""``megafast sync --both``, ``megafast backup`` and ``megafast restore`` through the CLI's
own parser and handlers (the Context given the test's client)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from megafast._cli.errors import CommandError, UsageError
from support.sync import fresh_client, running_emulator, tree_bytes, write

emu = pytest.fixture(scope="module", name="emu")(running_emulator)
mega = pytest.fixture(name="mega")(fresh_client)


def _run(mega: Any, *argv: str) -> int:
    from megafast._cli.context import Context
    from megafast._cli.registry import all_commands
    from megafast.cli import build_parser

    args = build_parser().parse_args(["--progress", "never", *argv])
    ctx = Context(args)
    ctx._client = mega
    return all_commands()[args.command].handler(ctx)


def test_sync_both_json_then_nothing_then_max_delete(mega, tmp_path, capsys):
    a = tmp_path / "a"
    for i in range(4):
        write(a / f"f{i}.txt", str(i))
    st = str(tmp_path / "st")
    assert _run(mega, "--json", "sync", "--both", str(a), "/pair", "--state-dir", st) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["direction"] == "both" and {x["side"] for x in report["actions"]} == {"remote"}
    assert _run(mega, "sync", "--both", str(a), "mega:/pair", "--state-dir", st) == 0
    assert "nothing to do" in capsys.readouterr().out
    for i in range(3):
        (a / f"f{i}.txt").unlink()
    with pytest.raises(CommandError, match="would delete 3 of 4"):
        _run(mega, "sync", "--both", str(a), "/pair", "--state-dir", st)
    assert _run(mega, "sync", "--both", str(a), "/pair", "--state-dir", st, "--force") == 0
    assert "MEGA  delete    f0.txt" in capsys.readouterr().out


def test_sync_both_refuses_a_damaged_state_and_bad_combinations(mega, tmp_path):
    a = tmp_path / "a"
    write(a / "x.txt", "x")
    st = tmp_path / "st"
    _run(mega, "sync", "--both", str(a), "/pair", "--state-dir", str(st))
    (state,) = st.iterdir()
    state.write_text("{")
    with pytest.raises(CommandError, match="--resync"):
        _run(mega, "sync", "--both", str(a), "/pair", "--state-dir", str(st))
    assert _run(mega, "sync", "--both", str(a), "/pair", "--state-dir", str(st), "--resync") == 0
    with pytest.raises(UsageError):
        _run(mega, "sync", "--watch", str(a), "/pair")
    with pytest.raises(UsageError):
        _run(mega, "sync", "--both", "--delete", str(a), "/pair")


def test_backup_list_and_restore(mega, tmp_path, capsys):
    src = tmp_path / "src"
    write(src / "d" / "a.txt", "alpha", mtime=1_600_000_000)
    assert _run(mega, "backup", str(src), "/bk", "--state-dir", str(tmp_path / "s")) == 0
    assert "1 uploaded" in capsys.readouterr().out
    assert _run(mega, "--json", "backup", "--list", "/bk") == 0
    (snap,) = json.loads(capsys.readouterr().out)["snapshots"]
    out = tmp_path / "out"
    assert _run(mega, "restore", "/bk", str(out), "--at", snap["name"]) == 0
    assert tree_bytes(out) == {"d/a.txt": b"alpha"}
    assert int((out / "d" / "a.txt").stat().st_mtime) == 1_600_000_000
    with pytest.raises(UsageError):
        _run(mega, "backup", "--list", "/bk", "extra")
