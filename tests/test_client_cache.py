"""Mega with the node cache and /sc against the emulator: warm starts see what other sessions
changed without listing everything again, the client's own changes are kept, a damaged or
outdated cache is rebuilt, and watch() reports changes as they happen."""

from __future__ import annotations

import os
import queue
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast._account import livetree as _livetree
from megafast._tree.cache import CacheWarning
from megafast._tree.watch import ChangeEvent
from megafast.errors import ValidationError
from megafast.testing import MegaEmulator

EMAIL, PASSWORD = "cached@example.com", "cache pw"


@pytest.fixture()
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emulator:
        emulator.configure_sc(wait_timeout=1.0)
        emulator.create_account(EMAIL, PASSWORD)
        folder = emulator.add_folder(EMAIL, "docs")
        for i in range(5):
            emulator.add_file(EMAIL, f"file {i}".encode(), f"f{i}.txt", folder)
        yield emulator


def client(emu: MegaEmulator, cache: Any) -> Mega:
    return Mega(api_url=emu.api_url, cache=cache).login(EMAIL, PASSWORD)


def f_requests(emu: MegaEmulator) -> int:
    return sum("f" in e.get("commands", ()) for e in emu.request_log if e["kind"] == "api")


def shape(files: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {h: (n["p"], n["t"], n["a"], n.get("s"), n.get("key")) for h, n in files.items()}


def fresh(emu: MegaEmulator) -> dict[str, tuple[Any, ...]]:
    return shape(client(emu, None).get_files())


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.mfcache"))


def test_warm_start_sees_other_sessions_changes_without_listing(
    emu: MegaEmulator, tmp_path: Path
) -> None:
    first = client(emu, tmp_path)
    assert len(first.get_files()) == 9  # 3 roots, docs, 5 files
    [cached] = cache_files(tmp_path)
    assert cached.stat().st_mode & 0o777 == 0o600
    other = client(emu, None)  # another session, no cache
    new_folder = other.create_folder("docs/new")["new"]
    other.rename(other.find("docs/f1.txt"), "renamed.txt")
    other.move(other.find("docs/f2.txt"), new_folder)
    other.destroy(other.find("docs/f3.txt"))
    emu.reset_stats()
    warm = client(emu, tmp_path)
    files = warm.get_files()
    assert f_requests(emu) == 0  # caught up through /sc, no listing
    assert emu.stats()["sc_requests"] >= 1
    assert warm.find("docs/renamed.txt") is not None and warm.find("docs/f1.txt") is None
    assert warm.find("docs/new/f2.txt") is not None and warm.find("f3.txt") is None
    assert [e.kind for e in warm._live.events].count("delete") >= 1  # type: ignore[union-attr]
    assert shape(files) == fresh(emu)


def test_own_changes_are_saved_and_replay_cleanly(
    emu: MegaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_livetree, "SAVE_INTERVAL", 0.0)  # save after every change
    m = client(emu, tmp_path)
    m.create_folder("docs/mine")
    m.rename(m.find("docs/f0.txt"), "zero.txt")
    m.destroy(m.find("docs/f4.txt"))
    m.move(m.find("docs/f1.txt"), m.find("docs/mine")[0])
    expected = fresh(emu)
    assert shape(m.get_files()) == expected
    emu.reset_stats()
    warm = client(emu, tmp_path)
    assert shape(warm.get_files()) == expected
    assert f_requests(emu) == 0


def test_unsaved_own_changes_come_back_through_sc(emu: MegaEmulator, tmp_path: Path) -> None:
    m = client(emu, tmp_path)  # the cache is written at login; changes are not saved yet
    m.destroy(m.find("docs/f4.txt"))
    m.create_folder("later")
    emu.reset_stats()
    files = client(emu, tmp_path).get_files()
    assert f_requests(emu) == 0
    assert shape(files) == fresh(emu)
    m.logout()  # saves what it changed (after catching up)
    emu.reset_stats()
    files = client(emu, tmp_path).get_files()
    assert f_requests(emu) == 0
    assert shape(files) == fresh(emu)


def test_corrupted_cache_is_rebuilt_with_a_warning(emu: MegaEmulator, tmp_path: Path) -> None:
    client(emu, tmp_path).get_files()
    [cached] = cache_files(tmp_path)
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0x55
    cached.write_bytes(bytes(data))
    emu.reset_stats()
    with pytest.warns(CacheWarning):
        files = client(emu, tmp_path).get_files()
    assert f_requests(emu) == 1
    assert shape(files) == fresh(emu)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        client(emu, tmp_path).get_files()  # rebuilt: read without a warning


def test_sn_too_old_lists_everything(emu: MegaEmulator, tmp_path: Path) -> None:
    client(emu, tmp_path).get_files()
    emu.configure_sc(log_size=2)
    other = client(emu, None)
    for i in range(6):
        other.create_folder(f"burst{i}")
    emu.reset_stats()
    files = client(emu, tmp_path).get_files()
    assert f_requests(emu) == 1
    assert shape(files) == fresh(emu)


def test_clear_cache_and_bad_option(emu: MegaEmulator, tmp_path: Path) -> None:
    m = client(emu, tmp_path)
    m.get_files()
    assert cache_files(tmp_path)
    m.clear_cache()
    assert not cache_files(tmp_path)
    with pytest.raises(ValidationError):
        Mega(api_url=emu.api_url, cache=42)  # type: ignore[arg-type]
    no_cache = client(emu, None)
    no_cache.get_files()
    assert no_cache._live is not None and no_cache._live.cache is None


def test_cache_true_uses_the_user_cache_directory(
    emu: MegaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    client(emu, True).get_files()
    assert cache_files(tmp_path / "xdg" / "megafast")
    assert os.stat(tmp_path / "xdg" / "megafast").st_mode & 0o077 == 0


def test_watch_reports_another_sessions_change(emu: MegaEmulator, tmp_path: Path) -> None:
    m = client(emu, tmp_path)
    m.get_files()
    seen: queue.Queue[ChangeEvent] = queue.Queue()
    watcher = m.watch(seen.put)
    try:
        other = client(emu, None)
        handle = other.create_folder("docs/live")["live"]
        deadline = time.monotonic() + 10
        event = None
        while time.monotonic() < deadline:
            event = seen.get(timeout=max(0.01, deadline - time.monotonic()))
            if event.handle == handle:
                break
        assert event is not None and event.handle == handle and event.kind == "new"
        assert event.path == "Cloud Drive/docs/live"
        found = m.find("docs/live")
        assert found is not None and found[0] == handle
    finally:
        watcher.stop()
