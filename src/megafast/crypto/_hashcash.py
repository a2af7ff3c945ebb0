"""MEGA's HTTP 402 hashcash challenge: parse, solve (multi-threaded, deterministic), check."""

from __future__ import annotations

import concurrent.futures
import os
import struct
import threading
import time

from ..errors import HashcashError, ValidationError
from . import _backend
from ._megapy import base64_url_decode, base64_url_encode


def hashcash_threshold(easiness: int) -> int:
    """The largest accepted hash prefix for an easiness value (0..255)."""
    if not 0 <= easiness <= 255:
        raise ValueError(f"easiness must be 0..255, got {easiness}")
    return (((easiness & 63) << 1) + 1) << ((easiness >> 6) * 7 + 3)


def parse_hashcash(header_value: str) -> tuple[int, int, bytes]:
    """``1:<easiness>:<timestamp>:<token>`` -> (easiness, timestamp, 48-byte token)."""
    if not isinstance(header_value, str):
        raise ValidationError("the X-Hashcash challenge must be text")
    parts = header_value.strip().split(":")
    if len(parts) != 4 or parts[0] != "1":
        raise ValidationError("unsupported X-Hashcash challenge (expected 1:easiness:time:token)")
    try:
        easiness, stamp = int(parts[1]), int(parts[2])
        token = base64_url_decode(parts[3])
    except ValueError:
        raise ValidationError("malformed X-Hashcash challenge") from None
    if not 0 <= easiness <= 255 or len(token) != 48:
        raise ValidationError("malformed X-Hashcash challenge (easiness or token length)")
    return easiness, stamp, token


def expected_tries(easiness: int) -> int:
    """How many tries (of 12 MiB of SHA-256 each) a challenge of ``easiness`` takes on average."""
    return (1 << 32) // (hashcash_threshold(easiness) + 1)


def solve_hashcash(
    header_value: str,
    threads: int | None = None,
    timeout: float = 300.0,
    min_easiness: int = 0,
    cancel: threading.Event | None = None,
) -> str:
    """Answer an X-Hashcash challenge: returns the value of the answer header.

    Searches n = 0, 1, 2, ... on ``threads`` threads (default: all cores) in ordered batches,
    so the answer is the smallest valid n, the same for any thread count. A challenge easier
    than ``min_easiness`` (too much work to finish) raises :class:`HashcashError` at once,
    and so does one not solved within ``timeout`` seconds; the message says why.
    ``cancel``: an event that stops the search within one batch of tries (HashcashError).
    """
    easiness, _, token = parse_hashcash(header_value)
    if easiness < min_easiness:
        raise HashcashError(
            f"the server asks for hashcash of easiness {easiness}: about "
            f"{expected_tries(easiness):,} tries of 12 MiB each, more than can be done in time; "
            f"megafast solves easiness {min_easiness} or more"
        )
    if not timeout > 0:
        raise HashcashError("no time left to solve the server's hashcash")
    threshold = hashcash_threshold(easiness)
    workers = max(1, threads or os.cpu_count() or 1)
    batch = getattr(_backend.kernels, "HASHCASH_BATCH", 4)  # tries per call (SIMD width)
    deadline = time.monotonic() + timeout
    search = _backend.kernels.hashcash_search
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="hashcash") as pool:
        pending: list[concurrent.futures.Future[int]] = []
        nxt = 0
        try:
            while True:
                while len(pending) < 2 * workers and nxt < 1 << 32:
                    pending.append(
                        pool.submit(search, token, threshold, nxt, min(batch, (1 << 32) - nxt))
                    )
                    nxt += batch
                if not pending:
                    raise HashcashError("no hashcash answer exists in the 32-bit space")
                remaining = deadline - time.monotonic()
                if cancel is not None and cancel.is_set():
                    raise HashcashError("the hashcash search was cancelled")
                if remaining <= 0:
                    raise HashcashError(_late(timeout, easiness))
                try:
                    n = pending[0].result(timeout=remaining)
                except concurrent.futures.TimeoutError:
                    raise HashcashError(_late(timeout, easiness)) from None
                pending.pop(0)
                if n >= 0:
                    return f"1:{base64_url_encode(token)}:{base64_url_encode(struct.pack('<I', n))}"
        finally:
            for f in pending:
                f.cancel()


def _late(timeout: float, easiness: int) -> str:
    return (
        f"hashcash not solved within {timeout:.3g} s "
        f"(easiness {easiness}: about {expected_tries(easiness):,} tries expected)"
    )


def check_hashcash(header_value: str, answer: str) -> bool:
    """True when ``answer`` (``1:<token>:<prefix>``) solves the challenge ``header_value``."""
    try:
        easiness, _, token = parse_hashcash(header_value)
        parts = answer.strip().split(":")
        if len(parts) != 3 or parts[0] != "1" or base64_url_decode(parts[1]) != token:
            return False
        prefix = base64_url_decode(parts[2])
    except (ValueError, AttributeError):
        return False
    if len(prefix) != 4:
        return False
    n = int.from_bytes(prefix, "little")
    return _backend.kernels.hashcash_search(token, hashcash_threshold(easiness), n, 1) == n
