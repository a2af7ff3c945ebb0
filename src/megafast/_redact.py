"""Keeping secrets out of messages and logs: session ids and link keys.

:func:`redact` is the one place that knows what a secret looks like in text: the value of a
``sid=`` URL parameter, and the key of a MEGA link (``/file/H#KEY``, ``/folder/H#KEY``,
``#!H!KEY``, ``#F!H!KEY``; handles stay readable). :func:`redact_link` is for a string that
was given as a link and may be malformed: it keeps only what comes before the first ``#`` or
``!``, so no part of a key can show whatever the shape.
"""

from __future__ import annotations

import re

__all__ = ["MARK", "redact", "redact_link"]

#: What a secret is replaced with.
MARK = "<redacted>"

_PATTERNS = (
    # a session id in a URL (the API sends it as a query parameter)
    (re.compile(r"([?&]sid=)[^&\s'\"]+"), rf"\1{MARK}"),
    # new-style links: /file/H#KEY, /folder/H#KEY[/file/H2], /embed/H#KEY
    (re.compile(r"(/(?:file|folder|embed)/[\w-]+)#[\w,=+-]+"), rf"\1#{MARK}"),
    # legacy links: #!H!KEY, #F!H!KEY[!H2]
    (re.compile(r"(#F?![\w-]+!)[\w,=+-]+"), rf"\1{MARK}"),
)


def redact(text: str) -> str:
    """``text`` with every session id and link key replaced by :data:`MARK`."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_link(url: str, limit: int = 80) -> str:
    """A link for an error message: the text before the first ``#`` or ``!`` (at most
    ``limit`` characters), then ``#...`` when something was cut."""
    cut = min((i for i in (url.find("#"), url.find("!")) if i >= 0), default=len(url))
    shown = url[:cut]
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown + ("#..." if cut < len(url) else "")
