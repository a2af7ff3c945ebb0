"""The emulator's state: SQLite for accounts, sessions and nodes; files for blobs.

One connection guarded by one re-entrant lock: API calls are small and rare next to
transfers, and transfers never touch the database on the hot path.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ._crypto import b64encode
from ._encoded import ENCODED_SCHEMA, FILL_ENCODED, INSERT_NODE

# handles a ``WHERE h IN (...)`` query names at most (well below SQLite's variable limit)
_IN_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS users(
    handle TEXT PRIMARY KEY, email TEXT UNIQUE, name TEXT, version INTEGER,
    salt TEXT, uh TEXT, k TEXT NOT NULL, privk TEXT, pubk TEXT, ts TEXT,
    mfa TEXT, mstrg INTEGER NOT NULL, since INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(sid TEXT PRIMARY KEY, user TEXT NOT NULL, since INTEGER);
CREATE TABLE IF NOT EXISTS nodes(
    h TEXT PRIMARY KEY, owner TEXT NOT NULL, parent TEXT, t INTEGER NOT NULL, a TEXT,
    k TEXT, s INTEGER, ts INTEGER, blob TEXT, fa TEXT, seq INTEGER);
CREATE INDEX IF NOT EXISTS nodes_owner ON nodes(owner);
CREATE INDEX IF NOT EXISTS nodes_parent ON nodes(parent);
CREATE INDEX IF NOT EXISTS nodes_blob ON nodes(blob);
CREATE TABLE IF NOT EXISTS node_keys(h TEXT, share TEXT, k TEXT, PRIMARY KEY(h, share));
CREATE TABLE IF NOT EXISTS shares(
    h TEXT, u TEXT, r INTEGER, k TEXT, ts INTEGER, PRIMARY KEY(h, u));
CREATE TABLE IF NOT EXISTS share_keys(h TEXT PRIMARY KEY, owner TEXT, ok TEXT, ha TEXT);
CREATE TABLE IF NOT EXISTS links(ph TEXT PRIMARY KEY, h TEXT UNIQUE, ts INTEGER);
CREATE TABLE IF NOT EXISTS completions(
    token TEXT PRIMARY KEY, owner TEXT, blob TEXT, size INTEGER, since INTEGER);
CREATE TABLE IF NOT EXISTS helper_keys(user TEXT PRIMARY KEY, master_key TEXT);
CREATE TABLE IF NOT EXISTS contacts(user TEXT, contact TEXT, PRIMARY KEY(user, contact));
CREATE TABLE IF NOT EXISTS url_grants(
    token TEXT PRIMARY KEY, blob TEXT, size INTEGER, expires REAL, epoch INTEGER);
CREATE TABLE IF NOT EXISTS url_uploads(
    token TEXT PRIMARY KEY, owner TEXT, size INTEGER, expires REAL, epoch INTEGER,
    raw_token INTEGER, ranges TEXT, done TEXT);
"""

# Each account's storage used (the sizes of its files, old versions and the Rubbish Bin
# included), kept by triggers as nodes are added, deleted or changed, so that ``uq`` and each
# upload request read one row instead of summing an account of a million nodes. Made afresh
# on open; filled from the nodes when state written without it is opened (meta 'usage').
_USAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage(owner TEXT PRIMARY KEY, bytes INTEGER NOT NULL);
DROP TRIGGER IF EXISTS nodes_usage_insert;
CREATE TRIGGER nodes_usage_insert AFTER INSERT ON nodes WHEN NEW.t = 0 AND NEW.s IS NOT NULL
BEGIN
    INSERT INTO usage(owner, bytes) VALUES(NEW.owner, NEW.s)
        ON CONFLICT(owner) DO UPDATE SET bytes = bytes + excluded.bytes;
END;
DROP TRIGGER IF EXISTS nodes_usage_delete;
CREATE TRIGGER nodes_usage_delete AFTER DELETE ON nodes WHEN OLD.t = 0 AND OLD.s IS NOT NULL
BEGIN
    UPDATE usage SET bytes = bytes - OLD.s WHERE owner = OLD.owner;
END;
DROP TRIGGER IF EXISTS nodes_usage_update;
CREATE TRIGGER nodes_usage_update AFTER UPDATE OF owner, t, s ON nodes
    WHEN (OLD.t = 0 AND OLD.s IS NOT NULL) OR (NEW.t = 0 AND NEW.s IS NOT NULL)
BEGIN
    UPDATE usage SET bytes = bytes - OLD.s
        WHERE owner = OLD.owner AND OLD.t = 0 AND OLD.s IS NOT NULL;
    INSERT INTO usage(owner, bytes)
        SELECT NEW.owner, NEW.s WHERE NEW.t = 0 AND NEW.s IS NOT NULL
        ON CONFLICT(owner) DO UPDATE SET bytes = bytes + excluded.bytes;
END;
"""

# The sum the usage table keeps, computed from the nodes (filling it; tests compare the two).
USAGE_SUM = "SELECT COALESCE(SUM(s), 0) FROM nodes WHERE owner=? AND t=0"
_FILL_USAGE = """
DELETE FROM usage;
INSERT INTO usage(owner, bytes)
    SELECT owner, SUM(s) FROM nodes WHERE t = 0 AND s IS NOT NULL GROUP BY owner;
INSERT OR REPLACE INTO meta(key, value) VALUES('usage', '1');
"""

FOLDER_TYPES = (1, 2, 3, 4)


class Store:
    """State of one emulator: ``root/state.sqlite3``, ``root/blobs/``, ``root/uploads/``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.blob_dir = self.root / "blobs"
        self.upload_dir = self.root / "uploads"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            str(self.root / "state.sqlite3"), check_same_thread=False, isolation_level=None
        )
        self.db.row_factory = sqlite3.Row
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            # up to 64 MiB of pages in memory (SQLite's default is 2 MiB): an account of a
            # few hundred thousand nodes stays cached, so adding nodes does not read pages
            # back from the file (taken as pages are read: a small state costs nothing)
            self.db.execute("PRAGMA cache_size=-65536")
            self.db.executescript(_SCHEMA)
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(nodes)")}
            if "creator" not in columns:  # state written by an earlier version
                self.db.execute("ALTER TABLE nodes ADD COLUMN creator TEXT")
            if "js" not in columns:  # each node's JSON, kept by triggers (_encoded.py)
                self.db.execute("ALTER TABLE nodes ADD COLUMN js BLOB")
                self.db.execute(FILL_ENCODED)  # nodes written before the column existed
            self.db.executescript(ENCODED_SCHEMA)
            filled = self.db.execute("SELECT 1 FROM meta WHERE key='usage'").fetchone()
            fill = "" if filled else _FILL_USAGE  # state written before the table existed
            self.db.executescript(f"BEGIN; {_USAGE_SCHEMA} {fill} COMMIT;")
            row = self.db.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
            self._seq = int(row[0]) if row else 0

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block in one transaction (nested calls join the outer one)."""
        with self.lock:
            if self.db.in_transaction:
                yield self.db
                return
            self.db.execute("BEGIN")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    # --- small helpers -----------------------------------------------------------------

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def tuples(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Like :meth:`all`, rows as plain tuples (cheaper for a million rows)."""
        with self.lock:
            cursor = self.db.cursor()
            cursor.row_factory = None
            return cursor.execute(sql, args).fetchall()

    def execute(self, sql: str, *args: Any) -> None:
        with self.lock:
            self.db.execute(sql, args)

    def next_seq(self) -> int:
        with self.lock:
            self._seq += 1
            self.db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES('seq', ?)", (str(self._seq),)
            )
            return self._seq

    def new_handle(self, table: str = "nodes", column: str = "h", nbytes: int = 6) -> str:
        """A fresh random handle: 8 base64url characters for 6 bytes, 11 for 8 bytes."""
        with self.lock:
            while True:
                h = b64encode(secrets.token_bytes(nbytes))
                if not self.db.execute(f"SELECT 1 FROM {table} WHERE {column}=?", (h,)).fetchone():
                    return h

    def blob_path(self, blob: str) -> Path:
        return self.blob_dir / blob

    # --- users and nodes ---------------------------------------------------------------

    def user_by_email(self, email: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM users WHERE email=?", email.lower())

    def user(self, handle: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM users WHERE handle=?", handle)

    def node(self, h: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM nodes WHERE h=?", h)

    def nodes(self, handles: Iterable[str]) -> dict[str, sqlite3.Row]:
        """The rows of many nodes by handle, a few hundred a query (unknown ones left out)."""
        wanted = list(dict.fromkeys(handles))
        out: dict[str, sqlite3.Row] = {}
        with self.lock:
            for start in range(0, len(wanted), _IN_CHUNK):
                part = wanted[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(part))
                for row in self.db.execute(f"SELECT * FROM nodes WHERE h IN ({marks})", part):
                    out[row["h"]] = row
        return out

    def root_node(self, owner: str, t: int = 2) -> str:
        # LIMIT 1: without it sqlite3 looks on for a second match, through every node
        row = self.one("SELECT h FROM nodes WHERE owner=? AND t=? ORDER BY seq LIMIT 1", owner, t)
        if row is None:
            raise KeyError("account has no such root node")
        return row["h"]

    def insert_node(
        self,
        owner: str,
        parent: str | None,
        t: int,
        a: str = "",
        k: str = "",
        s: int | None = None,
        blob: str | None = None,
        ts: int | None = None,
        h: str | None = None,
        fa: str | None = None,
        creator: str | None = None,
    ) -> str:
        """Add a node to ``owner``'s tree; ``creator`` (default: the owner) is the user who
        made it and whose master key ``k`` is encrypted with (a sharee, inside a share)."""
        with self.lock:
            h = h or self.new_handle()
            self.db.execute(
                INSERT_NODE,
                (
                    h,
                    owner,
                    parent,
                    t,
                    a,
                    k,
                    s,
                    ts or int(time.time()),
                    blob,
                    fa,
                    self.next_seq(),
                    creator if creator and creator != owner else None,
                ),
            )
            return h

    def insert_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Write many nodes at once (seeding big accounts): each row holds the values of
        ``NODE_COLUMNS`` (h, owner, parent, t, a, k, s, ts, blob, fa, seq, creator); the
        caller keeps ``seq`` unique (see :meth:`next_seq`)."""
        with self.transaction():
            self.db.executemany(INSERT_NODE, rows)

    def create_roots(self, owner: str) -> None:
        with self.transaction():
            for t in (2, 3, 4):
                self.insert_node(owner, None, t)

    def children(self, h: str) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM nodes WHERE parent=? ORDER BY seq", h)

    def subtree(self, h: str, versions: bool = False) -> list[sqlite3.Row]:
        """The node and everything under it, parents before children; with ``versions`` the
        old versions of files too (their parent is the newer file)."""
        with self.lock:
            top = self.node(h)
            if top is None:
                return []
            out = [top]
            i = 0
            while i < len(out):
                if versions or out[i]["t"] != 0:
                    out.extend(self.children(out[i]["h"]))
                i += 1
            return out

    def ancestors(self, h: str) -> list[str]:
        """Handles from the node's parent up to its root (cycle-safe)."""
        out: list[str] = []
        seen = {h}
        with self.lock:
            row = self.node(h)
            while row is not None and row["parent"] and row["parent"] not in seen:
                out.append(row["parent"])
                seen.add(row["parent"])
                row = self.node(row["parent"])
        return out

    def delete_subtree(self, h: str, versions: bool = True) -> None:
        """Delete the node and everything under it (with the files' old versions unless
        ``versions`` is False), and the blobs nothing else refers to."""
        with self.transaction():
            rows = self.subtree(h, versions)
            blobs = {r["blob"] for r in rows if r["blob"]}
            for r in rows:
                self.db.execute("DELETE FROM nodes WHERE h=?", (r["h"],))
                self.db.execute("DELETE FROM node_keys WHERE h=? OR share=?", (r["h"], r["h"]))
                self.db.execute("DELETE FROM shares WHERE h=?", (r["h"],))
                self.db.execute("DELETE FROM share_keys WHERE h=?", (r["h"],))
                self.db.execute("DELETE FROM links WHERE h=?", (r["h"],))
            for blob in blobs:
                self.release_blob(blob)

    def release_blob(self, blob: str) -> None:
        """Delete a blob's file when no node and no unused completion token refers to it."""
        with self.lock:
            if self.db.execute("SELECT 1 FROM nodes WHERE blob=? LIMIT 1", (blob,)).fetchone():
                return
            if self.db.execute(
                "SELECT 1 FROM completions WHERE blob=? LIMIT 1", (blob,)
            ).fetchone():
                return
            with suppress(FileNotFoundError):
                os.unlink(self.blob_path(blob))

    def used_storage(self, owner: str) -> int:
        """The bytes of ``owner``'s files (versions and the Rubbish Bin included): one row of
        the usage table the triggers keep."""
        row = self.one("SELECT bytes FROM usage WHERE owner=?", owner)
        return int(row[0]) if row else 0
