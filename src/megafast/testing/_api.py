"""The ``/cs`` command API of the emulator, and the bookkeeping of transfer URLs.

Handlers raise :class:`ApiError` with MEGA's number; anything else that goes wrong inside a
handler becomes ``-1`` (EINTERNAL) for that command, never an HTTP 500.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _crypto as C
from ._faults import FaultInjector
from ._store import FOLDER_TYPES, Store

log = logging.getLogger("megafast.testing")

EINTERNAL, EARGS, EAGAIN = -1, -2, -3
EFAILED, ERANGE, EEXPIRED, ENOENT, ECIRCULAR, EACCESS = -5, -7, -8, -9, -10, -11
EEXIST, EINCOMPLETE, EKEY, ESID, EOVERQUOTA, EMFAREQUIRED = -12, -13, -14, -15, -17, -26

MAX_BODY = 64 * 1024 * 1024
_MAX_CACHED_ANSWER = 1024 * 1024
_ANSWER_CACHE_BYTES = 64 * 1024 * 1024


class Stats:
    """What the emulator has seen: counters and a bounded log of requests (for assertions)."""

    def __init__(self, log_size: int = 10000) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.commands: Counter[str] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.active_transfers = 0
        self.max_active_transfers = 0

    def api(self, rid: str | None, names: list[str], outcome: str) -> None:
        with self._lock:
            self.counters["api_requests"] += 1
            self.counters[f"api_{outcome}"] += 1
            if outcome == "answered":
                self.commands.update(names)
            self.log.append({"kind": "api", "id": rid, "commands": names, "outcome": outcome})

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def transfer_begin(self) -> None:
        with self._lock:
            self.active_transfers += 1
            self.max_active_transfers = max(self.max_active_transfers, self.active_transfers)

    def transfer_end(self, kind: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self.active_transfers -= 1
            self.counters[f"{kind}_requests"] += 1
            self.counters[f"{kind}_bytes"] += entry.get("bytes", 0)
            self.log.append({"kind": kind, **entry})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.counters,
                "commands": dict(self.commands),
                "max_active_transfers": self.max_active_transfers,
                "active_transfers": self.active_transfers,
            }

    def reset(self) -> None:
        with self._lock:
            self.counters.clear()
            self.commands.clear()
            self.log.clear()
            self.max_active_transfers = self.active_transfers


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
    hashcash_ok: bool = False  # the request passed the hashcash gate: its new sessions pass too


@dataclass
class DownloadGrant:
    path: Path
    size: int
    expires: float
    epoch: int


# A URL expired longer ago than this is forgotten when the emulator starts (it then gets
# "not found" instead of "expired").
_FORGET_EXPIRED_URLS = 7 * 24 * 3600.0


@dataclass
class Upload:
    owner: str
    size: int
    path: Path
    expires: float
    epoch: int
    raw_token: bool
    ranges: list[list[int]] = field(default_factory=list)
    token: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_range(self, start: int, end: int) -> bool:
        """Record [start, end) as received; True when the whole file is now present."""
        rs = self.ranges
        if end > start:
            rs.append([start, end])
        rs.sort()
        merged: list[list[int]] = []
        for s, e in rs:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.ranges = merged
        if self.size == 0:
            return True
        return len(merged) == 1 and merged[0][0] == 0 and merged[0][1] >= self.size


def _command_names(body: bytes) -> list[str]:
    """The ``a`` of each command in a batch, for the log ("?" for anything unreadable)."""
    try:
        batch = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return []
    if not isinstance(batch, list):
        return []
    return [c["a"] if isinstance(c, dict) and isinstance(c.get("a"), str) else "?" for c in batch]


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


class Service:
    """Everything behind the HTTP front: the command API and transfer bookkeeping."""

    def __init__(
        self,
        store: Store,
        faults: FaultInjector,
        base_url: Callable[[], str],
        *,
        storage_quota: int = 20 * 1024**3,
    ) -> None:
        self.store = store
        self.faults = faults
        self.base_url = base_url
        self.storage_quota = storage_quota
        self.epoch = 0
        self.grants: dict[str, DownloadGrant] = {}
        self.uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()
        self._answers: OrderedDict[tuple, tuple[float, bytes]] = OrderedDict()
        self._answers_bytes = 0
        self._inflight: dict[tuple, threading.Event] = {}
        self.answer_ttl = 600.0
        self.hashcash_easiness: int | None = None
        self.hashcash_limit: int | None = None
        self._challenges: dict[bytes, int] = {}
        self._hashcash_ok: set[str] = set()
        self.stats = Stats()
        self._load_urls()
        self._commands: dict[str, Callable[[Context, dict], Any]] = {
            "us0": self.cmd_us0,
            "us": self.cmd_us,
            "up": self.cmd_up,
            "ug": self.cmd_ug,
            "uq": self.cmd_uq,
            "sml": self.cmd_sml,
            "mfag": self.cmd_mfag,
            "ur": self.cmd_ur,
            "uk": self.cmd_uk,
            "f": self.cmd_f,
            "p": self.cmd_p,
            "a": self.cmd_a,
            "m": self.cmd_m,
            "d": self.cmd_d,
            "l": self.cmd_l,
            "s2": self.cmd_s2,
            "g": self.cmd_g,
            "u": self.cmd_u,
        }

    # --- the envelope ------------------------------------------------------------------

    def handle_cs(
        self, params: dict[str, str], body: bytes, hashcash: str | None, client: str
    ) -> tuple[int, dict[str, str], bytes]:
        """One ``/cs`` request -> (HTTP status, extra headers, body)."""
        rid = params.get("id")
        names = _command_names(body)
        challenge = self._check_hashcash(params, hashcash, client)
        if challenge is not None:
            self.stats.api(rid, names, "challenged")
            return 402, {"X-Hashcash": challenge}, b""
        scope = params.get("sid") or ("n:" + params["n"] if "n" in params else "anon")
        cache_key = None
        mine: threading.Event | None = None
        if rid is not None:
            cache_key = (scope, rid, hashlib.sha256(body).digest())
            while True:
                with self._lock:
                    hit = self._answers.get(cache_key)
                    if hit is not None and hit[0] > time.monotonic():
                        self.stats.api(rid, names, "replayed")
                        return 200, {}, hit[1]
                    running = self._inflight.get(cache_key)
                    if running is None:
                        mine = self._inflight[cache_key] = threading.Event()
                        break
                # The same request is being worked on (a client retrying while the first
                # try is still running): wait for its answer rather than doing it twice.
                running.wait(60)
        try:
            return self._answer(params, body, rid, names, cache_key)
        finally:
            if mine is not None:
                with self._lock:
                    self._inflight.pop(cache_key, None)
                mine.set()

    def _answer(
        self,
        params: dict[str, str],
        body: bytes,
        rid: str | None,
        names: list[str],
        cache_key: tuple | None,
    ) -> tuple[int, dict[str, str], bytes]:
        f = self.faults.faults
        if not f.api_error_after_processing and self._api_error_fires():
            status = self.faults.choice(f.api_error_statuses)
            self.stats.api(rid, names, "http_error")
            return status, {}, b""
        if self.faults.fire("api_eagain", f.api_eagain_rate, f.api_eagain_limit):
            self.stats.api(rid, names, "eagain")
            return 200, {}, b"-3"
        self.stats.api(rid, names, "answered")
        answer = self._batch(params, body, trusted=self.hashcash_easiness is not None)
        out = json.dumps(answer, separators=(",", ":")).encode()
        if cache_key is not None and len(out) <= _MAX_CACHED_ANSWER:
            # Big answers (long listings) are read-only work: recomputing them on a retry is
            # harmless, so only small ones are kept, within a memory budget.
            with self._lock:
                self._answers[cache_key] = (time.monotonic() + self.answer_ttl, out)
                self._answers_bytes += len(out)
                while self._answers and (
                    len(self._answers) > 20000 or self._answers_bytes > _ANSWER_CACHE_BYTES
                ):
                    self._answers_bytes -= len(self._answers.popitem(last=False)[1][1])
        if f.api_error_after_processing and self._api_error_fires():
            status = self.faults.choice(f.api_error_statuses)
            self.stats.count("api_answers_lost")
            return status, {}, b""
        return 200, {}, out

    def _api_error_fires(self) -> bool:
        f = self.faults.faults
        return self.faults.fire("api_error", f.api_error_rate, f.api_error_limit)

    def _batch(self, params: dict[str, str], body: bytes, trusted: bool = False) -> Any:
        try:
            batch = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return EARGS
        if not isinstance(batch, list):
            return EARGS
        ctx = Context(hashcash_ok=trusted)
        sid = params.get("sid")
        if sid is not None:
            row = self.store.one("SELECT user FROM sessions WHERE sid=?", sid)
            if row is None:
                return ESID
            ctx.user, ctx.sid = row["user"], sid
        ph = params.get("n")
        if ph is not None:
            row = self.store.one("SELECT h FROM links WHERE ph=?", ph)
            node = self.store.node(row["h"]) if row else None
            if node is None or node["t"] == 0:
                ctx.folder_error = ENOENT
            elif not self.store.one("SELECT 1 FROM shares WHERE h=? AND u='EXP'", node["h"]):
                ctx.folder_error = EACCESS
            else:
                ctx.folder = node["h"]
        results = []
        for req in batch:
            results.append(self._command(ctx, req))
        return results

    def _command(self, ctx: Context, req: Any) -> Any:
        if not isinstance(req, dict) or not isinstance(req.get("a"), str):
            return EARGS
        try:  # JSON may carry lone surrogates (\ud800): not text MEGA would accept
            json.dumps(req, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return EARGS
        handler = self._commands.get(req["a"])
        if handler is None:
            return EARGS
        try:
            with self.store.transaction():
                return handler(ctx, req)
        except ApiError as exc:
            return exc.code
        except Exception:  # a bug here must never take the server down
            log.exception("emulator: command %r failed", req.get("a"))
            return EINTERNAL

    # --- hashcash ----------------------------------------------------------------------

    def require_hashcash(self, easiness: int | None, limit: int | None = None) -> None:
        if easiness is not None and not (isinstance(easiness, int) and 0 <= easiness <= 255):
            raise ValueError("easiness must be an integer 0-255 (or None to turn it off)")
        with self._lock:
            self.hashcash_easiness = easiness
            self.hashcash_limit = limit
            self._hashcash_ok.clear()

    def _check_hashcash(
        self, params: dict[str, str], answer: str | None, client: str
    ) -> str | None:
        """None when the request may pass; else the challenge header value to send with 402."""
        easiness = self.hashcash_easiness
        if easiness is None:
            return None
        sid = params.get("sid")
        with self._lock:
            if client in self._hashcash_ok or (sid and sid in self._hashcash_ok):
                return None
        if answer and self._hashcash_answer_ok(answer):
            with self._lock:
                self._hashcash_ok.add(client)
                if sid:
                    self._hashcash_ok.add(sid)
            return None
        with self._lock:
            if self.hashcash_limit is not None:
                if self.hashcash_limit <= 0:
                    return None
                self.hashcash_limit -= 1
            token = secrets.token_bytes(48)
            self._challenges[token] = easiness
            if len(self._challenges) > 1000:
                self._challenges.pop(next(iter(self._challenges)))
            return f"1:{easiness}:{int(time.time())}:{C.b64encode(token)}"

    def _hashcash_answer_ok(self, answer: str) -> bool:
        """``1:<token>:<prefix>`` answers one of our challenges (hashing ~12 MiB, unlocked)."""
        parts = answer.split(":")
        if len(parts) != 3 or parts[0] != "1":
            return False
        try:
            token, prefix = C.b64decode(parts[1]), C.b64decode(parts[2])
        except ValueError:
            return False
        with self._lock:
            easiness = self._challenges.get(token)
        return easiness is not None and C.check_hashcash_answer(token, easiness, prefix)

    def hashcash_passed_session(self, sid: str) -> None:
        with self._lock:
            self._hashcash_ok.add(sid)

    # --- sessions and accounts ---------------------------------------------------------

    def new_session(self, user: str, hashcash_ok: bool = False) -> str:
        while True:
            raw = secrets.token_bytes(43)
            if raw[0]:
                break
        sid = C.b64encode(raw)
        if hashcash_ok:
            self.hashcash_passed_session(sid)
        self.store.execute(
            "INSERT INTO sessions(sid, user, since) VALUES(?,?,?)", sid, user, int(time.time())
        )
        return sid

    def _need_user(self, ctx: Context) -> str:
        if ctx.user is None:
            raise ApiError(EACCESS)
        return ctx.user

    def cmd_us0(self, ctx: Context, req: dict) -> Any:
        email = _get(req, "user", str)
        row = self.store.user_by_email(email)
        if row is None:
            raise ApiError(ENOENT)
        if row["version"] == 2:
            return {"v": 2, "s": row["salt"]}
        return {"v": 1}

    def cmd_us(self, ctx: Context, req: dict) -> Any:
        user = _get(req, "user", str)
        uh = _get(req, "uh", str, required=False)
        if uh is None:
            # ephemeral account: the user handle, no password hash
            row = self.store.user(user)
            if row is None or row["email"] is not None or not row["ts"]:
                raise ApiError(ENOENT)
            self.store.execute(
                "INSERT OR IGNORE INTO sessions(sid, user, since) VALUES(?,?,?)",
                row["ts"],
                row["handle"],
                int(time.time()),
            )
            if ctx.hashcash_ok:
                self.hashcash_passed_session(row["ts"])
            return {"k": row["k"], "tsid": row["ts"], "u": row["handle"]}
        row = self.store.user_by_email(user)
        if row is None or not secrets.compare_digest(
            (row["uh"] or "").encode(), uh.encode("utf-8", "surrogatepass")
        ):
            raise ApiError(ENOENT)
        if row["mfa"]:
            code = req.get("mfa")
            if code is None:
                raise ApiError(EMFAREQUIRED)
            if not C.totp_matches(row["mfa"], code):
                raise ApiError(EFAILED)
        sid_text = self.new_session(row["handle"], ctx.hashcash_ok)
        n, e = C.decode_mpis(C.b64decode(row["pubk"]), 2)
        key = _PublicKey(n, e)
        csid = C.make_csid(key, C.b64decode(sid_text))  # type: ignore[arg-type]
        return {"k": row["k"], "privk": row["privk"], "csid": csid, "u": row["handle"], "ach": 1}

    def cmd_up(self, ctx: Context, req: dict) -> Any:
        if ctx.user is not None:
            # a logged-in client updating its account (name and so on): accepted, ignored
            return ctx.user
        k = _get(req, "k", str)
        ts = _get(req, "ts", str)
        try:
            if len(C.b64decode(k)) != 16 or len(C.b64decode(ts)) != 32:
                raise ApiError(EARGS)
        except ValueError:
            raise ApiError(EARGS) from None
        handle = self.store.new_handle("users", "handle", 8)
        self.store.execute(
            "INSERT INTO users(handle, email, name, version, k, ts, mstrg, since)"
            " VALUES(?,?,?,?,?,?,?,?)",
            handle,
            None,
            None,
            0,
            k,
            ts,
            self.storage_quota,
            int(time.time()),
        )
        self.store.create_roots(handle)
        return handle

    def cmd_ug(self, ctx: Context, req: dict) -> Any:
        row = self.store.user(self._need_user(ctx))
        assert row is not None
        out: dict[str, Any] = {
            "u": row["handle"],
            "s": 1,
            "k": row["k"],
            "since": row["since"],
            "c": 0,
            "ts": row["ts"] or "",
            "aav": 1,
        }
        if row["email"]:
            out["email"] = row["email"]
            out["name"] = row["name"] or row["email"].split("@")[0]
            out["privk"] = row["privk"]
            out["pubk"] = row["pubk"]
            out["mfa"] = 1 if row["mfa"] else 0
        return out

    def cmd_uq(self, ctx: Context, req: dict) -> Any:
        user = self._need_user(ctx)
        row = self.store.user(user)
        assert row is not None
        used = self.store.used_storage(user)
        return {
            "cstrg": used,
            "mstrg": row["mstrg"],
            "cstrgn": {self.store.root_node(user, t): [0, 0, 0, 0, 0] for t in (2, 3, 4)},
            "caxfer": 0,
            "csxfer": 0,
            "mxfer": 10 * 1024**4,
            "srvratio": 0,
            "utype": 0,
            "balance": [],
            "uslw": 9000,
        }

    def cmd_sml(self, ctx: Context, req: dict) -> Any:
        if ctx.sid is None:
            raise ApiError(EACCESS)
        self.store.execute("DELETE FROM sessions WHERE sid=?", ctx.sid)
        return 0

    def cmd_mfag(self, ctx: Context, req: dict) -> Any:
        row = self.store.user_by_email(_get(req, "e", str))
        if row is None:
            raise ApiError(ENOENT)
        return 1 if row["mfa"] else 0

    def cmd_ur(self, ctx: Context, req: dict) -> Any:
        """Add (``l`` 1) or remove (``l`` 0) a contact by email or user handle."""
        user = self._need_user(ctx)
        who = _get(req, "u", str)
        level = req.get("l")
        if level not in ("0", "1", 0, 1):
            raise ApiError(EARGS)
        row = self.store.user_by_email(who) or self.store.user(who)
        if row is None or row["email"] is None:
            raise ApiError(ENOENT)
        if row["handle"] == user:
            raise ApiError(EARGS)
        if str(level) == "1":
            self.store.execute(
                "INSERT OR IGNORE INTO contacts(user, contact) VALUES(?,?)", user, row["handle"]
            )
        else:
            self.store.execute(
                "DELETE FROM contacts WHERE user=? AND contact=?", user, row["handle"]
            )
        return 0

    def cmd_uk(self, ctx: Context, req: dict) -> Any:
        """A user's public RSA key by email or user handle: ``{"u": handle, "pubk": MPIs n, e}``;
        -9 for unknown users and accounts without a key (ephemeral ones)."""
        who = _get(req, "u", str)
        row = self.store.user_by_email(who) or self.store.user(who)
        if row is None or not row["pubk"]:
            raise ApiError(ENOENT)
        return {"u": row["handle"], "pubk": row["pubk"]}

    # --- access ------------------------------------------------------------------------

    def _access(self, ctx: Context, h: str) -> tuple[sqlite3.Row, int]:
        """(node, level) for the asker: 2 full (owner or full share), 1 read-write, 0 read.

        Raises -9 when the node does not exist or cannot be seen.
        """
        node = self.store.node(h)
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

    # --- node listing ------------------------------------------------------------------

    def node_json(
        self,
        row: sqlite3.Row,
        viewer: str | None,
        share: str | None = None,
        node_keys: dict[str, list[tuple[str, str]]] | None = None,
    ) -> dict:
        """A node as ``f``/``p`` return it to ``viewer`` (or to a public folder ``share``).

        ``u`` is the user who made the node; ``k`` holds that user's key (for that user and
        the tree's owner) and the keys under every share the viewer can use. ``node_keys``:
        the ``node_keys`` rows a whole listing needs (handle -> [(share, key)]), read with
        :meth:`_listing_keys` in one query instead of one per node.
        """
        maker = row["creator"] or row["owner"]
        out: dict[str, Any] = {
            "h": row["h"],
            "p": row["parent"] or "",
            "u": maker,
            "t": row["t"],
            "a": row["a"] or "",
            "k": "",
            "ts": row["ts"],
        }
        if row["t"] == 0:
            out["s"] = row["s"]
        if row["fa"]:
            out["fa"] = row["fa"]
        if row["t"] in (0, 1):
            keys = []
            if share is None and viewer in (maker, row["owner"]):
                keys.append(f"{maker}:{row['k']}")
            if node_keys is None:
                node_keys = self._listing_keys(row["h"], viewer, share)
            usable = None if share is None and viewer == row["owner"] else node_keys.get("")
            for sh, k in node_keys.get(row["h"], ()):
                if usable is None or sh in usable:
                    keys.append(f"{sh}:{k}")
            out["k"] = "/".join(keys)
        return out

    def _listing_keys(
        self, h: str | None, viewer: str | None, share: str | None
    ) -> dict[str, list[tuple[str, str]]]:
        """``node_keys`` rows for a listing: of node ``h`` (all nodes when None) under the
        shares ``viewer`` may use: every share for the owner's own nodes, the shares made
        with the viewer for others' nodes, ``share`` alone for a public folder. The entry
        ``""`` holds the shares usable for nodes the viewer does not own."""
        if share is not None:
            usable = [share]
        else:
            usable = [
                r["h"] for r in self.store.all("SELECT h FROM shares WHERE u=?", viewer or "")
            ]
        if h is not None:
            where, args = "nk.h=?", [h]
        elif share is not None:
            where, args = "nk.share=?", [share]
        else:
            where = "(n.owner=? OR nk.share IN (SELECT h FROM shares WHERE u=?))"
            args = [viewer or "", viewer or ""]
        rows = self.store.all(
            "SELECT nk.h, nk.share, nk.k, n.owner FROM node_keys nk JOIN nodes n ON n.h = nk.h"
            f" WHERE {where} ORDER BY nk.h, nk.share",
            *args,
        )
        usable_set = set(usable)
        out: dict[str, list[tuple[str, str]]] = {"": usable}  # type: ignore[dict-item]
        for r in rows:
            if (share is None and r["owner"] == viewer) or r["share"] in usable_set:
                out.setdefault(r["h"], []).append((r["share"], r["k"]))
        return out

    def cmd_f(self, ctx: Context, req: dict) -> Any:
        if ctx.folder_error is not None:
            raise ApiError(ctx.folder_error)
        if "p" in req and ctx.user is not None:
            # look a public handle up among the asker's own nodes
            ph = _get(req, "p", str)
            link = self.store.one("SELECT h FROM links WHERE ph=?", ph)
            node = self.store.node(link["h"]) if link else None
            if node is None or node["owner"] != ctx.user:
                raise ApiError(ENOENT)
            return {"f": [self.node_json(node, ctx.user)]}
        if ctx.folder is not None:
            keys = self._listing_keys(None, None, ctx.folder)
            nodes = [
                self.node_json(r, None, ctx.folder, keys) for r in self.store.subtree(ctx.folder)
            ]
            return {"f": nodes, "sn": self._sn()}
        user = self._need_user(ctx)
        keys = self._listing_keys(None, user, None)
        out: list[dict] = []
        for t in (2, 3, 4):
            for row in self.store.subtree(self.store.root_node(user, t)):
                out.append(self.node_json(row, user, None, keys))
        listed = {n["h"] for n in out}
        for r in self.store.all("SELECT h FROM nodes WHERE owner=? ORDER BY seq", user):
            if r["h"] not in listed:  # detached nodes (should not happen)
                row = self.store.node(r["h"])
                if row is not None:
                    out.append(self.node_json(row, user, None, keys))
        # incoming shares
        contacts: dict[str, dict] = {}
        for share in self.store.all("SELECT * FROM shares WHERE u=?", user):
            for i, row in enumerate(self.store.subtree(share["h"])):
                node = self.node_json(row, user, None, keys)
                if i == 0:
                    node["su"] = row["owner"]
                    node["sk"] = share["k"] or ""
                    node["r"] = share["r"]
                out.append(node)
            owner = self.store.user(self.store.node(share["h"])["owner"])
            if owner is not None:
                contacts[owner["handle"]] = {
                    "u": owner["handle"],
                    "c": 1,
                    "m": owner["email"] or "",
                }
        for c in self.store.all(
            "SELECT users.handle, users.email FROM contacts JOIN users"
            " ON users.handle = contacts.contact WHERE contacts.user=?",
            user,
        ):
            contacts.setdefault(c["handle"], {"u": c["handle"], "c": 1, "m": c["email"] or ""})
        me = self.store.user(user)
        contacts[user] = {"u": user, "c": 2, "m": (me["email"] if me else "") or ""}
        ok = [
            {"h": r["h"], "ha": r["ha"] or "", "k": r["ok"]}
            for r in self.store.all("SELECT * FROM share_keys WHERE owner=?", user)
        ]
        s = [
            {"h": r["h"], "u": r["u"], "r": r["r"], "ts": r["ts"]}
            for r in self.store.all(
                "SELECT shares.* FROM shares JOIN nodes ON nodes.h = shares.h WHERE nodes.owner=?",
                user,
            )
        ]
        return {"f": out, "ok": ok, "s": s, "u": list(contacts.values()), "sn": self._sn()}

    def _sn(self) -> str:
        row = self.store.one("SELECT value FROM meta WHERE key='seq'")
        return C.b64encode(int(row[0] if row else 0).to_bytes(8, "big"))

    # --- node changes ------------------------------------------------------------------

    def cmd_p(self, ctx: Context, req: dict) -> Any:
        user = self._need_user(ctx)
        target = _handle(req, "t")
        nodes = _get(req, "n", list)
        if not nodes:
            raise ApiError(EARGS)
        parent = self._writable_folder(ctx, target)  # type: ignore[arg-type]
        owner = parent["owner"]
        temp_to_real: dict[str, str] = {}
        item_to_real: dict[str, str] = {}  # what cr calls the new nodes: their h (or ph)
        created: list[str] = []
        for item in nodes:
            if not isinstance(item, dict):
                raise ApiError(EARGS)
            t = _get(item, "t", int)
            a = _get(item, "a", str)
            k = _get(item, "k", str)
            try:
                if not C.b64decode(k) or not C.b64decode(a):
                    raise ApiError(EARGS)
            except ValueError:
                raise ApiError(EARGS) from None
            node_parent = target
            if "p" in item:
                p = _get(item, "p", str)
                if p not in temp_to_real:
                    raise ApiError(EARGS)
                node_parent = temp_to_real[p]
            if t == 1:
                temp = _get(item, "h", str, required=False)
                h = self.store.insert_node(owner, node_parent, 1, a, k, creator=user)
                if temp:
                    temp_to_real[temp] = h
                created.append(h)
            elif t == 0:
                if "ph" in item:
                    ph = _get(item, "ph", str)
                    link = self.store.one("SELECT h FROM links WHERE ph=?", ph)
                    src = self.store.node(link["h"]) if link else None
                    if src is None or src["t"] != 0:
                        raise ApiError(ENOENT)
                    h = self.store.insert_node(
                        owner,
                        node_parent,
                        0,
                        a,
                        k,
                        s=src["s"],
                        blob=src["blob"],
                        ts=src["ts"],
                        creator=user,
                    )
                elif "h" in item:
                    token = _get(item, "h", str)
                    done = self.store.one("SELECT * FROM completions WHERE token=?", token)
                    if done is None:
                        raise ApiError(EARGS)
                    if done["owner"] != user:
                        raise ApiError(EACCESS)
                    self.store.execute("DELETE FROM completions WHERE token=?", token)
                    h = self.store.insert_node(
                        owner,
                        node_parent,
                        0,
                        a,
                        k,
                        s=done["size"],
                        blob=done["blob"],
                        ts=_get(item, "ts", int, required=False),
                        creator=user,
                    )
                else:
                    raise ApiError(EARGS)
                created.append(h)
            else:
                raise ApiError(EARGS)
            name = item.get("h") if isinstance(item.get("h"), str) else item.get("ph")
            if isinstance(name, str):
                item_to_real.setdefault(name, h)
        # cr names the new nodes as the request did (upload token or temporary handle), the
        # way MEGA's SDK sends it; the server maps them to the handles it just made
        self._apply_cr(req.get("cr"), owner, item_to_real)
        return {"f": [self.node_json(self.store.node(h), user) for h in created]}

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

    def cmd_a(self, ctx: Context, req: dict) -> Any:
        h = _handle(req, "n")
        attr = _get(req, "attr", str)
        key = _get(req, "key", str, required=False)
        node, level = self._access(ctx, h)  # type: ignore[arg-type]
        if level < 2 or node["t"] not in (0, 1):
            raise ApiError(EACCESS)
        self.store.execute("UPDATE nodes SET a=? WHERE h=?", attr, h)
        if key is not None and node["owner"] == ctx.user:
            self.store.execute("UPDATE nodes SET k=? WHERE h=?", key, h)
        return 0

    def cmd_m(self, ctx: Context, req: dict) -> Any:
        h = _handle(req, "n")
        t = _handle(req, "t")
        node, level = self._access(ctx, h)  # type: ignore[arg-type]
        if node["t"] not in (0, 1) or level < 2:
            raise ApiError(EACCESS)
        target = self._writable_folder(ctx, t)  # type: ignore[arg-type]
        if target["owner"] != node["owner"]:
            raise ApiError(EACCESS)
        if t == h or h in self.store.ancestors(t):  # type: ignore[arg-type]
            raise ApiError(ECIRCULAR)
        self.store.execute("UPDATE nodes SET parent=? WHERE h=?", t, h)
        # keys of the moved nodes under the shares above their new place (as p does)
        self._apply_cr(req.get("cr"), node["owner"])
        return 0

    def cmd_d(self, ctx: Context, req: dict) -> Any:
        h = _handle(req, "n")
        node, level = self._access(ctx, h)  # type: ignore[arg-type]
        if node["t"] not in (0, 1) or level < 2:
            raise ApiError(EACCESS)
        self.store.delete_subtree(h)  # type: ignore[arg-type]
        return 0

    def _own_node(
        self, ctx: Context, req: dict, types: tuple[int, ...]
    ) -> tuple[str, str, sqlite3.Row]:
        """(user, handle, node) for a request on the asker's own node ``n`` of one of ``types``:
        -9 when there is no such node, -11 when it is someone else's or of another type."""
        user = self._need_user(ctx)
        h = _handle(req, "n")
        node = self.store.node(h)  # type: ignore[arg-type]
        if node is None:
            raise ApiError(ENOENT)
        if node["owner"] != user or node["t"] not in types:
            raise ApiError(EACCESS)
        return user, h, node  # type: ignore[return-value]

    def cmd_l(self, ctx: Context, req: dict) -> Any:
        _user, h, node = self._own_node(ctx, req, (0, 1))
        if req.get("d") == 1:
            self.store.execute("DELETE FROM links WHERE h=?", h)
            return 0
        if node["t"] == 1 and not self.store.one("SELECT 1 FROM shares WHERE h=? AND u='EXP'", h):
            raise ApiError(EACCESS)
        return self.public_handle(h)

    def public_handle(self, h: str) -> str:
        row = self.store.one("SELECT ph FROM links WHERE h=?", h)
        if row is not None:
            return row["ph"]
        ph = self.store.new_handle("links", "ph")
        self.store.execute("INSERT INTO links(ph, h, ts) VALUES(?,?,?)", ph, h, int(time.time()))
        return ph

    def cmd_s2(self, ctx: Context, req: dict) -> Any:
        user, h, _node = self._own_node(ctx, req, (1,))
        targets = _get(req, "s", list)
        ok = _get(req, "ok", str, required=False)
        ha = _get(req, "ha", str, required=False)
        have_key = self.store.one("SELECT 1 FROM share_keys WHERE h=?", h)
        if ok is not None:
            self.store.execute(
                "INSERT OR REPLACE INTO share_keys(h, owner, ok, ha) VALUES(?,?,?,?)",
                h,
                user,
                ok,
                ha,
            )
        results = []
        for target in targets:
            if not isinstance(target, dict) or not isinstance(target.get("u"), str):
                raise ApiError(EARGS)
            who = target["u"]
            if who != "EXP":
                row = self.store.user(who) or self.store.user_by_email(who)
                if row is None:
                    results.append(ENOENT)
                    continue
                who = row["handle"]
            if "r" not in target:
                self.store.execute("DELETE FROM shares WHERE h=? AND u=?", h, who)
                results.append(0)
                continue
            r = _get(target, "r", int)
            if r not in (0, 1, 2):
                raise ApiError(EARGS)
            if ok is None and not have_key:
                raise ApiError(EARGS)
            self.store.execute(
                "INSERT OR REPLACE INTO shares(h, u, r, k, ts) VALUES(?,?,?,?,?)",
                h,
                who,
                r,
                target.get("k") if isinstance(target.get("k"), str) else None,
                int(time.time()),
            )
            results.append(0)
        self._apply_cr(req.get("cr"), user)
        return {"r": results}

    # --- transfers ---------------------------------------------------------------------

    def cmd_g(self, ctx: Context, req: dict) -> Any:
        if "p" in req and ctx.folder is None:
            ph = _get(req, "p", str)
            link = self.store.one("SELECT h FROM links WHERE ph=?", ph)
            node = self.store.node(link["h"]) if link else None
            if node is None or node["t"] != 0:
                raise ApiError(ENOENT)
        else:
            if ctx.folder_error is not None:
                raise ApiError(ctx.folder_error)
            h = _handle(req, "n")
            node, _level = self._access(ctx, h)  # type: ignore[arg-type]
            if node["t"] != 0:
                raise ApiError(EACCESS)
        if not node["blob"]:
            raise ApiError(ENOENT)
        out: dict[str, Any] = {"s": node["s"], "at": node["a"] or "", "msd": 1}
        if node["fa"]:
            out["fa"] = node["fa"]
        f = self.faults.faults
        if f.over_quota and f.over_quota_in_g:
            out["e"] = EOVERQUOTA
            out["tl"] = f.over_quota_time_left
            return out
        if req.get("g"):
            out["g"] = self.grant_download(node["blob"], node["s"])
        return out

    # --- transfer URLs: in memory for the hot path, in SQLite to survive a restart --------

    def _load_urls(self) -> None:
        """Read the download and upload URLs a previous run handed out (``--data-dir``)."""
        store = self.store
        row = store.one("SELECT value FROM meta WHERE key='url_epoch'")
        self.epoch = int(row[0]) if row else 0
        forget = time.time() - _FORGET_EXPIRED_URLS
        with store.transaction():
            store.execute("DELETE FROM url_grants WHERE expires < ?", forget)
            for r in store.all("SELECT * FROM url_grants"):
                self.grants[r["token"]] = DownloadGrant(
                    store.blob_path(r["blob"]), r["size"], r["expires"], r["epoch"]
                )
            for r in store.all("SELECT * FROM url_uploads"):
                path = store.upload_dir / r["token"]
                done = C.b64decode(r["done"]) if r["done"] else None
                if r["expires"] < forget or (done is None and not path.is_file()):
                    store.execute("DELETE FROM url_uploads WHERE token=?", r["token"])
                    if done is None:
                        path.unlink(missing_ok=True)
                    continue
                try:
                    ranges = [[int(a), int(b)] for a, b in json.loads(r["ranges"] or "[]")]
                except (TypeError, ValueError):
                    ranges = []
                self.uploads[r["token"]] = Upload(
                    r["owner"],
                    r["size"],
                    path,
                    r["expires"],
                    r["epoch"],
                    bool(r["raw_token"]),
                    ranges=ranges,
                    token=done,
                )

    def save_upload(self, upload: Upload) -> None:
        """Record the ranges an upload has received (and its completion token, once done)."""
        self.store.execute(
            "UPDATE url_uploads SET ranges=?, done=? WHERE token=?",
            json.dumps(upload.ranges, separators=(",", ":")),
            C.b64encode(upload.token) if upload.token is not None else None,
            upload.path.name,
        )

    def grant_download(self, blob: str, size: int) -> str:
        token = C.b64encode(secrets.token_bytes(24))
        expires = time.time() + self.faults.faults.url_ttl
        grant = DownloadGrant(self.store.blob_path(blob), size, expires, self.epoch)
        self.store.execute(
            "INSERT INTO url_grants(token, blob, size, expires, epoch) VALUES(?,?,?,?,?)",
            token,
            blob,
            size,
            expires,
            self.epoch,
        )
        pruned = False
        with self._lock:  # never take the store's lock inside this one (cmd_* hold it first)
            self.grants[token] = grant
            if len(self.grants) > 10000:
                now = time.time()
                for key in [k for k, g in self.grants.items() if g.expires < now]:
                    del self.grants[key]
                pruned = True
        if pruned:
            self.store.execute("DELETE FROM url_grants WHERE expires < ?", now)
        return f"{self.base_url()}/dl/{token}"

    def cmd_u(self, ctx: Context, req: dict) -> Any:
        user = self._need_user(ctx)
        size = _get(req, "s", int)
        if size < 0:
            raise ApiError(EARGS)
        row = self.store.user(user)
        if row is not None and self.store.used_storage(user) + size > row["mstrg"]:
            raise ApiError(EOVERQUOTA)
        return {"p": self.grant_upload(user, size, raw_token=req.get("v") == 2)}

    def grant_upload(self, owner: str, size: int, raw_token: bool = False) -> str:
        token = C.b64encode(secrets.token_bytes(24))
        upload = Upload(
            owner,
            size,
            self.store.upload_dir / token,
            time.time() + self.faults.faults.url_ttl,
            self.epoch,
            raw_token,
        )
        with open(upload.path, "wb") as fh:
            fh.truncate(size)  # sparse: takes disk space only as pieces arrive
        self.store.execute(
            "INSERT INTO url_uploads(token, owner, size, expires, epoch, raw_token, ranges)"
            " VALUES(?,?,?,?,?,?,'[]')",
            token,
            owner,
            size,
            upload.expires,
            upload.epoch,
            int(raw_token),
        )
        stale: list[tuple[str, Upload]] = []
        with self._lock:  # never take the store's lock inside this one (cmd_* hold it first)
            self.uploads[token] = upload
            if len(self.uploads) > 1000:
                now = time.time()
                for key in [k for k, u in self.uploads.items() if u.expires < now]:
                    stale.append((key, self.uploads.pop(key)))
        for key, old in stale:
            self.store.execute("DELETE FROM url_uploads WHERE token=?", key)
            if old.token is None:
                old.path.unlink(missing_ok=True)
        return f"{self.base_url()}/ul/{token}"

    def expire_urls(self) -> None:
        with self._lock:
            self.epoch += 1
            epoch = self.epoch
        self.store.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES('url_epoch', ?)", str(epoch)
        )

    def finish_upload(self, upload: Upload) -> bytes:
        """Move a complete upload into the blob store; returns the completion token (raw)."""
        blob = secrets.token_hex(16)
        os.replace(upload.path, self.store.blob_path(blob))
        token = secrets.token_bytes(36)
        self.store.execute(
            "INSERT INTO completions(token, owner, blob, size, since) VALUES(?,?,?,?,?)",
            C.b64encode(token),
            upload.owner,
            blob,
            upload.size,
            int(time.time()),
        )
        return token


class _PublicKey:
    """Just enough of an RSA public key for :func:`make_csid`: the server never sees ``d``."""

    def __init__(self, n: int, e: int) -> None:
        self.n, self.e = n, e

    @property
    def nbytes(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def encrypt_int(self, m: int) -> int:
        return pow(m, self.e, self.n)
