"""Sync reads the account from the client's node store, never through ``get_files()``
(issue 19: mega.py dicts for every node cost ~2 GB at a million nodes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast.sync import list_versions, sync
from megafast.sync._content import parse_fingerprint
from megafast.sync._ignore import IgnoreRules
from megafast.sync._remote import RemoteIndex
from support.sync import fresh_client, running_emulator, tree_bytes, write

emu = pytest.fixture(scope="module", name="emu")(running_emulator)
mega = pytest.fixture(name="mega")(fresh_client)


@pytest.fixture
def no_get_files(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("sync called get_files()")

    monkeypatch.setattr(Mega, "get_files", refuse)


def test_sync_up_down_copy_move_and_versions_never_call_get_files(
    mega: Any, tmp_path: Path, no_get_files: None
) -> None:
    state = tmp_path / "state"
    src = tmp_path / "src"
    data = os.urandom(70_000)
    write(src / "a.bin", data)
    write(src / "sub" / "b.txt", "bee")
    first = sync(mega, src, "/backup", state_dir=state)
    assert first.ok and first.count("upload") == 2
    write(src / "again" / "a-copy.bin", data)  # content in the account: a server-side copy
    os.rename(src / "sub" / "b.txt", src / "sub" / "renamed.txt")  # a move
    write(src / "a.bin", os.urandom(70_000))  # a new version
    second = sync(mega, src, "/backup", state_dir=state, delete=True)
    kinds = sorted(a.kind for a in second.actions)
    assert kinds == ["copy", "mkdir", "move", "version"], second.to_dict()
    assert second.bytes_uploaded == 70_000
    dst = tmp_path / "dst"
    down = sync(mega, dst, "/backup", direction="down", state_dir=state)
    assert down.ok and tree_bytes(dst) == tree_bytes(src)
    handle = mega.find("backup/a.bin")[0]
    assert len(list_versions(mega, handle)) == 1


def test_the_store_index_reads_names_sizes_fingerprints_and_keys(mega: Any, tmp_path: Path):
    src = tmp_path / "src"
    write(src / "x" / "y.txt", "why", mtime=1_600_000_000)
    sync(mega, src, "/backup", state_dir=tmp_path / "state")
    mega.refresh()
    index = RemoteIndex.of(mega)
    scan = index.scan(mega.find_path_descriptor("backup"), IgnoreRules())
    assert set(scan.dirs) == {"", "x"} and set(scan.files) == {"x/y.txt"}
    node = scan.files["x/y.txt"]
    assert node["s"] == 3 and len(node["key"]) == 8 and node["a"]["n"] == "y.txt"
    fp = parse_fingerprint(node["a"]["c"])
    assert fp is not None and fp.mtime == 1_600_000_000
    assert [n["h"] for n in index.same_content(3, fp)] == [node["h"]]
