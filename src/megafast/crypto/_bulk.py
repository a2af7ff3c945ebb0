"""Bulk node decryption: many node keys and attributes in one kernel call."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from . import _backend


def decrypt_nodes(
    kek: bytes | Sequence[bytes],
    enc_keys: Sequence[bytes | None],
    enc_attrs: Sequence[bytes | None],
) -> list[tuple[bytes | None, dict[str, Any] | None]]:
    """Decrypt many node keys and attributes at once.

    ``kek``: the 16-byte key that encrypts the node keys (the master key), or one per node.
    Returns (decrypted key or None, attributes dict or None) per node; a node that cannot be
    decrypted is reported with None, never raised.
    """
    raw = _backend.kernels.decrypt_nodes(kek, enc_keys, enc_attrs)
    return [
        (key, attrs)
        for (key, _), attrs in zip(raw, _parse_attr_batch([js for _, js in raw]), strict=True)
    ]


_json_decoder = json.JSONDecoder()
# The decoder's C scanner: (text, index) -> (value, end); typeshed does not declare it.
_scan_once: Callable[[str, int], tuple[Any, int]] = _json_decoder.scan_once  # type: ignore[attr-defined]


def _parse_attr_batch(items: Sequence[bytes | None]) -> list[dict[str, Any] | None]:
    """Parse many attribute JSON texts quickly, each one on its own.

    The texts are decoded and joined once, then the C scanner parses each at its own offset;
    a value must end exactly where its text ends, so no text can spill into its neighbour
    (a plain ``json.loads("[" + ",".join(...) + "]")`` would let a crafted attribute shift
    every later node's attributes). Anything unusual falls back to ``json.loads`` per item.
    """
    texts: list[str | None] = []
    for js in items:
        if js is None:
            texts.append(None)
            continue
        try:
            texts.append(js.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
    joined = "".join(t for t in texts if t is not None)
    out: list[dict[str, Any] | None] = []
    pos = 0
    for t in texts:
        if t is None:
            out.append(None)
            continue
        end = pos + len(t)
        value: Any = None
        try:
            value, stop = _scan_once(joined, pos)
            if stop != end:
                value = json.loads(t)  # trailing spaces and the like: parse it alone
        except (StopIteration, ValueError, RecursionError):
            try:
                value = json.loads(t)
            except (ValueError, RecursionError):
                value = None
        out.append(value if isinstance(value, dict) else None)
        pos = end
    return out
