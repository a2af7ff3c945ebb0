"""How a command's answer carries its v3 sequence tag (``/cs?...&v=3``), as MEGA's SDK reads
it (Request::process, src/request.cpp).

A command that changed something the asking account hears about on ``/sc`` answers with the
tag its packets carry: ``"<st>"`` alone for commands whose answer was ``0``, or ``["<st>",
<answer>]`` for the commands the SDK marks ``mSeqtagArray`` (``p``, ``l``, ``s2``, ``up``,
``upv``, ...). Those commands answer ``[0, <answer>]`` when they changed nothing the account
hears about and their answer is a string (a bare string would read as a tag). Errors stay
bare numbers. Without ``v=3`` answers are as before.
"""

from __future__ import annotations

from typing import Any

from ._changes import CommandTag

# the commands MEGA's SDK sends with mSeqtagArray (src/commands.cpp)
SEQTAG_ARRAY = frozenset(
    {"p", "l", "s2", "pfa", "up", "up2", "upv", "upr", "pk", "sp", "asp", "aep", "aepb", "aer"}
)


def v3_answer(name: str, user: str | None, result: Any, tag: CommandTag) -> Any:
    """``result`` of command ``name`` as a v3 client reads it (see the module)."""
    if isinstance(result, int) and not isinstance(result, bool) and result < 0:
        return result
    tagged = tag.st is not None and user is not None and user in tag.users
    if name in SEQTAG_ARRAY:
        if tagged:
            return [tag.st, result]
        return [0, result] if isinstance(result, str) else result
    if tagged and result == 0:
        return tag.st
    return result
