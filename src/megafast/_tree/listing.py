"""Read MEGA's ``f`` answer as it arrives and decrypt it, batch by batch, into a NodeStore.

The answer (``[{"f":[...],"ok":[...],"s":[...],"u":[...],"sn":"..."}]``, or the object alone)
is fed in chunks of bytes. Nodes of ``f`` are cut out of the text a batch at a time
(MEGA's node objects are flat), parsed by the C JSON scanner, decrypted in one native call per
batch (:func:`megafast.crypto.decrypt_nodes`' kernel) and written into the store; neither the
whole text nor a dict per node is ever held for the whole listing. Nodes under a key that is
not known yet (a share whose key arrives later in ``ok``) wait until the end of the answer.
The other top-level values (``ok``, ``s``, ``u``, ``sn``, ``f2`` with old file versions,
which get_files does not list either) are kept as parsed in ``meta``.
"""

from __future__ import annotations

import binascii
import codecs
import json
import logging
import re
import struct
from array import array
from collections.abc import Iterable
from typing import Any

from ..errors import RequestError, UnexpectedAnswerError, ValidationError
from ..transfer._plan import MAX_FILE_SIZE
from .nodes import Keyring, b64_bytes
from .nodestore import NodeStore, name_hash

__all__ = ["ListingParser", "load_listing", "add_raw_nodes"]

logger = logging.getLogger("megafast.listing")

BATCH_CHARS = 1 << 20  # parse and decrypt about a MiB of answer text at a time
MAX_VALUE_CHARS = 64 << 20  # one top-level value other than f (ok, s, u, f2...) at most
MAX_NODE_BYTES = 4 << 20  # one node object at most (each feed rescans an unfinished one)
_B64_TABLE = bytes.maketrans(b"-_", b"+/")
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_WS = re.compile(rb"[ \t\r\n]*")
_NO_KEK = bytes(16)


class ListingParser:
    """Incremental parser: ``feed(chunk)`` as bytes arrive, then ``close()``.

    After ``close()``: ``store`` holds the decrypted tree (``store.sn`` set from ``sn``) and
    ``meta`` the other top-level values. Malformed text raises ValidationError; an error
    number instead of an answer raises RequestError."""

    def __init__(self, keyring: Keyring, store: NodeStore | None = None) -> None:
        self.keyring = keyring
        self.store = store if store is not None else NodeStore()
        self.meta: dict[str, Any] = {}
        self._buf = bytearray()
        self._pos = 0
        self._state = "start"  # start, key, colon, value, nodes_open, nodes, end, rest
        self._key = ""
        self._deferred: list[dict[str, Any]] = []
        self._eof = False
        if keyring.master_key is not None and keyring.user_handle:
            self._prefix = f"{keyring.user_handle}:".encode()
            self._kek = keyring.master_key
        else:  # no node is usual: a quote never starts a plain string's value
            self._prefix, self._kek = b'"', _NO_KEK

    # -- input ----------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        if self._pos > (1 << 16):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += chunk
        self._run()

    def close(self) -> NodeStore:
        self._eof = True
        self._run()
        if self._state not in ("end", "rest"):
            raise ValidationError("the node listing ended early (truncated answer)")
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            add_raw_nodes(self.store, deferred, self.keyring, final=True)
        self.store.adopt_orphans()
        sn = self.meta.get("sn")
        self.store.sn = sn if isinstance(sn, str) else None
        return self.store

    # -- the state machine ---------------------------------------------------------------
    def _skip_ws(self) -> bool:
        self._pos = _WS.match(self._buf, self._pos).end()  # type: ignore[union-attr]
        return self._pos < len(self._buf)

    def _run(self) -> None:
        while self._skip_ws():
            c = self._buf[self._pos : self._pos + 1]
            state = self._state
            if state == "start":
                if c == b"[":
                    self._pos += 1
                    continue
                if c == b"{":
                    self._pos += 1
                    self._state = "key"
                    continue
                value = self._value()
                if value is None:
                    return
                if isinstance(value, int):
                    raise RequestError(value, "the f command failed")
                raise UnexpectedAnswerError(f"f answered {type(value).__name__}, not a listing")
            elif state == "key":
                if c == b"}":
                    self._pos += 1
                    self._state = "end"
                    continue
                if c == b",":
                    self._pos += 1
                    continue
                key = self._value()
                if key is None:
                    return
                if not isinstance(key, str):
                    raise ValidationError("malformed node listing (a key is not a string)")
                self._key = key
                self._state = "colon"
            elif state == "colon":
                if c != b":":
                    raise ValidationError("malformed node listing (':' expected)")
                self._pos += 1
                self._state = "nodes_open" if self._key == "f" else "value"
            elif state == "value":
                value = self._value()
                if value is None:
                    return
                self.meta[self._key] = value
                if self._key in ("ok", "ok0"):
                    self.keyring.add_share_keys({"ok": value})
                self._state = "key"
            elif state == "nodes_open":
                if c != b"[":
                    value = self._value()  # f: null or similar: nothing listed
                    if value is None:
                        return
                    self._state = "key"
                    continue
                self._pos += 1
                self._state = "nodes"
            elif state == "nodes":
                if c == b"]":
                    self._pos += 1
                    self._state = "key"
                    continue
                if c == b",":
                    self._pos += 1
                    continue
                if c != b"{":  # not a node object: parsed alone (and skipped by _take)
                    value = self._value()
                    if value is None:
                        return
                    self._take([value])
                elif not self._nodes_batch():
                    return
            elif state == "end":
                if c == b"]":
                    self._pos += 1
                    continue
                if c == b",":  # other slots of the batch: not ours to read
                    self._state = "rest"
                    continue
                raise ValidationError("malformed node listing (text after the answer)")
            else:  # rest
                self._buf, self._pos = bytearray(), 0
                return

    def _value(self) -> Any:
        """One JSON value at the position, or None when more text is needed. The text is
        decoded a growing window at a time, so a value costs about its own size."""
        window = 1 << 12
        while True:
            raw = bytes(self._buf[self._pos : self._pos + window])
            whole = self._pos + window >= len(self._buf)  # the window reaches the buffer's end
            final = whole and self._eof
            try:
                text, _ = codecs.utf_8_decode(raw, "strict", final)
            except UnicodeDecodeError as exc:
                raise ValidationError(f"the node listing is not UTF-8 text: {exc}") from None
            try:
                value, end = _scan(text, 0)
                if end == len(text) and not final and isinstance(value, (int, float)):
                    raise StopIteration  # a number may go on after the window
            except (StopIteration, ValueError, RecursionError):
                if len(raw) > MAX_VALUE_CHARS:
                    raise ValidationError("a value in the node listing is too large") from None
                if not whole:
                    window *= 4
                    continue
                if self._eof:
                    raise ValidationError("malformed or truncated node listing") from None
                return None
            self._pos += len(text[:end].encode("utf-8", "surrogatepass"))
            return value

    def _nodes_batch(self) -> bool:
        """Take the complete node objects at the position (about BATCH_CHARS of text): the
        usual ones come decrypted, in columns, from the scanner kernel; the others are
        parsed one by one. False when more text is needed."""
        from ..crypto import _backend

        buf = self._buf
        end, stop, others, columns = _backend.kernels.scan_nodes(
            buf, self._pos, BATCH_CHARS, self._prefix, self._kek
        )
        if end == self._pos:
            if len(buf) - end > MAX_NODE_BYTES:
                raise ValidationError("a node in the listing is too large")
            if self._eof:
                raise ValidationError("truncated node listing")
            return False
        self._pos = end
        if others:
            self._take([_node_at(buf, s, e) for s, e in others])
        if columns[0]:
            self._take_columns(buf, columns)
        return True

    def _take(self, nodes: list[Any]) -> None:
        for node in nodes:
            if type(node) is dict and type(node.get("sk")) is str and type(node.get("h")) is str:
                key = self.keyring.decrypt_share_key(node["sk"])
                if key is not None:
                    self.keyring.share_keys[node["h"]] = key
        self._deferred.extend(add_raw_nodes(self.store, nodes, self.keyring, final=False))

    def _take_columns(self, buf: bytearray, columns: tuple[Any, ...]) -> None:
        """Store the scanner's usual nodes; one whose attributes do not parse to an object
        with a string name (or a batch repeating a handle) sends the batch the general way."""
        from ..crypto._bulk import _parse_attr_batch

        handles, parents, owners, types, sizes, times, keys, texts, fas, spans, names, members = (
            columns[:12]
        )
        hashes = array("I", columns[12])
        richer: list[bytes | None] = [
            js if m > 1 else None for js, m in zip(texts, members, strict=True)
        ]
        named = True
        if 0 in members:  # attributes the scanner left to a real JSON parser
            odd = [i for i, m in enumerate(members) if m == 0]
            for i, attrs in zip(odd, _parse_attr_batch([texts[i] for i in odd]), strict=True):
                name = attrs.get("n") if attrs is not None else None
                named = named and type(name) is str
                names[i] = name
                hashes[i] = name_hash(name if type(name) is str else None)
                richer[i] = texts[i] if attrs is not None and len(attrs) > 1 else None
        if not named or len(set(handles)) != len(handles):
            self._take_odd(buf, spans)
            return
        self.store.put_batch(
            handles,
            parents,
            list(types),
            owners,
            array("q", sizes),
            array("q", times),
            keys,
            names,
            richer,
            hashes,
        )
        if fas.count(None) != len(fas):
            for h, fa in zip(handles, fas, strict=True):
                if fa is not None:
                    self.store.set_extra(h, "fa", fa)

    def _take_odd(self, buf: bytearray, spans: bytes) -> None:
        """The whole batch the general way (rare: odd attributes or a repeated handle)."""
        at = memoryview(spans).cast("q")
        self._take([_node_at(buf, at[i], at[i + 1]) for i in range(0, len(at), 2)])


def _node_at(buf: bytearray, start: int, end: int) -> Any:
    """The JSON object at buf[start:end] (a span the scanner found), parsed on its own."""
    try:
        return json.loads(bytes(buf[start:end]))
    except (ValueError, RecursionError):
        raise ValidationError("malformed node in the listing") from None


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def add_raw_nodes(
    store: NodeStore, nodes: list[Any], keyring: Keyring, *, final: bool = True
) -> list[dict[str, Any]]:
    """Decrypt raw API node dicts in one bulk call and put them into ``store``.

    With ``final`` false, nodes whose key cannot be chosen yet are returned (to retry once
    the share keys are known) instead of being stored as undecryptable. Returns the nodes
    left over (always empty when ``final``).

    A batch made only of usual nodes (files and folders under the account's own key, with
    the usual fields) takes a column-wise path: list comprehensions make and check the
    columns, one kernel call decrypts, one ``put_batch`` stores. Any other batch is sorted
    node by node: the usual nodes still go column-wise, the others (roots, shares, odd or
    hostile fields) through the general path first."""
    if not nodes:
        return []
    if keyring.master_key is not None and keyring.user_handle:
        columns = _columns(nodes, keyring.user_handle)
        if columns is not None and _add_fast(store, nodes, columns, keyring):
            return []
    fast, slow = _split(nodes, keyring)
    later = _add_general(store, slow, keyring, final=final) if slow else []
    if fast:
        columns = _columns(fast, keyring.user_handle or "")
        if columns is None or not _add_fast(store, fast, columns, keyring):
            later += _add_general(store, fast, keyring, final=final)
    return later


_PLAIN_FIELDS = frozenset(("h", "p", "u", "t", "a", "k", "s", "ts", "fa"))
_STR = {str}
_INT = {int}


def _columns(nodes: list[Any], user: str) -> dict[str, list[Any]] | None:
    """The batch's fields as columns when every node is a usual one, else None."""
    if set(map(type, nodes)) != {dict}:
        return None
    plain = _PLAIN_FIELDS
    if not all(n.keys() <= plain for n in nodes):
        return None
    cols = {f: [n.get(f) for n in nodes] for f in ("h", "p", "u", "t", "k", "a")}
    cols["s"] = [n.get("s", 0) for n in nodes]
    cols["ts"] = [n.get("ts", 0) for n in nodes]
    for f in ("h", "p", "u", "k", "a"):
        if set(map(type, cols[f])) != _STR:
            return None
    if set(map(type, cols["s"])) != _INT or set(map(type, cols["ts"])) != _INT:
        return None
    if set(map(type, cols["t"])) != _INT or not set(cols["t"]) <= {0, 1}:
        return None
    prefix = f"{user}:"
    plen = len(prefix)
    if {k[:plen] for k in cols["k"]} != {prefix} or "/" in "".join(cols["k"]):
        return None
    hs = cols["h"]
    if len(set(hs)) != len(hs) or "" in hs:
        return None
    return cols


def _split(nodes: list[Any], keyring: Keyring) -> tuple[list[dict[str, Any]], list[Any]]:
    if keyring.master_key is None or not keyring.user_handle:
        return [], nodes
    prefix = f"{keyring.user_handle}:"
    fast: list[dict[str, Any]] = []
    slow: list[Any] = []
    seen: set[str] = set()
    plain = _PLAIN_FIELDS
    for n in nodes:
        if (
            type(n) is dict
            and n.keys() <= plain
            and type(n.get("h")) is str
            and n.get("t") in (0, 1)
            and type(n.get("t")) is int
            and type(n.get("k")) is str
            and type(n.get("a")) is str
            and type(n.get("p")) is str
            and type(n.get("u")) is str
            and type(n.get("s", 0)) is int
            and type(n.get("ts", 0)) is int
            and n["k"].startswith(prefix)
            and "/" not in n["k"]
            and n["h"] not in seen
            and n["h"]
        ):
            seen.add(n["h"])
            fast.append(n)
        else:
            slow.append(n)
    return fast, slow


def _add_fast(
    store: NodeStore, nodes: list[dict[str, Any]], cols: dict[str, list[Any]], keyring: Keyring
) -> bool:
    """Store a batch of usual nodes column-wise; False (nothing stored) when a node needs
    the general path (a key or attributes that do not decrypt, an RSA key, bad base64)."""
    from ..crypto import _backend
    from ..crypto._bulk import _parse_attr_batch

    a2b = binascii.a2b_base64
    table = _B64_TABLE
    plen = len(keyring.user_handle or "") + 1
    try:
        enc_keys = [a2b((k[plen:] + "==").encode("ascii").translate(table)) for k in cols["k"]]
        enc_attrs = [a2b((a + "==").encode("ascii").translate(table)) for a in cols["a"]]
    except (binascii.Error, UnicodeEncodeError):
        return False
    types = cols["t"]
    if list(map(len, enc_keys)) != [32 - 16 * t for t in types]:
        return False  # RSA-encrypted or malformed keys
    master = keyring.master_key
    if master is None:
        return False
    raw = _backend.kernels.decrypt_nodes(master, enc_keys, enc_attrs)
    keys: list[Any] = [key for key, _ in raw]
    texts = [js for _, js in raw]
    if None in keys or None in texts:
        return False
    parsed: list[Any] = _parse_attr_batch(texts)
    if None in parsed:
        return False
    names: list[Any] = [a.get("n") for a in parsed]
    if set(map(type, names)) != _STR:
        return False
    richer = [js if n > 1 else None for js, n in zip(texts, map(len, parsed), strict=True)]
    blob = b"".join([k.ljust(32, b"\0") for k in keys])
    store.put_batch(
        cols["h"], cols["p"], types, cols["u"], cols["s"], cols["ts"], blob, names, richer
    )
    for n in nodes:
        if "fa" in n:
            store.set_extra(n["h"], "fa", n["fa"])
    return True


def _add_general(
    store: NodeStore, nodes: list[Any], keyring: Keyring, *, final: bool = True
) -> list[dict[str, Any]]:
    from ..crypto import _backend
    from ..crypto._bulk import _parse_attr_batch

    later: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    keks: list[bytes] = []
    enc_keys: list[bytes] = []
    enc_attrs: list[bytes] = []
    master = keyring.master_key
    a2b = binascii.a2b_base64
    table = _B64_TABLE
    all_master = True
    put = store.put
    unusable = 0  # entries without a string handle or an int type: left out, with a warning
    odd_sizes: list[str] = []  # handles whose size is not a valid one: kept with size 0
    for node in nodes:
        if type(node) is not dict:
            unusable += 1
            continue
        h, t = node.get("h"), node.get("t")
        if type(h) is not str or not h or type(t) is not int:
            unusable += 1
            continue
        size = node.get("s", 0)
        if type(size) is not int or not 0 <= size <= MAX_FILE_SIZE:
            odd_sizes.append(h)
        p = node.get("p")
        p = p if type(p) is str else None
        extra = {f: node[f] for f in ("su", "sk", "r", "fa", "ph", "sr") if f in node} or None
        owner = node.get("u")
        owner = owner if type(owner) is str else ""
        if t not in (0, 1):
            put(h, p, t, owner, 0, _int(node.get("ts")), None, None, extra=extra)
            continue
        k, a = node.get("k"), node.get("a")
        if type(k) is not str or type(a) is not str:
            _put_undecryptable(store, node, extra, k if type(k) is str else "")
            continue
        kek: bytes | None = None
        enc: bytes | None = None
        if kek is None:
            chosen = keyring.choose_key(k)
            if chosen is None or not chosen[0]:
                if not final:
                    later.append(node)
                    continue
                if chosen is not None:  # RSA-encrypted
                    key, attrs_text = _rsa_key(node, chosen[1], keyring)
                    _store_one(store, node, key, attrs_text, extra)
                    continue
                _put_undecryptable(store, node, extra, k)
                continue
            kek, enc = chosen
            if kek is not master:
                all_master = False
        try:
            attr_bytes = a2b((a + "==").encode("ascii").translate(table))
        except (binascii.Error, UnicodeEncodeError):
            attr_bytes = b""
        pending.append(node)
        keks.append(kek)
        enc_keys.append(enc)  # type: ignore[arg-type]
        enc_attrs.append(attr_bytes)
    if pending:
        kek_arg: Any = master if all_master and master else keks
        raw = _backend.kernels.decrypt_nodes(kek_arg, enc_keys, enc_attrs)
        texts = [js for _, js in raw]
        parsed = _parse_attr_batch(texts)
        for node, (key, js), attrs in zip(pending, raw, parsed, strict=True):
            text = None
            if attrs is not None and js is not None and len(attrs) > 1:
                text = js
            _store_one(store, node, key, text, None, attrs)
    if unusable:
        logger.warning(
            "listing: %d entries without a usable handle or type were left out", unusable
        )
    if odd_sizes:
        logger.warning(
            "listing: %d nodes declare an invalid size and are listed with size 0 (downloads of"
            " them fail): %s",
            len(odd_sizes),
            ", ".join(odd_sizes[:5]) + (" ..." if len(odd_sizes) > 5 else ""),
        )
    return later


def _put_undecryptable(
    store: NodeStore, node: dict[str, Any], extra: dict[str, Any] | None, enc_key: str
) -> None:
    """Keep a node whose key cannot be chosen or whose fields are not usable (a = False)."""
    p = node.get("p")
    store.put(
        node["h"],
        p if type(p) is str else None,
        node["t"],
        node["u"] if type(node.get("u")) is str else "",
        _int(node.get("s")),
        _int(node.get("ts")),
        None,
        None,
        extra=extra,
        enc_key=enc_key,
    )


def _store_one(
    store: NodeStore,
    node: dict[str, Any],
    key: bytes | None,
    attrs_text: bytes | None,
    extra: dict[str, Any] | None,
    attrs: dict[str, Any] | None = None,
) -> None:
    t = node["t"]
    if attrs is None and attrs_text is not None:
        try:
            attrs = json.loads(attrs_text)
        except ValueError:
            attrs = None
    if attrs_text is not None and attrs is not None and len(attrs) <= 1:
        attrs_text = None
    if extra is None:
        extra = {f: node[f] for f in ("su", "sk", "r", "fa", "ph", "sr") if f in node} or None
    owner: str = node["u"] if type(node.get("u")) is str else ""
    p = node.get("p") if type(node.get("p")) is str else None
    good = type(attrs) is dict and key is not None and len(key) == (32 if t == 0 else 16)
    name = attrs.get("n") if good and type(attrs.get("n")) is str else None  # type: ignore[union-attr]
    store.put(
        node["h"],
        p,
        t,
        owner,
        _int(node.get("s")),
        _int(node.get("ts")),
        key if good else None,
        name,
        attrs_text if good else None,
        extra,
        None if good else node.get("k", ""),
    )


def _rsa_key(
    node: dict[str, Any], enc: bytes, keyring: Keyring
) -> tuple[bytes | None, bytes | None]:
    """The key and attribute JSON of a node whose key is RSA-encrypted (rare: one by one)."""
    from ..crypto import decrypt_attr

    plain = keyring.rsa_decrypt(enc) if keyring.rsa_decrypt else None
    want = 32 if node.get("t") == 0 else 16
    attr_bytes = b64_bytes(node["a"])
    if plain is None or len(plain) < want or not attr_bytes:
        return None, None
    key = plain[:want]
    w = struct.unpack(f">{want // 4}I", key)
    k = w if want == 16 else tuple(w[i] ^ w[i + 4] for i in range(4))
    attrs = decrypt_attr(attr_bytes, k)
    if not isinstance(attrs, dict):
        return None, None
    return key, json.dumps(attrs, separators=(",", ":"), ensure_ascii=False).encode()


def load_listing(chunks: Iterable[bytes], keyring: Keyring) -> tuple[NodeStore, dict[str, Any]]:
    """Parse a whole ``f`` answer given as chunks of bytes: (store, other top-level values)."""
    parser = ListingParser(keyring)
    for chunk in chunks:
        parser.feed(chunk)
    store = parser.close()
    return store, parser.meta
