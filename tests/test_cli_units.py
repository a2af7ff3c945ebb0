"""The command line's pure logic: sizes, the session store, error lines, the remote tree."""

from __future__ import annotations

import argparse
import json
import os
import stat

import pytest

from megafast._cli import session as session_store
from megafast._cli.errors import CommandError, UsageError, report_error, scrub
from megafast._cli.options import parse_size
from megafast._cli.remote import RemoteView, is_url, split_remote
from megafast._tree.nodestore import NodeStore
from megafast.cli import build_parser, main
from megafast.transfer._localnames import safe_local_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("123", 123),
        ("123B", 123),
        ("64K", 64 << 10),
        ("64k", 64 << 10),
        ("64M", 64 << 20),
        ("64MB", 64 << 20),
        ("1GiB", 1 << 30),
        ("1.5G", 3 << 29),
        ("2T", 2 << 40),
    ],
)
def test_parse_size_accepts_binary_suffixes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "M", "-1", "1X", "1..5M", "nan", "inf", "1 M B"])
def test_parse_size_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_common_options_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--json", "--api-url", "http://x", "ls"])
    after = parser.parse_args(["ls", "--json", "--api-url", "http://x"])
    plain = parser.parse_args(["ls"])
    assert before.json and after.json and not plain.json
    assert before.api_url == after.api_url == "http://x"
    assert plain.api_url is None and plain.progress == "auto"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nosuchcommand"]) == 2
    assert main(["get"]) == 2  # a missing argument
    assert main(["demo", "--size", "lots"]) == 2
    assert main(["get", "x", "--connections", "0"]) == 2
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("login", "get", "put", "bench", "demo", "serve", "info"):
        assert command in out


def test_session_file_is_0600_in_a_0700_folder(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "cfg" / "megafast"
    monkeypatch.setenv("MEGAFAST_CONFIG_DIR", str(folder))
    assert session_store.load_session() is None
    path = session_store.save_session("http://127.0.0.1:1", "a@b.c", {"sid": "s"})
    assert path == folder / "session.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    loaded = session_store.load_session()
    assert loaded is not None
    assert loaded["session"] == {"sid": "s"} and loaded["email"] == "a@b.c"
    # replacing keeps the mode and leaves no temporary files behind
    session_store.save_session("http://127.0.0.1:1", "a@b.c", {"sid": "t"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["session.json"]
    assert session_store.delete_session() is True
    assert session_store.delete_session() is False


def test_damaged_session_file_counts_as_none(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MEGAFAST_CONFIG_DIR", str(tmp_path))
    (tmp_path / "session.json").write_text("{not json")
    assert session_store.load_session() is None
    (tmp_path / "session.json").write_text(json.dumps({"format": 99, "session": 1}))
    assert session_store.load_session() is None


def test_config_dir_order(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MEGAFAST_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert session_store.config_dir() == tmp_path / "xdg" / "megafast"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert session_store.config_dir() == tmp_path / "home" / ".config" / "megafast"
    monkeypatch.setenv("MEGAFAST_CONFIG_DIR", str(tmp_path / "explicit"))
    assert session_store.config_dir() == tmp_path / "explicit"


def test_scrub_removes_session_ids_and_link_keys() -> None:
    text = (
        "POST http://h/cs?id=5&sid=SECRETSID123 failed; "
        "https://mega.nz/file/AbCdEfGh#KEYKEYKEY and https://mega.nz/#!AbCdEfGh!LEGACYKEY"
    )
    cleaned = scrub(text)
    for secret in ("SECRETSID123", "KEYKEYKEY", "LEGACYKEY"):
        assert secret not in cleaned
    assert "AbCdEfGh" in cleaned


def test_report_error_is_one_line_with_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(debug=False, json=False)
    assert report_error(CommandError("no such file or folder: /x"), args) == 1
    assert report_error(UsageError("bad"), args) == 2
    err = capsys.readouterr().err
    assert err == "megafast: error: no such file or folder: /x\nmegafast: error: bad\n"
    args = argparse.Namespace(debug=False, json=True)
    from megafast.errors import NotFoundError

    assert report_error(NotFoundError(-9), args) == 1
    payload = json.loads(capsys.readouterr().err)
    assert payload["code"] == -9 and payload["type"] == "NotFoundError"


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise CommandError("boom")
    except CommandError as exc:
        assert report_error(exc, argparse.Namespace(debug=True, json=False)) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("megafast: error: boom\n")


def _view() -> RemoteView:
    store = NodeStore()
    store.put("ROOT0000", None, 2, "", 0, 0, None, None)
    store.put("BIN00000", None, 4, "", 0, 0, None, None)
    store.put("DOCS0000", "ROOT0000", 1, "", 0, 0, bytes(16), "docs")
    store.put("FILEA000", "DOCS0000", 0, "", 5, 0, bytes(32), "a.txt")
    store.put("GONE0000", "BIN00000", 0, "", 1, 0, bytes(32), "old")
    store.put("BAD00000", "DOCS0000", 0, "", 3, 0, None, None, enc_key="x:AAAA")
    return RemoteView(store)


def test_remote_view_paths_listing_and_one_part_lookup() -> None:
    # Paths of two or more parts resolve as Mega.find does (tests/test_cli.py checks that
    # against the emulator); the root and one-part paths look at the Cloud Drive only.
    view = _view()
    assert view.resolve("/").handle == "ROOT0000"
    assert view.resolve("//docs/").handle == "DOCS0000"
    assert view.lookup("/missing") is None
    assert view.path_of(view.resolve("docs/a.txt")) == "/docs/a.txt"
    assert view.path_of(view.get("GONE0000")) == "//Rubbish Bin/old"  # type: ignore[arg-type]
    with pytest.raises(CommandError, match="no such file or folder: /nope"):
        view.resolve("/nope")
    with pytest.raises(CommandError):
        split_remote("/docs/../x")
    walked = [shown for _, _, shown in view.rows(view.require_top(), recursive=True)]
    assert walked[0] == "docs/" and "docs/a.txt" in walked
    assert any(name.startswith("docs/[undecryptable") for name in walked)
    rows = list(view.rows(view.resolve("docs"), recursive=False))
    assert "a.txt" in [shown for _, _, shown in rows]
    assert all(path.startswith("/docs/") for _, path, _ in rows)


def test_is_url() -> None:
    assert is_url("https://mega.nz/file/AbCdEfGh#key")
    assert is_url("mega.nz/folder/AbCdEfGh#key")
    assert is_url("https://mega.co.nz/#!AbCdEfGh!key")
    assert not is_url("/mega.nz/file")
    assert not is_url("docs/a.txt")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "a.txt"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("..", "_.."),
        (".", "_."),
        ("", "_"),
        ("  ", "_"),
        (" x ", "x"),
        ("a\x00b\nc", "a_b_c"),
        ("../../etc/passwd", ".._.._etc_passwd"),
    ],
)
def test_safe_local_name(name: str, expected: str) -> None:
    assert safe_local_name(name) == expected
