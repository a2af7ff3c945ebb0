"""Remote paths on the command line, resolved by the library's own tree.

A CLI path starts at the Cloud Drive root (``/docs/a.txt``; the leading ``/`` is optional).
Paths of two or more parts are resolved as :meth:`Mega.find` resolves them (the node store's
``find_path``), so ``megafast get a/b`` and ``Mega().find("a/b")`` name the same node.
``Mega.find`` treats a bare name as a search of the whole account (mega.py's rule), so a
one-part path is looked up among the Cloud Drive's own children, with the rule ``find``
applies to every part: the first match in listing order.

:class:`RemoteView` reads the node store of the account's core (or of a public folder) to
resolve paths, list folders, walk them and print paths, with typed nodes
(:class:`~megafast._tree.typed.TreeNode`): no mega.py dict is made, and a listing streams
(one folder's children in memory at a time per level).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import CommandError

if TYPE_CHECKING:
    from .._tree.nodestore import NodeStore
    from .._tree.typed import TreeNode

__all__ = [
    "RemoteView",
    "Row",
    "display_name",
    "display_path",
    "entry",
    "is_url",
    "ls_order",
    "split_remote",
]

#: one listed node: (the node, or the ``ls --json`` entry of a public file link; its full
#: path; the name ``ls`` shows)
Row = tuple["TreeNode | dict[str, Any]", str, str]

_URL_RE = re.compile(r"^(?:https?://)?(?:www\.)?mega(?:\.co)?\.nz[/#]|^#[FP]?!", re.IGNORECASE)
_ROOT, _INBOX, _RUBBISH = 2, 3, 4


def is_url(text: str) -> bool:
    """Whether ``text`` is a MEGA public link rather than a remote path."""
    return bool(_URL_RE.match(text.strip()))


def split_remote(path: str) -> list[str]:
    """``"/a//b/"`` -> ``["a", "b"]``; ``.`` and ``..`` are not allowed (MEGA has no such names)."""
    parts = [part for part in path.strip().split("/") if part]
    for part in parts:
        if part in (".", ".."):
            raise CommandError(f"remote paths cannot contain {part!r}: {path}")
    return parts


def display_path(path: str) -> str:
    """``"a//b/"`` -> ``"/a/b"``."""
    return "/" + "/".join(split_remote(path))


def display_name(node: TreeNode) -> str:
    """The decrypted name, or ``[undecryptable HANDLE]``."""
    return node.name or f"[undecryptable {node.handle}]"


def ls_order(node: TreeNode) -> tuple[bool, str]:
    """How ``ls`` sorts a folder's children: folders first, then by name."""
    return node.type == 0, node.name or f"[undecryptable {node.handle}]"  # 0: a file


class RemoteView:
    """The nodes of one store (an account's, or a public folder's) for resolving, listing,
    walking and printing paths. ``top``: the handle paths start from (default: the Cloud
    Drive root), e.g. the top folder of a public folder link."""

    def __init__(self, store: NodeStore, top: str | None = None) -> None:
        self.store = store
        self.top: str | None = top if top is not None else store.roots.get(_ROOT)

    @classmethod
    def of_account(cls, client: Any) -> RemoteView:
        """The account's tree, undecryptable nodes included (loaded once per session)."""
        return cls(client.core.tree().store)

    @classmethod
    def of_public(cls, client: Any, url: str) -> RemoteView:
        """The tree of a public folder link (one ``f``), from the node the link names."""
        from .._account import sources
        from .._wire.links import parse_link

        link = parse_link(url.strip())
        if link.kind != "folder":
            raise CommandError("not a folder link")
        tree = sources.public_folder_tree(client.core, link)
        return cls(tree.store, sources.public_top(tree, link))

    def get(self, handle: str) -> TreeNode | None:
        from .._tree import typed

        return typed.node(self.store, handle)

    def require_top(self) -> TreeNode:
        node = self.get(self.top) if self.top is not None else None
        if node is None:
            raise CommandError("the account has no Cloud Drive root node")
        return node

    # -- resolving ---------------------------------------------------------------------------
    def lookup(self, path: str) -> TreeNode | None:
        """The node at ``path`` from the Cloud Drive root, or None (see the module's doc)."""
        parts = split_remote(path)
        if not parts:
            return self.require_top()
        if len(parts) == 1:
            top = self.store.slot_of.get(self.require_top().handle)
            assert top is not None
            matches = self.store.children_named(top, parts[0])
            return self.get(self.store.handles[matches[0]] or "") if matches else None
        handle = self.store.find_path("/".join(parts))
        return self.get(handle) if handle is not None else None

    def resolve(self, path: str) -> TreeNode:
        """The node at ``path``; CommandError when there is none."""
        node = self.lookup(path)
        if node is None:
            raise CommandError(f"no such file or folder: {display_path(path)}")
        return node

    def resolve_folder(self, path: str) -> TreeNode:
        node = self.resolve(path)
        if node.is_file:
            raise CommandError(f"not a folder: {display_path(path)}")
        return node

    # -- listing and paths --------------------------------------------------------------------
    def path_of(self, node: TreeNode) -> str:
        """``/a/b`` for a node under the top (``//Rubbish Bin/...`` under another root)."""
        store = self.store
        parts: list[str] = []
        slot = store.slot_of.get(node.handle, -1)
        top = store.slot_of.get(self.top or "", -1)
        seen: set[int] = set()
        while slot >= 0 and store.types[slot] not in (_ROOT, _INBOX, _RUBBISH):
            if slot == top or slot in seen:  # the top, or a damaged cycle
                break
            seen.add(slot)
            key_len = store.key_len[slot]
            name = store.name_at(slot) if key_len and slot not in store.undecryptable else None
            parts.append(name or f"[undecryptable {store.handles[slot]}]")
            slot = store.parent[slot]
        prefix = "/"
        if slot >= 0 and store.types[slot] in (_INBOX, _RUBBISH):
            prefix = "//" + (store.name_at(slot) or "Rubbish Bin") + "/"
        return prefix + "/".join(reversed(parts))

    def is_inside(self, node: TreeNode, ancestor: TreeNode) -> bool:
        """Whether ``node`` is ``ancestor`` or below it."""
        slot = self.store.slot_of.get(node.handle)
        above = self.store.slot_of.get(ancestor.handle)
        return slot is not None and above is not None and self.store.is_below(slot, above)

    def rows(self, node: TreeNode, recursive: bool) -> Iterator[Row]:
        """``ls`` rows for ``node`` (its children, or every node below with ``recursive``):
        (node, full path, the name to show: relative to ``node``, folders ending in ``/``),
        as they are read from the store."""
        from .._tree import typed

        if node.is_file:
            yield node, self.path_of(node), display_name(node)
            return
        base = self.path_of(node).rstrip("/") + "/"
        if recursive:
            listed: Iterator[tuple[str, TreeNode]] = typed.walk(
                self.store, node.handle, ls_order, display_name
            )
        else:
            listed = (
                (display_name(child), child)
                for child in typed.children(self.store, node.handle, ls_order)
            )
        for rel, child in listed:
            yield child, base + rel, rel if child.type == 0 else rel + "/"  # 0: a file


def entry(node: TreeNode | dict[str, Any], path: str) -> dict[str, Any]:
    """One ``ls --json`` entry: name, path, type, size (files), mtime, handle, decrypted
    (a dict is such an entry already)."""
    if isinstance(node, dict):
        return node
    file = node.is_file
    return {
        "name": node.name or f"[undecryptable {node.handle}]",
        "path": path,
        "type": "file" if file else "folder",
        "size": node.size if file else None,
        "mtime": node.mtime,
        "handle": node.handle,
        "decrypted": node.name is not None,
    }
