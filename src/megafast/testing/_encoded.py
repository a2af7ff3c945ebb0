"""Nodes kept ready-encoded: each node's JSON as its owner's ``f`` shows it, in the ``js``
column of ``nodes``, written by SQLite itself (triggers on ``nodes`` and ``node_keys``), so
a listing of a million nodes joins stored bytes instead of building and encoding a dict per
node.

SQLite writes the JSON by plain concatenation, which is only JSON (and only the bytes
``json.dumps`` would write) when every text in it is printable ASCII without ``"`` or ``\\``
and every number is an integer; for any other node ``js`` stays NULL and the listing encodes
that node the ordinary way (:meth:`~._packets.Packets.node_json`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from itertools import chain, compress, groupby
from typing import Any, NamedTuple

__all__ = ["ENCODED_SCHEMA", "FILL_ENCODED", "Body", "Encoded", "Pieces", "encode_answer"]


def _plain(column: str) -> str:
    """SQL: ``column`` is text that JSON shows as it is (printable ASCII, no ``"`` or ``\\``)."""
    return (
        f"(typeof({column}) = 'text' AND {column} NOT GLOB '*[^ -~]*'"
        f" AND instr({column}, '\"') = 0 AND instr({column}, '\\') = 0)"
    )


def _maybe(column: str) -> str:
    return f"({column} IS NULL OR {_plain(column)})"


_MAKER = "ifnull(nullif(creator, ''), owner)"

# Whether the row of ``nodes`` (unqualified columns) can be encoded by concatenation.
_PLAIN = " AND ".join(
    [
        _plain("h"),
        _plain("owner"),
        _maybe("parent"),
        _maybe("creator"),
        "typeof(t) = 'integer'",
        "typeof(ts) = 'integer'",
        "typeof(s) IN ('integer', 'null')",
        _maybe("a"),
        _maybe("fa"),
        f"(t NOT IN (0, 1) OR {_plain('k')})",
        "NOT EXISTS (SELECT 1 FROM node_keys x WHERE x.h = nodes.h AND NOT ("
        + _plain("x.share")
        + " AND "
        + _plain("x.k")
        + "))",
    ]
)

# The owner's view of the row (Packets.node_json with viewer == owner): the maker's key, then
# the key under every share at or above the node, by share handle.
_JSON = (
    'CAST(\'{"h":"\' || h || \'","p":"\' || ifnull(parent, \'\') || \'","u":"\' || '
    + _MAKER
    + ' || \'","t":\' || t || \',"a":"\' || ifnull(a, \'\') || \'","k":"\' || '
    "CASE WHEN t IN (0, 1) THEN " + _MAKER + " || ':' || k || ifnull(("
    "SELECT '/' || group_concat(y.share || ':' || y.k, '/') FROM ("
    "SELECT x.share, x.k FROM node_keys x WHERE x.h = nodes.h ORDER BY x.share) y), '') "
    "ELSE '' END || '\",\"ts\":' || ts || "
    "CASE WHEN t = 0 THEN ',\"s\":' || ifnull(s, 'null') ELSE '' END || "
    "CASE WHEN fa IS NOT NULL AND fa != '' THEN ',\"fa\":\"' || fa || '\"' ELSE '' END "
    "|| '}' AS BLOB)"
)

_ENCODE = f"CASE WHEN {_PLAIN} THEN {_JSON} END"
_SET_JS = f"UPDATE nodes SET js = {_ENCODE}"

# A new node written with its JSON in one step (the values as named; the subquery is called
# "nodes" so the expression reads them). A value the column would convert (a number as text)
# fails the checks: js is NULL and the insert trigger encodes the stored row.
NODE_COLUMNS = ("h", "owner", "parent", "t", "a", "k", "s", "ts", "blob", "fa", "seq", "creator")
INSERT_NODE = (
    f"INSERT INTO nodes({', '.join(NODE_COLUMNS)}, js) SELECT *, {_ENCODE} FROM (SELECT "
    + ", ".join(f"? AS {c}" for c in NODE_COLUMNS)
    + ") AS nodes"
)

# Any change to a node's columns or to its share keys re-encodes it (a change to js alone
# does not fire the update trigger, so the triggers do not recurse); made afresh on every
# open, so state written by an earlier version gets these definitions.
ENCODED_SCHEMA = f"""
CREATE INDEX IF NOT EXISTS nodes_owner_seq ON nodes(owner, seq);
DROP TRIGGER IF EXISTS nodes_js_insert;
CREATE TRIGGER nodes_js_insert AFTER INSERT ON nodes WHEN NEW.js IS NULL BEGIN
    {_SET_JS} WHERE rowid = NEW.rowid; END;
DROP TRIGGER IF EXISTS nodes_js_update;
CREATE TRIGGER nodes_js_update
    AFTER UPDATE OF h, owner, parent, t, a, k, s, ts, fa, creator ON nodes BEGIN
    {_SET_JS} WHERE rowid = NEW.rowid; END;
DROP TRIGGER IF EXISTS node_keys_js_insert;
CREATE TRIGGER node_keys_js_insert AFTER INSERT ON node_keys BEGIN
    {_SET_JS} WHERE h = NEW.h; END;
DROP TRIGGER IF EXISTS node_keys_js_delete;
CREATE TRIGGER node_keys_js_delete AFTER DELETE ON node_keys BEGIN
    {_SET_JS} WHERE h = OLD.h; END;
DROP TRIGGER IF EXISTS node_keys_js_update;
CREATE TRIGGER node_keys_js_update AFTER UPDATE ON node_keys BEGIN
    {_SET_JS} WHERE h IN (OLD.h, NEW.h); END;
"""

# Encode every node (state written before ``js`` existed).
FILL_ENCODED = _SET_JS

# The owner's nodes in creation order, with their owner-view JSON (NULL: encode in Python).
OWNER_ROWS = "SELECT h, parent, t, js FROM nodes WHERE owner=? ORDER BY seq"

# The same for a public folder's visitors (the key under that folder's share alone): the
# rows of a node (PUBLIC_ROW), of a folder's children (PUBLIC_CHILDREN), of an owner's nodes.
_PUBLIC = (
    "SELECT h, parent, t, CASE WHEN js IS NULL OR t NOT IN (0, 1) THEN NULL ELSE CAST("
    "substr(js, 1, instr(js, '\"k\":\"') + 4) || ifnull((SELECT x.share || ':' || x.k "
    "FROM node_keys x WHERE x.h = nodes.h AND x.share = ?), '') || "
    'substr(js, instr(js, \'","ts":\')) AS BLOB) END FROM nodes'
)
PUBLIC_ROW = _PUBLIC + " WHERE h=?"
PUBLIC_CHILDREN = _PUBLIC + " WHERE parent=? ORDER BY seq"
PUBLIC_ROWS = _PUBLIC + " WHERE owner=? ORDER BY seq"


class Pieces(NamedTuple):
    """An HTTP body sent in pieces: its length (bytes) and the pieces, read once."""

    length: int
    pieces: Iterable[bytes]


Body = bytes | Pieces


class Encoded:
    """A JSON array whose items are already encoded (bytes), for :func:`encode_answer`."""

    __slots__ = ("items",)

    def __init__(self, items: list[bytes]) -> None:
        self.items = items

    def append_value(self, value: Any) -> None:
        """Add an item encoded the way the API encodes everything else."""
        self.items.append(json.dumps(value, separators=(",", ":")).encode())


_STEP = 8192  # items per piece written (about 2 MB of node JSON)


def _pieces(items: list[bytes]) -> Iterator[bytes]:
    yield b"["
    for start in range(0, len(items), _STEP):
        if start:
            yield b","
        yield b",".join(items[start : start + _STEP])
    yield b"]"


def encode_answer(answer: Any) -> tuple[int, Iterable[bytes]]:
    """(length, pieces) of ``answer`` as compact JSON, the :class:`Encoded` arrays in it
    spliced in as they are: the same bytes ``json.dumps(answer, separators=(",", ":"))``
    would give had the arrays been lists of the decoded values."""
    found: list[Encoded] = []

    def mark(value: Any) -> str:
        if not isinstance(value, Encoded):
            raise TypeError(f"cannot encode {type(value).__name__}")
        found.append(value)
        return _MARK

    text = json.dumps(answer, separators=(",", ":"), default=mark).encode()
    if not found:
        return len(text), [text]
    # the marker, a JSON string, is replaced by each array in order of appearance
    parts = text.split(_QUOTED_MARK)
    if len(parts) != len(found) + 1:  # a value equal to the marker: never in practice
        raise ValueError("an answer contains the listing marker")
    pieces: list[Iterable[bytes]] = [[parts[0]]]
    length = len(parts[0])
    for encoded, after in zip(found, parts[1:], strict=True):
        n = len(encoded.items)
        length += 2 + sum(map(len, encoded.items)) + max(0, n - 1) + len(after)
        pieces += [_pieces(encoded.items), [after]]
    return length, chain.from_iterable(pieces)


# A string no answer holds (a random part per process) marks where an Encoded array goes.
_MARK = f"\x00megafast-encoded-listing-{secrets.token_hex(8)}\x00"
_QUOTED_MARK = json.dumps(_MARK).encode()


def listing_order(rows: list[tuple[Any, ...]], tops: Iterable[str]) -> list[int]:
    """The subtree of each top among ``rows`` ((h, parent, t, json) in creation order), as
    :meth:`~._store.Store.subtree` walks it: parents before children, each folder's
    children in creation order, files not entered (their old versions are left out).
    Every child of a node is among ``rows``: a node has its parent's owner."""
    handles = [row[0] for row in rows]
    parents = [row[1] for row in rows]
    types = [row[2] for row in rows]
    children: dict[str, list[int]] = {}
    # siblings made one after another form runs: one dict step per run, not per node
    for parent, run in groupby(range(len(rows)), parents.__getitem__):
        if parent:
            same = children.get(parent)
            if same is None:
                children[parent] = list(run)
            else:
                same.extend(run)
    order: list[int] = []
    for top in tops:
        start = next((i for i, h in enumerate(handles) if h == top), None)
        if start is None:
            continue
        order.append(start)
        # breadth first: the folders in the order they are listed, each adding its children
        # (files are not entered); the loop runs per folder, the per-node work in C
        folders = [start] if types[start] != 0 else []
        for i in folders:
            below = children.get(handles[i])  # type: ignore[arg-type]
            if below:
                order.extend(below)
                folders.extend(compress(below, map(types.__getitem__, below)))
    return order


def left_out(rows: list[tuple[Any, ...]], order: list[int]) -> tuple[list[int], list[int]]:
    """The rows not in ``order``: (old file versions, newest first; the others, detached
    from every root, in creation order)."""
    if len(order) == len(rows):
        return [], []
    seen = bytearray(len(rows))
    for i in order:
        seen[i] = 1
    rest = [i for i in range(len(rows)) if not seen[i]]
    parents = {rows[i][1] for i in rest}
    files = {row[0] for row in rows if row[0] in parents and row[2] == 0}
    versions = [i for i in reversed(rest) if rows[i][2] == 0 and rows[i][1] in files]
    old = set(versions)
    return versions, [i for i in rest if i not in old]
