"""The emulator's change log and its ``/sc`` channel (PROTOCOL Part 2, §2-§3).

Every change the emulator makes (through ``/cs`` from any session, or through its own
seeding helpers) appends action packets in MEGA's format to a log in SQLite, one row per
recipient account, numbered by the store's sequence (the ``sn``). A packet added inside a
command's transaction disappears with it when the command fails.

``/sc?sn=<sn>&sid=<sid>`` (or ``&n=<public folder handle>``) answers ``{"a": [packets],
"sn": <newest>}`` when there is something newer than ``sn``, else ``{"w": <wait URL>, "sn":
<sn>}``; the wait URL long-polls until a change for that account arrives or ``wait_timeout``
seconds pass (at most 40, MEGA's client timeout), then answers an empty body, after which the
client polls ``/sc`` again (the older protocol megajs and megafast speak).

``/wsc?sn=...`` (what MEGA's SDK polls today) answers at once: the pending packets, else
``{"w": "<api>/wsc/lp", "sn"}``; the SDK keeps that ``w`` and polls ``<w>?sn=...&sid=...``
from then on, which long-polls: the packets as soon as there are some, or ``0`` after
``wait_timeout`` (a keep-alive: the SDK polls again; an empty body would stop its channel).
``/sc/wsc`` (its catch-up) answers at once, ``{"a": [], "sn"}`` when nothing is pending;
``/sc?c=50`` (its user alerts) answers ``{"c": [], "u": []}``. An ``sn`` older than the trimmed
log gets ``-6`` (ETOOMANY: reload everything).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ._crypto import b64decode, b64encode
from ._store import Store

EARGS, ETOOMANY, ESID = -2, -6, -15

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sc_log(
    id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, user TEXT NOT NULL,
    packet TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sc_log_user ON sc_log(user, seq);
CREATE INDEX IF NOT EXISTS sc_log_seq ON sc_log(seq);
"""

MAX_WAIT = 40.0
_MAX_WAITS = 10_000


def encode_sn(seq: int) -> str:
    """An ``sn`` as MEGA sends it: 8 bytes, big-endian, base64url."""
    return b64encode(seq.to_bytes(8, "big"))


def decode_sn(text: str) -> int | None:
    """The number inside an ``sn``, or None when it is not 8 bytes of base64url."""
    try:
        raw = b64decode(text)
    except ValueError:
        return None
    return int.from_bytes(raw, "big") if len(raw) == 8 else None


@dataclass
class CommandTag:
    """The v3 sequence tag (``st``) of one command: set by its first change, carried by every
    packet the command causes; ``users``: who got those packets."""

    st: str | None = None
    users: set[str] = field(default_factory=set)


def with_st(packet: dict[str, Any], st: str) -> dict[str, Any]:
    """``packet`` with ``st`` after ``a`` and ``i``, where MEGA's SDK looks for it."""
    out: dict[str, Any] = {k: packet[k] for k in ("a", "i") if k in packet}
    out["st"] = st
    out.update((k, v) for k, v in packet.items() if k not in out)
    return out


class ChangeLog:
    """Action packets per account, with the ``/sc`` answers and the wait-URL long poll.

    Every packet carries a sequence tag ``st``: the decimal number of the change that made it
    (so tags grow by length, then lexicographically, as the SDK compares them). The packets of
    one command (see :meth:`command`) share the tag of its first change, which the command's
    v3 answer carries too.
    """

    def __init__(self, store: Store, size: int = 100_000, wait_timeout: float = 30.0) -> None:
        self.store = store
        self.size = size
        self.wait_timeout = wait_timeout
        self._cond = threading.Condition()
        self._generation = 0
        self._closed = False
        self._waits: dict[str, tuple[str, int, float]] = {}  # token -> (user, sn, expires)
        self._local = threading.local()  # .tag: the CommandTag of the command being run
        with store.lock:
            store.db.executescript(_SCHEMA)

    def configure(self, size: int | None = None, wait_timeout: float | None = None) -> None:
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ValueError("the change log size must be a positive integer")
            self.size = size
            with self.store.transaction():
                self._trim()
        if wait_timeout is not None:
            if not 0 < wait_timeout <= MAX_WAIT:
                raise ValueError(f"wait_timeout must be > 0 and <= {MAX_WAIT:g} seconds")
            self.wait_timeout = wait_timeout

    def close(self) -> None:
        """Wake every long poll (the server is stopping)."""
        with self._cond:
            self._closed = True
            self._generation += 1
            self._cond.notify_all()

    # --- writing ---------------------------------------------------------------------------

    def current(self) -> int:
        row = self.store.one("SELECT value FROM meta WHERE key='seq'")
        return int(row[0]) if row else 0

    @contextmanager
    def command(self) -> Iterator[CommandTag]:
        """Run one command in this block: its changes share one sequence tag."""
        tag = CommandTag()
        self._local.tag = tag
        try:
            yield tag
        finally:
            self._local.tag = None

    def add(self, packets: dict[str, dict[str, Any]]) -> None:
        """Append one change: ``{recipient user handle: packet}`` under one new ``sn``."""
        if not packets:
            return
        store = self.store
        tag: CommandTag | None = getattr(self._local, "tag", None)
        with store.transaction():
            seq = store.next_seq()
            st = str(seq)
            if tag is not None:
                if tag.st is None:
                    tag.st = st
                st = tag.st
                tag.users.update(packets)
            for user, packet in packets.items():
                store.execute(
                    "INSERT INTO sc_log(seq, user, packet) VALUES(?,?,?)",
                    seq,
                    user,
                    json.dumps(with_st(packet, st), separators=(",", ":")),
                )
            self._trim()
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _trim(self) -> None:
        """Keep the newest ``size`` rows. Rows only ever go from the old end, so ids are
        contiguous and the count is their span (two index lookups, no scan)."""
        last = self.store.one("SELECT MAX(id) FROM sc_log")
        first = self.store.one("SELECT MIN(id) FROM sc_log")
        if last is None or first is None or last[0] is None:
            return
        if last[0] - first[0] + 1 <= self.size:
            return
        row = self.store.one(
            "SELECT seq FROM sc_log WHERE id<=? ORDER BY id DESC LIMIT 1", last[0] - self.size
        )
        if row is None:
            return
        # everything at or below that sequence number goes (a change's packets go together)
        self.store.execute("DELETE FROM sc_log WHERE seq <= ?", row["seq"])
        self.store.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES('sc_floor', ?)", str(row["seq"])
        )

    def floor(self) -> int:
        row = self.store.one("SELECT value FROM meta WHERE key='sc_floor'")
        return int(row[0]) if row else 0

    # --- reading ---------------------------------------------------------------------------

    def user_of(self, params: dict[str, str]) -> str | None:
        """Whose packets a poll reads: the session's user, or ``n:<folder>`` for a public
        folder's visitors (``n=<public handle>``, as folder-link sessions poll)."""
        sid, ph = params.get("sid"), params.get("n")
        if sid:
            row = self.store.one("SELECT user FROM sessions WHERE sid=?", sid)
            return row["user"] if row else None
        if ph:
            row = self.store.one(
                "SELECT links.h FROM links JOIN shares ON shares.h = links.h"
                " WHERE links.ph=? AND shares.u='EXP'",
                ph,
            )
            return "n:" + row["h"] if row else None
        return None

    def _read(self, params: dict[str, str]) -> tuple[str, int, dict[str, Any] | None] | int:
        """(user, sn, the packets newer than sn as an answer or None), or an error number."""
        user = self.user_of(params)
        if user is None:
            return ESID
        sn = decode_sn(params.get("sn", ""))
        if sn is None:
            return EARGS
        with self.store.lock:
            newest = self.current()
            if sn < self.floor() or sn > newest:
                return ETOOMANY
            rows = self.store.all(
                "SELECT seq, packet FROM sc_log WHERE user=? AND seq>? ORDER BY seq, id", user, sn
            )
        if not rows:
            return user, sn, None
        return user, sn, {"a": [json.loads(r["packet"]) for r in rows], "sn": encode_sn(newest)}

    def long_poll(self, params: dict[str, str]) -> Any:
        """The answer to ``/wsc`` (MEGA's SDK): packets newer than ``sn`` as soon as there are
        some, an error number, or None ("answer ``0``": nothing within ``wait_timeout``, poll
        again)."""
        deadline = time.monotonic() + self.wait_timeout
        while True:
            with self._cond:
                generation = self._generation
                if self._closed:
                    return None
            found = self._read(params)
            if isinstance(found, int) or found[2] is not None:
                return found if isinstance(found, int) else found[2]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with self._cond:
                if self._generation == generation:
                    self._cond.wait(left)

    def catch_up(self, params: dict[str, str], wait_url: str | None = None) -> Any:
        """The answer to ``/wsc`` and ``/sc/wsc`` (MEGA's SDK), at once: the pending packets,
        else ``{"w": wait_url, "sn"}`` (or ``{"a": [], "sn"}`` without a wait URL)."""
        found = self._read(params)
        if isinstance(found, int):
            return found
        if found[2] is not None:
            return found[2]
        if wait_url is None:
            return {"a": [], "sn": encode_sn(found[1])}
        return {"w": wait_url, "sn": encode_sn(found[1])}

    def poll(self, params: dict[str, str], wait_base: str) -> Any:
        """The answer to ``/sc``: packets newer than ``sn``, a wait URL, or an error number."""
        found = self._read(params)
        if isinstance(found, int):
            return found
        user, sn, answer = found
        if answer is not None:
            return answer
        token = secrets.token_urlsafe(16)
        with self._cond:
            now = time.monotonic()
            if len(self._waits) >= _MAX_WAITS:  # unused wait URLs: forget the oldest
                self._waits = {k: v for k, v in self._waits.items() if v[2] > now}
                while len(self._waits) >= _MAX_WAITS:
                    self._waits.pop(next(iter(self._waits)))
            self._waits[token] = (user, sn, now + 3600)
        return {"w": f"{wait_base}/wsp/{token}", "sn": encode_sn(sn)}

    def _pending(self, user: str, sn: int) -> bool:
        return (
            self.store.one("SELECT 1 FROM sc_log WHERE user=? AND seq>? LIMIT 1", user, sn)
            is not None
        )

    def wait(self, token: str) -> bool:
        """Block until the wait URL's account has news or the timeout passes; False for an
        unknown or already used token."""
        with self._cond:
            found = self._waits.pop(token, None)  # one use, as MEGA's wait URLs
        if found is None:
            return False
        user, sn, _expires = found
        deadline = time.monotonic() + self.wait_timeout
        while True:
            with self._cond:
                generation = self._generation
                if self._closed:
                    return True
            if self._pending(user, sn):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            with self._cond:
                if self._generation == generation:
                    self._cond.wait(left)
