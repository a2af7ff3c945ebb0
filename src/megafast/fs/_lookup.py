"""Looking paths up in the node tree of the ``mega://`` filesystem."""

from __future__ import annotations

import errno
import hashlib
import logging
from typing import Any

from .._wire.links import b64decode
from ._engine import Engine, check_name
from ._paths import join_path, split_path

__all__ = ["node_at", "folder_handle", "listing", "entry", "checksum_of", "newest", "count"]

log = logging.getLogger("megafast.fs")


def node_at(engine: Engine, path: str) -> dict[str, Any] | None:
    """The node at the stripped ``path`` (the newest of same-named ones), or None."""
    tree, root = engine.tree()
    node = tree.nodes.get(root)
    for name in split_path(path):
        if node is None or node.get("t") == 0:
            return None
        matches = [n for n in tree.children_named(node["h"], name) if n.get("a")]
        node = newest(matches)
    return node


def folder_handle(engine: Engine, path: str, create: bool) -> str:
    """The folder at ``path`` (created with its parents when ``create``; under the lock).

    Before creating a folder it does not know, it fetches the tree again (once per call):
    another process (a Dask worker, the client) may have made it since, and MEGA would
    accept a second folder of the same name."""
    refreshed = False
    while True:
        tree, h = engine.tree()
        for name in split_path(path):
            node = newest([n for n in tree.children_named(h, name) if n.get("a")])
            if node is None:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, "no such folder on MEGA", path)
                if not refreshed and not engine.read_only:
                    break
                node = engine.mkdir(h, check_name(name))
            elif node.get("t") == 0:
                raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", path)
            h = node["h"]
        else:
            return h
        engine.refresh()
        refreshed = True


def entry(path: str, node: dict[str, Any]) -> dict[str, Any]:
    """fsspec's info dict for ``node`` at ``path``: name, size, type, mtime, created, handle."""
    is_file = node.get("t") == 0
    attrs: dict[str, Any] = node["a"] if isinstance(node.get("a"), dict) else {}
    mtime = fingerprint_mtime(attrs.get("c")) if is_file else None
    ts = count(node.get("ts"))
    return {
        "name": path,
        "size": count(node.get("s")) if is_file else 0,
        "type": "file" if is_file else "directory",
        "mtime": float(mtime if mtime is not None else ts),
        "created": float(ts),
        "handle": node.get("h"),
    }


def listing(engine: Engine, node: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The entries of the folder ``node`` at ``path`` (or the file's own), sorted by name:
    nodes that cannot be decrypted are left out and of same-named ones the newest is listed,
    both with a logged warning."""
    if node.get("t") == 0:
        return [entry(path, node)]
    with engine.lock:
        tree, _ = engine.tree()
        children = list(tree.child_nodes(node["h"]))
    by_name: dict[str, list[dict[str, Any]]] = {}
    unreadable = 0
    for child in children:
        name = tree.name_of(child) if child.get("a") else None
        if not name:
            unreadable += 1
            continue
        by_name.setdefault(name, []).append(child)
    if unreadable:
        log.warning("%s: %d node(s) cannot be decrypted and are not listed", path, unreadable)
    out = []
    for name, same in sorted(by_name.items()):
        if len(same) > 1:
            log.warning("%s: %d nodes named %r; the newest is listed", path, len(same), name)
        out.append(entry(join_path(path, name), newest(same)))  # type: ignore[arg-type]
    return out


def checksum_of(node: dict[str, Any]) -> int:
    """An int that changes when the file does: a digest of MEGA's fingerprint (``c``: sparse
    CRC-32s and the mtime), the size and the content MAC in the node key, all of which a
    server-side copy keeps. A folder's is a digest of its handle."""
    attrs: dict[str, Any] = node["a"] if isinstance(node.get("a"), dict) else {}
    if node.get("t") == 0:
        key = node.get("key") or ()
        parts = [str(attrs.get("c") or ""), str(count(node.get("s"))), str(tuple(key[6:8]))]
    else:
        parts = ["folder", str(node.get("h"))]
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:16], "big")


def newest(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of several nodes with one name, the one stored last (MEGA allows duplicates)."""
    best: dict[str, Any] | None = None
    for node in nodes:
        if best is None or count(node.get("ts")) >= count(best.get("ts")):
            best = node
    return best


def count(value: Any) -> int:
    """A server's non-negative integer (size, timestamp); 0 for anything else."""
    return value if type(value) is int and value >= 0 else 0


def fingerprint_mtime(c: Any) -> int | None:
    """The mtime (seconds) in MEGA's fingerprint attribute ``c``, or None."""
    if not isinstance(c, str):
        return None
    try:
        raw = b64decode(c)
    except ValueError:
        return None
    if len(raw) < 17 or not 1 <= raw[16] <= 8 or len(raw) < 17 + raw[16]:
        return None
    return int.from_bytes(raw[17 : 17 + raw[16]], "little")
