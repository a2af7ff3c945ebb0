"""Text the command line shows people: control characters escaped, as ``ls -b`` does.

Node names and server text may hold escape sequences, ``\\r`` or newlines that would rewrite
the terminal or fake extra lines. Every human-readable line goes through :func:`printable`;
``--json`` output is exact (JSON escapes control characters itself).
"""

from __future__ import annotations

import re

__all__ = ["printable", "printable_lines"]

_NAMED = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f"}
_NAMED.update({"\r": "\\r", "\\": "\\\\"})
# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what follows them
_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# the same, but for the newline: finds whether lines joined with newlines need any escape
_UNSAFE_IN_LINES = re.compile(
    "[\\\\\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\{code:03o}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control characters (and backslashes) written as escapes: ``\\n``,
    ``\\033``, ``\\u202e``... so that one line of output stays one line, as typed."""
    return _UNSAFE.sub(_escape, text)


def printable_lines(lines: list[str]) -> str:
    """Many lines made :func:`printable`, each ending with a newline, as one text (one check
    of the whole text when, as usual, no line needs an escape)."""
    text = "\n".join(lines)
    if _UNSAFE_IN_LINES.search(text) is None and text.count("\n") == len(lines) - 1:
        return text + "\n" if lines else ""
    return "".join(printable(line) + "\n" for line in lines)
