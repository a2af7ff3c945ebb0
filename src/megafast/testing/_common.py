"""What every group of emulator commands shares: error numbers, the request context,
argument checks, the access rules and the ``cr`` share-key triples.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._changes import ChangeLog
from ._faults import FaultInjector
from ._stats import Stats
from ._store import FOLDER_TYPES, Store

EINTERNAL, EARGS, EAGAIN = -1, -2, -3
EFAILED, ERANGE, EEXPIRED, ENOENT, ECIRCULAR, EACCESS = -5, -7, -8, -9, -10, -11
EEXIST, EINCOMPLETE, EKEY, ESID, EOVERQUOTA, EMFAREQUIRED = -12, -13, -14, -15, -17, -26


class ApiError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Context:
    """Who is asking: a logged-in user (``user``), a public folder (``folder``), or nobody."""

    user: str | None = None
    sid: str | None = None
    folder: str | None = None  # node handle of the exported folder reached with n=
    folder_error: int | None = None
    i: str | None = None  # the running command's ``i``, echoed on the packets it causes
    hashcash_ok: bool = False  # the request passed the hashcash gate: its new sessions pass too
    v3: bool = False  # the request asked ``v=3``: answers carry sequence tags (_seqtags)


def _get(req: dict, name: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
    value = req.get(name)
    if value is None:
        if required:
            raise ApiError(EARGS)
        return None
    if kind is int and isinstance(value, bool):
        raise ApiError(EARGS)
    if not isinstance(value, kind):
        raise ApiError(EARGS)
    return value


def _handle(req: dict, name: str, required: bool = True) -> str | None:
    value = _get(req, name, str, required)
    if value is not None and (len(value) != 8 or not _is_b64(value)):
        raise ApiError(EARGS)
    return value


_B64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _is_b64(text: str) -> bool:
    return all(c in _B64 for c in text)


class ServiceBase:
    """State and rules the command groups (mixins of :class:`~._api.Service`) share."""

    store: Store
    faults: FaultInjector
    base_url: Callable[[], str]
    transfer_base_url: Callable[[], str]
    storage_quota: int
    stats: Stats
    changes: ChangeLog
    _lock: threading.Lock
    _hashcash_ok: set[str]

    def hashcash_passed_session(self, sid: str) -> None:
        """Let the session's requests pass the hashcash gate (its login passed it)."""
        with self._lock:
            self._hashcash_ok.add(sid)

    def _need_user(self, ctx: Context) -> str:
        if ctx.user is None:
            raise ApiError(EACCESS)
        return ctx.user

    # --- access ------------------------------------------------------------------------

    def _access(
        self, ctx: Context, h: str, rows: dict[str, sqlite3.Row] | None = None
    ) -> tuple[sqlite3.Row, int]:
        """(node, level) for the asker: 2 full (owner or full share), 1 read-write, 0 read.
        ``rows``: nodes read beforehand (handle -> row) for a command that asks for many.

        Raises -9 when the node does not exist or cannot be seen.
        """
        node = rows.get(h) if rows is not None else None
        node = node if node is not None else self.store.node(h)
        if node is None:
            raise ApiError(ENOENT)
        if ctx.folder is not None:
            if h == ctx.folder or ctx.folder in self.store.ancestors(h):
                return node, 0
            raise ApiError(ENOENT)
        if ctx.user is None:
            raise ApiError(EACCESS)
        if node["owner"] == ctx.user:
            return node, 3
        for ah in [h, *self.store.ancestors(h)]:
            share = self.store.one("SELECT r FROM shares WHERE h=? AND u=?", ah, ctx.user)
            if share is not None:
                return node, int(share["r"] or 0)
        raise ApiError(ENOENT)

    def _writable_folder(self, ctx: Context, h: str) -> sqlite3.Row:
        if ctx.user is None:
            raise ApiError(EACCESS)
        node, level = self._access(ctx, h)
        if node["t"] not in FOLDER_TYPES:
            raise ApiError(EACCESS)
        if level < 1:
            raise ApiError(EACCESS)
        return node

    def _apply_cr(self, cr: Any, owner: str, new_nodes: dict[str, str] | None = None) -> None:
        """``cr``: [[share handles], [node handles], [share index, node index, key, ...]].

        ``new_nodes`` maps the names a ``p`` request gave its new nodes to their handles.
        """
        if cr is None:
            return
        if (
            not isinstance(cr, list)
            or len(cr) != 3
            or not all(isinstance(x, list) for x in cr)
            or len(cr[2]) % 3
        ):
            raise ApiError(EARGS)
        shares, nodes, triples = cr
        for i in range(0, len(triples), 3):
            si, ni, key = triples[i : i + 3]
            if (
                not isinstance(si, int)
                or not isinstance(ni, int)
                or not isinstance(key, str)
                or not 0 <= si < len(shares)
                or not 0 <= ni < len(nodes)
            ):
                raise ApiError(EARGS)
            share, node = shares[si], nodes[ni]
            if not isinstance(share, str) or not isinstance(node, str):
                raise ApiError(EARGS)
            node = (new_nodes or {}).get(node, node)
            row = self.store.node(node)
            if row is None or row["owner"] != owner:
                continue
            self.store.execute(
                "INSERT OR REPLACE INTO node_keys(h, share, k) VALUES(?,?,?)", node, share, key
            )
