"""A compact store of decrypted nodes, for accounts with millions of them.

Nodes live in columns indexed by a slot number: handles in a list (the handle -> slot dict
shares the same string objects), parent slots, types, sizes and timestamps in ``array``s,
keys packed in one ``bytearray`` (32 bytes a slot), owner handles interned, names as
strings, and the full attribute JSON kept only for nodes whose attributes hold more than a
name; a CRC-32 of every name is kept in a column too. Children are ``array``s of slots per
folder. Lookups by name go through those hashes: a folder whose children are one run of
consecutive slots (as a listing puts them) is searched in the hash column directly; any other
folder gets a hash -> slots dict the first time a path goes through it. A hash only picks
candidates: the name itself is always compared. Nothing here decrypts: :mod:`megafast._tree.listing` fills
the store, :mod:`megafast._tree.watch` changes it, :mod:`megafast._tree.cache` saves and loads it.

``node(handle)`` gives the mega.py-shaped dict that ``get_files()`` returns (see
:mod:`megafast._tree.nodes` for the fields), made on demand.
"""

from __future__ import annotations

import contextlib
import json
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from typing import Any

from .._wire.codec import fold
from ..errors import MegaError
from .nodelookup import (
    _NO_PARENT,
    _Lookups,
    _name_in,
    _NameIndex,
    name_hash,
    name_hashes,
    parse_attrs,
)

__all__ = ["NodeStore", "StoreError", "ROOT_NAMES", "attrs_columns", "name_hash"]

ROOT_NAMES = {2: "Cloud Drive", 3: "Inbox", 4: "Rubbish Bin"}
_WORDS4 = struct.Struct(">4I")
_WORDS8 = struct.Struct(">8I")
_FREE = -2  # a parent value marking a slot whose node was removed
#: Marks of this client's own changes (NodeStore.own_marks) before echoes sweep old ones.
_MARKS_KEPT = 4096
#: At most this many marks: a client that reads no echoes (no watcher) never sweeps them.
_MARKS_MAX = 65536


def _unless(name: str | None, attrs_json: bytes | None) -> str | None:
    """The name to keep beside the attributes: none when the attribute JSON (which holds it)
    is kept."""
    return name if attrs_json is None else None


def attrs_columns(attrs: dict[str, Any]) -> tuple[str | None, bytes | None]:
    """A decrypted attribute dict as the store keeps it: (name, JSON bytes when it holds
    more than a name)."""
    name = attrs.get("n") if isinstance(attrs.get("n"), str) else None
    if len(attrs) == 1 and name is not None:
        return name, None
    return name, json.dumps(attrs, separators=(",", ":"), ensure_ascii=False).encode()


def _batch_attrs(texts: list[bytes | None]) -> list[Any]:
    """Many attribute JSON texts parsed at once (None for one that does not parse)."""
    from ..crypto._bulk import _parse_attr_batch

    return _parse_attr_batch(texts)


class StoreError(MegaError):
    """A change that the store cannot apply: an unknown node, or a move forming a cycle."""


class NodeStore(_Lookups):
    """All nodes of an account, in columns; see the module docstring."""

    def __init__(self) -> None:
        self.handles: list[str | None] = []
        self.slot_of: dict[str, int] = {}
        self.parent = array("i")
        self.types = array("b")
        self.sizes = array("q")
        self.times = array("q")
        self.key_len = array("b")  # 0 (no key: undecryptable or a root), 16 or 32
        self.keys = bytearray()
        self.owners: list[str] = []
        self.names: list[str | None] = []
        self.attrs: list[bytes | None] = []  # attribute JSON when it holds more than a name
        self.name_hash = array("I")  # name_hash() of every slot's name
        self.extra: dict[int, dict[str, Any]] = {}  # rare raw fields: su, sk, r, fa, ph, ...
        self.orphan_parent: dict[int, str] = {}  # parent handle when the parent is not here
        self.undecryptable: dict[int, str] = {}  # slot -> the encrypted "k" text
        self.children: dict[int, array[int]] = {}
        self.roots: dict[int, str] = {}  # node type (2, 3, 4) -> handle
        self.sn: str | None = None
        # account values saved with the tree: share and folder keys (handle -> 16 bytes; the
        # client shares this dict with its Keyring) and the folders exported ("EXP" shares)
        self.share_keys: dict[str, bytes] = {}
        self.exported: set[str] = set()
        # handle -> the sequence tag (as OwnTags.order gives it) of the newest own command
        # whose answer this client applied to the node; an older own echo must not undo it
        self.own_marks: dict[str, tuple[int, str]] = {}
        self.own_marks_left = 0  # how many the last sweep kept (forget_own_marks_up_to)
        self._interned: dict[str, str] = {}
        self._name_index: dict[int, _NameIndex] = {}
        self._free: list[int] = []
        self.count = 0

    # -- writing --------------------------------------------------------------------------
    def put(
        self,
        h: str,
        p: str | None,
        t: int,
        owner: str,
        size: int,
        ts: int,
        key: bytes | None,
        name: str | None,
        attrs_json: bytes | None = None,
        extra: dict[str, Any] | None = None,
        enc_key: str | None = None,
    ) -> int:
        """Insert a node, or replace the node with the same handle (moved if ``p`` changed).

        ``key`` is the decrypted key (32 bytes for files, 16 for folders), ``None`` with
        ``enc_key`` for a node that could not be decrypted. Returns its slot."""
        slot = self.slot_of.get(h)
        if slot is not None:
            self._unlink(slot)
        elif self._free:
            slot = self._free.pop()
            self.handles[slot] = h
            self.slot_of[h] = slot
        else:
            slot = len(self.handles)
            self.handles.append(h)
            self.slot_of[h] = slot
            self.parent.append(_NO_PARENT)
            self.types.append(0)
            self.sizes.append(0)
            self.times.append(0)
            self.key_len.append(0)
            self.keys.extend(bytes(32))
            self.owners.append("")
            self.names.append(None)
            self.attrs.append(None)
            self.name_hash.append(0)
        self.count += 1
        self.types[slot] = t if -128 <= t < 128 else -1
        self.sizes[slot] = size if 0 <= size < 1 << 62 else 0
        self.times[slot] = ts if 0 <= ts < 1 << 62 else 0
        self.owners[slot] = self._interned.setdefault(owner, owner)
        self.names[slot] = ROOT_NAMES[t] if t in ROOT_NAMES else _unless(name, attrs_json)
        self.name_hash[slot] = name_hash(ROOT_NAMES.get(t, name))
        if t in ROOT_NAMES:
            self.roots[t] = h
        if key is not None and len(key) in (16, 32):
            self.keys[slot * 32 : slot * 32 + len(key)] = key
            self.key_len[slot] = len(key)
        else:
            self.key_len[slot] = 0
        self.attrs[slot] = attrs_json
        self._set_optional(self.extra, slot, extra or None)
        self._set_optional(
            self.undecryptable, slot, enc_key if t in (0, 1) and key is None else None
        )
        self._link(slot, p)
        return slot

    def put_batch(
        self,
        handles: list[str],
        parents: list[str],
        types: list[int],
        owners: list[str],
        sizes: Sequence[int],
        times: Sequence[int],
        keys: bytes | bytearray,
        names: list[str | None],
        attrs_json: list[bytes | None],
        hashes: Sequence[int] | None = None,
    ) -> None:
        """Insert many decrypted files and folders at once (a listing's usual nodes).

        ``keys`` holds 32 bytes per node (a folder's 16-byte key zero-padded); ``attrs_json``
        holds each node's attribute JSON when it has more than a name, else None.
        ``hashes``: the :func:`name_hash` of each name when the caller has them (a name may
        then be None where its attribute JSON is given).
        Handles already in the store, and sizes or times out of range, go through
        :meth:`put` one by one."""
        n = len(handles)
        if not n:
            return
        slot_of = self.slot_of
        if (
            not slot_of.keys().isdisjoint(handles)
            or min(sizes) < 0
            or min(times) < 0
            or max(sizes) >= 1 << 62
            or max(times) >= 1 << 62
        ):
            for i in range(n):
                folder = types[i] == 1
                key = bytes(keys[i * 32 : i * 32 + (16 if folder else 32)])
                self.put(
                    handles[i],
                    parents[i],
                    types[i],
                    owners[i],
                    sizes[i],
                    times[i],
                    key,
                    _name_in(attrs_json[i]) if names[i] is None else names[i],
                    attrs_json[i],
                )
            return
        start = len(self.handles)
        slots = list(range(start, start + n))
        self.handles.extend(handles)
        slot_of.update(zip(handles, slots, strict=True))
        self.types.extend(types)
        self.sizes.extend(sizes)
        self.times.extend(times)
        self.key_len.extend([16 if t == 1 else 32 for t in types])
        self.keys += keys
        interned = self._interned
        table = {o: interned.setdefault(o, o) for o in set(owners)}
        self.owners.extend(map(table.__getitem__, owners))
        self.names.extend(
            [n if a is None else None for n, a in zip(names, attrs_json, strict=True)]
        )
        self.attrs.extend(attrs_json)
        self.name_hash.extend(name_hashes(names) if hashes is None else hashes)
        self.count += n
        get = slot_of.get
        parent_slots = [get(p, _NO_PARENT) if p else _NO_PARENT for p in parents]
        self.parent.extend(parent_slots)
        self._add_children(slots, parent_slots, parents)

    def _add_children(
        self, slots: list[int], parent_slots: Any, parents: list[str] | None = None
    ) -> None:
        """Append new slots (increasing) to their parents' children, a run of siblings at a
        time; a folder whose children are one run of consecutive slots is marked as such
        (its name index). ``parents``: the parent handles, kept for nodes whose parent is
        not (yet) in the store."""
        children, index = self.children, self._name_index
        i = 0
        for ps, run in groupby(parent_slots):
            k = len(list(run))
            part = slots[i : i + k]
            first, end = part[0], part[-1] + 1
            if ps == _NO_PARENT and parents is not None:
                for j in range(i, i + k):
                    if parents[j]:
                        self.orphan_parent[slots[j]] = parents[j]
            siblings = children.get(ps)
            mark = index.pop(ps, None)
            if siblings is None:
                children[ps] = array("i", part)
                mark = (first, first)
            else:
                siblings.extend(part)
            if end - first == k and type(mark) is tuple and mark[1] == first:
                index[ps] = (mark[0], end)
            i += k

    @staticmethod
    def _set_optional(table: dict[int, Any], slot: int, value: Any) -> None:
        if value is None:
            table.pop(slot, None)
        else:
            table[slot] = value

    def _link(self, slot: int, p: str | None) -> None:
        parent_slot = self.slot_of.get(p, _NO_PARENT) if p else _NO_PARENT
        self.parent[slot] = parent_slot
        if parent_slot == _NO_PARENT:
            if p:
                self.orphan_parent[slot] = p
            else:
                self.orphan_parent.pop(slot, None)
        else:
            self.orphan_parent.pop(slot, None)
        siblings = self.children.get(parent_slot)
        if siblings is None:
            self.children[parent_slot] = array("i", (slot,))
        else:
            siblings.append(slot)
        self._name_index.pop(parent_slot, None)

    def _unlink(self, slot: int) -> None:
        parent_slot = self.parent[slot]
        siblings = self.children.get(parent_slot)
        if siblings is not None:
            with contextlib.suppress(ValueError):
                siblings.remove(slot)
            if not siblings:
                del self.children[parent_slot]
        self._name_index.pop(parent_slot, None)
        self.count -= 1

    def adopt_orphans(self) -> None:
        """Link nodes listed before their parent (called once a listing is complete)."""
        for slot, p in list(self.orphan_parent.items()):
            if p in self.slot_of:
                self._unlink(slot)
                self.count += 1
                self._link(slot, p)

    def remove(self, h: str) -> list[str]:
        """Remove a node and everything below it; returns the removed handles."""
        slot = self.slot_of.get(h)
        if slot is None:
            raise StoreError(f"no node {h!r} to remove")
        self._unlink(slot)
        self.count += 1  # counted down again below with the rest of the subtree
        removed: list[str] = []
        stack = [slot]
        while stack:
            s = stack.pop()
            stack.extend(self.children.pop(s, ()))
            self._name_index.pop(s, None)
            handle = self.handles[s]
            if handle is None:  # met again: a cycle a hostile listing made
                continue
            removed.append(handle)
            del self.slot_of[handle]
            self.handles[s] = None
            self.names[s] = None
            self.parent[s] = _FREE
            self.key_len[s] = 0
            self.attrs[s] = None
            for table in (self.extra, self.orphan_parent, self.undecryptable):
                table.pop(s, None)
            self._free.append(s)
            self.count -= 1
        for t, root in list(self.roots.items()):
            if root in removed:
                del self.roots[t]
        return removed

    def move(self, h: str, new_parent: str) -> None:
        """Put node ``h`` under ``new_parent``; StoreError for unknown nodes or a cycle."""
        slot = self.slot_of.get(h)
        target = self.slot_of.get(new_parent)
        if slot is None or target is None:
            raise StoreError(f"move names an unknown node ({h!r} -> {new_parent!r})")
        if self.is_below(target, slot):
            raise StoreError(f"moving {h!r} under {new_parent!r} would form a cycle")
        self._unlink(slot)
        self.count += 1
        self._link(slot, new_parent)

    def is_below(self, slot: int, ancestor: int) -> bool:
        """True when ``slot`` is ``ancestor`` or lies under it (stops on a corrupt chain)."""
        guard = 0
        while slot >= 0 and guard <= len(self.handles):
            if slot == ancestor:
                return True
            slot = self.parent[slot]
            guard += 1
        return False

    def in_cycle(self, h: str) -> bool:
        """True when following parents from ``h`` comes back to a node already seen."""
        seen: set[int] = set()
        slot = self._slot(h)
        while slot >= 0:
            if slot in seen:
                return True
            seen.add(slot)
            slot = self.parent[slot]
        return False

    def set_attributes(self, h: str, name: str | None, attrs_json: bytes | None) -> None:
        slot = self._slot(h)
        parent_slot = self.parent[slot]
        self.names[slot] = _unless(name, attrs_json)
        self.name_hash[slot] = name_hash(name)
        self.attrs[slot] = attrs_json
        self.undecryptable.pop(slot, None)
        self._name_index.pop(parent_slot, None)

    def set_extra(self, h: str, field: str, value: Any) -> None:
        """Set (or with ``None`` drop) a raw field kept for the node, e.g. ``ph``."""
        slot = self._slot(h)
        fields = self.extra.setdefault(slot, {})
        if value is None:
            fields.pop(field, None)
        else:
            fields[field] = value
        if not fields:
            del self.extra[slot]

    # -- marks of this client's own changes (see watch.apply_packet) ----------------------
    def mark_own(self, handles: Iterable[str], tag: tuple[int, str]) -> None:
        """This client applied its own command (sequence tag ``tag``) to ``handles``; a
        mark never goes back. A client that reads no echoes never sweeps them: past
        ``_MARKS_MAX`` the newer half is kept."""
        marks = self.own_marks
        for h in handles:
            if marks.get(h, tag) <= tag:
                marks[h] = tag
        if len(marks) > _MARKS_MAX:
            newest = sorted(marks.items(), key=lambda item: item[1])[len(marks) // 2 :]
            self.own_marks = dict(newest)

    def forget_own_marks_up_to(self, tag: tuple[int, str]) -> None:
        """An own echo of ``tag`` came: no later one is older than the marks up to it
        (packets come in order). They are dropped when more than ``_MARKS_KEPT`` have piled
        up (a deleted folder marks everything below it)."""
        marks = self.own_marks
        if len(marks) > max(_MARKS_KEPT, 2 * self.own_marks_left):
            self.own_marks = {h: m for h, m in marks.items() if m > tag}
            self.own_marks_left = len(self.own_marks)

    def _slot(self, h: str) -> int:
        slot = self.slot_of.get(h)
        if slot is None:
            raise StoreError(f"unknown node {h!r}")
        return slot

    # -- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.count

    def __contains__(self, h: object) -> bool:
        return h in self.slot_of

    def key_of(self, h: str) -> bytes | None:
        slot = self._slot(h)
        n = self.key_len[slot]
        return bytes(self.keys[slot * 32 : slot * 32 + n]) if n else None

    def parent_of(self, h: str) -> str | None:
        slot = self._slot(h)
        p = self.parent[slot]
        return self.handles[p] if p >= 0 else self.orphan_parent.get(slot)

    def name_of(self, h: str) -> str | None:
        return self.name_at(self._slot(h))

    def name_at(self, slot: int) -> str | None:
        """A slot's name: kept as a string, or read from its attribute JSON when it has one
        (a name is stored once)."""
        name = self.names[slot]
        return _name_in(self.attrs[slot]) if name is None else name

    def child_handles(self, h: str) -> list[str]:
        return [self.handles[s] for s in self.children.get(self._slot(h), ())]  # type: ignore[misc]

    def node(self, h: str) -> dict[str, Any]:
        """The mega.py-shaped dict of one node."""
        return self._dict(self._slot(h))

    def get(self, h: str) -> dict[str, Any] | None:
        slot = self.slot_of.get(h)
        return None if slot is None else self._dict(slot)

    def _dict(self, slot: int, attrs: Any = None) -> dict[str, Any]:
        """The dict of one slot; ``attrs``: its attribute JSON already parsed, if it was.

        A decrypted file or folder without extra fields (the usual node) is made in one dict
        display, keys in the order the general case below writes them."""
        t = self.types[slot]
        n = self.key_len[slot]
        if (
            (n == 32 if t == 0 else t == 1 and n == 16)
            and slot not in self.extra
            and slot not in self.undecryptable
        ):
            p = self.parent[slot]
            text = self.attrs[slot]
            if type(attrs) is not dict:
                attrs = {"n": self.names[slot]} if text is None else parse_attrs(text)
            if t == 0:
                w = _WORDS8.unpack_from(self.keys, slot * 32)
                return {
                    "h": self.handles[slot],
                    "p": self.handles[p] if p >= 0 else self.orphan_parent.get(slot, ""),
                    "u": self.owners[slot],
                    "t": 0,
                    "ts": self.times[slot],
                    "s": self.sizes[slot],
                    "a": attrs,
                    "key": w,
                    "k": (w[0] ^ w[4], w[1] ^ w[5], w[2] ^ w[6], w[3] ^ w[7]),
                    "iv": (w[4], w[5], 0, 0),
                    "meta_mac": w[6:],
                }
            w = _WORDS4.unpack_from(self.keys, slot * 32)
            return {
                "h": self.handles[slot],
                "p": self.handles[p] if p >= 0 else self.orphan_parent.get(slot, ""),
                "u": self.owners[slot],
                "t": 1,
                "ts": self.times[slot],
                "a": attrs,
                "key": w,
                "k": w,
            }
        return self._dict_general(slot, attrs)

    def _dict_general(self, slot: int, attrs: Any) -> dict[str, Any]:
        """The dict of any slot: roots, undecryptable nodes, nodes with extra fields."""
        t = self.types[slot]
        node: dict[str, Any] = {
            "h": self.handles[slot],
            "p": self.parent_of_slot(slot),
            "u": self.owners[slot],
            "t": t,
            "ts": self.times[slot],
        }
        if t == 0:
            node["s"] = self.sizes[slot]
        extra = self.extra.get(slot)
        if extra:
            node.update(extra)
        if t in ROOT_NAMES:
            node["a"] = {"n": ROOT_NAMES[t]}
            node["k"] = ""
            return node
        enc = self.undecryptable.get(slot)
        n = self.key_len[slot]
        if enc is not None or not n:
            node["k"] = enc or ""
            node["a"] = False
            node["undecryptable"] = True
            return node
        text = self.attrs[slot]
        if text is None:
            node["a"] = {"n": self.names[slot]}
        else:
            node["a"] = attrs if type(attrs) is dict else parse_attrs(text)
        base = slot * 32
        if n == 32:
            w = _WORDS8.unpack_from(self.keys, base)
            node["key"] = w
            node["k"] = fold(w)
            node["iv"] = (w[4], w[5], 0, 0)
            node["meta_mac"] = w[6:]
        else:
            w = _WORDS4.unpack_from(self.keys, base)
            node["key"] = w
            node["k"] = w
        return node

    def parent_of_slot(self, slot: int) -> str | None:
        p = self.parent[slot]
        return self.handles[p] if p >= 0 else self.orphan_parent.get(slot, "")

    def iter_nodes(self) -> Iterator[dict[str, Any]]:
        """Every node as a mega.py-shaped dict, in slot order (listing order for a listing)."""
        handles, attrs, step = self.handles, self.attrs, 4096
        for start in range(0, len(handles), step):
            parsed = _batch_attrs(attrs[start : start + step])
            for slot in range(start, min(start + step, len(handles))):
                if handles[slot] is not None:
                    yield self._dict(slot, parsed[slot - start])

    def visible(self) -> dict[str, dict[str, Any]]:
        """handle -> dict for the nodes with decrypted attributes (mega.py's ``get_files``)."""
        out: dict[str, dict[str, Any]] = {}
        for node in self.iter_nodes():
            if node["a"]:
                out[node["h"]] = node
        return out
