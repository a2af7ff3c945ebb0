"""Reading one ``/sc`` answer, without I/O: what the sync and the asyncio channels both do.

``POST <api>/sc?sn=&sid=`` answers ``{"a": [packets], "sn": ..., "ir": 1?}`` (``ir``: more
follow), ``{"w": <wait URL>, "sn": ...}`` (nothing new: long-poll that URL), or an error
number. :func:`read_sc_answer` turns one answer into the channel's next step
(:class:`ScStep`); :class:`ScFailures` counts the failed polls in a row, gives the wait
before the next and raises :class:`ScDisconnected` past ``max_failures`` (the bounded
catch-up). :class:`~megafast._tree.watch.ScChannel` (requests) and
:class:`~megafast.aio.AsyncScChannel` (aiohttp) only send, wait and sleep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .._wire.retry import RetryPolicy
from ..errors import (
    RequestError,
    RetryExhaustedError,
    SessionError,
    ValidationError,
    error_for_code,
)

__all__ = ["ScDisconnected", "ScFailures", "ScStep", "SnTooOld", "read_sc_answer"]

log = logging.getLogger("megafast.watch")


class SnTooOld(RequestError):
    """The server no longer has the changes since our ``sn`` (``-6``): reload everything."""


class ScDisconnected(RetryExhaustedError):
    """``/sc`` failed ``max_failures`` polls in a row (network errors, HTTP errors, ``-3``);
    ``retry_in``: the seconds a watcher waits before it tries again."""

    def __init__(self, reason: str, failures: int, retry_in: float) -> None:
        super().__init__("network", f"the sc channel failed {failures} times in a row ({reason})")
        self.reason = reason
        self.retry_in = retry_in


class ScFailures:
    """The failed polls of one channel in a row: :meth:`failed` counts one and gives the
    seconds to wait before the next (``retry.backoff(n)``), or raises :class:`ScDisconnected`
    (``retry_in``: ``retry.cap``) when it is the ``max_failures + 1``-th, and starts counting
    again; :meth:`succeeded` resets the count."""

    def __init__(self, retry: RetryPolicy, max_failures: int) -> None:
        self.retry = retry
        self.max_failures = max_failures
        self.count = 0

    def failed(self, reason: str) -> float:
        self.count += 1
        if self.count > self.max_failures:
            failures, self.count = self.count, 0
            raise ScDisconnected(reason, failures, self.retry.cap)
        wait = self.retry.backoff(self.count)
        log.info("sc poll failed (%s), retrying in %.1f s", reason, wait)
        return wait

    def succeeded(self) -> None:
        self.count = 0


@dataclass
class ScStep:
    """What a channel does after one answer: ``retry`` (wait and poll again), return
    ``packets`` (with ``caught_up``), or long-poll ``wait_url``; ``sn``: the new sn, if any."""

    retry: bool = False
    packets: list[dict[str, Any]] | None = field(default=None)
    caught_up: bool = True
    wait_url: str | None = None
    sn: str | None = None


def read_sc_answer(answer: Any, wait: bool) -> ScStep:
    """The next step for a parsed ``/sc`` answer (``None``: no answer was read). ``-6``
    raises SnTooOld, ``-15`` SessionError, another error number its error; an answer of
    another shape, or a wait URL that is not HTTP, raises ValidationError. Without ``wait``
    a wait URL means "caught up" (no packets)."""
    if answer is None or answer in (-3, -4):
        return ScStep(retry=True)
    if isinstance(answer, int) and not isinstance(answer, bool):
        if answer == -6:
            raise SnTooOld("ETOOMANY", "the change log no longer reaches our sn")
        if answer == -15:
            raise SessionError("ESID", "the session ended")
        raise error_for_code(answer, "the sc channel failed")
    if not isinstance(answer, dict):
        raise ValidationError("unexpected answer on the sc channel")
    sn = answer.get("sn")
    step = ScStep(sn=sn if isinstance(sn, str) and sn else None)
    packets = answer.get("a")
    if isinstance(packets, list) and (packets or answer.get("ir")):
        step.packets = [p for p in packets if isinstance(p, dict)]
        step.caught_up = not answer.get("ir")
        return step
    wait_url = answer.get("w")
    if not isinstance(wait_url, str):
        if isinstance(packets, list):
            step.packets = []
            return step
        raise ValidationError("the sc answer has neither packets nor a wait URL")
    if not wait:
        step.packets = []
        return step
    if not wait_url.startswith(("http://", "https://")):
        raise ValidationError("the sc wait URL is not an HTTP URL")
    step.wait_url = wait_url
    return step
