"""MEGA's v3 sequence tags on the client side (``/cs?...&v=3``, as MEGA's SDK asks).

With ``v=3`` a command that changed the account answers with the tag (``st``) its action
packets will carry on ``/sc``: ``"<st>"`` instead of ``0`` for plain commands (``m``, ``d``,
``a``, ...), ``["<st>", <answer>]`` (or ``[0, <answer>]``) for the commands MEGA's SDK marks
``mSeqtagArray`` (``p``, ``l``, ``s2``, ``up``, ...). :func:`unwrap` gives back the answer a
client without v3 would have had, and the tag; :class:`OwnTags` remembers the tags of a
client's own commands so its watcher can tell its own changes when their packets arrive.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["OwnTags", "unwrap"]

# commands answered ["<st>", answer] (the SDK's mSeqtagArray ones, src/commands.cpp)
SEQTAG_ARRAY = frozenset(
    {"p", "l", "s2", "pfa", "up", "up2", "upv", "upr", "pk", "sp", "asp", "aep", "aepb", "aer"}
)
# commands whose v2 answer is 0: with v3 a bare string is their tag
TAG_FOR_ZERO = frozenset({"a", "m", "d", "dv", "ur", "sml", "k"})


def unwrap(name: Any, result: Any) -> tuple[str | None, Any]:
    """(tag or None, the answer as without v3) for command ``name``'s ``result``."""
    if name in SEQTAG_ARRAY:
        if isinstance(result, list) and len(result) == 2:
            head = result[0]
            if isinstance(head, str):
                return head, result[1]
            if head == 0 and not isinstance(head, bool):
                return None, result[1]
        return None, result
    if name in TAG_FOR_ZERO and isinstance(result, str):
        return result, 0
    return None, result


class OwnTags:
    """The sequence tags of this client's recent commands (the newest ``limit``), each with
    its place in the order their answers came (1, 2, ...)."""

    def __init__(self, limit: int = 4096) -> None:
        self._tags: OrderedDict[str, int] = OrderedDict()
        self._limit = limit
        self._count = 0
        self._lock = threading.Lock()

    def add(self, tag: str) -> None:
        with self._lock:
            if tag in self._tags:
                return
            self._count += 1
            self._tags[tag] = self._count
            while len(self._tags) > self._limit:
                self._tags.popitem(last=False)

    def __contains__(self, tag: object) -> bool:
        with self._lock:
            return tag in self._tags

    def order(self, tag: object) -> int | None:
        """The place of ``tag`` among the answers (None when it is not ours, or too old)."""
        with self._lock:
            return self._tags.get(tag) if isinstance(tag, str) else None

    def latest(self) -> int:
        """The place of the newest tag (0 before any)."""
        with self._lock:
            return self._count
