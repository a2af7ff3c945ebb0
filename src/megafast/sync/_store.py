"""How sync reads the account: straight from the client's node store, by slot, never through
``get_files()`` (which makes a mega.py dict for every node: ~2 GB at a million nodes).

:func:`account_store` is the one place that reaches into the client (its core) for the
store. The rest of sync gets small dicts
(``h``, ``p``, ``t``, ``s``, ``ts``, ``a`` with ``n``/``c``, ``key``) made here for the nodes
of the synced folder only, and, for server-side copies, for files of a wanted size.
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

__all__ = ["account_store", "store_sn", "StoreView"]

Node = dict[str, Any]
_WORDS8 = struct.Struct(">8I")
_WORDS4 = struct.Struct(">4I")


def account_store(mega: Any) -> Any:
    """The account's :class:`~megafast._tree.nodestore.NodeStore`, through the client's core
    (``mega.core``; the tree loaded if needed). The one adapter between sync and the tree.

    Sync reads the store's columns rather than the core's typed nodes
    (:class:`~megafast._tree.typed.TreeNode`) for two things those do not carry: the whole
    attribute set (renaming a file with ``a`` must keep the attributes other clients set)
    and a pass over the size column (the files a server-side copy may be made of)."""
    core = getattr(mega, "core", None)
    return (core.tree() if core is not None else mega._load_tree()).store


def _parse(text: bytes | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _key_of(store: Any, handle: str) -> tuple[int, ...] | None:
    slot = store.slot_of.get(handle)
    n = store.key_len[slot] if slot is not None else 0
    if not n or slot in store.undecryptable:
        return None
    return (_WORDS8 if n == 32 else _WORDS4).unpack_from(store.keys, slot * 32)


class StoreNode(dict[str, Any]):
    """A node dict whose ``key`` (a tuple of 8 words costs ~350 bytes; a re-run over
    100,000 unchanged files needs none) is read from the store, by handle, when first
    asked for; ``"key" in node`` and ``node.get("key")`` behave as for a plain dict."""

    __slots__ = ("_store",)

    def __init__(self, fields: dict[str, Any], store: Any) -> None:
        super().__init__(fields)
        self._store = store

    def _load_key(self) -> tuple[int, ...] | None:
        if dict.get(self, "undecryptable") or self._store is None:
            return None
        key = _key_of(self._store, str(dict.get(self, "h")))
        self._store = None
        if key is not None:
            dict.__setitem__(self, "key", key)
        return key

    def __missing__(self, name: str) -> Any:
        if name == "key" and self._load_key() is not None:
            return dict.__getitem__(self, "key")
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        return name == "key" and self._load_key() is not None

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default  # noqa: SIM401 (the lazy key)


class StoreView:
    """Read-only reading of a node store by slot: children, names, the small node dicts."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._by_size: dict[int, list[int]] | None = None

    def slot(self, handle: str) -> int | None:
        slot = self.store.slot_of.get(handle)
        return slot if isinstance(slot, int) else None

    def children(self, handle: str) -> Iterator[int]:
        slot = self.slot(handle)
        if slot is None:
            return iter(())
        return iter(self.store.children.get(slot, ()))

    def type_at(self, slot: int) -> int:
        return int(self.store.types[slot])

    def readable(self, slot: int) -> bool:
        """Whether the node's key and attributes could be decrypted."""
        s = self.store
        return slot not in s.undecryptable and s.key_len[slot] != 0

    def attrs_at(self, slot: int) -> dict[str, Any]:
        """The node's attributes: ``{"n": name, ...}`` (``c`` among them for a synced file)."""
        s = self.store
        parsed = _parse(s.attrs[slot])
        if parsed is not None:
            return parsed
        name = s.names[slot]
        return {"n": name} if name is not None else {}

    def node_at(self, slot: int, attrs: dict[str, Any] | None = None) -> Node:
        """The small dict sync works on (no ``k``/``iv``/``meta_mac``; ``key`` read from the
        store when first asked for)."""
        s = self.store
        t = int(s.types[slot])
        fields: Node = {
            "h": s.handles[slot],
            "p": s.parent_of_slot(slot),
            "t": t,
            "ts": int(s.times[slot]),
            "a": attrs if attrs is not None else self.attrs_at(slot),
        }
        if t == 0:
            fields["s"] = int(s.sizes[slot])
        if slot in s.undecryptable or not s.key_len[slot]:
            fields["undecryptable"] = True
        return StoreNode(fields, s)

    def node(self, handle: str) -> Node | None:
        slot = self.slot(handle)
        return None if slot is None else self.node_at(slot)

    def files_of_size(self, size: int) -> list[int]:
        """Slots of the readable files of ``size`` bytes, anywhere in the account (the size
        index is built on the first call, one pass over the size column)."""
        if self._by_size is None:
            s = self.store
            by_size: dict[int, list[int]] = defaultdict(list)
            types, sizes, key_len, handles = s.types, s.sizes, s.key_len, s.handles
            for slot in range(len(handles)):
                if types[slot] == 0 and key_len[slot] == 32 and handles[slot] is not None:
                    by_size[sizes[slot]].append(slot)
            self._by_size = dict(by_size)
        return [x for x in self._by_size.get(size, ()) if x not in self.store.undecryptable]


def store_sn(mega: Any) -> str | None:
    """The change-channel position (``sn``) the client's tree is at."""
    sn = account_store(mega).sn
    return sn if isinstance(sn, str) else None
