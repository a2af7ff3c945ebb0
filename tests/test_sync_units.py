"""Pure logic of sync: ignore rules, fingerprints, names, the state file, direction parsing."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from megafast.crypto import fingerprint
from megafast.sync._content import (
    ChangingFileError,
    Fingerprint,
    parse_fingerprint,
    read_fingerprint,
)
from megafast.sync._ignore import IgnoreRules, compile_rule
from megafast.sync._names import conflict_name, is_conflict_name, remote_name_problem
from megafast.sync._state import Agreement, SyncState


def _rules(*lines: str) -> IgnoreRules:
    return IgnoreRules([r for r in map(compile_rule, lines) if r is not None])


@pytest.mark.parametrize(
    ("lines", "path", "is_dir", "ignored"),
    [
        (["*.log"], "a.log", False, True),
        (["*.log"], "deep/er/a.log", False, True),
        (["*.log"], "a.log.txt", False, False),
        (["/top.txt"], "top.txt", False, True),
        (["/top.txt"], "sub/top.txt", False, False),
        (["build/"], "build", True, True),
        (["build/"], "build", False, False),  # folders only
        (["build/"], "src/build", True, True),
        (["doc/*.md"], "doc/a.md", False, True),
        (["doc/*.md"], "doc/sub/a.md", False, False),
        (["**/cache"], "a/b/cache", True, True),
        (["logs/**"], "logs/x/y.txt", False, True),
        (["a/**/z"], "a/z", False, True),
        (["a/**/z"], "a/b/c/z", False, True),
        (["file?.txt"], "file1.txt", False, True),
        (["file?.txt"], "file10.txt", False, False),
        (["[ab].txt"], "b.txt", False, True),
        (["[!ab].txt"], "b.txt", False, False),
        (["*.log", "!keep.log"], "keep.log", False, False),
        (["!keep.log", "*.log"], "keep.log", False, True),  # last match wins
        (["# comment", ""], "# comment", False, False),
        (["\\#hash"], "#hash", False, True),
        (["\\!bang"], "!bang", False, True),
        (["trailing\\ "], "trailing ", False, True),
        (["*"], "anything", True, True),
        (["[unclosed"], "[unclosed", False, True),
    ],
)
def test_gitignore_rules(lines, path, is_dir, ignored):
    assert _rules(*lines).ignored(path, is_dir) is ignored


def test_ignore_file_then_patterns_in_order(tmp_path: Path):
    (tmp_path / ".megafastignore").write_text("*.tmp\n# note\n")
    rules = IgnoreRules.build(tmp_path, [("include", "keep.tmp"), ("exclude", "x")])
    assert rules.ignored("a.tmp", False) and not rules.ignored("keep.tmp", False)
    assert rules.ignored("x", True)
    with pytest.raises(ValueError):
        IgnoreRules.build(None, [("maybe", "x")])


def test_a_symlinked_ignore_file_is_not_read(tmp_path: Path):
    (tmp_path / "elsewhere").write_text("*\n")
    (tmp_path / "root").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / ".megafastignore")
    assert not IgnoreRules.build(tmp_path / "root").ignored("a", False)


@pytest.mark.parametrize("size", [0, 5, 16, 100, 8192, 100_000])
@pytest.mark.parametrize("mtime", [0, 1, 1_700_000_000, 2**40])
def test_fingerprints_parse_back(size: int, mtime: int):
    data = os.urandom(size)
    fp = parse_fingerprint(fingerprint(io.BytesIO(data), mtime))
    assert fp is not None and fp.mtime == mtime and len(fp.crc) == 16


@pytest.mark.parametrize("c", [None, 5, "", "!!!", "AAAA", "A" * 200, "A" * 22 + "CQ"])
def test_malformed_fingerprints_are_none(c):
    assert parse_fingerprint(c) is None


def test_fingerprint_equality_allows_two_seconds():
    a = Fingerprint(b"x" * 16, 100)
    assert a.same(Fingerprint(b"x" * 16, 102)) and not a.same(Fingerprint(b"x" * 16, 103))
    assert not a.same(Fingerprint(b"y" * 16, 100))


def test_a_file_that_keeps_changing_is_refused(tmp_path: Path, monkeypatch):
    import megafast.sync._content as content

    path = tmp_path / "busy"
    path.write_bytes(b"x" * 1000)
    real = content.fingerprint

    def writer_meanwhile(handle, mtime):
        result = real(handle, mtime)
        with open(path, "ab") as f:
            f.write(b"more")
        return result

    monkeypatch.setattr(content, "fingerprint", writer_meanwhile)
    with pytest.raises(ChangingFileError):
        read_fingerprint(path, tries=2)


def test_read_fingerprint_never_follows_a_symlink(tmp_path: Path):
    (tmp_path / "real").write_bytes(b"x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(OSError):
        read_fingerprint(tmp_path / "link")


@pytest.mark.parametrize(
    "name", [None, "", ".", "..", "a/b", "a\\b", "nul\0", "tab\t", " lead", "x" * 256, "\ud800"]
)
def test_remote_names_that_cannot_be_file_names(name):
    assert remote_name_problem(name)


@pytest.mark.parametrize("name", ["a.txt", "ünïcødé ✓", "x" * 255, "name with spaces.pdf"])
def test_remote_names_that_are_file_names(name):
    assert remote_name_problem(name) is None


def test_conflict_names_keep_the_extension():
    name = conflict_name("report.pdf", now=0)
    assert name == "report (conflict 1970-01-01 000000).pdf" and is_conflict_name(name)
    assert conflict_name("README", now=0) == "README (conflict 1970-01-01 000000)"


def test_state_round_trips_with_mode_0600(tmp_path: Path):
    path = tmp_path / "deep" / "state.json"
    state = SyncState(path, {"a/b.txt": Agreement(3, 5, "c", "h")}, {"x (conflict y)"})
    state.save()
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = SyncState.load(path)
    assert loaded.files == state.files and loaded.keep == state.keep and loaded.note is None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"version": 2, "files": {}, "keep": []}',
        b'{"version": 1, "files": [], "keep": []}',
        b"\xff\xfe",
    ],
)
def test_a_damaged_state_is_not_used(tmp_path: Path, payload: bytes):
    path = tmp_path / "state.json"
    path.write_bytes(payload)
    state = SyncState.load(path)
    assert state.files == {} and state.note


def test_bad_state_entries_are_dropped(tmp_path: Path):
    path = tmp_path / "state.json"
    path.write_text(
        '{"version": 1, "keep": [1, "k"], "files": {"ok": [1, 2, "c", "h"], '
        '"bad": [1, "2", "c", "h"], "short": [1]}}'
    )
    state = SyncState.load(path)
    assert list(state.files) == ["ok"] and state.keep == {"k"}


def test_a_symlinked_state_file_is_not_read(tmp_path: Path):
    (tmp_path / "real.json").write_text('{"version": 1, "files": {}, "keep": []}')
    os.symlink(tmp_path / "real.json", tmp_path / "state.json")
    assert SyncState.load(tmp_path / "state.json").note


def test_cli_direction_from_the_arguments(tmp_path: Path):
    from megafast._cli.errors import UsageError
    from megafast._cli.sync import split_direction

    local = str(tmp_path)
    assert split_direction(local, "/backup") == ("up", local, "/backup")
    assert split_direction("/backup", local) == ("down", local, "/backup")
    assert split_direction("/nowhere-here", "new-local") == ("down", "new-local", "/nowhere-here")
    assert split_direction(local, "mega:" + local) == ("up", local, local)
    assert split_direction("mega:/x", local) == ("down", local, "/x")
    with pytest.raises(UsageError):
        split_direction(local, local)
    with pytest.raises(UsageError):
        split_direction("mega:/a", "mega:/b")
