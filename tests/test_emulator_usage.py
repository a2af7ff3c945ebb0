"""The emulator's per-account storage total (``usage``, kept by SQLite triggers) against the
sum over the nodes it replaces, across uploads, versions, moves into the Rubbish Bin, deletes,
restarts with a data dir, and state written before the table existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from megafast.testing import MegaEmulator
from megafast.testing._store import USAGE_SUM
from test_emulator_support import RawClient
from test_emulator_versions import put_version


def summed(emu: MegaEmulator, user: str) -> int:
    row = emu.store.one(USAGE_SUM, user)
    assert row is not None
    return int(row[0])


def check(emu: MegaEmulator, user: str, expected: int) -> None:
    assert emu.store.used_storage(user) == summed(emu, user) == expected


def login(emu: MegaEmulator, email: str) -> RawClient:
    c = RawClient(emu.api_url)
    c.login(email, "pw")
    return c


def test_usage_follows_adds_versions_trash_deletes_and_restarts(tmp_path: Path) -> None:
    with MegaEmulator(data_dir=tmp_path) as emu:
        emu.create_account("u@example.com", "pw")
        emu.create_account("other@example.com", "pw")
        user = emu.store.user_by_email("u@example.com")["handle"]
        other = emu.store.user_by_email("other@example.com")["handle"]
        c = login(emu, "u@example.com")
        check(emu, user, 0)
        folder = c.mkdir("docs")
        v1, _, _ = c.upload(b"x" * 100, "a.txt", folder)
        b, _, _ = c.upload(b"y" * 7, "b.txt", c.root())
        check(emu, user, 107)
        v2 = put_version(c, b"z" * 30, "a.txt", folder, v1["h"])  # v1 kept as a version
        check(emu, user, 137)
        assert c.one({"a": "m", "n": folder, "t": c.root(4)}) == 0  # trash still counts
        check(emu, user, 137)
        assert c.one({"a": "d", "n": v2["h"], "v": 1}) == 0  # the newest version alone
        check(emu, user, 107)
        o = login(emu, "other@example.com")
        o.upload(b"w" * 5, "w.bin", o.root())
        check(emu, other, 5)
        check(emu, user, 107)
        assert c.one({"a": "uq", "strg": 1})["cstrg"] == 107
    with MegaEmulator(data_dir=tmp_path) as emu:  # a restart keeps the total
        check(emu, user, 107)
        c = login(emu, "u@example.com")
        assert c.one({"a": "d", "n": b["h"]}) == 0
        check(emu, user, 100)
        assert c.one({"a": "d", "n": folder}) == 0  # the folder, its file and its version
        check(emu, user, 0)
        check(emu, other, 5)


def test_state_written_without_the_usage_table_is_filled_on_open(tmp_path: Path) -> None:
    with MegaEmulator(data_dir=tmp_path) as emu:
        c = RawClient(emu.api_url)
        emu.create_account("old@example.com", "pw")
        c.login("old@example.com", "pw")
        c.upload(b"q" * 42, "q", c.root())
        user = emu.store.user_by_email("old@example.com")["handle"]
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    for name in ("nodes_usage_insert", "nodes_usage_delete", "nodes_usage_update"):
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE usage")
    db.execute("DELETE FROM meta WHERE key='usage'")
    db.execute("UPDATE nodes SET s = s + 1 WHERE t = 0")  # written by an earlier version
    db.commit()
    db.close()
    with MegaEmulator(data_dir=tmp_path) as emu:
        check(emu, user, 43)
