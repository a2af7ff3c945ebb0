"""The remote file tree as the command line sees it: paths from the Cloud Drive root."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import CommandError

__all__ = ["RemoteNode", "RemoteTree", "is_url", "split_remote"]

FILE, FOLDER, ROOT, INBOX, RUBBISH = 0, 1, 2, 3, 4

_URL_RE = re.compile(r"^(?:https?://)?(?:www\.)?mega(?:\.co)?\.nz[/#]|^#F?!", re.IGNORECASE)


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


@dataclass
class RemoteNode:
    """One node: ``kind`` is ``"file"``, ``"folder"`` or a root's name."""

    handle: str
    parent: str | None
    type: int
    name: str | None
    size: int
    mtime: int | None
    raw: Any = field(repr=False, default=None)
    children: list[RemoteNode] = field(default_factory=list, repr=False)

    @property
    def is_file(self) -> bool:
        return self.type == FILE

    @property
    def is_folder(self) -> bool:
        return self.type != FILE

    @property
    def display_name(self) -> str:
        return self.name if self.name is not None else f"[undecryptable {self.handle}]"

    @property
    def as_tuple(self) -> tuple[str, Any]:
        """mega.py's ``(handle, node)`` form, as ``find`` returns it."""
        return (self.handle, self.raw)


def _node_from_raw(handle: str, raw: Mapping[str, Any]) -> RemoteNode:
    attributes = raw.get("a")
    name = attributes.get("n") if isinstance(attributes, Mapping) else None
    if name is not None and not isinstance(name, str):
        name = str(name)
    node_type = raw.get("t", FILE)
    size = raw.get("s") or 0
    mtime = raw.get("ts")
    return RemoteNode(
        handle=handle,
        parent=raw.get("p") or None,
        type=int(node_type) if isinstance(node_type, int) else FILE,
        name=name,
        size=int(size) if isinstance(size, int) else 0,
        mtime=int(mtime) if isinstance(mtime, int) else None,
        raw=raw,
    )


class RemoteTree:
    """An index over ``Mega.get_files()``: children, paths and lookups by path."""

    def __init__(self, files: Mapping[str, Mapping[str, Any]], root: str | None = None) -> None:
        """``files``: ``{handle: node}``; ``root``: the handle paths start from (default: the
        Cloud Drive root, the node of type 2), e.g. the top of a public folder."""
        self.nodes: dict[str, RemoteNode] = {
            handle: _node_from_raw(handle, raw) for handle, raw in files.items()
        }
        self.root: RemoteNode | None = self.nodes.get(root) if root is not None else None
        self.rubbish: RemoteNode | None = None
        for node in self.nodes.values():
            if node.type == ROOT and self.root is None:
                self.root = node
            elif node.type == RUBBISH and self.rubbish is None:
                self.rubbish = node
            parent = self.nodes.get(node.parent) if node.parent else None
            if parent is not None:
                parent.children.append(node)
        for node in self.nodes.values():
            node.children.sort(key=lambda child: (child.is_file, child.display_name))

    def require_root(self) -> RemoteNode:
        if self.root is None:
            raise CommandError("the account has no Cloud Drive root node")
        return self.root

    def lookup(self, path: str) -> RemoteNode | None:
        """The node at ``path`` (from the Cloud Drive root), or None."""
        node = self.require_root()
        for part in split_remote(path):
            matches = [child for child in node.children if child.name == part]
            if not matches:
                return None
            # Names are not unique on MEGA; prefer a folder when walking into a path.
            node = next((m for m in matches if m.is_folder), matches[0])
        return node

    def resolve(self, path: str) -> RemoteNode:
        """The node at ``path``; CommandError when there is none."""
        node = self.lookup(path)
        if node is None:
            raise CommandError(f"no such file or folder: {display_path(path)}")
        return node

    def resolve_folder(self, path: str) -> RemoteNode:
        node = self.resolve(path)
        if not node.is_folder:
            raise CommandError(f"not a folder: {display_path(path)}")
        return node

    def path_of(self, node: RemoteNode) -> str:
        """``/a/b`` for a node under the Cloud Drive root (``//Rubbish Bin/...`` elsewhere)."""
        parts: list[str] = []
        current: RemoteNode | None = node
        seen: set[str] = set()
        top = self.root.handle if self.root is not None else None
        while current is not None and current.type not in (ROOT, INBOX, RUBBISH):
            if current.handle == top or current.handle in seen:  # the top, or a damaged cycle
                break
            seen.add(current.handle)
            parts.append(current.display_name)
            current = self.nodes.get(current.parent) if current.parent else None
        prefix = "/"
        if current is not None and current.type in (INBOX, RUBBISH):
            prefix = (
                "//"
                + (current.name or ("Rubbish Bin" if current.type == RUBBISH else "Inbox"))
                + "/"
            )
        return prefix + "/".join(reversed(parts))

    def walk(self, node: RemoteNode) -> Iterator[tuple[RemoteNode, int]]:
        """Every node under ``node`` (depth first, folders before files) with its depth."""
        stack: list[tuple[RemoteNode, int]] = [(child, 1) for child in reversed(node.children)]
        seen: set[str] = set()
        while stack:
            current, depth = stack.pop()
            if current.handle in seen:
                continue
            seen.add(current.handle)
            yield current, depth
            stack.extend((child, depth + 1) for child in reversed(current.children))

    def is_inside(self, node: RemoteNode, ancestor: RemoteNode) -> bool:
        """Whether ``node`` is ``ancestor`` or below it."""
        current: RemoteNode | None = node
        seen: set[str] = set()
        while current is not None and current.handle not in seen:
            if current.handle == ancestor.handle:
                return True
            seen.add(current.handle)
            current = self.nodes.get(current.parent) if current.parent else None
        return False


def display_path(path: str) -> str:
    """``"a//b/"`` -> ``"/a/b"``."""
    return "/" + "/".join(split_remote(path))
