"""Transfer configuration, validated when it is created."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .._wire.retry import TRANSFER_RETRY, RetryPolicy
from ..errors import ValidationError

__all__ = ["MiB", "TransferConfig", "ProgressCallback", "MAX_CHUNK", "balanced_piece_size"]

MiB = 1 << 20
#: The largest MEGA MAC chunk (bytes); a range or piece always holds whole chunks.
MAX_CHUNK = MiB

#: ``progress(bytes_done, total)``; ``bytes_done`` may step back when a piece is retried.
ProgressCallback = Callable[[int, int], None]


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValidationError(f"{name} must be between {low} and {high}, not {value}")


def _check_seconds(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(f"{name} must be a positive finite number, not {value!r}")


@dataclass(frozen=True)
class TransferConfig:
    """How one download or upload runs.

    ``connections``: parallel HTTP connections per transfer (1-64).
    ``piece_size``: bytes per range (download) or POST (upload); ranges are made of whole MAC
    chunks of at most this size (1 MiB - 1 GiB, since a MAC chunk can be 1 MiB).
    ``max_retries``: failed attempts in a row per range or piece (5xx, 429, timeouts,
    drops) that delivered no data; an attempt that moved data does not count.
    ``timeout``: seconds without data before a request is abandoned and retried.
    ``speed_limit``: bytes per second for the whole transfer, or ``None``.
    ``resume``: keep and use resume sidecars.
    ``wait_on_quota``: on HTTP 509 wait the ``X-MEGA-Time-Left`` seconds instead of raising
    :class:`~megafast.errors.OverQuotaError`.
    ``retry``: the waits between tries (a :class:`~megafast._wire.retry.RetryPolicy`).
    """

    connections: int = 8
    piece_size: int = 16 * MiB
    max_retries: int = 8
    timeout: float = 60.0
    speed_limit: float | None = None
    resume: bool = True
    wait_on_quota: bool = False
    retry: RetryPolicy = TRANSFER_RETRY

    def __post_init__(self) -> None:
        if not isinstance(self.retry, RetryPolicy):
            raise ValidationError("retry must be a RetryPolicy")
        _check_int("connections", self.connections, 1, 64)
        _check_int("piece_size", self.piece_size, MAX_CHUNK, 1 << 30)
        _check_int("max_retries", self.max_retries, 0, 1000)
        _check_seconds("timeout", self.timeout)
        _check_seconds("speed_limit", self.speed_limit, allow_none=True)
        for name in ("resume", "wait_on_quota"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name} must be True or False")


#: Ranges per connection aimed at, so that the last ranges do not run on one connection alone.
RANGES_PER_CONNECTION = 4


def balanced_piece_size(size: int, config: TransferConfig) -> int:
    """The range size for a file of ``size`` bytes: at most ``config.piece_size``, at least
    one MAC chunk (1 MiB), and small enough that each connection gets several ranges."""
    target = -(-size // (RANGES_PER_CONNECTION * config.connections))
    return max(MAX_CHUNK, min(config.piece_size, target))
