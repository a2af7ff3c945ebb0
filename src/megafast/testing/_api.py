"""The ``/cs`` envelope of the emulator: request ids, batches, hashcash; :class:`Service`
joins the command groups (accounts, nodes, shares, transfers, the change log).

Handlers raise :class:`ApiError` with MEGA's number; anything else that goes wrong inside a
handler becomes ``-1`` (EINTERNAL) for that command, never an HTTP 500.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import _crypto as C
from ._accounts import AccountCommands
from ._changes import ChangeLog
from ._common import EACCESS, EARGS, EINTERNAL, ENOENT, ESID, ApiError, Context
from ._encoded import Body, Pieces, encode_answer
from ._faults import FaultInjector
from ._fileattrs import FileAttrCommands
from ._grants import DownloadGrant, TransferCommands, Upload
from ._nodes import NodeCommands
from ._seqtags import v3_answer
from ._shares import ShareCommands
from ._stats import Stats
from ._store import Store
from ._userattrs import UserAttrCommands

__all__ = ["MAX_BODY", "Body", "Pieces", "Service", "Upload"]

log = logging.getLogger("megafast.testing")

MAX_BODY = 64 * 1024 * 1024
_MAX_CACHED_ANSWER = 1024 * 1024
_ANSWER_CACHE_BYTES = 64 * 1024 * 1024


def _command_names(body: bytes) -> list[str]:
    """The ``a`` of each command in a batch, for the log ("?" for anything unreadable)."""
    try:
        batch = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return []
    if not isinstance(batch, list):
        return []
    return [c["a"] if isinstance(c, dict) and isinstance(c.get("a"), str) else "?" for c in batch]


class Service(
    AccountCommands,
    NodeCommands,
    ShareCommands,
    TransferCommands,
    UserAttrCommands,
    FileAttrCommands,
):
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
        self.transfer_base_url = base_url  # where /dl/ and /ul/ URLs point (see emulator)
        self.storage_quota = storage_quota
        self.epoch = 0
        self.grants: dict[str, DownloadGrant] = {}
        self.uploads: dict[str, Upload] = {}
        self._sweep_at = 1000
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
        self.changes = ChangeLog(store)
        self.init_user_attrs()
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
            "dv": self.cmd_dv,
            "upv": self.cmd_upv,
            "up2": self.cmd_up2,
            "uga": self.cmd_uga,
            "ufa": self.cmd_ufa,
            "pfa": self.cmd_pfa,
        }

    # --- the envelope ------------------------------------------------------------------

    def handle_cs(
        self, params: dict[str, str], body: bytes, hashcash: str | None, client: str
    ) -> tuple[int, dict[str, str], Body]:
        """One ``/cs`` request -> (HTTP status, extra headers, body: bytes, or the
        :class:`Pieces` of a long one)."""
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
            if mine is not None and cache_key is not None:
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
    ) -> tuple[int, dict[str, str], Body]:
        f = self.faults.faults
        if not f.api_error_after_processing and self._api_error_fires():
            status = self.faults.choice(f.api_error_statuses)
            self.stats.api(rid, names, "http_error")
            return status, {}, b""
        if self.faults.fire("api_eagain", f.api_eagain_rate, f.api_eagain_limit):
            self.stats.api(rid, names, "eagain")
            return 200, {}, b"-3"
        if f.max_batch is not None and len(names) > f.max_batch:
            # too big a batch: the whole request is refused, so the client learns to shrink
            self.stats.api(rid, names, "batch_refused")
            if f.max_batch_status == 200:
                return 200, {}, b"-3"
            return f.max_batch_status, {}, b""
        self.stats.api(rid, names, "answered")
        answer = self._batch(params, body, trusted=self.hashcash_easiness is not None)
        length, pieces = encode_answer(answer)
        if length > _MAX_CACHED_ANSWER:
            # a long listing goes out in pieces, as they are joined (never one big copy)
            out: Body = Pieces(length, pieces)
        else:
            out = b"".join(pieces)
        if cache_key is not None and isinstance(out, bytes):
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
        ctx = Context(hashcash_ok=trusted, v3=params.get("v") == "3")
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
        # a lone surrogate can only come from a \u escape (UTF-8 bytes cannot hold one)
        escaped = b"\\u" in body
        return [self._command(ctx, req, escaped) for req in batch]

    def _command(self, ctx: Context, req: Any, escaped: bool = True) -> Any:
        if not isinstance(req, dict) or not isinstance(req.get("a"), str):
            return EARGS
        try:  # JSON may carry lone surrogates (\ud800): not text MEGA would accept
            if escaped:
                json.dumps(req, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return EARGS
        handler = self._commands.get(req["a"])
        if handler is None:
            return EARGS
        ctx.i = req["i"] if isinstance(req.get("i"), str) else None
        try:
            with self.changes.command() as tag, self.store.transaction():
                result = handler(ctx, req)
            return v3_answer(req["a"], ctx.user, result, tag) if ctx.v3 else result
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

    # --- sessions and accounts ---------------------------------------------------------
