"""A backup snapshot's nodes on MEGA: its folders and its files, each file a server-side
copy of the last snapshot's node (``p`` naming that node, its key kept: no byte is sent) or
a new node from an upload's token.

A ``p`` command puts its new nodes under one existing folder (``t``); a new node may hang
under another new node of the same command (``p`` naming that node's temporary handle), the
way MEGA's own clients copy a folder tree. So the snapshot is made in whole sub-trees: first
the snapshot folder and every folder whose sub-tree holds more than :data:`NODES` nodes
(one ``p``), then the other sub-trees, folders and files together, packed into commands of
at most :data:`NODES` nodes under those folders. A tree of many small folders thus costs a
few large commands, not one command per folder.

The keys of a command are wrapped with the master key in one AES-ECB pass (and, when the
backup folder is shared or exported, with each share's key, sent as ``cr`` so that those it
is shared with can read the snapshot), and each request is sent from a helper thread while
the next one is encrypted, so the client's work and the server's overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .._account.nodeops import encrypt_attrs
from .._account.shares import share_handles_above
from .._wire.codec import b64encode, bytes_to_words, words_to_bytes
from ..crypto import encrypt_key, random_key
from ..errors import MegaError, UnexpectedAnswerError
from ._state import Agreement, SyncState

__all__ = ["Entry", "make_snapshot"]

NODES = 5000  # new nodes per p command (and per request)
COMMANDS = 50  # p commands per request, at most
AHEAD = 2  # requests encrypted before the oldest one's answer is read

# (rel, source, key, agreement): ``source`` is a node copied on the server or an upload's token
Entry = tuple[str, str, Sequence[int], Agreement]
# one new node of a command: ("dir", rel) or ("file", entry index)
Item = tuple[str, Any]


@dataclass
class _Dir:
    files: list[int] = field(default_factory=list)  # entry indexes
    subdirs: list[str] = field(default_factory=list)
    size: int = 1  # nodes in its sub-tree, itself included


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def _tree(dirs: Iterable[str], entries: list[Entry]) -> dict[str, _Dir]:
    """The snapshot's folders ("" its top) with their files and sub-tree sizes."""
    tree: dict[str, _Dir] = {"": _Dir()}

    def add(rel: str) -> _Dir:
        if rel not in tree:
            tree[rel] = _Dir()
            add(_parent(rel)).subdirs.append(rel)
        return tree[rel]

    for rel in sorted(dirs):
        add(rel)
    for i, (rel, *_) in enumerate(entries):
        add(_parent(rel)).files.append(i)
    for rel in sorted(tree, key=lambda d: -d.count("/") if d else 1):
        if rel:
            tree[_parent(rel)].size += tree[rel].size + len(tree[rel].files)
    return tree


def _wrap_all(keys: Sequence[Sequence[int]], under: tuple[int, ...]) -> list[str]:
    """Each key encrypted with the 4-word key ``under`` (AES-ECB, so one pass over all of
    them gives each key's own ciphertext), as base64url."""
    if not keys:
        return []
    flat = [w for key in keys for w in key]
    wrapped = words_to_bytes(encrypt_key(flat, under))
    out, at = [], 0
    for key in keys:
        out.append(b64encode(wrapped[at : at + 4 * len(key)]))
        at += 4 * len(key)
    return out


def _created(answer: Any, count: int) -> list[str]:
    """The handles of the ``count`` nodes a ``p`` made, from its answer."""
    made = answer.get("f") if isinstance(answer, dict) else None
    if not isinstance(made, list) or len(made) != count:
        raise UnexpectedAnswerError("unexpected answer to p")
    handles = [n.get("h") if isinstance(n, dict) else None for n in made]
    if not all(isinstance(h, str) for h in handles):
        raise UnexpectedAnswerError("unexpected answer to p (no handle)")
    return [str(h) for h in handles]


class _Builder:
    """The ``p`` commands of one snapshot (see the module docstring)."""

    def __init__(self, mega: Any, name: str, entries: list[Entry], tree: dict[str, _Dir]):
        self.mega = mega
        self.name = name
        self.entries = entries
        self.tree = tree
        self.temp: dict[str, str] = {rel: f"t{i:07d}" for i, rel in enumerate(sorted(tree))}
        self.keys: dict[str, tuple[int, ...]] = {}  # folder rel -> its key
        self.master = tuple(mega.master_key)
        self.shares: list[tuple[str, tuple[int, ...]]] = []  # (handle, key) of shares above

    def under_shares(self, root: str) -> None:
        """Give every new node its key under each share at or above the folder ``root``
        too (``cr``), so that the people the folder is shared with can read the snapshot."""
        core = self.mega.core
        if core.keyring is not None:
            for share in share_handles_above(core, root):
                self.shares.append((share, bytes_to_words(core.keyring.share_keys[share])))

    def command(self, target: str, items: list[Item], under: str | None) -> dict[str, Any]:
        """A ``p`` of ``items`` into the folder handle ``target``; a node whose folder is
        ``under`` (None: every folder is made here) goes straight into ``target``."""
        keys: list[Sequence[int]] = []
        for kind, what in items:
            if kind == "dir":
                self.keys[what] = tuple(random_key(4))
                keys.append(self.keys[what])
            else:
                keys.append(self.entries[what][2])
        nodes = []
        for (kind, what), wrapped in zip(items, _wrap_all(keys, self.master), strict=True):
            if kind == "dir":
                rel = what
                name = rel.rpartition("/")[2] if rel else self.name
                node = {
                    "h": self.temp[rel],
                    "t": 1,
                    "a": encrypt_attrs({"n": name}, self.keys[rel]),
                }
            else:
                rel, source, key, agreed = self.entries[what]
                attrs = encrypt_attrs({"n": rel.rpartition("/")[2], "c": agreed.c}, tuple(key))
                node = {"h": source, "t": 0, "a": attrs}
            node["k"] = wrapped
            folder = _parent(rel) if kind == "file" or rel else None
            if folder is not None and folder != under:
                node["p"] = self.temp[folder]
            nodes.append(node)
        command = {"a": "p", "t": target, "n": nodes, "i": self.mega.request_id}
        if self.shares:  # [[shares], [the nodes as named here], [share, node, key]...]
            triples: list[Any] = []
            for si, (_, share_key) in enumerate(self.shares):
                for ni, wrapped in enumerate(_wrap_all(keys, share_key)):
                    triples += [si, ni, wrapped]
            command["cr"] = [[h for h, _ in self.shares], [n["h"] for n in nodes], triples]
        return command

    def subtree(self, rel: str) -> list[Item]:
        """A folder, its files and everything below it, each folder before its contents."""
        out: list[Item] = []
        stack = [rel]
        while stack:
            at = stack.pop()
            out.append(("dir", at))
            out.extend(("file", i) for i in self.tree[at].files)
            stack.extend(reversed(self.tree[at].subdirs))
        return out

    def packed(self, spine: set[str]) -> Iterator[tuple[str, list[Item]]]:
        """(folder of the spine, items) of at most :data:`NODES` nodes each: the spine
        folders' own files and their other sub-trees."""
        for top in sorted(spine):
            units: list[list[Item]] = [
                [("file", i)] for i in self.tree[top].files
            ]  # one file each: packed as they fit
            units += [self.subtree(d) for d in self.tree[top].subdirs if d not in spine]
            batch: list[Item] = []
            for unit in units:
                if batch and len(batch) + len(unit) > NODES:
                    yield top, batch
                    batch = []
                batch += unit
            if batch:
                yield top, batch


def _requests(
    commands: Iterator[tuple[dict[str, Any], list[Item]]],
) -> Iterator[list[tuple[dict[str, Any], list[Item]]]]:
    """Commands grouped into requests of at most :data:`NODES` nodes and :data:`COMMANDS`
    commands."""
    batch: list[tuple[dict[str, Any], list[Item]]] = []
    nodes = 0
    for command, items in commands:
        if batch and (len(batch) == COMMANDS or nodes + len(items) > NODES):
            yield batch
            batch, nodes = [], 0
        batch.append((command, items))
        nodes += len(items)
    if batch:
        yield batch


def make_snapshot(
    mega: Any,
    root: str,
    name: str,
    dirs: Iterable[str],
    entries: list[Entry],
    state: SyncState,
) -> tuple[str, tuple[int, ...]]:
    """The snapshot folder ``name`` in the folder ``root``, with the folders ``dirs`` and
    the files ``entries`` (each new file's agreement goes into ``state`` under its new
    handle); returns the snapshot folder's handle and key."""
    tree = _tree(dirs, entries)
    build = _Builder(mega, name, entries, tree)
    build.under_shares(root)
    spine = {rel for rel, d in tree.items() if not rel or d.size + len(d.files) > NODES}
    order = sorted(spine, key=lambda d: (d.count("/") if d else -1, d))
    top = build.command(root, [("dir", rel) for rel in order], None)
    handles = dict(zip(order, _created(mega._request(top), len(order)), strict=True))

    def settle(batch: list[tuple[dict[str, Any], list[Item]]], answers: list[Any]) -> None:
        for (_, items), answer in zip(batch, answers, strict=True):
            if isinstance(answer, int):
                raise MegaError(f"the server refused the snapshot's nodes ({answer})")
            for (kind, what), handle in zip(items, _created(answer, len(items)), strict=True):
                if kind == "file":
                    rel, _, _, agreed = entries[what]
                    state.files[rel] = Agreement(agreed.size, agreed.mtime_ns, agreed.c, handle)

    commands = (
        (build.command(handles[folder], items, folder), items)
        for folder, items in build.packed(spine)
    )
    pending: list[tuple[list[tuple[dict[str, Any], list[Item]]], Future[list[Any]]]] = []
    # one request in flight at a time (the client's API session is used by one thread)
    with ThreadPoolExecutor(1, thread_name_prefix="megafast-snapshot") as sender:
        try:
            for batch in _requests(commands):
                sent = sender.submit(mega._batch, [command for command, _ in batch])
                pending.append((batch, sent))
                while len(pending) > AHEAD:
                    done, future = pending.pop(0)
                    settle(done, future.result())
            while pending:
                done, future = pending.pop(0)
                settle(done, future.result())
        finally:
            for _, future in pending:
                future.cancel()
    return handles[""], build.keys[""]
