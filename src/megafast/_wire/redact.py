"""Keeping secrets out of messages and logs: session ids, URL tokens and link keys.

:func:`redact` is the one place that knows what a secret looks like in text: the value of a
``sid=`` or ``token=`` URL parameter, and the key of a MEGA link (``/file/H#KEY``,
``/folder/H#KEY``, ``#!H!KEY``, ``#F!H!KEY``; handles stay readable). :func:`redact_link` is for a string that
was given as a link and may be malformed: it keeps only what comes before the first ``#`` or
``!``, so no part of a key can show whatever the shape; :func:`redact_url` is for a server
URL (no ``user:password@``). They know the separators written
percent-encoded (``%23`` for ``#``, ``%21`` for ``!``, also encoded again as ``%2523``...), as
a link copied through a URL-encoding tool or a shell history often is.
"""

from __future__ import annotations

import re

__all__ = ["MARK", "redact", "redact_link", "redact_url"]

#: What a secret is replaced with.
MARK = "<redacted>"

# '#' and '!' as written, or percent-encoded (once or more: %23, %2523, ...)
_HASH = r"(?:#|%(?:25)*23)"
_BANG = r"(?:!|%(?:25)*21)"
_SEPARATOR = re.compile(rf"{_HASH}|{_BANG}", re.IGNORECASE)

_PATTERNS = (
    # a session id in a URL (the API sends it as a query parameter)
    (re.compile(r"([?&]sid=)[^&\s'\"]+"), rf"\1{MARK}"),
    # an access token in a URL (the HTTP server takes ``?token=``)
    (re.compile(r"([?&]token=)[^&\s'\"]+", re.IGNORECASE), rf"\1{MARK}"),
    # new-style links: /file/H#KEY, /folder/H#KEY[/file/H2], /embed/H#KEY
    (
        re.compile(rf"(/(?:file|folder|embed)/[\w-]+{_HASH})[\w,=+-]+", re.IGNORECASE),
        rf"\1{MARK}",
    ),
    # legacy links: #!H!KEY, #F!H!KEY[!H2]
    (re.compile(rf"({_HASH}F?{_BANG}[\w-]+{_BANG})[\w,=+-]+", re.IGNORECASE), rf"\1{MARK}"),
)


def redact(text: str) -> str:
    """``text`` with every session id, URL token and link key replaced by :data:`MARK`."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_url(url: str) -> str:
    """A server URL for display: a ``user:password@`` in it becomes ``<redacted>@``, and
    session ids and link keys are redacted as by :func:`redact`."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed URL: show none of it
        return MARK
    if "@" in parts.netloc:
        parts = parts._replace(netloc=f"{MARK}@{parts.netloc.rpartition('@')[2]}")
    return redact(urlunsplit(parts))


def redact_link(url: str, limit: int = 80) -> str:
    """A link for an error message: the text before the first ``#`` or ``!`` (or their
    percent-encoded forms; at most ``limit`` characters), then ``#...`` when something was cut."""
    found = _SEPARATOR.search(url)
    cut = found.start() if found else len(url)
    shown = url[:cut]
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown + ("#..." if cut < len(url) else "")
