"""The nodes AsyncMega hands out: the core's typed nodes (:class:`~megafast._tree.typed.TreeNode`).

``megafast.aio.Node`` is that class: a small frozen view of one node of the store (handle,
parent, type, name, size, mtime, fingerprint, key), made on demand; mega.py's dicts stay at
the ``Mega`` facade. A node is a snapshot: after a change, ask the client again.
"""

from __future__ import annotations

from .._tree import typed
from .._tree.nodestore import NodeStore
from .._tree.typed import TreeNode
from ..errors import NodeNotFoundError, ValidationError

__all__ = ["Node", "NodeRef", "node_at", "handle_of"]

Node = TreeNode
#: what the client's methods take as a node: a Node or a handle
NodeRef = TreeNode | str


def node_at(store: NodeStore, handle: str) -> TreeNode:
    """The node of ``handle`` in ``store`` (NodeNotFoundError when absent or unusable)."""
    try:
        found = typed.node(store, handle)
    except ValueError:  # a type the store keeps but NodeType does not know
        found = None
    if found is None:
        raise NodeNotFoundError(f"no node with handle {handle!r}")
    return found


def handle_of(ref: object) -> str:
    """The handle a :data:`NodeRef` names."""
    if isinstance(ref, TreeNode):
        return ref.handle
    if isinstance(ref, str) and ref:
        return ref
    raise ValidationError(f"not a node: expected a Node or a handle, got {type(ref).__name__}")
