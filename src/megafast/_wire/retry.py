"""The back-off and retry policy shared by the API client and the transfer engine.

One frozen :class:`RetryPolicy` says how long to wait between tries (capped exponential
back-off with jitter), what HTTP 429 and 503 cost, how long a server's ``Retry-After`` may
make us wait, and how much time an API request may spend retrying. Tests pass a fast policy
in (``RetryPolicy.fast()``) instead of patching module globals.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from ..errors import ValidationError

__all__ = ["RetryPolicy", "DEFAULT_RETRY", "TRANSFER_RETRY"]


def _positive(name: str, value: object, *, zero_ok: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ValidationError(f"{name} must be a positive finite number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """How temporary failures are retried (all figures in seconds).

    ``base``/``cap``: the first and the largest back-off wait; the ``n``-th retry waits
    ``min(cap, base * 2**(n-1))`` times a jitter factor drawn from ``[1 - jitter, 1]``.
    ``delay_429``/``delay_503``: the wait after HTTP 429 / 503 when the server names none
    (MEGA's SDK waits 0.5 s and 5 s); ``max_server_delay``: the longest ``Retry-After`` we
    honour. ``time_budget``: how long one API request may keep retrying;
    ``connect_budget``: how long it keeps trying a server that refuses connections or whose
    name does not resolve (at most ``time_budget``). ``quota_wait``: the wait after HTTP 509
    without ``X-MEGA-Time-Left`` when the caller asked to wait on quota.
    """

    base: float = 0.25
    cap: float = 16.0
    jitter: float = 0.5
    delay_429: float = 0.5
    delay_503: float = 5.0
    max_server_delay: float = 60.0
    time_budget: float = 120.0
    connect_budget: float = 3.0
    quota_wait: float = 60.0

    def __post_init__(self) -> None:
        for name in ("base", "cap", "max_server_delay", "quota_wait"):
            _positive(name, getattr(self, name))
        for name in ("delay_429", "delay_503", "time_budget", "connect_budget"):
            _positive(name, getattr(self, name), zero_ok=True)
        jitter = _positive("jitter", self.jitter, zero_ok=True)
        if jitter > 1:
            raise ValidationError(f"jitter must be a fraction between 0 and 1, not {jitter!r}")
        if self.cap < self.base:
            raise ValidationError("cap must be at least base")

    def backoff(self, attempt: int) -> float:
        """The wait before the ``attempt``-th retry (1, 2, ...)."""
        exponent = min(max(0, attempt - 1), 64)
        wait = min(self.cap, self.base * (2.0**exponent))
        return wait * (1.0 - self.jitter * random.random())  # jitter only: not key material

    def after_429(self, retry_after: float | None) -> float:
        """The wait after HTTP 429 (``Retry-After`` seconds when the server sent one)."""
        asked = retry_after if retry_after is not None else 0.0
        return max(self.delay_429, min(asked, self.cap, self.max_server_delay))

    def after_503(self, retry_after: float | None) -> float:
        """The wait after HTTP 503 (``Retry-After`` seconds when the server sent one)."""
        if retry_after:
            return min(retry_after, self.max_server_delay)
        return self.delay_503

    def with_changes(self, **changes: float) -> RetryPolicy:
        """A copy with some figures changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def fast(cls) -> RetryPolicy:
        """Waits of a few milliseconds, for tests against a local server."""
        return cls(
            base=0.005,
            cap=0.02,
            delay_429=0.005,
            delay_503=0.005,
            max_server_delay=0.05,
            quota_wait=0.05,
        )


#: The API client's default policy.
DEFAULT_RETRY = RetryPolicy()
#: The transfer engine's default: shorter waits, since a range retries on its own budget.
TRANSFER_RETRY = RetryPolicy(base=0.2, cap=8.0)
