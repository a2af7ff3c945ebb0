"""Name lookups over a NodeStore's columns: the CRC-32 name hash, the per-folder name index
(a short run of consecutive slots searched in the hash column, or a hash -> slots dict made
on the first lookup), paths and finds. :class:`megafast._tree.nodestore.NodeStore` inherits them."""

from __future__ import annotations

import json
import json.scanner
import struct
import zlib
from array import array
from collections.abc import Iterable, Iterator
from itertools import repeat
from typing import Any

_NO_PARENT = -1
_NameIndex = tuple[int, int] | dict[int, int | list[int]]
# A run of at most this many children is searched in the hash column (no memory kept); a
# longer one gets a hash -> slots dict on its first lookup, since scanning thousands of
# hashes (the Cloud Drive of a big account) on every lookup costs tens of microseconds.
_SCAN_RUN = 256
_HASH = struct.Struct("=I")  # one slot of the hash column (array "I", native order)


def name_hash(name: str | None) -> int:
    """The CRC-32 of a name's UTF-8 bytes (0 for no name): the name index's key."""
    return 0 if name is None else zlib.crc32(name.encode("utf-8", "surrogatepass"))


def name_hashes(names: Iterable[str | None]) -> Iterator[int]:
    """:func:`name_hash` of many names (C-level loops for the usual all-string case)."""
    every = list(names)
    if None in every:
        return map(name_hash, every)
    strings: list[str] = every  # type: ignore[assignment]
    return map(zlib.crc32, map(str.encode, strings, repeat("utf-8"), repeat("surrogatepass")))


# json.loads's own scanner (typeshed types its argument as the scanner class itself)
_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def parse_attrs(text: bytes) -> Any:
    """Attribute JSON text parsed as ``json.loads`` does (same values, same errors), calling
    the decoder's scanner directly when the text has no surrounding whitespace (the stored
    texts), which skips ``json.loads``'s encoding checks and whitespace matching."""
    s = text.decode()
    try:
        value, end = _scan_json(s, 0)
    except StopIteration:
        return json.loads(s)
    return value if end == len(s) else json.loads(s)


def _name_in(attrs_json: bytes | None) -> str | None:
    """The "n" of attribute JSON (a string), else None."""
    if attrs_json is None:
        return None
    try:
        name = parse_attrs(attrs_json).get("n")
    except (ValueError, AttributeError):
        return None
    return name if type(name) is str else None


class _Lookups:
    """Lookups by name and path over the store's columns (NodeStore's read side)."""

    handles: list[str | None]
    slot_of: dict[str, int]
    parent: array[int]
    types: array[int]
    names: list[str | None]
    attrs: list[bytes | None]
    children: dict[int, array[int]]
    roots: dict[int, str]
    name_hash: array[int]
    _name_index: dict[int, _NameIndex]

    def _slot(self, h: str) -> int:
        raise NotImplementedError

    def name_at(self, slot: int) -> str | None:
        raise NotImplementedError

    @property
    def root_id(self) -> str | None:
        return self.roots.get(2)

    def path_of(self, h: str) -> str:
        """``Cloud Drive/a/b`` style path of a node."""
        parts: list[str] = []
        slot = self._slot(h)
        guard = 0
        while slot >= 0 and guard <= len(self.handles):
            parts.append(self.name_at(slot) or self.handles[slot] or "")
            slot = self.parent[slot]
            guard += 1
        return "/".join(reversed(parts))

    def children_named(self, parent_slot: int, name: str) -> list[int]:
        """The children of a folder called ``name``, in the folder's order."""
        candidates = self._candidates(parent_slot, name)
        if len(candidates) == 1:
            kept = self.names[candidates[0]]  # the usual folder: its name kept as a string
            if kept is not None:
                return candidates if kept == name else []
            return candidates if self._is_named(candidates[0], name) else []
        return [s for s in candidates if self._is_named(s, name)]

    def _candidates(self, parent_slot: int, name: str) -> list[int]:
        """The children of a folder whose name hash is ``name``'s, in the folder's order (the
        names themselves still to be compared)."""
        index = self._name_index.get(parent_slot)
        if index is None or (type(index) is tuple and index[1] - index[0] > _SCAN_RUN):
            index = self._index_of(parent_slot)
        h = zlib.crc32(name.encode("utf-8", "surrogatepass"))
        if type(index) is tuple:  # the children are the slots index[0] .. index[1] - 1
            first, end = index
            column = memoryview(self.name_hash)[first:end].tobytes()
            key = _HASH.pack(h)
            at = column.find(key)
            if at < 0:
                return []
            if not at & 3 and column.find(key, at + 1) < 0:  # the usual case: one match
                return [first + at // 4]
            candidates = []
            while at >= 0:
                if at % 4 == 0:
                    candidates.append(first + at // 4)
                at = column.find(key, at + 1)
            return candidates
        found = index.get(h)  # type: ignore[union-attr]
        if found is None:
            return []
        return [found] if type(found) is int else list(found)  # type: ignore[arg-type]

    def _named_last(self, parent_slot: int, name: str, folders_only: bool) -> tuple[int, Any]:
        """The first child of a folder called ``name`` (a folder with ``folders_only``), and
        its attribute JSON parsed when the name had to be read from it (else None), so the
        node's dict is made without parsing it again; (-1, None) when there is none."""
        names, texts, types = self.names, self.attrs, self.types
        for s in self._candidates(parent_slot, name):
            if folders_only and types[s] == 0:
                continue
            kept = names[s]
            if kept is not None:
                if kept == name:
                    return s, None
                continue
            text = texts[s]
            if text is None:
                continue
            try:
                parsed = parse_attrs(text)
            except ValueError:
                continue
            if type(parsed) is dict and parsed.get("n") == name:
                return s, parsed
        return -1, None

    def _is_named(self, slot: int, name: str) -> bool:
        """Whether a slot's name is ``name``. Attribute JSON kept for the slot is valid JSON
        (checked when stored); without a backslash, with one object and one "n" in it, every
        quote delimits a string, so finding ``"n":"name"`` proves the name without parsing."""
        kept = self.names[slot]
        if kept is not None:
            return kept == name
        text = self.attrs[slot]
        if text is None:
            return False
        if (
            b"\\" not in text
            and text.count(b"{") == 1
            and text.count(b'"n"') == 1
            and '"' not in name
            and "\\" not in name
        ):
            try:
                needle = b'"n":"' + name.encode("utf-8") + b'"'
            except UnicodeEncodeError:
                needle = b""
            if needle and needle in text:
                return True
        return self.name_at(slot) == name

    def _index_of(self, parent_slot: int) -> _NameIndex:
        """A hash -> slot(s) dict of a folder's children (made on the first lookup)."""
        children = self.children.get(parent_slot, array("i"))
        hashes = self.name_hash
        index: dict[int, int | list[int]] = dict(
            zip(map(hashes.__getitem__, children), children, strict=True)
        )
        if len(index) != len(children):  # a repeated hash: the slots in the folder's order
            index = {}
            for s in children:
                same = index.get(hashes[s])
                if same is None:
                    index[hashes[s]] = s
                elif isinstance(same, int):
                    index[hashes[s]] = [same, s]
                else:
                    same.append(s)
        self._name_index[parent_slot] = index
        return index

    def find_name(self, name: str) -> str | None:
        """The first node (in slot order) called ``name`` (mega.py's ``find`` by name)."""
        return next(self.iter_named(name), None)

    def iter_named(self, name: str) -> Iterator[str]:
        """The handles of the nodes called ``name``, in slot order.

        A scan, no index: names kept as strings compare directly; a name kept only in the
        attribute JSON is looked for as a JSON string in those bytes first, then parsed."""
        needle = json.dumps(name, ensure_ascii=False).encode()
        names, attrs, name_at, handles = self.names, self.attrs, self.name_at, self.handles
        for slot, nm in enumerate(names):
            if nm == name:
                yield handles[slot]  # type: ignore[misc]
            elif nm is None:
                text = attrs[slot]
                if text is not None and needle in text and name_at(slot) == name:
                    yield handles[slot]  # type: ignore[misc]

    def find_path(self, path: str, folders_only: bool = False) -> str | None:
        """The handle at ``a/b/c`` below the Cloud Drive, else below another root or an
        incoming share's top folder named by the first part; the first match in listing
        order wins."""
        slot = self.find_path_slot(path, folders_only)
        return None if slot < 0 else self.handles[slot]

    def find_path_slot(self, path: str, folders_only: bool = False) -> int:
        """:meth:`find_path` as a slot (-1 when nothing matches)."""
        return self.find_path_match(path, folders_only)[0]

    def find_path_match(self, path: str, folders_only: bool = False) -> tuple[int, Any]:
        """:meth:`find_path` as (slot, its attribute JSON parsed if the walk parsed it, else
        None); (-1, None) when nothing matches."""
        parts = path.split("/")
        if "" in parts:
            parts = [p for p in parts if p]
        root = self.roots.get(2)
        if not parts:
            return (-1 if root is None else self.slot_of[root]), None
        if root is not None:
            found = self._walk(self.slot_of[root], parts, folders_only)
            if found[0] >= 0:
                return found
        # a path may start at another root or at an incoming share's top folder
        for start in self.children.get(_NO_PARENT, ()):
            if self.name_at(start) == parts[0]:
                found = self._walk(start, parts[1:], folders_only)
                if found[0] >= 0:
                    return found
        return -1, None

    def _walk(self, start: int, parts: list[str], folders_only: bool) -> tuple[int, Any]:
        if not parts:
            return (start if not folders_only or self.types[start] != 0 else -1), None
        # the usual case first: one child of each name on the way down, nothing to go back to
        types, slot, named = self.types, start, self.children_named
        for i in range(len(parts) - 1):
            matches = named(slot, parts[i])
            if len(matches) != 1:
                if not matches:
                    return -1, None
                found = self._search(start, parts, folders_only)
                return (-1 if found is None else found), None
            slot = matches[0]
            if types[slot] == 0:
                return -1, None
        return self._named_last(slot, parts[-1], folders_only)

    def _search(self, start: int, parts: list[str], folders_only: bool) -> int | None:
        """The first match of ``parts`` below ``start`` in listing order, trying every node
        of a repeated name (depth first)."""
        stack: list[tuple[int, int]] = [(start, 0)]
        last = len(parts) - 1
        while stack:
            slot, depth = stack.pop()
            matches = self.children_named(slot, parts[depth])
            if depth == last:
                for s in matches:
                    if not folders_only or self.types[s] != 0:
                        return s
                continue
            stack.extend((s, depth + 1) for s in reversed(matches) if self.types[s] != 0)
        return None
