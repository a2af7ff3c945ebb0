"""Reading API answers as their bytes arrive, and carrying a streamed answer across a cut.

:func:`arrived_chunks` hands over each piece of a body as soon as the socket holds it (one
read of at most ``size`` bytes, never a wait for a full buffer). :func:`resumed` continues a
streamed answer (the ``f`` listing) after its connection was cut: it asks again, checks that
the new answer starts with exactly the bytes already handed over (a BLAKE2b digest of them),
and goes on from there; an answer that changed in between raises instead of being spliced.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator

import requests
import urllib3
from requests.exceptions import ChunkedEncodingError, ContentDecodingError

from ..errors import MegaError, RetryExhaustedError
from .retry import RetryPolicy

__all__ = ["BrokenStream", "arrived_chunks", "resumed"]

log = logging.getLogger("megafast.api")

#: Cuts in a row, each with nothing new read since the one before, that end a stream.
MAX_STREAM_RESTARTS = 8


class BrokenStream(MegaError):
    """A streamed answer broke off while it was read (its connection was cut)."""


def arrived_chunks(resp: requests.Response, size: int) -> Iterator[bytes]:
    """The body of ``resp`` in pieces of 1 to ``size`` bytes, each returned as soon as it
    has arrived (urllib3's ``read1``: one read of what the socket holds). urllib3's errors
    come out as the ``requests`` exceptions ``iter_content`` raises."""
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:  # urllib3 1.x: no read1
        yield from resp.iter_content(size)
        return
    while True:
        try:
            data = read1(size, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.ConnectionError(exc) from None
        except urllib3.exceptions.DecodeError as exc:
            raise ContentDecodingError(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ChunkedEncodingError(exc) from None
        if not data:
            return
        yield data


def resumed(
    first: Iterator[bytes],
    reopen: Callable[[], Iterator[bytes]],
    policy: RetryPolicy,
    what: str,
) -> Iterator[bytes]:
    """The chunks of ``first``; when it raises :class:`BrokenStream`, ``reopen()`` (the same
    request again) is read past the bytes already handed over -- which must be the same
    bytes -- and continued. At most :data:`MAX_STREAM_RESTARTS` cuts in a row that brought
    nothing new, with the policy's back-off between them."""
    handed = 0  # bytes handed over, and their digest
    digest = hashlib.blake2b()
    chunks = first
    reopened = False
    restarts = 0
    try:
        while True:
            try:
                if reopened:  # the same answer again: past what was handed over already
                    tail = _skip_same(chunks, handed, digest.copy().digest())
                    reopened = False
                    if tail:
                        digest.update(tail)
                        handed += len(tail)
                        restarts = 0
                        yield tail
                for chunk in chunks:
                    digest.update(chunk)
                    handed += len(chunk)
                    restarts = 0
                    yield chunk
                return
            except BrokenStream as exc:
                restarts += 1
                if restarts > MAX_STREAM_RESTARTS:
                    raise RetryExhaustedError(
                        "network", f"{what}: the answer broke off {restarts} times in a row"
                    ) from exc
                wait = policy.backoff(restarts)
                log.info(
                    "%s: the answer broke off after %d bytes; again in %.2f s", what, handed, wait
                )
                time.sleep(wait)
            _close(chunks)
            chunks = reopen()
            reopened = True
    finally:
        _close(chunks)


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _skip_same(chunks: Iterator[bytes], count: int, expected: bytes) -> bytes:
    """Read ``count`` bytes of ``chunks`` and check their digest is ``expected``; the rest of
    the chunk that crossed ``count`` is returned. Raises when the answer changed."""
    again = hashlib.blake2b()
    seen = 0
    tail = b""
    while seen < count:
        chunk = next(chunks, None)
        if chunk is None:
            break
        take = min(len(chunk), count - seen)
        again.update(chunk[:take])
        seen += take
        tail = chunk[take:]
    if seen < count or again.digest() != expected:
        raise MegaError(
            "the answer changed while it was read again after its connection was cut: ask again"
        )
    return tail
