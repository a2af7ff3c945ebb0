"""The node tree (a NodeStore behind mega.py-shaped queries) and the Keyring that decrypts it.

Nodes keep mega.py's dict shape: the API's fields (``h``, ``p``, ``u``, ``t``, ``s``, ``ts``,
...) plus, for a decrypted node, ``a`` (attributes dict), ``k`` (4-word AES key tuple), ``key``
(the whole key: 8 words for files, 4 for folders) and, for files, ``iv`` and ``meta_mac``.
A node whose key or attributes cannot be decrypted keeps its encrypted ``k`` string and gets
``a = False`` and ``undecryptable = True``; it stays in the tree.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._wire.codec import b64_bytes, bytes_to_words, words_to_bytes
from .._wire.gc import gc_paused
from .nodestore import NodeStore, StoreError, attrs_columns
from .treewalk import cycle_error

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
_FOLDER = int(NodeType.FOLDER)


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
        from ..crypto import decrypt_key

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
        from ..crypto import decrypt_key

        raw = b64_bytes(sk)
        if raw is None:
            return None
        if len(raw) == 16 and self.master_key is not None:
            return words_to_bytes(decrypt_key(bytes_to_words(raw), bytes_to_words(self.master_key)))
        if len(raw) > 32 and self.rsa_decrypt is not None:
            plain = self.rsa_decrypt(raw)
            return plain[:16] if plain is not None and len(plain) >= 16 else None
        return None

    def choose_key(self, k: str) -> tuple[bytes, bytes] | None:
        """(kek, encrypted key) for a node's ``k`` field; kek ``b""`` means RSA-encrypted."""
        master = self.master_key
        for part in k.split("/"):
            handle, sep, key_text = part.partition(":")
            if not sep:
                continue
            enc = b64_bytes(key_text)
            if enc is None:
                continue
            if len(enc) > 32:
                if self.rsa_decrypt is not None:
                    return b"", enc
                continue
            if handle == self.user_handle and master is not None:
                return master, enc
            kek = self.share_keys.get(handle, self.default_key)
            if kek is not None:
                return kek, enc
        return None


class NodeTree:
    """All nodes of an account (or a public folder): a :class:`NodeStore` (the one tree
    model) behind mega.py-shaped queries.

    ``nodes`` is a read-only mapping handle -> node dict, made on demand from the store;
    change the tree only through :meth:`add_nodes`, :meth:`move`, :meth:`set_attributes`,
    :meth:`set_extra` and :meth:`remove` (a changed dict is not written back).
    A folder whose share key is in the keyring gets ``shared_folder_key`` (4 words)."""

    def __init__(self, store: NodeStore | None = None, keyring: Keyring | None = None) -> None:
        self.store = store if store is not None else NodeStore()
        self.keyring = keyring if keyring is not None else Keyring()
        self.nodes: Mapping[str, dict[str, Any]] = _NodeView(self)
        self.on_change: Callable[[], None] | None = None  # called after each change below
        #: the sequence tag of the own command a change applies (``OwnTags.latest``): each
        #: change below marks its nodes with it, so that older own echoes skip them
        self.own_clock: Callable[[], tuple[int, str]] | None = None

    @property
    def root_id(self) -> str | None:
        return self.store.roots.get(NodeType.ROOT)

    @property
    def inbox_id(self) -> str | None:
        return self.store.roots.get(NodeType.INBOX)

    @property
    def trash_id(self) -> str | None:
        return self.store.roots.get(NodeType.RUBBISH)

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_answer(cls, answer: dict[str, Any], keyring: Keyring) -> NodeTree:
        """Build a tree from an ``f`` answer already parsed (absent lists are empty)."""
        tree = cls(keyring=keyring)
        keyring.add_share_keys(answer)
        with gc_paused():
            tree._insert(_as_list(answer.get("f")), keyring)  # no dict made per node
        return tree

    def add_nodes(self, raw_nodes: Iterable[Any], keyring: Keyring) -> list[dict[str, Any]]:
        """Decrypt raw API nodes (in bulk) and insert them; return the inserted nodes."""
        nodes = self._insert(raw_nodes, keyring)
        handles = [n["h"] for n in nodes if type(n) is dict and type(n.get("h")) is str]
        self._mark(handles)
        return [self._dict(h) for h in dict.fromkeys(handles) if h in self.store]

    def _insert(self, raw_nodes: Iterable[Any], keyring: Keyring) -> list[Any]:
        from .listing import add_raw_nodes

        nodes = list(raw_nodes)
        add_raw_nodes(self.store, nodes, keyring, final=True)
        self.store.adopt_orphans()
        self._changed()
        return nodes

    def _dict(self, h: str) -> dict[str, Any]:
        node = self.store.node(h)
        self._add_share_key(node)
        return node

    def _add_share_key(self, node: dict[str, Any]) -> None:
        share = self.keyring.share_keys.get(node["h"]) if node["t"] == _FOLDER else None
        if share is not None:
            node["shared_folder_key"] = bytes_to_words(share)

    # -- changes made by this client (a node the store does not know is left alone) ------------
    def remove(self, handle: str) -> None:
        """Remove a node and everything below it."""
        removed: list[str] = []
        with contextlib.suppress(StoreError):
            removed = self.store.remove(handle)
        self._mark([handle, *removed])
        self._changed()

    def move(self, handle: str, new_parent: str) -> None:
        """Record that a node now lives under ``new_parent``."""
        self._mark([handle])
        with contextlib.suppress(StoreError):
            self.store.move(handle, new_parent)
        self._changed()

    def set_attributes(self, handle: str, attrs: dict[str, Any]) -> None:
        """Record a node's new (decrypted) attributes."""
        if handle in self.store:
            self._mark([handle])
            self.store.set_attributes(handle, *attrs_columns(attrs))
            self._changed()

    def set_extra(self, handle: str, field: str, value: Any) -> None:
        """Record a raw field of a node (``ph`` after exporting it, ...)."""
        if handle in self.store:
            self._mark([handle])
            self.store.set_extra(handle, field, value)
            self._changed()

    def _mark(self, handles: Iterable[str]) -> None:
        if self.own_clock is not None:
            self.store.mark_own(handles, self.own_clock())

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- queries ------------------------------------------------------------------------------
    def visible(self) -> dict[str, dict[str, Any]]:
        """Nodes with decrypted attributes, in listing order (mega.py's ``get_files``)."""
        nodes = self.store.visible()
        if self.keyring.share_keys:
            for node in nodes.values():
                self._add_share_key(node)
        return nodes

    def child_nodes(self, parent: str) -> Iterator[dict[str, Any]]:
        """The nodes directly under ``parent``."""
        if parent in self.store:
            for h in self.store.child_handles(parent):
                yield self._dict(h)

    def children_named(self, parent: str, name: str) -> list[dict[str, Any]]:
        """The nodes directly under ``parent`` called ``name`` (in listing order)."""
        slot = self.store.slot_of.get(parent)
        if slot is None:
            return []
        handles = self.store.handles
        return [self._dict(handles[s]) for s in self.store.children_named(slot, name)]  # type: ignore[arg-type]

    def name_of(self, node: dict[str, Any]) -> str | None:
        """The node's name (``None`` when it has none, or a name that is not a string)."""
        a = node.get("a")
        name = a.get("n") if isinstance(a, dict) else None
        return name if isinstance(name, str) else None

    def in_trash(self, handle: str) -> bool:
        """True when the node is the Rubbish Bin or lies anywhere below it."""
        store = self.store
        slot, trash = store.slot_of.get(handle), store.slot_of.get(self.trash_id or "")
        return slot is not None and trash is not None and store.is_below(slot, trash)

    def find_by_name(self, name: str, exclude_deleted: bool = False) -> dict[str, Any] | None:
        """The first node (in listing order) called ``name``."""
        for h in self.store.iter_named(name):
            if not (exclude_deleted and self.in_trash(h)):
                return self._dict(h)
        return None

    def find_path(
        self, path: str, exclude_deleted: bool = False, folders_only: bool = False
    ) -> dict[str, Any] | None:
        """Resolve ``a/b/c`` from the Cloud Drive root (or from a top-level root or incoming
        share named by the first part); the first match in listing order wins."""
        store = self.store
        slot, attrs = store.find_path_match(path, folders_only)
        if slot < 0:
            return None
        node = store._dict(slot, attrs)
        if exclude_deleted and self.in_trash(node["h"]):
            return None
        if node["t"] == _FOLDER and self.keyring.share_keys:
            self._add_share_key(node)
        return node

    def public_handle_owner(self, ph: str) -> str | None:
        """The handle of the node whose public handle (``ph``) is ``ph``, if known."""
        store = self.store
        for slot, fields in store.extra.items():
            if fields.get("ph") == ph:
                return store.handles[slot]
        return None

    def path_of(self, handle: str) -> str:
        """The ``/``-separated path of a node (roots included, e.g. ``Cloud Drive/a/b``);
        :class:`~megafast.errors.TreeError` naming the cycle when its parents form one."""
        if handle not in self.store:
            return ""
        if self.store.in_cycle(handle):
            raise cycle_error(self.nodes, handle)
        return self.store.path_of(handle)

    def descendants(self, handle: str) -> Iterator[dict[str, Any]]:
        """Every node below ``handle`` (depth first, parents before children);
        :class:`~megafast.errors.TreeError` naming the cycle when ``handle`` lies below
        itself (a hostile listing)."""
        store = self.store
        start = store.slot_of.get(handle)
        if start is None:
            return
        seen = {start}
        stack = list(reversed(store.children.get(start, ())))
        while stack:
            slot = stack.pop()
            if slot == start:  # each node has one parent: only the start can come round again
                raise cycle_error(self.nodes, handle)
            h = store.handles[slot]
            if h is None or slot in seen:
                continue
            seen.add(slot)
            yield self._dict(h)
            stack.extend(reversed(store.children.get(slot, ())))


class _NodeView(Mapping[str, dict[str, Any]]):
    """``NodeTree.nodes``: handle -> mega.py-shaped node dict, made from the store on demand."""

    def __init__(self, tree: NodeTree) -> None:
        self._tree = tree

    def __getitem__(self, h: str) -> dict[str, Any]:
        if not isinstance(h, str) or h not in self._tree.store:
            raise KeyError(h)
        return self._tree._dict(h)

    def __iter__(self) -> Iterator[str]:
        return (h for h in self._tree.store.handles if h is not None)

    def __len__(self) -> int:
        return len(self._tree.store)

    def __contains__(self, h: object) -> bool:
        return h in self._tree.store


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
