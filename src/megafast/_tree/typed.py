"""Typed nodes: a small immutable view of one node of a :class:`NodeStore`.

A :class:`TreeNode` is made on demand from the store's columns (nothing is kept per node);
:func:`children`, :func:`walk` and :func:`path` iterate the store without building
mega.py-shaped dicts. The core hands these out to every front end; only the mega.py facade
(and the tree's compatibility view behind ``Mega.get_files``) makes dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from .nodes import NodeType
from .nodestore import NodeStore

__all__ = ["TreeNode", "children", "node", "path", "walk"]


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One node as the store holds it.

    ``type``: :class:`NodeType`; ``name``: ``None`` when the attributes could not be
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


def _at(store: NodeStore, slot: int) -> TreeNode:
    handle = store.handles[slot]
    assert handle is not None
    fingerprint = None
    text = store.attrs[slot]
    if text is not None and b'"c"' in text:
        try:
            value = json.loads(text).get("c")
        except (ValueError, AttributeError):
            value = None
        fingerprint = value if isinstance(value, str) else None
    n = store.key_len[slot]
    undecryptable = slot in store.undecryptable
    key = bytes(store.keys[slot * 32 : slot * 32 + n]) if n and not undecryptable else None
    name = store.name_at(slot) if key is not None or store.types[slot] > 1 else None
    return TreeNode(
        handle=handle,
        parent=store.parent_of_slot(slot) or None,
        type=NodeType(store.types[slot]),
        name=name,
        size=store.sizes[slot],
        mtime=store.times[slot],
        fingerprint=fingerprint,
        key=key,
    )


def node(store: NodeStore, handle: str) -> TreeNode | None:
    """The node with ``handle``, or ``None`` when the store has none."""
    slot = store.slot_of.get(handle)
    return None if slot is None else _at(store, slot)


def children(store: NodeStore, handle: str) -> Iterator[TreeNode]:
    """The nodes directly inside ``handle`` (none when it is not in the store)."""
    slot = store.slot_of.get(handle)
    if slot is None:
        return
    for child in tuple(store.children.get(slot, ())):
        yield _at(store, child)


def walk(store: NodeStore, handle: str) -> Iterator[tuple[str, TreeNode]]:
    """Every node below ``handle``, depth first, as ``(path relative to handle, node)``;
    paths join names with ``/``. Each node is visited once even if the store holds a cycle."""
    start = store.slot_of.get(handle)
    if start is None:
        return
    seen = {start}
    stack: list[tuple[str, int]] = [("", start)]
    while stack:
        prefix, slot = stack.pop()
        for child in reversed(tuple(store.children.get(slot, ()))):
            if child in seen:
                continue
            seen.add(child)
            item = _at(store, child)
            rel = f"{prefix}{item.name or item.handle}"
            yield rel, item
            if item.type != NodeType.FILE:
                stack.append((rel + "/", child))


def path(store: NodeStore, handle: str) -> str:
    """The node's path from its root (``Cloud Drive/a/b``), as the store's lookups give it."""
    return store.path_of(handle)
