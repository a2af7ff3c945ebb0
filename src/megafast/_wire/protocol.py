"""The API protocol without I/O: what the synchronous and the asyncio clients both decide.

:class:`~megafast._wire.api.ApiClient` (requests) and :class:`~megafast.aio.AsyncApiClient`
(aiohttp) send and read; this module holds what they decide from what they read, in one
place: the answer-size limit and its message (:func:`answer_limit`), the reading of a batch
answer with its v3 sequence tags (:func:`batch_results`), when a temporary failure is retried
and when it is given up (:class:`RetryClock`), and the hashcash failure message
(:func:`hashcash_error`). Times are seconds (``time.monotonic()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import (
    HashcashError,
    RetryExhaustedError,
    ServerUnreachableError,
    UnexpectedAnswerError,
    error_for_code,
)
from .retry import RetryPolicy
from .seqtag import OwnTags, unwrap

__all__ = [
    "RetryClock",
    "answer_limit",
    "batch_results",
    "describe",
    "doing",
    "hashcash_error",
    "is_eagain",
    "is_error_number",
]

# What a request was doing, for messages (the API's command names mean nothing to users).
_COMMAND_WORDS = {
    "us0": "logging in",
    "us": "logging in",
    "up": "creating an account",
    "ug": "reading the account",
    "uq": "reading the quota",
    "uk": "reading a user's public key",
    "ur": "changing contacts",
    "f": "listing the files",
    "g": "asking for a download URL",
    "u": "asking for an upload URL",
    "p": "creating files or folders",
    "m": "moving",
    "d": "deleting",
    "a": "renaming",
    "l": "creating a public link",
    "s2": "sharing a folder",
    "sml": "logging out",
}

#: Hashcash challenges answered for one request before it fails
MAX_HASHCASH_ROUNDS = 4


def is_error_number(value: Any) -> bool:
    """True for an int answer (an error number), never for a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def answer_limit(
    names: Sequence[Any], max_answer: int, max_listing: int, front: str = "Mega"
) -> tuple[int, Callable[..., UnexpectedAnswerError]]:
    """The longest answer read (bytes) for a batch of commands ``names``, and the error for
    a longer one (``too_long(size)``; ``front``: the class named in the advice)."""
    listing = "f" in names
    limit = max_listing if listing else max_answer
    option = "max_listing_bytes" if listing else "max_answer_bytes"

    def too_long(size: str = "that") -> UnexpectedAnswerError:
        return UnexpectedAnswerError(
            f"the answer to {doing(names)} is longer than {size}, the limit of "
            f"{limit} bytes; a larger one is read with {front}(options={{{option!r}: ...}})"
        )

    return limit, too_long


def batch_results(names: Sequence[Any], answer: Any, own_tags: OwnTags) -> list[Any]:
    """Every command's result from a batch answer, as without v3; the sequence tags it
    carries are added to ``own_tags``. An error number for the whole batch raises its error;
    an answer of the wrong shape raises UnexpectedAnswerError."""
    if is_error_number(answer):
        raise error_for_code(answer)
    if not isinstance(answer, list) or len(answer) != len(names):
        raise UnexpectedAnswerError(
            f"the server answered {len(names)} command(s) with {describe(answer)}"
        )
    results = []
    for name, result in zip(names, answer, strict=True):
        tag, result = unwrap(name, result)  # v3: the tag of the packets it caused
        if tag is not None:
            own_tags.add(tag)
        results.append(result)
    return results


def is_eagain(answer: Any, count: int) -> bool:
    """True when the answer to a batch of ``count`` commands is "try again" (-3)."""
    return bool(answer == -3 or (count == 1 and answer == [-3]))


def hashcash_error(exc: Exception, policy: RetryPolicy, min_easiness: int) -> HashcashError:
    """The error for a hashcash the solver failed with ``exc`` (names the bounds)."""
    if isinstance(exc, HashcashError):
        return HashcashError(
            f"{exc} (the bounds: what was left of retry_time={policy.time_budget:g} s, "
            f"and the option min_hashcash_easiness={min_easiness})"
        )
    return HashcashError(f"cannot parse the hashcash challenge: {exc}")


class RetryClock:
    """The retry decisions of one request: :meth:`next_wait` gives the seconds to wait
    before the same id and body are sent again, or raises ServerUnreachableError /
    RetryExhaustedError when the policy's budgets are spent. ``origin``: the server's
    ``scheme://host`` (for messages); ``names``: the batch's command names."""

    def __init__(self, policy: RetryPolicy, origin: str, names: Sequence[Any]) -> None:
        self.policy = policy
        self.origin = origin
        self.names = names
        self.started = time.monotonic()
        self.deadline = self.started + policy.time_budget
        self.tries = 0  # retries so far
        self.hashcash_rounds = 0
        self._unreachable_since: float | None = None

    def hashcash(self) -> None:
        """Count a hashcash challenge; too many raise HashcashError."""
        self.hashcash_rounds += 1
        if self.hashcash_rounds > MAX_HASHCASH_ROUNDS:
            raise HashcashError("the server kept asking for hashcash") from None

    def next_wait(self, reason: str, unreachable: bool = False) -> float:
        """Seconds to wait after a temporary failure ``reason`` (``unreachable``: no
        connection could be made at all, which gets only the policy's connect budget)."""
        wait = self.policy.backoff(self.tries + 1)
        now = time.monotonic()
        if unreachable:  # a server that is down answers nothing: a few seconds, not minutes
            self._unreachable_since = self._unreachable_since or now
            if now + wait > min(
                self.deadline, self._unreachable_since + self.policy.connect_budget
            ):
                raise ServerUnreachableError(
                    self.origin,
                    f"cannot connect to {self.origin}: {reason} ({count_tries(self.tries + 1)} in "
                    f"{now - self.started:.1f} s, while {doing(self.names)})",
                ) from None
        else:
            self._unreachable_since = None
        if now + wait > self.deadline:
            code: int | str = -3 if reason.startswith("EAGAIN") else reason
            raise RetryExhaustedError(
                code,
                f"{doing(self.names, capital=True)}: gave up after {count_tries(self.tries + 1)} in "
                f"{now - self.started:.0f} s; the last answer was {reason}",
            ) from None
        self.tries += 1
        return wait


def doing(names: Sequence[Any], capital: bool = False) -> str:
    """What a batch was doing, in words ("listing the files")."""
    words = list(dict.fromkeys(_COMMAND_WORDS.get(n, "sending a request") for n in names))
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return text[0].upper() + text[1:] if capital else text


def count_tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


def describe(answer: Any) -> str:
    if isinstance(answer, list):
        return f"a list of {len(answer)}"
    return f"a {type(answer).__name__}"
