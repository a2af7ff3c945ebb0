"""``megafast du`` and ``megafast find`` against the emulator (run in this process), and the
streamed output every listing goes through (``Context.stream``)."""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast._cli.context import Context
from megafast._cli.tree import parse_newer, parse_size_test
from megafast.testing import MegaEmulator
from support.cli_inproc import cli_login, run_cli

EMAIL = "dufind@example.com"
PASSWORD = "du find password"
DAY = 86400


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest.fixture
def logged_in(
    tmp_path: Path, emulator: MegaEmulator, monkeypatch: pytest.MonkeyPatch, capsys
) -> Mega:
    return cli_login(capsys, monkeypatch, tmp_path, emulator, EMAIL, PASSWORD)


@pytest.fixture
def space(emulator: MegaEmulator, logged_in: Mega) -> str:
    """/space-N: big/ (3000 and 5000 bytes, one inside big/deep/), small/ (10 bytes), a.txt
    (100 bytes), empty/; file dates 30, 10, 2 and 1 days ago."""
    now = int(time.time())
    name = f"space-{os.urandom(3).hex()}"
    top = emulator.add_folder(EMAIL, name)
    big = emulator.add_folder(EMAIL, "big", top)
    deep = emulator.add_folder(EMAIL, "deep", big)
    small = emulator.add_folder(EMAIL, "small", top)
    emulator.add_folder(EMAIL, "empty", top)
    emulator.add_file(EMAIL, b"b" * 3000, "b1.bin", big, mtime=now - 30 * DAY)
    emulator.add_file(EMAIL, b"d" * 5000, "D2.BIN", deep, mtime=now - 10 * DAY)
    emulator.add_file(EMAIL, b"s" * 10, "s.txt", small, mtime=now - 2 * DAY)
    emulator.add_file(EMAIL, b"a" * 100, "a.txt", top, mtime=now - 1 * DAY)
    return "/" + name


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    code, out, err = run_cli(capsys, "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def test_du_totals_per_folder_biggest_first(capsys, space: str) -> None:
    rows = cli_json(capsys, "du", space)
    assert isinstance(rows, list)
    assert [(r["path"], r["size"], r["files"], r["folders"], r["depth"]) for r in rows] == [
        (space, 8110, 4, 4, 0),
        (f"{space}/big", 8000, 2, 1, 1),
        (f"{space}/small", 10, 1, 0, 1),
        (f"{space}/empty", 0, 0, 0, 1),
    ]
    assert all(r["type"] == "folder" and r["handle"] for r in rows)

    deeper = cli_json(capsys, "du", "-d", "2", "-a", space)
    assert [(r["path"], r["size"]) for r in deeper] == [  # type: ignore[union-attr]
        (space, 8110),
        (f"{space}/big", 8000),
        (f"{space}/big/deep", 5000),
        (f"{space}/big/b1.bin", 3000),
        (f"{space}/a.txt", 100),
        (f"{space}/small", 10),
        (f"{space}/small/s.txt", 10),
        (f"{space}/empty", 0),
    ]
    only = cli_json(capsys, "du", "-d", "0", space)
    assert [r["path"] for r in only] == [space]  # type: ignore[union-attr]
    one_file = cli_json(capsys, "du", f"{space}/a.txt")
    assert one_file == [
        {
            "path": f"{space}/a.txt",
            "handle": one_file[0]["handle"],  # type: ignore[index]
            "type": "file",
            "size": 100,
            "files": 1,
            "folders": 0,
            "depth": 0,
        }
    ]


def test_du_text_lines_bytes_or_human(capsys, space: str) -> None:
    code, out, _ = run_cli(capsys, "du", space)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["8110", "4", "files", "4", "folders", space]
    assert lines[1].split()[0] == "8000" and lines[1].endswith(f"{space}/big")
    code, out, _ = run_cli(capsys, "du", "-h", "-d", "0", space)
    assert code == 0 and out.split()[:2] == ["7.9", "KiB"]
    code, out, _ = run_cli(capsys, "du", "--help")
    assert code == 0 and "--human" in out


def test_du_of_the_whole_drive_and_of_a_public_folder(
    capsys, space: str, emulator: MegaEmulator, logged_in: Mega
) -> None:
    rows = cli_json(capsys, "du")
    assert isinstance(rows, list) and rows[0]["path"] == "/"
    assert rows[0]["size"] >= 8110 and rows[0]["files"] >= 4
    assert any(r["path"] == space and r["size"] == 8110 for r in rows)

    found = logged_in.find(space.lstrip("/"))
    assert found is not None
    link = emulator.export(found[0])
    public = cli_json(capsys, "du", "-d", "1", link)
    assert [(r["path"], r["size"], r["files"]) for r in public] == [  # type: ignore[union-attr]
        ("/", 8110, 4),
        ("/big", 8000, 2),
        ("/small", 10, 1),
        ("/empty", 0, 0),
    ]


def test_find_by_name_type_size_and_date(capsys, space: str) -> None:
    def paths(*tests: str) -> list[str]:
        found = cli_json(capsys, "find", space, *tests)
        return [entry["path"] for entry in found]  # type: ignore[union-attr]

    assert paths("--name", "*.txt") == [f"{space}/small/s.txt", f"{space}/a.txt"]
    assert paths("--name", "*.bin") == [f"{space}/big/b1.bin"]
    assert paths("--iname", "*.bin") == [f"{space}/big/deep/D2.BIN", f"{space}/big/b1.bin"]
    assert paths("--type", "d") == [
        space,
        f"{space}/big",
        f"{space}/big/deep",
        f"{space}/empty",
        f"{space}/small",
    ]
    assert paths("--type", "f", "--size", "+2K") == [
        f"{space}/big/deep/D2.BIN",
        f"{space}/big/b1.bin",
    ]
    assert paths("--size", "-100") == [f"{space}/small/s.txt"]
    assert paths("--size", "100") == [f"{space}/a.txt"]
    assert paths("--newer", "15d", "--type", "f") == [
        f"{space}/big/deep/D2.BIN",
        f"{space}/small/s.txt",
        f"{space}/a.txt",
    ]
    three_days_ago = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() - 3 * DAY))
    assert paths("--newer", three_days_ago, "--type", "f") == [
        f"{space}/small/s.txt",
        f"{space}/a.txt",
    ]
    entry = cli_json(capsys, "find", space, "--name", "a.txt")[0]  # type: ignore[index]
    assert set(entry) == {"name", "path", "type", "size", "mtime", "handle", "decrypted"}
    assert (entry["name"], entry["size"], entry["type"]) == ("a.txt", 100, "file")


def test_find_text_and_long_output(capsys, space: str) -> None:
    code, out, _ = run_cli(capsys, "find", space, "--type", "d", "--name", "e*")
    assert code == 0 and out.splitlines() == [f"{space}/empty/"]
    code, out, _ = run_cli(capsys, "find", space, "-l", "--name", "a.txt")
    assert code == 0
    kind, size, unit, _date, _time, _handle, path = out.split()
    assert (kind, size, unit, path) == ("-", "100", "B", f"{space}/a.txt")
    code, out, _ = run_cli(capsys, "find", "--type", "d", "--name", "Cloud Drive")
    assert code == 0 and out.splitlines() == ["/"]


def test_find_and_du_refuse_bad_tests_and_missing_paths(capsys, space: str) -> None:
    for argv in (
        ["find", space, "--size", "+lots"],
        ["find", space, "--newer", "next tuesday"],
        ["find", space, "--type", "x"],
        ["du", "-d", "-1", space],
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2, (argv, err)
    code, _, err = run_cli(capsys, "find", f"{space}/nope")
    assert code == 1 and "no such file or folder" in err


def test_parse_newer_and_size_tests() -> None:
    assert parse_newer("@1767225600") == 1767225600
    assert parse_newer("2d", now=1000.0 + 2 * DAY) == 1000.0
    assert parse_newer("2026-01-31T00:00:00+00:00") == 1769817600
    assert parse_size_test("+1K")(1025) and not parse_size_test("+1K")(1024)
    assert parse_size_test("-1M")(1) and not parse_size_test("-1M")(1 << 20)
    assert parse_size_test("7")(7) and not parse_size_test("7")(8)


def _context(as_json: bool) -> Context:
    return Context(argparse.Namespace(json=as_json, quiet=False, progress="never"))


def test_stream_prints_what_result_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [({"n": i, "name": f"caf\u00e9 {i}\n"}, f"line {i}\x1b") for i in range(5000)]
    for as_json in (True, False):
        streamed, whole = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", streamed)
        _context(as_json).stream(iter(rows))
        monkeypatch.setattr("sys.stdout", whole)
        _context(as_json).result([data for data, _ in rows], [line for _, line in rows])
        assert streamed.getvalue() == whole.getvalue()
    for as_json in (True, False):
        empty, nothing = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", empty)
        _context(as_json).stream(iter([]))
        monkeypatch.setattr("sys.stdout", nothing)
        _context(as_json).result([], [])
        assert empty.getvalue() == nothing.getvalue()


def test_stream_writes_as_rows_come(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)

    def rows() -> Iterator[tuple[dict[str, int], str]]:
        for i in range(10_000):
            if i == 9_000:
                raise RuntimeError("stop")
            yield {"i": i}, f"row {i}"

    with pytest.raises(RuntimeError):
        _context(False).stream(rows())
    written = out.getvalue().splitlines()
    assert len(written) >= 8000 and written[0] == "row 0"  # written before the end
