"""The remote side of a sync: an index of the account's nodes (the folder being synced, and
every file by content for server-side copies) and the commands that change it.

Commands ``Mega`` has no method for are sent here with ``Mega._request``: creating nodes
with ``p`` from an upload token or from an existing file (a server-side copy, the key kept),
``ov``/``vb`` for versions (PROTOCOL.md Part 2 §4-§5), and ``a`` to set attributes.
Deletions go to the Rubbish Bin (``Mega.delete``), never destroyed.
"""

from __future__ import annotations

import contextlib
import weakref
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._wire.codec import fold, words_to_bytes
from ..errors import TreeError, UnexpectedAnswerError
from ..media._remote import PendingPictures, start_pictures
from ._content import Fingerprint, parse_fingerprint
from ._ignore import IgnoreRules
from ._names import remote_name_problem
from ._store import StoreView, account_store

__all__ = [
    "RemoteIndex",
    "RemoteScan",
    "RemoteOps",
    "list_versions",
    "mark_changed",
    "refresh_if_changed",
    "remove_versions",
]

Node = dict[str, Any]

# clients whose node tree misses changes made here with commands the tree does not follow
# (``p`` and ``a`` sent by this package): the tree is fetched again before it is read next
_STALE_TREES: weakref.WeakSet[Any] = weakref.WeakSet()


def mark_changed(mega: Any) -> None:
    _STALE_TREES.add(mega)


def refresh_if_changed(mega: Any) -> None:
    """Fetch ``mega``'s node tree again when a sync (or a version removal) changed the
    account through this client since the tree was loaded."""
    if mega in _STALE_TREES:
        mega.refresh()
        _STALE_TREES.discard(mega)


def _name(node: Node) -> Any:
    attrs = node.get("a")
    return attrs.get("n") if isinstance(attrs, dict) else None


def node_c(node: Node) -> str | None:
    attrs = node.get("a")
    c = attrs.get("c") if isinstance(attrs, dict) else None
    return c if isinstance(c, str) else None


def node_fingerprint(node: Node) -> Fingerprint | None:
    return parse_fingerprint(node_c(node))


@dataclass
class RemoteScan:
    files: dict[str, Node] = field(default_factory=dict)
    dirs: dict[str, str] = field(default_factory=dict)  # rel -> folder handle ("" = the root)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class RemoteIndex:
    """The account's nodes as sync reads them: straight from the client's node store (see
    :mod:`._store`); node dicts are made only for the synced folder's nodes and for the
    files a server-side copy may be made of."""

    def __init__(self, view: StoreView) -> None:
        self.view = view
        self._by_content: dict[tuple[int, bytes], list[Node]] = {}
        self._sizes_done: set[int] = set()

    @classmethod
    def of(cls, mega: Any) -> RemoteIndex:
        return cls(StoreView(account_store(mega)))

    def same_content(self, size: int, fp: Fingerprint) -> list[Node]:
        """Files anywhere in the account whose size and CRC samples are ``size`` and
        ``fp``'s: candidates for a server-side copy (the files of that size are read from
        the store on the first ask for it)."""
        if size not in self._sizes_done:
            self._sizes_done.add(size)
            for slot in self.view.files_of_size(size):
                node = self.view.node_at(slot)
                found = node_fingerprint(node)
                if found is not None and "key" in node:
                    self._by_content.setdefault((size, found.crc), []).append(node)
        return list(self._by_content.get((size, fp.crc), ()))

    def scan(self, root: str, rules: IgnoreRules) -> RemoteScan:
        """Files and folders below the folder ``root`` by POSIX path, as :func:`scan_local`
        gives the local ones. Versions (files under files) are not walked. Two files of one
        name in one folder (MEGA keeps old versions out of the folder, so this is another
        client's doing): the newest is used, on a tie the later listed, and it is noted."""
        view = self.view
        out = RemoteScan()
        out.dirs[""] = root
        stack = [("", root)]
        while stack:
            rel_dir, handle = stack.pop()
            problem = rules.folder_problem(rel_dir)
            if problem:
                out.skipped[rel_dir or "."] = problem
                if rel_dir:
                    del out.dirs[rel_dir]
                continue
            named: dict[str, list[Node]] = defaultdict(list)
            for slot in view.children(handle):
                t = view.type_at(slot)
                if t not in (0, 1):
                    continue
                attrs = view.attrs_at(slot)
                name = attrs.get("n")
                h = view.store.handles[slot]
                rel = f"{rel_dir}/{name}" if rel_dir and isinstance(name, str) else name
                problem = remote_name_problem(name)
                if problem or not isinstance(name, str) or not isinstance(rel, str):
                    out.skipped[f"{rel_dir}/{h}" if rel_dir else str(h)] = (
                        f"remote node {h}: {problem}"
                    )
                    continue
                if rules.ignored(rel, t == 1, int(view.store.sizes[slot]) if t == 0 else None):
                    continue
                if not view.readable(slot):
                    out.skipped[rel] = "the remote node cannot be decrypted"
                    continue
                if t == 1:
                    named[name].append({"h": h, "t": 1})
                else:
                    named[name].append(view.node_at(slot, attrs))
            for name, group in named.items():
                rel = f"{rel_dir}/{name}" if rel_dir else name
                folders = [n for n in group if n.get("t") == 1]
                files = [n for n in group if n.get("t") == 0]
                if folders and files:
                    out.skipped[rel] = "a remote file and a remote folder have this name"
                    continue
                if len(folders) > 1:
                    out.skipped[rel] = "several remote folders have this name"
                    continue
                if folders:
                    if folders[0]["h"] == root:  # each node has one parent: only root comes round
                        raise TreeError(
                            f"the listing is not a tree: the synced folder lies inside {rel}",
                            (root,),
                        )
                    out.dirs[rel] = folders[0]["h"]
                    stack.append((rel, folders[0]["h"]))
                    continue
                chosen = files[0]  # the newest; on a tie the later listed
                for n in files[1:]:
                    if int(n.get("ts") or 0) >= int(chosen.get("ts") or 0):
                        chosen = n
                if len(files) > 1:
                    out.notes.append(
                        f"{rel}: {len(files)} remote files have this name; using {chosen['h']}"
                    )
                out.files[rel] = chosen
        return out


class RemoteOps:
    """The remote changes a sync makes, through one logged-in ``Mega``."""

    def __init__(self, mega: Any, *, versions: bool = True, thumbnails: bool | None = None) -> None:
        self.mega = mega
        self.versions = versions
        # images (and videos, with ffmpeg) get a thumbnail and a preview: ``thumbnails``,
        # else the client's option (on by default when Pillow is installed)
        option = mega.options.get("thumbnails") if thumbnails is None else thumbnails
        self.pictures = option is not False
        # how a new node's ``p`` is sent (a transfer manager's batcher while one runs), and
        # what is released while it waits for the answer (the executor's lock)
        self.call: Callable[[dict[str, Any]], Any] = mega._request
        self.unlocked: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext

    def _send(self, command: dict[str, Any]) -> Any:
        with self.unlocked():
            return self.call(command)

    def mkdir(self, parent: str, name: str) -> str:
        return str(self.mega.create_folder(name, dest=parent)[name])

    def start_pictures(self, path: Path) -> PendingPictures | None:
        """Start making the thumbnail and preview of the local file ``path`` (on the
        pictures' threads, while it uploads) when the sync makes them and it is an image."""
        return start_pictures(path, self.pictures)

    def _put(
        self,
        parent: str,
        name: str,
        c: str,
        key: Any,
        handle: str,
        replaces: str | None,
        pictures: PendingPictures | None = None,
    ) -> Node:
        """One file node under ``parent`` (``handle``: an upload token, or the file a
        server-side copy is made of), through the client's one ``p`` routine (which wraps
        the key, adds share keys for shared folders and files the new node in the tree),
        with ``pictures`` stored and attached when they could be made."""
        from .._account.nodeops import encrypt_attrs, put_node

        key = tuple(key)
        item: dict[str, Any] = {"h": handle, "t": 0, "a": encrypt_attrs({"n": name, "c": c}, key)}
        if pictures is not None:
            core = self.mega.core
            with self.unlocked():
                fa = pictures.store(core.batch, core.http, words_to_bytes(fold(key)))
            if fa:
                item["fa"] = fa
        if replaces is not None:  # the old file: kept as a version (vb 1) or replaced (vb 0)
            item["ov"] = replaces
            item["vb"] = 1 if self.versions else 0
        answer = put_node(self.mega.core, parent, item, key, call=self._send)
        made = answer.get("f") if isinstance(answer, dict) else None
        if not isinstance(made, list) or not made or not isinstance(made[-1], dict):
            raise UnexpectedAnswerError("unexpected answer to p")
        node = dict(made[-1])
        if not isinstance(node.get("h"), str):
            raise UnexpectedAnswerError("unexpected answer to p (no handle)")
        return node

    def put_upload(
        self,
        parent: str,
        name: str,
        c: str,
        token: str,
        key: Any,
        replaces: str | None,
        pictures: PendingPictures | None = None,
    ) -> Node:
        """A file node from a finished upload (``token``, packed 8-word ``key``); with
        ``replaces``, the old file becomes a version of it (or is replaced: ``versions``);
        ``pictures``: from :meth:`start_pictures`."""
        return self._put(parent, name, c, key, token, replaces, pictures)

    def put_copy(self, parent: str, name: str, c: str, source: Node, replaces: str | None) -> Node:
        """A server-side copy of the file ``source`` (same key, new name and ``c``)."""
        return self._put(parent, name, c, source["key"], source["h"], replaces)

    def set_attributes(self, node: Node, **changes: Any) -> None:
        """Change a node's attributes (``n`` name, ``c`` fingerprint), keeping the rest."""
        from .._account.nodeops import encrypt_attrs, wrap_key

        attrs = dict(node["a"]) if isinstance(node.get("a"), dict) else {}
        attrs.update(changes)
        self._send(
            {
                "a": "a",
                "n": node["h"],
                "attr": encrypt_attrs(attrs, tuple(node["key"])),
                "key": wrap_key(self.mega.core, tuple(node["key"])),
                "i": self.mega.request_id,
            }
        )
        node["a"] = attrs

    def move(self, node: Node, parent: str) -> None:
        self.mega.move(node["h"], parent)
        node["p"] = parent

    def trash(self, handle: str) -> None:
        """Into the Rubbish Bin (recoverable), never destroyed."""
        self.mega.delete(handle)


def _older_versions(mega: Any) -> list[Node]:
    """The account's old versions, from the ``f2`` part of a fresh listing (the client's
    node tree keeps only current nodes): handle, parent, size, time and name, decrypted
    with the master key."""
    from .._wire.codec import attr_key
    from ..crypto import base64_to_a32, base64_url_decode, decrypt_attr, decrypt_key

    answer = mega._request({"a": "f", "c": 1, "r": 1})
    found: list[Node] = []
    for raw in (answer.get("f2") if isinstance(answer, dict) else None) or ():
        if not isinstance(raw, dict) or raw.get("t") != 0 or not isinstance(raw.get("k"), str):
            continue
        for part in raw["k"].split("/"):
            try:
                key = decrypt_key(base64_to_a32(part.partition(":")[2]), mega.master_key)
                attrs = decrypt_attr(base64_url_decode(raw.get("a", "")), attr_key(key))
            except (ValueError, TypeError):
                continue
            if isinstance(attrs, dict):
                found.append({**raw, "a": attrs, "key": key})
                break
    return found


def list_versions(mega: Any, file: Any) -> list[Node]:
    """The older versions of a file (newest first): the files whose parent is the file, then
    theirs, as MEGA stores them (PROTOCOL.md Part 2 §4). ``file``: a handle or a node."""
    handle = file if isinstance(file, str) else file["h"]
    refresh_if_changed(mega)
    view = StoreView(account_store(mega))
    children: dict[str, list[Node]] = defaultdict(list)
    for node in _older_versions(mega):
        if isinstance(node.get("p"), str):
            children[node["p"]].append(node)
    found: list[Node] = []
    seen = {handle}
    while True:
        older = [view.node_at(s) for s in view.children(handle) if view.type_at(s) == 0]
        older += [n for n in children.get(handle, ()) if n.get("t") == 0]
        if not older or older[0]["h"] in seen:
            return found
        found.append(older[0])
        handle = older[0]["h"]
        seen.add(handle)


def remove_versions(mega: Any, file: Any) -> int:
    """Delete the older versions of a file (the file itself stays); returns how many.
    Removing the newest older version removes every older one with it (``d``)."""
    versions = list_versions(mega, file)
    if versions:
        mega._request({"a": "d", "n": versions[0]["h"], "i": mega.request_id})
        mark_changed(mega)
    return len(versions)
