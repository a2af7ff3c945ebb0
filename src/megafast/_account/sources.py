"""Resolving what a transfer reads: account nodes and public links, to one :class:`FileSource`.

A file is named by a node of the account (a ``(handle, node)`` tuple, a node dict or a
handle), a public file link, or a link to a file inside a public folder. Every download path
(:meth:`Mega.download`, :meth:`Mega.download_url`, :meth:`Mega.download_to_fileobj`,
:meth:`Mega.open`, folder downloads) resolves it here to a :class:`FileSource`: the ``g``
command that yields a download URL, the public folder it belongs to (or ``None``), the packed
file key and the id a resumed download is known by. Public folders (listing and the node a
link names) and public file information live here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._tree import typed
from .._tree.nodes import Keyring, NodeTree, NodeType
from .._tree.treewalk import one_top
from .._wire.codec import attr_key, b64_bytes, bytes_to_words, words_to_bytes
from .._wire.links import PublicLink, is_handle, parse_link
from ..errors import (
    LinkError,
    NodeNotFoundError,
    NotFoundError,
    OverQuotaError,
    UnexpectedAnswerError,
    ValidationError,
    WrongKeyError,
    error_for_code,
)

if TYPE_CHECKING:
    from .core import Core
    from .nodeops import NodeRef

__all__ = ["FileSource", "resolve_file", "node_source", "link_source"]


@dataclass
class FileSource:
    """A remote file ready to be read.

    ``command``: the ``g`` command (by node handle ``n`` or public handle ``p``); ``folder``:
    the public folder handle the request goes through (``None`` for the account's own nodes
    and public file links); ``key``: the packed 8-word file key; ``resume_id``: what an
    interrupted download to a path is resumed by; ``answer``: the last ``g`` answer, once
    :func:`fetch` has asked for it.
    """

    command: dict[str, Any]
    folder: str | None
    key: tuple[int, ...]
    resume_id: str
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def by_link(self) -> bool:
        """True for a public file link (its key is only checked when the answer comes)."""
        return "p" in self.command

    @property
    def size(self) -> int:
        """The size the ``g`` answer declares (checked: ValidationError for a string, a
        float, a list or a number out of range)."""
        from ..transfer._plan import check_size

        return check_size(self.answer.get("s", 0), "the size in the answer to g")


def node_size(node: dict[str, Any]) -> int:
    """A file node's declared size ``s``, checked as :attr:`FileSource.size` is."""
    from ..transfer._plan import check_size

    return check_size(node.get("s", 0), f"the size of node {node.get('h')}")


def node_source(node: dict[str, Any], folder: str | None = None) -> FileSource:
    """The source of a decryptable file node (of the public folder ``folder``, or None)."""
    if node.get("t") != NodeType.FILE:
        raise ValidationError("this is a folder, not a file")
    if node.get("undecryptable") or "key" not in node:
        raise WrongKeyError("this file cannot be decrypted")
    return FileSource({"a": "g", "g": 1, "n": node["h"]}, folder, tuple(node["key"]), node["h"])


def link_source(link: PublicLink) -> FileSource:
    """The source of a public file link."""
    return FileSource({"a": "g", "g": 1, "p": link.handle}, None, link.key_a32(), link.handle)


def resolve_file(core: Core, file: NodeRef | str) -> FileSource:
    """The source of a file given as a node, a handle, a public file link or a link to a
    file inside a public folder."""
    if isinstance(file, str) and ("#" in file or "!" in file):
        link = parse_link(file)
        if link.kind == "file":
            return link_source(link)
        tree = public_folder_tree(core, link)
        return node_source(public_root(tree, link), link.handle)
    return node_source(core.node(file, "file"))


def fetch(core: Core, source: FileSource) -> dict[str, Any]:
    """Ask for a download URL (``g``); the answer is kept in ``source.answer``. Quota, a
    missing URL and error numbers raise."""
    cmd = dict(source.command)
    if core.api_url.startswith("https:"):
        cmd["ssl"] = 2
    source.answer = checked_g_answer(core.request(cmd, folder=source.folder))
    return source.answer


def checked_g_answer(data: Any) -> dict[str, Any]:
    """A ``g`` answer that carries a download URL (``data["g"]``); quota (``tl``), a missing
    URL and error numbers raise (shared with the transfer manager's batched ``g``)."""
    if not isinstance(data, dict):
        raise UnexpectedAnswerError("the answer to g is not an object")
    if "tl" in data and not data.get("g"):
        try:
            left: float | None = float(data["tl"])
        except (TypeError, ValueError):
            left = None
        raise OverQuotaError(-17, "transfer quota exceeded", time_left=left)
    if isinstance(data.get("e"), int) and data["e"] < 0:
        raise error_for_code(data["e"])
    if not isinstance(data.get("g"), str) or not data["g"]:
        raise UnexpectedAnswerError("the file is not accessible (no download URL)")
    return data


def checked_u_answer(data: Any) -> str:
    """The upload URL (``data["p"]``) of a ``u`` answer; error numbers and an answer without
    a URL raise (shared by every upload: single files, trees, sync and the filesystem)."""
    if isinstance(data, dict) and isinstance(data.get("e"), int) and data["e"] < 0:
        raise error_for_code(data["e"])
    url = data.get("p") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url:
        raise UnexpectedAnswerError("the answer to u has no upload URL")
    return url


def fetch_checked(core: Core, source: FileSource) -> dict[str, Any]:
    """:func:`fetch`, then, for a public file link, check the link's key against the file's
    attributes (a wrong key fails here, clearly, before any byte is read)."""
    data = fetch(core, source)
    if source.by_link:
        decrypt_at(data.get("at", ""), source.key)
    return data


def url_getter(core: Core, source: FileSource) -> Callable[[bool], str]:
    """``get_url(refresh)`` for the transfer engine: the URL of the last answer, or a new
    one (a new ``g``) when the engine says the old one stopped working."""

    def get_url(refresh: bool = False) -> str:
        if refresh:
            fetch(core, source)
        return str(source.answer["g"])

    return get_url


def decrypt_at(at: Any, key: tuple[int, ...]) -> dict[str, Any]:
    """A file's attributes from a ``g`` answer's ``at``; :class:`WrongKeyError` when the
    key does not decrypt them."""
    from ..crypto import decrypt_attr

    raw = b64_bytes(at) if isinstance(at, str) else None
    attrs = decrypt_attr(raw, attr_key(key)) if raw else False
    if not isinstance(attrs, dict):
        raise WrongKeyError("the key does not decrypt this file's attributes (wrong key?)")
    return attrs


def parse_file_key(file_key: str | bytes | tuple[int, ...]) -> tuple[int, ...]:
    """A packed file key given as base64url, 32 bytes or 8 words."""
    if isinstance(file_key, tuple):
        raw = words_to_bytes(file_key)
    elif isinstance(file_key, bytes):
        raw = file_key
    else:
        raw = b64_bytes(str(file_key)) or b""
    if len(raw) != 32:
        raise LinkError("a file key is 32 bytes (43 characters of base64url)")
    return bytes_to_words(raw)


# -- public files and folders ------------------------------------------------------------------
def public_file_info(core: Core, file_handle: str, file_key: str | bytes) -> dict[str, Any]:
    """``{'size': bytes, 'name': str}`` of a public file."""
    key = parse_file_key(file_key)
    if not is_handle(file_handle):
        raise LinkError("a public handle is 8 characters of base64url")
    try:
        data = core.request({"a": "g", "p": file_handle, "ssm": 1})
    except NotFoundError:
        raise NodeNotFoundError("no public file behind this link (removed?)") from None
    if not isinstance(data, dict) or "at" not in data or "s" not in data:
        raise UnexpectedAnswerError("the answer to g has no size or attributes")
    attrs = decrypt_at(data["at"], key)
    return {"size": data["s"], "name": attrs.get("n")}


def public_url_info(core: Core, url: str) -> dict[str, Any]:
    """:meth:`Mega.get_public_url_info`."""
    link = parse_link(url)
    if link.kind == "file":
        return public_file_info(core, link.handle, link.key_b64)
    nodes = public_folder_tree(core, link)
    root = public_root(nodes, link)
    inside = [root, *nodes.descendants(root["h"])]
    files = [n for n in inside if n.get("t") == NodeType.FILE]
    return {
        "size": sum(node_size(n) for n in files),
        "name": nodes.name_of(root),
        "files": len(files),
        "folders": len(inside) - len(files),
    }


def public_folder_tree(core: Core, link: PublicLink) -> NodeTree:
    """The decrypted tree of a public folder link."""
    answer = core.request({"a": "f", "c": 1, "r": 1, "ca": 1}, folder=link.handle)
    if not isinstance(answer, dict):
        raise UnexpectedAnswerError("the answer to f is not an object")
    tree = NodeTree.from_answer(answer, Keyring(default_key=link.key))
    store = tree.store
    if len(store) and not any(  # (a root or) one node the key decrypts
        2 <= store.types[s] <= 4 or (store.key_len[s] and s not in store.undecryptable)
        for s in store.slot_of.values()
    ):
        raise WrongKeyError("the key does not decrypt this folder (wrong key?)")
    return tree


def public_top(tree: NodeTree, link: PublicLink) -> str:
    """The handle of the node a folder link names: the node inside it, or the folder's top
    node (the whole listing must then be one tree below it, else
    :class:`~megafast.errors.TreeError`). Checked on the store's columns; node dicts are
    made only to name what is wrong."""
    store = tree.store
    if link.child:
        if link.child not in store:
            raise NodeNotFoundError("the link names a node that is not in the folder")
        return link.child
    if not len(store):
        raise NodeNotFoundError("the public folder is empty")
    tops = store.children.get(-1)  # the nodes whose parent is not in the listing
    if tops is not None and len(tops) == 1:
        top = store.handles[tops[0]]
        assert top is not None
        held = typed.totals(store, top)[top]
        if 1 + held.files + held.folders == len(store):
            return top
    return one_top(tree.nodes, tree.descendants)  # raises TreeError naming the nodes


def public_root(tree: NodeTree, link: PublicLink) -> dict[str, Any]:
    """The node a folder link names, as a dict (see :func:`public_top`)."""
    return tree.nodes[public_top(tree, link)]


def public_folder(core: Core, url: str) -> dict[str, dict[str, Any]]:
    """:meth:`Mega.get_public_folder`."""
    link = parse_link(url)
    if link.kind != "folder":
        raise LinkError("not a folder link")
    tree = public_folder_tree(core, link)
    root = public_root(tree, link)
    return {root["h"]: root, **{n["h"]: n for n in tree.descendants(root["h"])}}
