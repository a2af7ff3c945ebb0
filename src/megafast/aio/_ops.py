"""AsyncMega's tree changes, links and public files and folders (methods of AsyncMega).

Each command goes through the client's batcher, so concurrent calls share requests; the
tree is changed after the server accepted the change. Commands are built with the same
pure helpers as the synchronous client (attribute encryption, key wrapping, ``cr`` keys for
shares, link formats), with the client's core (:class:`._core.LoopCore`) as their state; a
folder export (``s2``) runs the core's routine in a worker thread, its request sent by the
loop (rare, and its key work is CPU).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._account import shares as _shares
from .._account.nodeops import encrypt_attrs, new_handle, wrap_key
from .._account.sources import decrypt_at, parse_file_key, public_root
from .._tree.nodes import Keyring, NodeTree, NodeType
from .._wire.codec import words_to_bytes
from .._wire.links import file_link, folder_link, parse_link
from ..errors import (
    LinkError,
    NodeNotFoundError,
    NotFoundError,
    UnexpectedAnswerError,
    ValidationError,
    WrongKeyError,
)
from ._bridge import run_in_thread
from ._listing import stream_listing
from ._nodes import Node, NodeRef, handle_of, node_at

if TYPE_CHECKING:
    from ._client import AsyncMega

LINK_BASE = "https://mega.nz"


async def put_node(m: AsyncMega, parent: str, item: dict[str, Any], key: tuple[int, ...]) -> Node:
    """Create one node (``p``) under ``parent`` (with ``cr`` keys for shares above it)."""
    tree = await m.tree()
    command: dict[str, Any] = {
        "a": "p",
        "t": parent,
        "n": [{**item, "k": wrap_key(m.core, key)}],
        "i": m.request_id,
    }
    cr = _shares.keys_for_new_node(m.core, parent, key, item.get("h") or "")
    if cr is not None:
        command["cr"] = cr
    answer = await m.batcher.call(command)
    handle = new_handle(answer)
    assert m.keyring is not None
    tree.add_nodes([dict(n) for n in answer.get("f") or () if isinstance(n, dict)], m.keyring)
    return node_at(tree.store, handle)


async def _folder(m: AsyncMega, ref: NodeRef | None) -> str:
    tree = await m.tree()
    if ref is None:
        if tree.root_id is None:
            raise NodeNotFoundError("the account has no Cloud Drive")
        return tree.root_id
    handle = handle_of(ref)
    node = node_at(tree.store, handle)
    if node.is_file:
        raise ValidationError("the destination is a file, not a folder")
    return handle


async def create_folder(m: AsyncMega, path: str, dest: NodeRef | None = None) -> Node:
    """Create the folder ``a/b/c`` under ``dest`` (default: the Cloud Drive), reusing the
    folders that exist; the last folder's Node."""
    from ..crypto import random_key

    parts = [p for p in str(path).split("/") if p]
    if not parts:
        raise ValidationError("a folder name is needed")
    parent = await _folder(m, dest)
    tree = await m.tree()
    for part in parts:
        existing = [c for c in tree.children_named(parent, part) if c.get("t") == NodeType.FOLDER]
        if existing:
            parent = existing[0]["h"]
            continue
        key = tuple(random_key(4))
        item = {"h": "xxxxxxxx", "t": NodeType.FOLDER.value, "a": encrypt_attrs({"n": part}, key)}
        parent = (await put_node(m, parent, item, key)).handle
    return await m.node(parent)


async def rename(m: AsyncMega, ref: NodeRef, name: str) -> Node:
    """Give a node a new name (``a``); its other attributes are kept."""
    if not isinstance(name, str) or not name or "/" in name:
        raise ValidationError("a new name is a non-empty string without '/'")
    tree = await m.tree()
    node = tree.nodes.get(handle_of(ref))
    if node is None:
        raise NodeNotFoundError(f"no node with handle {handle_of(ref)!r}")
    if node.get("undecryptable") or "key" not in node:
        raise WrongKeyError("this node cannot be decrypted, so it cannot be renamed")
    attrs = dict(node["a"]) if isinstance(node.get("a"), dict) else {}
    attrs["n"] = name
    command = {
        "a": "a",
        "attr": encrypt_attrs(attrs, node["k"]),
        "key": wrap_key(m.core, node["key"]),
        "n": node["h"],
        "i": m.request_id,
    }
    await m.batcher.call(command)
    tree.set_attributes(node["h"], attrs)
    return node_at(tree.store, node["h"])


async def move(m: AsyncMega, ref: NodeRef, folder: NodeRef | NodeType) -> Node:
    """Move a node into ``folder`` (a Node, a handle, or ``NodeType.RUBBISH``...)."""
    tree = await m.tree()
    handle = handle_of(ref)
    node = tree.nodes.get(handle)
    if node is None:
        raise NodeNotFoundError(f"no node with handle {handle!r}")
    target = (
        (await m.root(folder)).handle if isinstance(folder, NodeType) else await _folder(m, folder)
    )
    command: dict[str, Any] = {"a": "m", "n": handle, "t": target, "i": m.request_id}
    cr = _shares.keys_for_moved_subtree(m.core, node, target)
    if cr is not None:
        command["cr"] = cr
    await m.batcher.call(command)
    tree.move(handle, target)
    return node_at(tree.store, handle)


async def delete(m: AsyncMega, ref: NodeRef) -> Node:
    """Move a node to the Rubbish Bin (as ``Mega.delete``)."""
    return await move(m, ref, NodeType.RUBBISH)


async def destroy(m: AsyncMega, ref: NodeRef) -> None:
    """Delete a node and everything below it for good (``d``)."""
    tree = await m.tree()
    handle = handle_of(ref)
    if handle not in tree.store:
        raise NodeNotFoundError(f"no node with handle {handle!r}")
    await m.batcher.call({"a": "d", "n": handle, "i": m.request_id})
    if handle in tree.store:
        tree.remove(handle)


# -- links ---------------------------------------------------------------------------------
async def get_link(m: AsyncMega, ref: NodeRef) -> str:
    """The public link of a file, or of a folder (exported first when it is not yet).
    Concurrent calls share batched requests."""
    tree = await m.tree()
    handle = handle_of(ref)
    node = tree.nodes.get(handle)
    if node is None:
        raise NodeNotFoundError(f"no node with handle {handle!r}")
    if node.get("t") == NodeType.FOLDER:
        if node.get("shared_folder_key") is None or handle not in tree.store.exported:
            await _share_folder(m, handle)
            node = tree.nodes[handle]
        ph = await _public_handle(m, handle)
        return folder_link(ph, words_to_bytes(node["shared_folder_key"]), LINK_BASE)
    if node.get("t") != NodeType.FILE:
        raise ValidationError("only files and folders have links")
    if "key" not in node:
        raise WrongKeyError("this file cannot be decrypted, so it has no usable link")
    ph = await _public_handle(m, handle)
    return file_link(ph, words_to_bytes(node["key"]), LINK_BASE)


async def get_links(m: AsyncMega, refs: list[NodeRef]) -> list[str]:
    """:meth:`get_link` of many nodes at once (a few batched requests)."""
    return list(await asyncio.gather(*(get_link(m, r) for r in refs)))


async def export(m: AsyncMega, ref: NodeRef) -> str:
    """Make a node public and return its link (the same as :meth:`get_link`)."""
    return await get_link(m, ref)


async def _public_handle(m: AsyncMega, handle: str) -> str:
    answer = await m.batcher.call({"a": "l", "n": handle, "i": m.request_id})
    if not isinstance(answer, str):
        raise UnexpectedAnswerError("the answer to l is not a public handle")
    tree = await m.tree()
    if handle in tree.store:
        tree.set_extra(handle, "ph", answer)
    return answer


async def _share_folder(m: AsyncMega, handle: str) -> None:
    """``s2`` by the core's routine, in a worker thread (its request goes via the loop)."""
    tree = await m.tree()
    node = tree.nodes[handle]
    await run_in_thread(m.executor, lambda cancel: _shares.share_folder(m.core, node))


# -- public files and folders ------------------------------------------------------------------
async def public_info(m: AsyncMega, url: str) -> dict[str, Any]:
    """``{'name', 'size'}`` of a public file link, or ``{'name', 'size', 'files',
    'folders'}`` of a folder link (sizes in bytes)."""
    link = parse_link(url)
    if link.kind == "file":
        try:
            data = await m.batcher.call({"a": "g", "p": link.handle, "ssm": 1})
        except NotFoundError:
            raise NodeNotFoundError("no public file behind this link (removed?)") from None
        if not isinstance(data, dict) or "at" not in data or "s" not in data:
            raise UnexpectedAnswerError("the answer to g has no size or attributes")
        attrs = decrypt_at(data["at"], parse_file_key(link.key))
        from ..transfer._plan import check_size

        return {"name": attrs.get("n"), "size": check_size(data["s"], "the size in g")}
    nodes = await public_folder(m, url)
    files = [n for n in nodes if n.is_file]
    return {
        "name": nodes[0].name,
        "size": sum(n.size for n in files),
        "files": len(files),
        "folders": len(nodes) - len(files),
    }


async def public_folder(m: AsyncMega, url: str) -> list[Node]:
    """The nodes of a public folder link (streamed listing): the node the link names first,
    then everything below it, parents before children."""
    link = parse_link(url)
    if link.kind != "folder":
        raise LinkError("not a folder link")
    tree = await _folder_tree(m, link.handle, link.key)
    top = public_root(tree, link)
    out = [node_at(tree.store, top["h"])]
    out += [node_at(tree.store, n["h"]) for n in tree.descendants(top["h"])]
    return out


async def _folder_tree(m: AsyncMega, handle: str, key: bytes) -> NodeTree:
    keyring = Keyring(default_key=key)
    store, _ = await stream_listing(m.api, keyring, m.executor, folder=handle)
    tree = NodeTree(store, keyring)
    if len(store) and all(n.get("undecryptable") for n in (tree.nodes[h] for h in store.slot_of)):
        raise WrongKeyError("the key does not decrypt this folder (wrong key?)")
    return tree


async def import_public_file(
    m: AsyncMega, url: str, dest: NodeRef | None = None, name: str | None = None
) -> Node:
    """Copy a public file (its link) into the account, under ``dest`` (default: the Cloud
    Drive), named ``name`` (default: its own name)."""
    link = parse_link(url)
    if link.kind != "file":
        raise LinkError("import_public_file() takes a file link")
    key = parse_file_key(link.key)
    if name is None:
        name = (await public_info(m, url))["name"]
    if not isinstance(name, str) or not name:
        raise WrongKeyError("the public file has no name")
    parent = await _folder(m, dest)
    item = {"ph": link.handle, "t": NodeType.FILE.value, "a": encrypt_attrs({"n": name}, key)}
    return await put_node(m, parent, item, key)
