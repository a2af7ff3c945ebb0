"""Remote paths on the command line, resolved by the library's own tree.

A CLI path starts at the Cloud Drive root (``/docs/a.txt``; the leading ``/`` is optional).
Paths of two or more parts are resolved by :meth:`Mega.find`, so ``megafast get a/b`` and
``Mega().find("a/b")`` name the same node. ``Mega.find`` treats a bare name as a search of the
whole account (mega.py's rule), so a one-part path is looked up among the Cloud Drive's own
children, with the rule ``find`` applies to every part: the first match in listing order.

:class:`RemoteView` holds the node dicts of one ``get_files`` answer (or of a public folder)
to list folders, walk them and print paths; it never resolves a path by itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import CommandError

__all__ = ["RemoteView", "display_path", "is_url", "split_remote"]

# MEGA's node types (the "t" field).
FILE, FOLDER, ROOT, INBOX, RUBBISH = 0, 1, 2, 3, 4

Node = dict[str, Any]

_URL_RE = re.compile(r"^(?:https?://)?(?:www\.)?mega(?:\.co)?\.nz[/#]|^#[FP]?!", re.IGNORECASE)


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


def name_of(node: Mapping[str, Any]) -> str | None:
    """The decrypted name, or None for a node whose key or attributes do not decrypt."""
    attributes = node.get("a")
    name = attributes.get("n") if isinstance(attributes, Mapping) else None
    return name if isinstance(name, str) else None


def display_name(node: Mapping[str, Any]) -> str:
    return name_of(node) or f"[undecryptable {node.get('h')}]"


def is_file(node: Mapping[str, Any]) -> bool:
    return bool(node.get("t", FILE) == FILE)


def size_of(node: Mapping[str, Any]) -> int:
    size = node.get("s")
    return size if isinstance(size, int) and size > 0 else 0


class RemoteView:
    """The nodes of one listing (``{handle: node}``), for listing, walking and printing paths.

    ``top``: the handle paths start from (default: the Cloud Drive root), e.g. the top
    folder of a public folder link.
    """

    def __init__(self, files: Mapping[str, Node], top: str | None = None) -> None:
        self.nodes: dict[str, Node] = dict(files)
        self.children: dict[str, list[Node]] = {}
        self.top: Node | None = self.nodes.get(top) if top is not None else None
        for node in self.nodes.values():
            if self.top is None and node.get("t") == ROOT:
                self.top = node
            parent = node.get("p")
            if isinstance(parent, str) and parent in self.nodes:
                self.children.setdefault(parent, []).append(node)

    @classmethod
    def of_account(cls, client: Any) -> RemoteView:
        """The account's whole tree, undecryptable nodes included (one ``f`` request)."""
        return cls(client.get_files(include_undecryptable=True))

    def require_top(self) -> Node:
        if self.top is None:
            raise CommandError("the account has no Cloud Drive root node")
        return self.top

    # -- resolving (through the client) ------------------------------------------------------
    def lookup(self, client: Any, path: str) -> Node | None:
        """The node at ``path`` from the Cloud Drive root, or None (see the module's doc)."""
        parts = split_remote(path)
        if not parts:
            return self.require_top()
        if len(parts) == 1:
            top = self.require_top()["h"]
            return next((n for n in self.listed(top) if name_of(n) == parts[0]), None)
        found = client.find("/".join(parts))
        handle = found[0] if isinstance(found, tuple) else None
        return self.nodes.get(handle) if isinstance(handle, str) else None

    def resolve(self, client: Any, path: str) -> Node:
        """The node at ``path``; CommandError when there is none."""
        node = self.lookup(client, path)
        if node is None:
            raise CommandError(f"no such file or folder: {display_path(path)}")
        return node

    def resolve_folder(self, client: Any, path: str) -> Node:
        node = self.resolve(client, path)
        if is_file(node):
            raise CommandError(f"not a folder: {display_path(path)}")
        return node

    # -- listing and paths --------------------------------------------------------------------
    def listed(self, handle: str) -> list[Node]:
        """The nodes directly under ``handle``, in the server's listing order."""
        return self.children.get(handle, [])

    def sorted_children(self, handle: str) -> list[Node]:
        """The nodes directly under ``handle`` as ``ls`` shows them: folders first, by name."""
        return sorted(self.listed(handle), key=lambda n: (is_file(n), display_name(n)))

    def walk(self, node: Node) -> Iterator[tuple[Node, int]]:
        """Every node under ``node`` (depth first, folders before files) with its depth."""
        stack = [(child, 1) for child in reversed(self.sorted_children(node["h"]))]
        seen: set[str] = set()
        while stack:
            current, depth = stack.pop()
            if current["h"] in seen:
                continue
            seen.add(current["h"])
            yield current, depth
            stack.extend(
                (child, depth + 1) for child in reversed(self.sorted_children(current["h"]))
            )

    def path_of(self, node: Node) -> str:
        """``/a/b`` for a node under the top (``//Rubbish Bin/...`` under another root)."""
        parts: list[str] = []
        current: Node | None = node
        seen: set[str] = set()
        top = self.top["h"] if self.top is not None else None
        while current is not None and current.get("t") not in (ROOT, INBOX, RUBBISH):
            if current["h"] == top or current["h"] in seen:  # the top, or a damaged cycle
                break
            seen.add(current["h"])
            parts.append(display_name(current))
            parent = current.get("p")
            current = self.nodes.get(parent) if isinstance(parent, str) else None
        prefix = "/"
        if current is not None and current.get("t") in (INBOX, RUBBISH):
            default = "Rubbish Bin" if current.get("t") == RUBBISH else "Inbox"
            prefix = "//" + (name_of(current) or default) + "/"
        return prefix + "/".join(reversed(parts))

    def is_inside(self, node: Node, ancestor: Node) -> bool:
        """Whether ``node`` is ``ancestor`` or below it."""
        current: Node | None = node
        seen: set[str] = set()
        while current is not None and current["h"] not in seen:
            if current["h"] == ancestor["h"]:
                return True
            seen.add(current["h"])
            parent = current.get("p")
            current = self.nodes.get(parent) if isinstance(parent, str) else None
        return False

    def entries(self, node: Node, recursive: bool) -> tuple[list[dict[str, Any]], list[str]]:
        """``ls`` entries for ``node`` (its children, or every node below with ``recursive``)
        and the names to show (relative to ``node``, folders ending in ``/``)."""
        if is_file(node):
            return [self._entry(node)], [display_name(node)]
        base = self.path_of(node).rstrip("/")
        listed = self.walk(node) if recursive else ((c, 1) for c in self.sorted_children(node["h"]))
        entries: list[dict[str, Any]] = []
        shown: list[str] = []
        for child, _depth in listed:
            entry = self._entry(child)
            path = entry["path"]
            relative = path[len(base) + 1 :] if path.startswith(base + "/") else path
            entries.append(entry)
            shown.append(relative + ("" if is_file(child) else "/"))
        return entries, shown

    def _entry(self, node: Node) -> dict[str, Any]:
        mtime = node.get("ts")
        return {
            "name": display_name(node),
            "path": self.path_of(node),
            "type": "file" if is_file(node) else "folder",
            "size": size_of(node) if is_file(node) else None,
            "mtime": mtime if isinstance(mtime, int) else None,
            "handle": node["h"],
            "decrypted": name_of(node) is not None,
        }
