"""Fault and throttle knobs of the emulator (for reliability tests)."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from dataclasses import dataclass, field

__all__ = ["CUT_PHASES", "Faults", "FaultInjector"]

#: the moments of a request ``Faults.cut_phase`` can cut at (None: off)
CUT_PHASES = (None, "connect", "headers", "body")


@dataclass
class Faults:
    """What to break, and how often. Rates are fractions in [0, 1]; limits cap how many times
    a fault fires (None: no cap). All of them can change while the emulator runs."""

    #: answer this fraction of ``/cs`` requests with ``-3`` (EAGAIN) for the whole batch
    api_eagain_rate: float = 0.0
    api_eagain_limit: int | None = None
    #: answer this fraction of ``/cs`` requests with an HTTP error from ``api_error_statuses``
    #: (empty body), before the batch runs; with ``api_error_after_processing`` the batch runs
    #: first and only its answer is lost (a retry with the same id gets the kept answer)
    api_error_rate: float = 0.0
    api_error_statuses: tuple[int, ...] = (500, 503, 429)
    api_error_limit: int | None = None
    api_error_after_processing: bool = False
    #: answer this fraction of transfer requests with an HTTP error from ``transfer_error_statuses``
    transfer_error_rate: float = 0.0
    transfer_error_statuses: tuple[int, ...] = (500, 503, 429)
    transfer_error_limit: int | None = None
    #: drop the connection after this many body bytes (on ``drop_rate`` of transfer requests)
    drop_after_bytes: int | None = None
    drop_rate: float = 1.0
    drop_limit: int | None = None
    #: drop every connection that is moving a transfer body every ``drop_every`` seconds
    #: (None: never), each interval jittered by up to ``drop_every_jitter`` of itself: what
    #: ``ss -K`` on a timer does to a real server
    drop_every: float | None = None
    drop_every_jitter: float = 0.5
    #: cut every open connection at once (API, ``/sc`` and transfers, idle or busy, even one
    #: accepted a moment before) every ``cut_every`` seconds on one global clock, ticking at
    #: multiples of ``cut_every`` from when it was set: a Wi-Fi hand-over, a NAT or proxy
    #: restart, ``ss -K`` on a timer (None: never)
    cut_every: float | None = None
    #: cut transfer requests at one moment of their life: ``"connect"`` (right after a
    #: connection is accepted, before its request is read: any connection), ``"headers"``
    #: (half of the answer's headers sent) or ``"body"`` (the headers sent, no body byte);
    #: on ``cut_phase_rate`` of them, at most ``cut_phase_limit`` times (None: off)
    cut_phase: str | None = None
    cut_phase_rate: float = 1.0
    cut_phase_limit: int | None = None
    #: flip one byte of the body in this fraction of downloads
    corrupt_rate: float = 0.0
    corrupt_limit: int | None = None
    #: which transfers the four faults above touch: "both", "download" or "upload"
    transfer_faults: str = "both"
    #: transfer quota exceeded: downloads get HTTP 509 with ``X-MEGA-Time-Left``
    over_quota: bool = False
    over_quota_time_left: int = 30
    #: ... and ``g`` answers ``{"e": -17, "tl": seconds}`` instead of a URL
    over_quota_in_g: bool = False
    #: per-connection bandwidth cap for transfer bodies (bytes/s), None for no cap
    bandwidth: float | None = None
    #: one cap shared by every connection's transfer bodies (bytes/s) in each direction: the
    #: uploads share one such link and the downloads another (a home line), None for none
    link_bandwidth: float | None = None
    #: seconds added before every answer (API and transfers)
    latency: float = 0.0
    #: lifetime of download and upload URLs (seconds)
    url_ttl: float = 24 * 3600.0
    #: batches of more commands than this are refused whole: ``-3`` when
    #: ``max_batch_status`` is 200, else that HTTP status (429 or 503) with an empty body
    max_batch: int | None = None
    max_batch_status: int = 200
    #: connections one client address may hold open at once; requests on the ones beyond get
    #: HTTP 429 and the connection is closed (None: no limit)
    max_connections_per_ip: int | None = None
    #: seed of the fault dice (None: random)
    seed: int | None = None

    def validate(self) -> None:
        for name in (
            "api_eagain_rate",
            "api_error_rate",
            "transfer_error_rate",
            "drop_rate",
            "corrupt_rate",
            "cut_phase_rate",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1")
        for name in (
            "api_eagain_limit",
            "api_error_limit",
            "transfer_error_limit",
            "drop_limit",
            "corrupt_limit",
            "cut_phase_limit",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be None or a non-negative integer")
        if self.drop_after_bytes is not None and (
            not isinstance(self.drop_after_bytes, int) or self.drop_after_bytes < 0
        ):
            raise ValueError("drop_after_bytes must be None or a non-negative integer")
        for name in ("transfer_error_statuses", "api_error_statuses"):
            statuses = tuple(getattr(self, name))
            if not statuses or not all(
                isinstance(s, int) and not isinstance(s, bool) and 400 <= s <= 599 for s in statuses
            ):
                raise ValueError(f"{name} must be HTTP error statuses (400-599)")
            setattr(self, name, statuses)
        if self.drop_every is not None and not (
            isinstance(self.drop_every, (int, float)) and 0 < self.drop_every < 1e9
        ):
            raise ValueError("drop_every must be None or a positive number of seconds")
        if not (
            isinstance(self.drop_every_jitter, (int, float)) and 0 <= self.drop_every_jitter < 1
        ):
            raise ValueError("drop_every_jitter must be a fraction in [0, 1)")
        if self.cut_every is not None and not (
            isinstance(self.cut_every, (int, float)) and 0.01 <= self.cut_every < 1e9
        ):
            raise ValueError("cut_every must be None or a number of seconds >= 0.01")
        if self.cut_phase not in CUT_PHASES:
            raise ValueError("cut_phase must be None, 'connect', 'headers' or 'body'")
        if self.transfer_faults not in ("both", "download", "upload"):
            raise ValueError("transfer_faults must be 'both', 'download' or 'upload'")
        for name in ("bandwidth", "link_bandwidth"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be None or a positive number of bytes/s")
        if not self.latency >= 0:
            raise ValueError("latency must be >= 0 seconds")
        if not self.url_ttl > 0:
            raise ValueError("url_ttl must be > 0 seconds")
        for name in ("max_batch", "max_connections_per_ip"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or a positive integer")
        if self.max_batch_status not in (200, 429, 503):
            raise ValueError("max_batch_status must be 200 (answer -3), 429 or 503")
        if not isinstance(self.over_quota_time_left, int) or self.over_quota_time_left < 0:
            raise ValueError("over_quota_time_left must be a non-negative integer")


@dataclass
class FaultInjector:
    """Rolls the dice for each request and counts what fired (``counts``)."""

    faults: Faults = field(default_factory=Faults)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.faults.validate()
        self._rng = random.Random(self.faults.seed)
        #: monotonic seconds when ``cut_every`` was set: the clock's ticks are counted from it
        self.cut_epoch = time.monotonic()
        #: direction -> monotonic seconds when the shared link has moved what it was given
        self._link_free: dict[str, float] = {}

    def update(self, **changes: object) -> Faults:
        with self._lock:
            names = {f.name for f in dataclasses.fields(Faults)}
            unknown = set(changes) - names
            if unknown:
                raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
            new = dataclasses.replace(self.faults, **changes)  # type: ignore[arg-type]
            new.validate()
            if "seed" in changes:
                self._rng = random.Random(new.seed)
            if "cut_every" in changes:
                self.cut_epoch = time.monotonic()
            self.faults = new
            return new

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.counts.clear()
            self._rng = random.Random()

    def fire(self, kind: str, rate: float, limit: int | None) -> bool:
        """True when the fault ``kind`` fires now (and count it)."""
        if rate <= 0:
            return False
        with self._lock:
            fired = self.counts.get(kind, 0)
            if limit is not None and fired >= limit:
                return False
            if rate < 1 and self._rng.random() >= rate:
                return False
            self.counts[kind] = fired + 1
            return True

    def count(self, kind: str, n: int = 1) -> None:
        """Count ``n`` firings of ``kind`` (faults that fire without dice)."""
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def choice(self, options: tuple[int, ...]) -> int:
        with self._lock:
            return self._rng.choice(options)

    def next_timer_drop(self, now: float) -> float | None:
        """When the next timer drop is due (monotonic seconds), or None when it is off."""
        f = self.faults
        if f.drop_every is None:
            return None
        with self._lock:
            spread = 1.0 + f.drop_every_jitter * (2 * self._rng.random() - 1)
        return now + f.drop_every * spread

    def next_cut(self, now: float) -> float | None:
        """The next tick of the ``cut_every`` clock after ``now`` (monotonic seconds), or
        None when it is off."""
        every = self.faults.cut_every
        if every is None:
            return None
        ticks = math.floor((now - self.cut_epoch) / every) + 1
        return self.cut_epoch + ticks * every

    def cut_phase(self, phase: str) -> bool:
        """True when the ``cut_phase`` fault cuts the request now, at ``phase`` (counted as
        ``cut_<phase>``)."""
        f = self.faults
        if f.cut_phase != phase:
            return False
        return self.fire(f"cut_{phase}", f.cut_phase_rate, f.cut_phase_limit)

    def randrange(self, n: int) -> int:
        with self._lock:
            return self._rng.randrange(n)

    def link_wait(self, direction: str, n: int) -> float:
        """Seconds ``n`` more body bytes in ``direction`` ("upload" or "download") take on
        the link every connection shares (``link_bandwidth``; 0 with none): it moves the
        bytes it is given one after another at its rate, so the caller waits for its own
        and for those queued before them."""
        rate = self.faults.link_bandwidth
        if rate is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            free = max(self._link_free.get(direction, now), now) + n / rate
            self._link_free[direction] = free
        return free - now

    def applies(self, direction: str) -> bool:
        mode = self.faults.transfer_faults
        return mode == "both" or mode == direction
