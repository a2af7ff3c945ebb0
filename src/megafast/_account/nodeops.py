"""Changing the account's tree: create, rename, move, delete, and public links (export).

Every change goes to the server first; the cached :class:`~megafast._tree.nodes.NodeTree` is
updated after the server accepted it. New nodes and moved subtrees carry ``cr`` keys for the
shares above them (see :mod:`megafast._account.shares`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._tree.nodes import NodeTree, NodeType
from .._wire.codec import attr_key, b64_bytes, b64encode, bytes_to_words, words_to_bytes
from .._wire.links import file_link, folder_link, is_handle, parse_link
from ..errors import (
    LinkError,
    NodeNotFoundError,
    UnexpectedAnswerError,
    ValidationError,
    WrongKeyError,
    error_for_code,
)
from . import shares as _shares

if TYPE_CHECKING:
    from .core import Core

__all__ = ["Node", "NodeRef", "new_handle", "folder_handle", "mkdir", "put_node", "create_folder"]

#: A node as mega.py returns it from ``find``: ``(handle, node dict)``.
Node = tuple[str, dict[str, Any]]
#: What methods accept as a node: a ``(handle, dict)`` tuple, a node dict or a handle.
NodeRef = Node | Mapping[str, Any] | str

_DELETE_BATCH = 500  # handles per d batch: keeps each request a sane size


def new_handle(answer: Any) -> str:
    """The handle of the node a ``p`` answer created."""
    try:
        handle = answer["f"][0]["h"]
    except (TypeError, KeyError, IndexError):
        handle = None
    if not isinstance(handle, str):
        raise UnexpectedAnswerError("the answer to p has no new node")
    return handle


def resolve(tree: NodeTree, ref: object, what: str) -> dict[str, Any]:
    """The tree's node for a ``(handle, node)`` tuple, a node dict or a handle."""
    handle: Any
    if isinstance(ref, str):
        handle = ref
    elif isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[1], Mapping):
        handle = ref[1].get("h", ref[0])
    elif isinstance(ref, Mapping):
        handle = ref.get("h")
    else:
        raise ValidationError(
            f"not a node: expected (handle, node), a node or a handle, got {type(ref).__name__}"
        )
    node = tree.nodes.get(handle) if isinstance(handle, str) else None
    if node is None:
        raise NodeNotFoundError(f"no {what} with handle {handle!r}")
    return node


def node_by_type(tree: NodeTree, node_type: int) -> tuple[str, dict[str, Any]] | None:
    """The first node of a type: a root (Cloud Drive, Inbox, Rubbish Bin) or the first
    readable file or folder in listing order."""
    special = {
        int(NodeType.ROOT): tree.root_id,
        int(NodeType.INBOX): tree.inbox_id,
        int(NodeType.RUBBISH): tree.trash_id,
    }.get(node_type)
    if special is not None:
        return special, tree.nodes[special]
    for h, node in tree.nodes.items():  # made one by one: stops at the first match
        if node.get("t") == node_type and node.get("a"):
            return h, node
    return None


def find(
    tree: NodeTree,
    filename: str | os.PathLike[str] | None,
    handle: str | None,
    exclude_deleted: bool,
) -> Any:
    """:meth:`Mega.find`: the node dict by ``handle``, else ``(handle, node)`` by name or
    ``a/b/c`` path, else None."""
    if handle:
        return tree.nodes.get(handle)
    if filename is None:
        return None
    text = os.fspath(filename)
    if "/" in text.strip("/"):
        node = tree.find_path(text, exclude_deleted=exclude_deleted)
    else:
        node = tree.find_by_name(text.strip("/"), exclude_deleted=exclude_deleted)
    return (node["h"], node) if node is not None else None


def id_from_public_handle(core: Core, public_handle: str) -> str | None:
    """:meth:`Mega.get_id_from_public_handle`: from the tree, else from the server."""
    if not is_handle(public_handle):
        raise LinkError("a public handle is 8 characters of base64url")
    known = core.tree().public_handle_owner(public_handle)
    if known is not None:
        return known
    answer = core.request({"a": "f", "f": 1, "p": public_handle})
    if not isinstance(answer, Mapping):
        raise UnexpectedAnswerError("the answer to f is not an object")
    return last_handle(answer)


def last_handle(answer: Mapping[str, Any]) -> str | None:
    """The last non-empty handle in an answer's ``f`` list (mega.py's ``get_id_from_obj``)."""
    node_id = None
    for item in answer.get("f") or ():
        if isinstance(item, Mapping) and item.get("h"):
            node_id = item["h"]
    return node_id


def encrypt_attrs(attrs: Mapping[str, Any], key: tuple[int, ...]) -> str:
    """Attributes encrypted with a node's key (4 words, or a packed 8-word file key)."""
    from ..crypto import encrypt_attr

    return b64encode(encrypt_attr(dict(attrs), attr_key(key)))


def wrap_key(core: Core, key: tuple[int, ...]) -> str:
    """A node key encrypted with the master key, as base64url."""
    from ..crypto import encrypt_key

    return b64encode(words_to_bytes(encrypt_key(key, core.master_key)))


def folder_handle(core: Core, dest: Any) -> str:
    """The handle of a destination folder: ``None`` (the Cloud Drive), a node type, a
    handle or a node."""
    if dest is None:
        return core.root_id
    if isinstance(dest, int) and not isinstance(dest, bool):
        found = node_by_type(core.tree(), dest)
        if found is None:
            raise NodeNotFoundError(f"no node of type {dest}")
        return found[0]
    node = core.node(dest, "destination folder")
    if node.get("t") == NodeType.FILE:
        raise ValidationError("the destination is a file, not a folder")
    return str(node["h"])


def put_node(
    core: Core,
    parent: str,
    item: dict[str, Any],
    key: tuple[int, ...],
    call: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """Create one node (``p``) under ``parent``: ``item`` without its ``k``, ``key`` the
    node's key (wrapped with the master key here, and with the key of every share above
    ``parent`` in ``cr``, so that the people it is shared with can read it). ``call`` sends
    the command (default: ``client._request``; a transfer manager's batcher)."""
    command: dict[str, Any] = {
        "a": "p",
        "t": parent,
        "n": [{**item, "k": wrap_key(core, key)}],
        "i": core.request_id,
    }
    cr = _shares.keys_for_new_node(core, parent, key, item.get("h") or item.get("ph") or "")
    if cr is not None:
        command["cr"] = cr
    answer = (call or core.request)(command)
    tree, keyring = core.loaded_tree, core.keyring
    if tree is not None and keyring is not None and isinstance(answer, dict):
        # copies: the caller gets the API's answer untouched (mega.py's upload() result)
        made = answer.get("f")
        nodes = made if isinstance(made, list) else []  # a hostile answer: new_handle says so
        tree.add_nodes([dict(n) for n in nodes if isinstance(n, dict)], keyring)
    return answer


def mkdir(core: Core, name: str, parent: str) -> dict[str, Any]:
    """Create one folder ``name`` under ``parent``; the ``p`` answer."""
    from ..crypto import random_key

    key = tuple(random_key(4))
    item = {"h": "xxxxxxxx", "t": NodeType.FOLDER.value, "a": encrypt_attrs({"n": name}, key)}
    return put_node(core, parent, item, key)  # type: ignore[no-any-return]


def existing_or_new_folder(core: Core, parent: str, name: str) -> str:
    """The first folder ``name`` directly under ``parent``, created when there is none."""
    for child in core.tree().children_named(parent, name):
        if child.get("t") == NodeType.FOLDER:
            return str(child["h"])
    return new_handle(mkdir(core, name, parent))


def create_folder(core: Core, name: str, dest: Any) -> dict[str, str]:
    """:meth:`Mega.create_folder`."""
    parts = tuple(p for p in str(name).split("/") if p)
    if not parts:
        raise ValidationError("a folder name is needed")
    parent = folder_handle(core, dest)
    made: dict[str, str] = {}
    for part in parts:
        parent = existing_or_new_folder(core, parent, part)
        made[part] = parent
    return made


def rename(core: Core, file: NodeRef, new_name: str) -> Any:
    """:meth:`Mega.rename`."""
    if not isinstance(new_name, str) or not new_name or "/" in new_name:
        raise ValidationError("a new name is a non-empty string without '/'")
    node = core.node(file)
    if node.get("undecryptable") or "key" not in node:
        raise WrongKeyError("this node cannot be decrypted, so it cannot be renamed")
    attrs = dict(node["a"]) if isinstance(node.get("a"), dict) else {}
    attrs["n"] = new_name
    result = core.request(
        {
            "a": "a",
            "attr": encrypt_attrs(attrs, node["k"]),
            "key": wrap_key(core, node["key"]),
            "n": node["h"],
            "i": core.request_id,
        }
    )
    core.tree().set_attributes(node["h"], attrs)
    return result


def move(core: Core, file_id: NodeRef, target: Any) -> Any:
    """:meth:`Mega.move`."""
    node = core.node(file_id)
    target_id = folder_handle(core, target)
    command: dict[str, Any] = {"a": "m", "n": node["h"], "t": target_id, "i": core.request_id}
    cr = _shares.keys_for_moved_subtree(core, node, target_id)
    if cr is not None:
        command["cr"] = cr
    result = core.request(command)
    core.tree().move(node["h"], target_id)
    return result


def destroy(core: Core, file_id: NodeRef) -> Any:
    """:meth:`Mega.destroy`."""
    node = core.node(file_id)
    result = core.request({"a": "d", "n": node["h"], "i": core.request_id})
    core.tree().remove(node["h"])
    return result


def handle_from_link(core: Core, url: str) -> str:
    """The handle of this account's node behind one of its public links."""
    link = parse_link(url)
    handle = id_from_public_handle(core, link.handle)
    if handle is None:
        raise NodeNotFoundError("no node of this account has that public link")
    return handle


def empty_trash(core: Core) -> Any:
    """:meth:`Mega.empty_trash`."""
    trash = core.tree().trash_id
    handles = [c.handle for c in core.children(trash) if c.key is not None] if trash else []
    if not handles:
        return None
    results: list[Any] = []
    for start in range(0, len(handles), _DELETE_BATCH):
        part = handles[start : start + _DELETE_BATCH]
        results += core.batch([{"a": "d", "n": h, "i": core.request_id} for h in part])
    tree = core.tree()
    for h, result in zip(handles, results, strict=True):
        if result in (0, None) or isinstance(result, dict):
            tree.remove(h)
    for result in results:
        if isinstance(result, int) and result < 0:
            raise error_for_code(result)
    return results[0]


# -- public links ------------------------------------------------------------------------------
def _link_base(core: Core) -> str:
    if (core.schema, core.domain) == ("https", "mega.co.nz"):
        return "https://mega.nz"
    return f"{core.schema}://{core.domain}"


def _legacy(core: Core) -> bool:
    return bool(core.options.get("legacy_links", False))


def _public_handle(core: Core, handle: str) -> str:
    answer = core.request({"a": "l", "n": handle, "i": core.request_id})
    if not isinstance(answer, str):
        raise UnexpectedAnswerError("the answer to l is not a public handle")
    if core.loaded_tree is not None:
        core.loaded_tree.set_extra(handle, "ph", answer)
    return answer


def get_link(core: Core, file: NodeRef) -> str:
    """:meth:`Mega.get_link`."""
    node = core.node(file, "file")
    if node.get("t") != NodeType.FILE:
        if node.get("t") == NodeType.FOLDER:
            return get_folder_link(core, file)
        raise ValidationError("only files and folders have links")
    if "key" not in node:
        raise WrongKeyError("this file cannot be decrypted, so it has no usable link")
    ph = _public_handle(core, node["h"])
    return file_link(ph, words_to_bytes(node["key"]), _link_base(core), _legacy(core))


def get_upload_link(core: Core, file: Mapping[str, Any]) -> str:
    """:meth:`Mega.get_upload_link`."""
    if not isinstance(file, Mapping) or "f" not in file:
        raise ValidationError("upload() response required as input, use get_link() for nodes")
    raw = file["f"][0] if isinstance(file["f"], list) and file["f"] else None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("k"), str) or "h" not in raw:
        raise ValidationError("upload() response required as input: it has no node")
    from ..crypto import decrypt_key

    enc = b64_bytes(str(raw["k"]).split("/")[0].partition(":")[2])
    if enc is None or len(enc) != 32:
        raise WrongKeyError("the uploaded node's key cannot be read")
    key = decrypt_key(bytes_to_words(enc), core.master_key)
    ph = _public_handle(core, raw["h"])
    return file_link(ph, words_to_bytes(key), _link_base(core), _legacy(core))


def get_folder_link(core: Core, file: NodeRef) -> str:
    """:meth:`Mega.get_folder_link`."""
    node = core.node(file, "folder")
    share_key = node.get("shared_folder_key")
    if share_key is None:
        raise ValidationError("this folder is not exported yet: use export()")
    ph = _public_handle(core, node["h"])
    return folder_link(ph, words_to_bytes(share_key), _link_base(core), _legacy(core))


def export(core: Core, path: str | None, node_id: str | None) -> str:
    """:meth:`Mega.export`."""
    tree = core.tree()
    if node_id:
        node = tree.nodes.get(node_id)
    elif path:
        found = find(core.tree(), path, None, False)
        node = found[1] if found else None
    else:
        raise ValidationError("export() needs a path or a node_id")
    if node is None:
        raise NodeNotFoundError(f"nothing to export at {path or node_id!r}")
    if node.get("t") == NodeType.FILE:
        return get_link(core, (node["h"], node))
    if node.get("t") != NodeType.FOLDER:
        raise ValidationError("only files and folders can be exported")
    if node.get("shared_folder_key") is None or node["h"] not in core.exported:
        # a folder shared with users only keeps its share key, and gets EXP too
        _shares.share_folder(core, node)
    return get_folder_link(core, (node["h"], node))


def import_public_file(
    core: Core, file_handle: str, file_key: str | bytes, dest: Any, dest_name: str | None
) -> Any:
    """:meth:`Mega.import_public_file`: a node with the public file's data (``ph``) and key."""
    from .sources import parse_file_key, public_file_info

    key = parse_file_key(file_key)
    parent = folder_handle(core, dest)
    if dest_name is None:
        dest_name = public_file_info(core, file_handle, file_key)["name"]
    item = {"ph": file_handle, "t": NodeType.FILE.value, "a": encrypt_attrs({"n": dest_name}, key)}
    return put_node(core, parent, item, key)
