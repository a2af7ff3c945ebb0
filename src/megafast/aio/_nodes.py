"""Typed nodes for the asyncio API: :class:`Node`, a small immutable view of one NodeStore slot.

AsyncMega hands these out instead of mega.py's dicts (those stay at the ``Mega`` facade).
A node is a snapshot: after a change, ask the client again (``await m.find(...)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._tree.nodes import NodeType
from .._tree.nodestore import NodeStore
from ..errors import NodeNotFoundError, ValidationError

__all__ = ["Node", "NodeRef", "node_at", "handle_of"]


@dataclass(frozen=True)
class Node:
    """One node: ``handle``; ``parent`` (handle, None for a root); ``type``
    (:class:`~megafast._tree.nodes.NodeType`); ``name`` (None when it cannot be decrypted);
    ``size`` (bytes, files only); ``mtime`` (the server's timestamp, seconds since the
    epoch); ``key`` (the node's raw key, 16 or 32 bytes, or
    None; left out of repr)."""

    handle: str
    parent: str | None
    type: NodeType
    name: str | None
    size: int
    mtime: int
    key: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def is_file(self) -> bool:
        return self.type == NodeType.FILE

    @property
    def is_folder(self) -> bool:
        """A folder or one of the roots (Cloud Drive, Inbox, Rubbish Bin)."""
        return self.type != NodeType.FILE


#: what the client's methods take as a node: a Node or a handle
NodeRef = Node | str


def node_at(store: NodeStore, handle: str) -> Node:
    """The :class:`Node` of ``handle`` in ``store`` (NodeNotFoundError when absent)."""
    slot = store.slot_of.get(handle)
    if slot is None:
        raise NodeNotFoundError(f"no node with handle {handle!r}")
    t = store.types[slot]
    try:
        kind = NodeType(t)
    except ValueError:
        raise NodeNotFoundError(f"node {handle!r} has an unknown type {t}") from None
    return Node(
        handle=handle,
        parent=store.parent_of_slot(slot) or None,
        type=kind,
        name=store.name_at(slot),
        size=store.sizes[slot] if t == 0 else 0,
        mtime=store.times[slot],
        key=store.key_of(handle),
    )


def handle_of(ref: object) -> str:
    """The handle a :data:`NodeRef` names."""
    if isinstance(ref, Node):
        return ref.handle
    if isinstance(ref, str) and ref:
        return ref
    raise ValidationError(f"not a node: expected a Node or a handle, got {type(ref).__name__}")
