"""The node tree: decrypt MEGA's ``f`` answer in bulk and index it by handle and by path.

Nodes keep mega.py's dict shape: the API's fields (``h``, ``p``, ``u``, ``t``, ``s``, ``ts``,
...) plus, for a decrypted node, ``a`` (attributes dict), ``k`` (4-word AES key tuple), ``key``
(the whole key: 8 words for files, 4 for folders) and, for files, ``iv`` and ``meta_mac``.
A node whose key or attributes cannot be decrypted keeps its encrypted ``k`` string and gets
``a = False`` and ``undecryptable = True``; it stays in the tree.
"""

from __future__ import annotations

import binascii
import contextlib
import enum
import gc
import logging
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._codec import (
    B64_TABLE,
    WORDS4,
    WORDS8,
    b64_bytes,
    bytes_to_words,
    fold,
    unpack_node_key,
    words_to_bytes,
)
from ._treewalk import ancestors, cycle_error
from ._treewalk import parent_of as _parent

__all__ = [
    "Keyring",
    "NodeTree",
    "NodeType",
    "b64_bytes",
    "bytes_to_words",
    "gc_paused",
    "words_to_bytes",
    "ROOT_NAMES",
]


logger = logging.getLogger("megafast.nodes")


class NodeType(enum.IntEnum):
    """A node's ``t``: it compares equal to the API's numbers 0-4."""

    FILE = 0
    FOLDER = 1
    ROOT = 2  # the Cloud Drive
    INBOX = 3
    RUBBISH = 4


ROOT_NAMES: dict[int, str] = {
    NodeType.ROOT: "Cloud Drive",
    NodeType.INBOX: "Inbox",
    NodeType.RUBBISH: "Rubbish Bin",
}
_ROOT_TYPES = tuple(ROOT_NAMES)
# plain ints for the loops that run once per node (an enum member lookup costs more)
_FILE, _FOLDER = int(NodeType.FILE), int(NodeType.FOLDER)


@contextlib.contextmanager
def gc_paused() -> Generator[None, None, None]:
    """Pause the cyclic garbage collector while building many small objects (a 100,000-node
    listing allocates millions; the collector would rescan them all again and again)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Keyring:
    """The keys a listing can be decrypted with.

    ``master_key``: 16 bytes (``None`` for a public folder); ``user_handle``: the account's
    handle (``k`` entries with it are under the master key); ``share_keys``: share or folder
    handle -> 16-byte key; ``default_key``: a key for ``k`` entries of any handle (a public
    folder's key); ``rsa_decrypt``: decrypts an RSA-encrypted key (MPI bytes) or returns None.
    """

    master_key: bytes | None = field(default=None, repr=False)
    user_handle: str | None = None
    share_keys: dict[str, bytes] = field(default_factory=dict, repr=False)
    default_key: bytes | None = field(default=None, repr=False)
    rsa_decrypt: Callable[[bytes], bytes | None] | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never show keys: only which ones are held
        held = [n for n in ("master_key", "default_key", "rsa_decrypt") if getattr(self, n)]
        return (
            f"Keyring(user_handle={self.user_handle!r}, keys={held}, "
            f"share_keys={len(self.share_keys)})"
        )

    def add_share_keys(self, answer: dict[str, Any]) -> None:
        """Learn share keys from an ``f`` answer: ``ok`` entries and ``sk`` on share roots."""
        from .crypto import decrypt_key

        for item in _as_list(answer.get("ok")):
            if not isinstance(item, dict):
                continue
            raw = b64_bytes(item.get("k", "")) if isinstance(item.get("k"), str) else None
            if raw is not None and len(raw) == 16 and self.master_key is not None:
                self.share_keys[item.get("h", "")] = words_to_bytes(
                    decrypt_key(bytes_to_words(raw), bytes_to_words(self.master_key))
                )
        # only share roots carry sk: find them with a comprehension (100,000s of nodes)
        roots = [n for n in _as_list(answer.get("f")) if type(n) is dict and "sk" in n]
        for node in roots:
            if isinstance(node.get("sk"), str):
                key = self.decrypt_share_key(node["sk"])
                if key is not None:
                    self.share_keys[node.get("h", "")] = key

    def decrypt_share_key(self, sk: str) -> bytes | None:
        """A share key from an ``sk`` field: AES under the master key if short, else RSA."""
        from .crypto import decrypt_key

        raw = b64_bytes(sk)
        if raw is None:
            return None
        if len(raw) == 16 and self.master_key is not None:
            return words_to_bytes(decrypt_key(bytes_to_words(raw), bytes_to_words(self.master_key)))
        if len(raw) > 32 and self.rsa_decrypt is not None:
            plain = self.rsa_decrypt(raw)
            return plain[:16] if plain is not None and len(plain) >= 16 else None
        return None


class NodeTree:
    """All nodes of an account (or a public folder), indexed by handle, parent and name."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[str]] = {}
        self.root_id: str | None = None
        self.inbox_id: str | None = None
        self.trash_id: str | None = None
        self._visible: dict[str, dict[str, Any]] | None = None
        # name -> handles and (parent, name) -> handles, in listing order: built on the first
        # lookup by name, not with the tree (a listing alone, like get_files, never needs
        # them, and 100,000s of small lists cost time to build and to garbage-collect)
        self._by_name: dict[str, list[str]] | None = None
        self._by_parent_name: dict[tuple[str, str], list[str]] | None = None

    @property
    def by_name(self) -> dict[str, list[str]]:
        """Handles by node name, in listing order."""
        if self._by_name is None:
            self._build_name_indexes()
        assert self._by_name is not None
        return self._by_name

    @property
    def by_parent_name(self) -> dict[tuple[str, str], list[str]]:
        """Handles by (parent handle, node name), in listing order."""
        if self._by_parent_name is None:
            self._build_name_indexes()
        assert self._by_parent_name is not None
        return self._by_parent_name

    def _build_name_indexes(self) -> None:
        by_name: dict[str, list[str]] = {}
        by_parent_name: dict[tuple[str, str], list[str]] = {}
        with gc_paused():
            for h, node in self.nodes.items():
                a = node.get("a")
                if type(a) is not dict:
                    continue
                name = a.get("n")
                if type(name) is not str:
                    continue
                same = by_name.get(name)
                if same is None:
                    by_name[name] = [h]
                else:
                    same.append(h)
                parent = node.get("p")
                pair = (parent if type(parent) is str else "", name)
                same = by_parent_name.get(pair)
                if same is None:
                    by_parent_name[pair] = [h]
                else:
                    same.append(h)
        self._by_name, self._by_parent_name = by_name, by_parent_name

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_answer(cls, answer: dict[str, Any], keyring: Keyring) -> NodeTree:
        """Build a tree from an ``f`` answer (absent lists are empty)."""
        tree = cls()
        keyring.add_share_keys(answer)
        with gc_paused():
            tree.add_nodes(_as_list(answer.get("f")), keyring)
        return tree

    def add_nodes(self, raw_nodes: Iterable[Any], keyring: Keyring) -> list[dict[str, Any]]:
        """Decrypt raw API nodes (in bulk) and insert them; return the inserted nodes."""
        from .crypto import decrypt_nodes

        added: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = []
        keks: list[bytes] = []
        enc_keys: list[bytes] = []
        enc_attrs: list[bytes] = []
        rsa_pending: list[tuple[dict[str, Any], bytes]] = []
        master = keyring.master_key
        own_prefix = f"{keyring.user_handle}:" if keyring.user_handle and master else None
        plen = len(own_prefix) if own_prefix else 0
        a2b = binascii.a2b_base64
        table = B64_TABLE
        b64err = (binascii.Error, UnicodeEncodeError)
        all_master = True
        bad = 0
        for node in raw_nodes:
            try:
                t = node["t"]
                if not isinstance(node["h"], str) or not node["h"]:
                    bad += 1
                    continue
            except (TypeError, KeyError, IndexError):
                bad += 1
                continue
            added.append(node)
            if t in (_FILE, _FOLDER):
                k = node.get("k")
                a = node.get("a")
                if type(k) is not str or type(a) is not str:
                    _mark_undecryptable(node)
                    continue
                kek: bytes | None = None
                enc: bytes | None = None
                # fast path: one entry under the account's own handle
                if own_prefix is not None and k.startswith(own_prefix) and "/" not in k:
                    try:
                        enc = a2b((k[plen:] + "==").encode("ascii").translate(table))
                        if len(enc) <= 32:  # longer: RSA-encrypted, see _choose_key
                            kek = master
                    except b64err:
                        enc = None
                if kek is None:
                    chosen = self._choose_key(k, keyring)
                    if chosen is None:
                        _mark_undecryptable(node)
                        continue
                    kek, enc = chosen
                    if not kek:  # RSA-encrypted: decrypted one by one below
                        rsa_pending.append((node, enc))
                        continue
                    if kek is not master:
                        all_master = False
                try:
                    attr_bytes = a2b((a + "==").encode("ascii").translate(table))
                except b64err:
                    attr_bytes = b""
                pending.append(node)
                keks.append(kek)
                enc_keys.append(enc)  # type: ignore[arg-type]
                enc_attrs.append(attr_bytes)
            elif type(t) is int and t in ROOT_NAMES:
                node["a"] = {"n": ROOT_NAMES[t]}
                if t == NodeType.ROOT:
                    self.root_id = node["h"]
                elif t == NodeType.INBOX:
                    self.inbox_id = node["h"]
                else:
                    self.trash_id = node["h"]
            else:
                _mark_undecryptable(node)
        if pending:
            kek_arg: bytes | list[bytes] = master if all_master and master else keks  # type: ignore[assignment]
            results = decrypt_nodes(kek_arg, enc_keys, enc_attrs)
            unpack8 = WORDS8.unpack
            unpack4 = WORDS4.unpack
            # _apply inlined for the usual cases: this loop runs once per node
            for node, (key, attrs) in zip(pending, results, strict=True):
                if key is not None and type(attrs) is dict:
                    if node["t"] == _FILE:
                        if len(key) == 32:
                            w = unpack8(key)
                            node["key"] = w
                            node["k"] = fold(w)
                            node["iv"] = (w[4], w[5], 0, 0)
                            node["meta_mac"] = w[6:]
                            node["a"] = attrs
                            continue
                    elif len(key) == 16:
                        w = unpack4(key)
                        node["key"] = w
                        node["k"] = w
                        node["a"] = attrs
                        continue
                _apply(node, key, attrs)
        if bad:
            logger.warning(
                "%d entries of the listing are not nodes (no handle, no type): skipped", bad
            )
        for node, enc in rsa_pending:
            self._apply_rsa(node, enc, keyring)
        self._insert_many(added, keyring.share_keys)
        return added

    @staticmethod
    def _choose_key(k: str, keyring: Keyring) -> tuple[bytes, bytes] | None:
        """(kek, encrypted key) for a ``k`` field; kek ``b""`` means RSA-encrypted."""
        master = keyring.master_key
        for part in k.split("/"):
            handle, sep, key_text = part.partition(":")
            if not sep:
                continue
            enc = b64_bytes(key_text)
            if enc is None:
                continue
            if len(enc) > 32:
                if keyring.rsa_decrypt is not None:
                    return b"", enc
                continue
            if handle == keyring.user_handle and master is not None:
                return master, enc
            kek = keyring.share_keys.get(handle, keyring.default_key)
            if kek is not None:
                return kek, enc
        return None

    def _insert_many(self, nodes: list[dict[str, Any]], shares: dict[str, bytes]) -> None:
        existing = self.nodes
        children = self.children
        by_name = self._by_name  # None until a lookup by name needs them
        by_parent_name = self._by_parent_name
        for node in nodes:
            h = node["h"]
            old = existing.get(h)
            if old is not None:
                self._unlink(old)
            existing[h] = node
            if h in shares and node.get("t") == _FOLDER:
                node["shared_folder_key"] = bytes_to_words(shares[h])
            parent = node.get("p")
            if type(parent) is not str:
                parent = ""
            siblings = children.get(parent)
            if siblings is None:
                children[parent] = [h]
            else:
                siblings.append(h)
            if by_name is None or by_parent_name is None:
                continue
            a = node.get("a")
            if type(a) is dict:
                name = a.get("n")
                if type(name) is str:
                    same = by_name.get(name)
                    if same is None:
                        by_name[name] = [h]
                    else:
                        same.append(h)
                    pair = (parent, name)
                    same = by_parent_name.get(pair)
                    if same is None:
                        by_parent_name[pair] = [h]
                    else:
                        same.append(h)
        self._visible = None

    def _apply_rsa(self, node: dict[str, Any], enc: bytes, keyring: Keyring) -> None:
        from .crypto import decrypt_attr

        plain = keyring.rsa_decrypt(enc) if keyring.rsa_decrypt else None
        want = 32 if node.get("t") == NodeType.FILE else 16
        attr_bytes = b64_bytes(node["a"]) if isinstance(node.get("a"), str) else None
        if plain is None or len(plain) < want or not attr_bytes:
            _mark_undecryptable(node)
            return
        key = plain[:want]
        fields = unpack_node_key(key, want == 32)
        assert fields is not None  # the length was checked above
        attrs = decrypt_attr(attr_bytes, fields["k"])
        _apply(node, key, attrs if isinstance(attrs, dict) else None)

    def _unlink(self, node: dict[str, Any]) -> None:
        h = node["h"]
        siblings = self.children.get(_parent(node))
        if siblings is not None:
            with contextlib.suppress(ValueError):
                siblings.remove(h)
        name = _name(node)
        by_name, by_parent_name = self._by_name, self._by_parent_name
        if by_name is not None and by_parent_name is not None and name is not None:
            _discard(by_name, name, h)
            _discard(by_parent_name, (_parent(node), name), h)
        self._visible = None

    # -- changes made by this client --------------------------------------------------------
    def remove(self, handle: str) -> None:
        """Remove a node and everything below it."""
        stack = [handle]
        while stack:
            h = stack.pop()
            node = self.nodes.pop(h, None)
            if node is not None:
                self._unlink(node)
            stack.extend(self.children.pop(h, ()))

    def move(self, handle: str, new_parent: str) -> None:
        """Record that a node now lives under ``new_parent``."""
        node = self.nodes.get(handle)
        if node is None:
            return
        self._unlink(node)
        node["p"] = new_parent
        self._insert_links(node)

    def set_attributes(self, handle: str, attrs: dict[str, Any]) -> None:
        """Record a node's new (decrypted) attributes."""
        node = self.nodes.get(handle)
        if node is None:
            return
        self._unlink(node)
        node["a"] = attrs
        self._insert_links(node)

    def _insert_links(self, node: dict[str, Any]) -> None:
        self.children.setdefault(_parent(node), []).append(node["h"])
        name = _name(node)
        by_name, by_parent_name = self._by_name, self._by_parent_name
        if by_name is not None and by_parent_name is not None and name is not None:
            by_name.setdefault(name, []).append(node["h"])
            by_parent_name.setdefault((_parent(node), name), []).append(node["h"])
        self._visible = None

    # -- queries ------------------------------------------------------------------------------
    def visible(self) -> dict[str, dict[str, Any]]:
        """Nodes with decrypted attributes, in listing order (mega.py's ``get_files``)."""
        if self._visible is None:
            self._visible = {h: n for h, n in self.nodes.items() if n.get("a")}
        return self._visible

    def child_nodes(self, parent: str) -> Iterator[dict[str, Any]]:
        """The nodes directly under ``parent``."""
        for h in self.children.get(parent, ()):
            node = self.nodes.get(h)
            if node is not None:
                yield node

    def children_named(self, parent: str, name: str) -> list[dict[str, Any]]:
        """The nodes directly under ``parent`` called ``name`` (in listing order)."""
        return [
            self.nodes[h] for h in self.by_parent_name.get((parent, name), ()) if h in self.nodes
        ]

    def name_of(self, node: dict[str, Any]) -> str | None:
        """The node's name (``None`` when it has none, or a name that is not a string)."""
        return _name(node)

    def in_trash(self, handle: str) -> bool:
        """True when the node is the Rubbish Bin or lies anywhere below it."""
        if self.trash_id is None:
            return False
        return any(node["h"] == self.trash_id for node in ancestors(self.nodes, handle))

    def find_by_name(self, name: str, exclude_deleted: bool = False) -> dict[str, Any] | None:
        """The first node (in listing order) called ``name``."""
        for h in self.by_name.get(name, ()):
            if exclude_deleted and self.in_trash(h):
                continue
            node = self.nodes.get(h)
            if node is not None:
                return node
        return None

    def find_path(
        self, path: str, exclude_deleted: bool = False, folders_only: bool = False
    ) -> dict[str, Any] | None:
        """Resolve ``a/b/c`` from the Cloud Drive root (or from a top-level root or incoming
        share named by the first part); the first match in listing order wins."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return self.nodes.get(self.root_id) if self.root_id else None
        starts: list[str] = []
        if self.root_id is not None:
            starts.append(self.root_id)
        found = self._walk(starts, parts, exclude_deleted, folders_only)
        if found is not None:
            return found
        # the first part may name a root ("Rubbish Bin/x") or an incoming share's top folder
        for h in self.by_name.get(parts[0], ()):
            node = self.nodes.get(h)
            if node is None or (_parent(node) in self.nodes and node.get("t") not in _ROOT_TYPES):
                continue
            if len(parts) == 1:
                if not folders_only or node.get("t") != NodeType.FILE:
                    return node
                continue
            found = self._walk([h], parts[1:], exclude_deleted, folders_only)
            if found is not None:
                return found
        return None

    def _walk(
        self, starts: list[str], parts: list[str], exclude_deleted: bool, folders_only: bool
    ) -> dict[str, Any] | None:
        for start in starts:
            stack: list[tuple[str, int]] = [(start, 0)]
            while stack:
                h, depth = stack.pop()
                name = parts[depth]
                last = depth == len(parts) - 1
                matches = [
                    c
                    for c in self.children_named(h, name)
                    if (not last or not folders_only or c.get("t") != _FILE)
                    and (last or c.get("t") != _FILE)
                ]
                if last:
                    for c in matches:
                        if exclude_deleted and self.in_trash(c["h"]):
                            continue
                        return c
                    continue
                for c in reversed(matches):
                    stack.append((c["h"], depth + 1))
        return None

    def path_of(self, handle: str) -> str:
        """The ``/``-separated path of a node (roots included, e.g. ``Cloud Drive/a/b``)."""
        parts = [_name(node) or node["h"] for node in ancestors(self.nodes, handle)]
        return "/".join(reversed(parts))

    def descendants(self, handle: str) -> Iterator[dict[str, Any]]:
        """Every node below ``handle`` (depth first, parents before children);
        :class:`TreeError` when ``handle`` lies below itself."""
        stack = list(reversed(self.children.get(handle, ())))
        while stack:
            h = stack.pop()
            if h == handle:  # each node has one parent: only the start can come round again
                raise cycle_error(self.nodes, handle)
            node = self.nodes.get(h)
            if node is None:
                continue
            yield node
            stack.extend(reversed(self.children.get(h, ())))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name(node: dict[str, Any]) -> str | None:
    """The node's decrypted name, or None when it has none (yet)."""
    a = node.get("a")
    if isinstance(a, dict) and isinstance(a.get("n"), str):
        return a["n"]
    return None


def _discard(index: dict[Any, list[str]], key: Any, handle: str) -> None:
    """Take ``handle`` out of ``index[key]``; an entry left empty goes."""
    same = index.get(key)
    if same is not None:
        with contextlib.suppress(ValueError):
            same.remove(handle)
        if not same:
            del index[key]


def _mark_undecryptable(node: dict[str, Any]) -> None:
    node["a"] = False
    node["undecryptable"] = True


def _apply(node: dict[str, Any], key: bytes | None, attrs: dict[str, Any] | None) -> None:
    if key is None or not isinstance(attrs, dict):
        _mark_undecryptable(node)
        return
    fields = unpack_node_key(key, node.get("t") == NodeType.FILE)
    if fields is None:
        _mark_undecryptable(node)
        return
    node.update(fields)
    node["a"] = attrs
