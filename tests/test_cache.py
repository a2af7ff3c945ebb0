"""The encrypted node cache: round trip, secrecy, and every way a cache file can be bad
(truncated, corrupted, another account, another format, planted by someone else, shared by
two processes): never wrong data, always a CacheWarning and a rebuild."""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import struct
from pathlib import Path

import pytest

from megafast._tree.cache import FORMAT_VERSION, CacheWarning, NodeCache, clear_cache_folder
from megafast._tree.listing import load_listing
from megafast._tree.nodes import Keyring
from megafast._tree.nodestore import NodeStore
from synthetic_listing import Account, big_answer_chunks


def make_store(acct: Account, folders: int = 5, files: int = 4) -> NodeStore:
    store, _ = load_listing(
        big_answer_chunks(acct, folders, files), Keyring(acct.master, acct.user)
    )
    return store


@pytest.fixture()
def acct() -> Account:
    return Account()


def test_round_trip_keeps_every_node_and_change(tmp_path: Path, acct: Account) -> None:
    store = make_store(acct)
    store.remove(store.find_path("folder1"))  # freed slots survive the trip
    store.set_extra(store.find_path("folder2/file0.bin"), "ph", "PubHandle")
    cache = NodeCache(tmp_path, acct.master, acct.user)
    assert cache.save(store)
    loaded = cache.load()
    assert loaded is not None
    assert loaded.visible() == store.visible() and loaded.sn == store.sn == "AAAAAAAAAAE"
    assert loaded.find_path("folder2/file3.bin") == store.find_path("folder2/file3.bin")
    assert len(loaded) == len(store)
    loaded.put("NEWHANDL", acct.root, 1, acct.user, 0, 1, secrets.token_bytes(16), "more")
    assert loaded.find_path("more") == "NEWHANDL"


def test_share_keys_and_exported_folders_survive(tmp_path: Path, acct: Account) -> None:
    store = make_store(acct)
    folder = store.find_path("folder2")
    assert folder is not None
    key = secrets.token_bytes(16)
    store.share_keys[folder] = key
    store.exported.add(folder)
    cache = NodeCache(tmp_path, acct.master, acct.user)
    assert cache.save(store)
    loaded = cache.load()
    assert loaded is not None
    assert loaded.share_keys == {folder: key} and loaded.exported == {folder}
    store.share_keys[folder] = key[:15]  # a key that cannot be one is refused on load
    assert cache.save(store)
    load_warns(cache, "does not decode")


def test_file_is_private_encrypted_and_named_opaquely(tmp_path: Path, acct: Account) -> None:
    cache = NodeCache(tmp_path, acct.master, acct.user)
    cache.save(make_store(acct))
    data = cache.path.read_bytes()
    assert (cache.path.stat().st_mode & 0o777) == 0o600
    assert (tmp_path.stat().st_mode & 0o077) == 0 or tmp_path.exists()
    assert b"folder1" not in data and b"file0.bin" not in data
    assert acct.user not in cache.path.name and acct.user.encode() not in data
    assert acct.master.hex() not in repr(cache)


def load_warns(cache: NodeCache, match: str) -> None:
    with pytest.warns(CacheWarning, match=match):
        assert cache.load() is None


@pytest.mark.parametrize("cut", [0, 10, 40, -1, -33])
def test_truncated_cache_is_thrown_away(tmp_path: Path, acct: Account, cut: int) -> None:
    cache = NodeCache(tmp_path, acct.master, acct.user)
    cache.save(make_store(acct))
    data = cache.path.read_bytes()
    cache.path.write_bytes(data[:cut])
    load_warns(cache, "truncated|authentication")
    assert not cache.path.exists()  # removed, to be rebuilt
    assert cache.load() is None  # and no more warnings


def test_every_flipped_byte_region_is_detected(tmp_path: Path, acct: Account) -> None:
    cache = NodeCache(tmp_path, acct.master, acct.user)
    store = make_store(acct)
    for where in (5, 7, 30, 100, 1000, -40, -1):
        cache.save(store)
        data = bytearray(cache.path.read_bytes())
        data[where] ^= 0x01
        cache.path.write_bytes(bytes(data))
        load_warns(cache, "")


def test_other_account_and_other_version(tmp_path: Path, acct: Account) -> None:
    cache = NodeCache(tmp_path, acct.master, acct.user)
    cache.save(make_store(acct))
    other = Account(user=acct.user, master=secrets.token_bytes(16))
    stranger = NodeCache(tmp_path, other.master, other.user)
    # another account's cache has another name; copied over ours it is refused
    assert stranger.path != cache.path
    stranger.save(make_store(other))
    os.replace(stranger.path, cache.path)
    load_warns(cache, "another account")
    cache.save(make_store(acct))
    data = bytearray(cache.path.read_bytes())
    struct.pack_into(">H", data, 4, FORMAT_VERSION + 1)
    cache.path.write_bytes(bytes(data))
    load_warns(cache, "format")
    fd = os.open(cache.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"SQLite format 3\0" + bytes(100))
    os.close(fd)
    load_warns(cache, "not a megafast")


def test_planted_files_and_open_folders_are_not_trusted(tmp_path: Path, acct: Account) -> None:
    cache = NodeCache(tmp_path, acct.master, acct.user)
    cache.save(make_store(acct))
    os.chmod(cache.path, 0o644)
    load_warns(cache, "not a private file")
    os.chmod(cache.path, 0o600)
    target = tmp_path / "elsewhere"
    os.replace(cache.path, target)
    os.symlink(target, cache.path)
    with pytest.warns(CacheWarning):
        assert cache.load() is None  # a symlink is never followed
    os.unlink(cache.path)
    os.chmod(tmp_path, 0o777)
    try:
        load_warns(cache, "closed to others")
        with pytest.warns(CacheWarning):
            assert cache.save(make_store(acct)) is False
    finally:
        os.chmod(tmp_path, 0o700)


def _writer(folder: str, master: bytes, user: str, rounds: int) -> None:
    acct = Account(user=user, master=master)
    cache = NodeCache(folder, master, user)
    for i in range(rounds):
        cache.save(make_store(acct, folders=3 + i % 3, files=5))


def test_two_processes_sharing_a_folder_never_corrupt_it(tmp_path: Path, acct: Account) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_writer, args=(str(tmp_path), acct.master, acct.user, 15))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    cache = NodeCache(tmp_path, acct.master, acct.user)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        seen = 0
        while any(w.is_alive() for w in workers):
            store = cache.load()
            if store is not None:
                assert len(store) in {3 + f + f * 5 for f in (3, 4, 5)}
                seen += 1
    for w in workers:
        w.join()
        assert w.exitcode == 0
    assert cache.load() is not None


def test_clear(tmp_path: Path, acct: Account) -> None:
    cache = NodeCache(tmp_path, acct.master, acct.user)
    cache.save(make_store(acct))
    cache.clear()
    assert not cache.path.exists() and cache.load() is None
    cache.save(make_store(acct))
    (tmp_path / "keep.txt").write_text("x")
    assert clear_cache_folder(tmp_path) == 1
    assert json.loads('"x"') == "x" and (tmp_path / "keep.txt").exists()
