"""docs/ASYNC.md's Python blocks run against the emulator (registered with
tests/test_doc_examples.py, which checks that every block of the docs has a test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_doc_examples import block, example, run

DOC = "docs/ASYNC.md"


@pytest.mark.filterwarnings("error")
@example(DOC, "A bot that fetches several public links at once")
def test_async_bot_example_runs(emu, tmp_path, monkeypatch, capsys):
    owner = "publisher@example.com"
    emu.create_account(owner, "pw")
    first, _ = emu.add_file(owner, b"first file " * 30_000, "one.bin")
    second, _ = emu.add_file(owner, b"second", "two.txt")
    folder = emu.add_folder(owner, "album")
    inner, _ = emu.add_file(owner, b"photo" * 1000, "photo.jpg", folder)
    links = [emu.export(first), emu.export(second), f"{emu.export(folder)}/file/{inner}"]
    code = block(DOC, "A bot that fetches several public links at once")
    code = code.replace('"https://mega.nz/file/<H1>#<K1>"', repr(links[0]))
    code = code.replace('"https://mega.nz/file/<H2>#<K2>"', repr(links[1]))
    code = code.replace('"https://mega.nz/folder/<H3>#<K3>/file/<H4>"', repr(links[2]))
    code = code.replace("AsyncMega()", f"AsyncMega({emu.api_url!r})")
    monkeypatch.chdir(tmp_path)
    namespace = run(code, name=DOC)
    assert [p.name for p in namespace["paths"]] == ["one.bin", "two.txt", "photo.jpg"]
    assert Path("downloads/one.bin").read_bytes() == b"first file " * 30_000
    assert Path("downloads/photo.jpg").read_bytes() == b"photo" * 1000
    assert "saved" in capsys.readouterr().out
