"""Reading one ``/sc`` answer, without I/O: what the sync and the asyncio channels both do.

``POST <api>/sc?sn=&sid=`` answers ``{"a": [packets], "sn": ..., "ir": 1?}`` (``ir``: more
follow), ``{"w": <wait URL>, "sn": ...}`` (nothing new: long-poll that URL), or an error
number. :func:`read_sc_answer` turns one answer into the channel's next step
(:class:`ScStep`); :class:`~megafast._tree.watch.ScChannel` (requests) and
:class:`~megafast.aio.AsyncScChannel` (aiohttp) only send, wait and sleep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import RequestError, SessionError, ValidationError, error_for_code

__all__ = ["ScStep", "SnTooOld", "read_sc_answer"]


class SnTooOld(RequestError):
    """The server no longer has the changes since our ``sn`` (``-6``): reload everything."""


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
