"""Typed nodes: a small immutable view of one node of a :class:`NodeStore`.

A :class:`TreeNode` is made on demand from the store's columns (nothing is kept per node);
:func:`children`, :func:`walk` and :func:`path` iterate the store without building
mega.py-shaped dicts, and :func:`totals` sums a subtree's sizes from the columns. The core
hands these out to every front end; only the mega.py facade (and the tree's compatibility
view behind ``Mega.get_files``) makes dicts.

Nodes are made a folder's children at a time (:func:`nodes_at`): the attribute JSON of the
batch is parsed in one call, once for both the name and the fingerprint.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import not_
from typing import Any

from .nodes import NodeType
from .nodestore import NodeStore

__all__ = [
    "Totals",
    "TreeNode",
    "children",
    "node",
    "nodes_at",
    "path",
    "totals",
    "walk",
]

#: a sort key for a folder's children (``None``: the store's order, the listing's)
Order = Callable[["TreeNode"], Any]


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One node as the store holds it.

    ``type``: :class:`NodeType` (a type the API does not define is shown as a
    ``FOLDER`` without name or key); ``name``: ``None`` when the attributes could not be
    decrypted; ``size``: bytes (0 for folders); ``mtime``: the node's timestamp (seconds since
    the epoch, the listing's ``ts``); ``fingerprint``: the attribute ``c`` (``None`` when it
    has none); ``key``: the node key (32 bytes for files, 16 for folders; ``None`` for roots
    and undecryptable nodes)."""

    handle: str
    parent: str | None
    type: NodeType
    name: str | None
    size: int
    mtime: int
    fingerprint: str | None
    key: bytes | None

    @property
    def is_file(self) -> bool:
        return self.type == NodeType.FILE

    @property
    def is_folder(self) -> bool:
        """A folder or a root (Cloud Drive, Inbox, Rubbish Bin): anything that holds nodes."""
        return self.type != NodeType.FILE

    def __repr__(self) -> str:  # no key in a repr
        return f"TreeNode({self.handle!r}, {self.type.name}, {self.name!r}, size={self.size})"


@dataclass(frozen=True, slots=True)
class Totals:
    """What a folder holds, all levels down: ``size`` (bytes of its files), ``files`` and
    ``folders`` (the folder itself not counted)."""

    size: int
    files: int
    folders: int


# TreeNode's slots set directly: a frozen dataclass's __init__ costs about twice as much,
# and a listing makes a million of them
_SETTERS = tuple(
    TreeNode.__dict__[field].__set__
    for field in ("handle", "parent", "type", "name", "size", "mtime", "fingerprint", "key")
)
_TYPES = {int(t): t for t in NodeType}


def _parse_batch(texts: list[bytes | None]) -> list[dict[str, Any] | None]:
    from ..crypto._bulk import _parse_attr_batch

    return _parse_attr_batch(texts)


def nodes_at(store: NodeStore, slots: Sequence[int]) -> list[TreeNode]:
    """The typed nodes of ``slots`` (live slots of ``store``), in that order; their attribute
    JSON is parsed in one batch."""
    handles, parents, types, sizes, times = (
        store.handles,
        store.parent,
        store.types,
        store.sizes,
        store.times,
    )
    names, attrs, key_len, keys = store.names, store.attrs, store.key_len, store.keys
    undecryptable, orphans = store.undecryptable, store.orphan_parent
    texts = [attrs[s] for s in slots]
    parsed = _parse_batch(texts) if any(texts) else texts
    s_handle, s_parent, s_type, s_name, s_size, s_mtime, s_fp, s_key = _SETTERS
    new, cls, folder = object.__new__, TreeNode, NodeType.FOLDER
    out: list[TreeNode] = []
    append = out.append
    for slot, attributes in zip(slots, parsed, strict=True):
        t = types[slot]
        n = key_len[slot]
        key = bytes(keys[slot * 32 : slot * 32 + n]) if n and slot not in undecryptable else None
        name = fingerprint = None
        if key is not None or t > 1:
            name = names[slot]
            if type(attributes) is dict:
                if name is None:
                    value = attributes.get("n")
                    name = value if type(value) is str else None
                value = attributes.get("c")
                fingerprint = value if type(value) is str else None
        p = parents[slot]
        item = new(cls)
        s_handle(item, handles[slot])
        s_parent(item, handles[p] if p >= 0 else orphans.get(slot) or None)
        s_type(item, _TYPES.get(t, folder))
        s_name(item, name)
        s_size(item, sizes[slot])
        s_mtime(item, times[slot])
        s_fp(item, fingerprint)
        s_key(item, key)
        append(item)
    return out


def node(store: NodeStore, handle: str) -> TreeNode | None:
    """The node with ``handle``, or ``None`` when the store has none."""
    slot = store.slot_of.get(handle)
    return None if slot is None else nodes_at(store, (slot,))[0]


def _listed(
    store: NodeStore, slot: int, order: Order | None, folders_only: bool = False
) -> list[tuple[int, TreeNode]]:
    """(slot, node) of the children of ``slot``: in ``order``, else the store's."""
    slots = store.children.get(slot)
    if not slots:
        return []
    kids = (
        list(compress(slots, map(store.types.__getitem__, slots))) if folders_only else list(slots)
    )
    made = nodes_at(store, kids)
    if order is None:
        return list(zip(kids, made, strict=True))
    keys = list(map(order, made))
    return [(kids[i], made[i]) for i in sorted(range(len(kids)), key=keys.__getitem__)]


def children(
    store: NodeStore, handle: str, order: Order | None = None, folders_only: bool = False
) -> Iterator[TreeNode]:
    """The nodes directly inside ``handle`` (none when it is not in the store), sorted by
    the key ``order`` when given (a stable sort: ties keep the listing's order);
    ``folders_only``: leave the files out (no node is made for them)."""
    slot = store.slot_of.get(handle)
    if slot is None:
        return
    for _, item in _listed(store, slot, order, folders_only):
        yield item


def _name_or_handle(item: TreeNode) -> str:
    return item.name or item.handle


def walk(
    store: NodeStore,
    handle: str,
    order: Order | None = None,
    label: Callable[[TreeNode], str] = _name_or_handle,
) -> Iterator[tuple[str, TreeNode]]:
    """Every node below ``handle``, depth first (a folder's contents right after it), as
    ``(path relative to handle, node)``; paths join ``label(node)`` (the name, else the
    handle) with ``/``. ``order``: the sort key of each folder's children. Paths come from a
    stack of folder prefixes (no walk up per node); one folder's children are in memory at a
    time per level. Each node is visited once even if the store holds a cycle."""
    start = store.slot_of.get(handle)
    if start is None:
        return
    seen = {start}
    stack: list[tuple[str, Iterator[tuple[int, TreeNode]]]] = [
        ("", iter(_listed(store, start, order)))
    ]
    file = NodeType.FILE
    while stack:
        prefix, pending = stack[-1]
        for slot, item in pending:
            rel = prefix + label(item)
            yield rel, item
            if item.type != file and slot not in seen and slot in store.children:
                seen.add(slot)
                stack.append((rel + "/", iter(_listed(store, slot, order))))
                break
        else:
            stack.pop()


def totals(store: NodeStore, handle: str, depth: int = 0) -> dict[str, Totals]:
    """What ``handle`` holds (its :class:`Totals`), and each folder below it down to
    ``depth`` levels (1: its own sub-folders), as handle -> Totals; empty when ``handle`` is
    not in the store. Sizes are summed from the store's columns folder by folder (no node is
    made); each folder is counted once even if the store holds a cycle."""
    start = store.slot_of.get(handle)
    if start is None:
        return {}
    types, sizes, kids_of = store.types, store.sizes, store.children
    order = [start]  # every folder below start, parents before their sub-folders
    level = array("i", [0])
    seen = {start}
    size = array("q")
    files = array("q")
    i = 0
    while i < len(order):
        kids = kids_of.get(order[i])
        if kids:
            kinds = array("b", map(types.__getitem__, kids))
            size.append(sum(compress(map(sizes.__getitem__, kids), map(not_, kinds))))
            files.append(kinds.count(0))
            below = [k for k in compress(kids, kinds) if k not in seen]
            seen.update(below)
            order += below
            level.extend([level[i] + 1] * len(below))
        else:
            size.append(0)
            files.append(0)
        i += 1
    folders = array("q", bytes(8 * len(order)))
    at = {slot: i for i, slot in enumerate(order)}
    parents = store.parent
    for i in range(len(order) - 1, 0, -1):  # sub-folders before their parents
        up = at[parents[order[i]]]
        size[up] += size[i]
        files[up] += files[i]
        folders[up] += folders[i] + 1
    handles = store.handles
    return {
        handles[order[i]]: Totals(size[i], files[i], folders[i])  # type: ignore[misc]
        for i in range(len(order))
        if level[i] <= depth
    }


def path(store: NodeStore, handle: str) -> str:
    """The node's path from its root (``Cloud Drive/a/b``), as the store's lookups give it."""
    return store.path_of(handle)
