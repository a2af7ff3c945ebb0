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

__all__ = ["OwnTags", "TagKey", "NO_TAG", "tag_key", "unwrap"]

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


#: Where a sequence tag stands in the server's order: tags compare by length, then as text
#: (MEGA's SDK, Request::processSeqTag).
TagKey = tuple[int, str]
#: Before any tag.
NO_TAG: TagKey = (0, "")


def tag_key(tag: str) -> TagKey:
    return (len(tag), tag)


class OwnTags:
    """The sequence tags of this client's recent commands (the newest ``limit``)."""

    def __init__(self, limit: int = 4096) -> None:
        self._tags: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._newest = NO_TAG
        self._mine = threading.local()  # the tag of this thread's last tagged answer
        self._lock = threading.Lock()

    def add(self, tag: str) -> None:
        key = tag_key(tag)
        with self._lock:
            self._tags[tag] = None
            while len(self._tags) > self._limit:
                self._tags.popitem(last=False)
            self._newest = max(self._newest, key)
        self._mine.key = key

    def __contains__(self, tag: object) -> bool:
        with self._lock:
            return tag in self._tags

    def order(self, tag: object) -> TagKey | None:
        """Where our own ``tag`` stands in the server's order (None when it is not ours)."""
        with self._lock:
            return tag_key(tag) if isinstance(tag, str) and tag in self._tags else None

    def latest(self) -> TagKey:
        """Where this thread's last tagged answer stands (a change the thread applies after
        its command's answer is that command's), else the newest of all."""
        mine: TagKey | None = getattr(self._mine, "key", None)
        if mine is not None:
            return mine
        with self._lock:
            return self._newest
