"""A persistent, encrypted cache of an account's decrypted node tree (a NodeStore and its ``sn``).

One file per account in a cache folder. Keys come from HKDF-SHA256 over the master key (with
the user handle and the API URL as context): an AES-128 key for the payload (CTR, a random
nonce per write), an HMAC-SHA256 key that authenticates header and payload, and the file's
name, so a listing of the folder tells nothing about the account. The file is written
atomically with mode 0600 under an exclusive ``flock`` of a lock file beside it (readers take
a shared lock), so processes sharing a folder never see half a file.

Reading trusts only a regular file owned by this user with no group/other permissions, in a
folder owned by this user that others cannot write; a cache that is truncated, corrupted,
from another account or written by another format version is thrown away with a
:class:`CacheWarning` and ``load()`` returns None (the caller then lists everything again).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import stat
import struct
import warnings
from array import array
from collections.abc import Iterable, Iterator
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any

from ..transfer._atomic import write_private_file
from .nodestore import NodeStore

__all__ = ["NodeCache", "CacheWarning", "clear_cache_folder", "FORMAT_VERSION"]

MAGIC = b"MFNC"
FORMAT_VERSION = 2
_HEADER = struct.Struct(">4sH16s8s")  # magic, format version, account tag, CTR nonce
_TAG = 32
_SUFFIX = ".mfcache"
_FREE_PARENT = -2  # the parent value of a removed node's slot (NodeStore)
_PIECE = 4 << 20  # bytes encrypted and written at a time
_COLUMNS = ("parent", "types", "sizes", "times", "key_len", "name_hash")


class CacheWarning(UserWarning):
    """A cache file was not used (and is rebuilt): damaged, foreign, or not safe to trust."""


def _hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) with a fixed salt."""
    prk = hmac.new(b"megafast node cache", secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


class NodeCache:
    """The cache file of one account in ``folder``."""

    def __init__(
        self, folder: str | os.PathLike[str], master_key: bytes, user_handle: str, api_url: str = ""
    ) -> None:
        if len(master_key) != 16:
            raise ValueError("the master key must be 16 bytes")
        self.folder = Path(folder)
        material = _hkdf(master_key, f"{user_handle}\0{api_url}".encode(), 16 + 32 + 16 + 16)
        self._enc_key = material[:16]
        self._mac_key = material[16:48]
        self._account_tag = material[48:64]
        self.path = self.folder / (material[64:].hex() + _SUFFIX)
        self._lock_path = self.folder / (material[64:].hex() + ".lock")

    def __repr__(self) -> str:
        return f"NodeCache({str(self.path)!r})"

    # -- folder and locking ---------------------------------------------------------------
    def _folder_ok(self, create: bool) -> bool:
        try:
            if create:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.stat(self.folder, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except OSError as exc:
            warnings.warn(CacheWarning(f"node cache folder unusable: {exc}"), stacklevel=3)
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            warnings.warn(
                CacheWarning(
                    f"node cache folder {self.folder} is not a folder of this user closed to"
                    " others; the cache is not used"
                ),
                stacklevel=3,
            )
            return False
        return True

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- writing --------------------------------------------------------------------------
    def save(self, store: NodeStore) -> bool:
        """Write the store (atomically); False when the folder cannot be trusted. The parts
        are encrypted and written one by one (never the whole payload twice in memory)."""
        if not self._folder_ok(create=True):
            return False
        nonce = secrets.token_bytes(8)
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, self._account_tag, nonce)
        tag = hmac.new(self._mac_key, header, hashlib.sha256)

        def pieces() -> Iterator[bytes | bytearray]:
            yield header
            offset = 0
            for length, part in encode_store(store):
                for plain in (struct.pack(">Q", length), *part):
                    piece = bytearray(len(plain))
                    _ctr(self._enc_key, nonce, offset, plain, piece)
                    offset += len(piece)
                    tag.update(piece)
                    yield piece
            yield tag.digest()

        with self._locked(exclusive=True):
            write_private_file(self.path, pieces())
        return True

    def clear(self) -> None:
        """Remove this account's cache file."""
        with contextlib.suppress(FileNotFoundError):
            if self._folder_ok(create=False):
                with self._locked(exclusive=True):
                    self.path.unlink()

    # -- reading --------------------------------------------------------------------------
    def load(self) -> NodeStore | None:
        """The cached store, or None (no cache, or one thrown away with a CacheWarning).

        The file is read twice under the shared lock: once to check its HMAC, then part by
        part to decrypt and decode, so memory holds the store and one part, never the file."""
        if not self._folder_ok(create=False):
            return None
        try:
            with self._locked(exclusive=False):
                fd = self._open_trusted()
                if fd is None:
                    return None
                try:
                    result = self._load_from(fd)
                finally:
                    os.close(fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._discard(f"cannot be read ({exc})", remove=False)
        # a bad cache is removed only after the shared lock is released
        return self._discard(result) if isinstance(result, str) else result

    def _load_from(self, fd: int) -> NodeStore | str:
        """The store, or why the file is not used."""
        size = os.fstat(fd).st_size
        if size < _HEADER.size + _TAG:
            return "is truncated"
        header = os.pread(fd, _HEADER.size, 0)
        magic, version, account, nonce = _HEADER.unpack(header)
        if magic != MAGIC:
            return "is not a megafast node cache"
        if version != FORMAT_VERSION:
            return f"was written in format {version}, not {FORMAT_VERSION}"
        if not hmac.compare_digest(account, self._account_tag):
            return "belongs to another account or server"
        mac = hmac.new(self._mac_key, header, hashlib.sha256)
        end = size - _TAG
        for offset in range(_HEADER.size, end, _PIECE):
            mac.update(_pread(fd, min(_PIECE, end - offset), offset))
        if not hmac.compare_digest(mac.digest(), _pread(fd, _TAG, end)):
            return "is corrupted or truncated (authentication failed)"

        def parts() -> Iterator[bytearray]:
            pos = _HEADER.size
            while pos < end:
                if pos + 8 > end:
                    raise ValueError("a part runs past the end")
                prefix = bytearray(_pread(fd, 8, pos))
                _ctr(self._enc_key, nonce, pos - _HEADER.size, prefix, prefix)
                (n,) = struct.unpack(">Q", prefix)
                if pos + 8 + n > end:
                    raise ValueError("a part runs past the end")
                part = bytearray(n)
                if n and os.preadv(fd, [part], pos + 8) != n:
                    raise OSError("the cache file changed size while being read")
                _ctr(self._enc_key, nonce, pos + 8 - _HEADER.size, part, part)
                pos += 8 + n
                yield part

        try:
            return decode_store(parts())
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, struct.error) as exc:
            return f"does not decode ({exc})"

    def _open_trusted(self) -> int | None:
        """An open descriptor of the cache file, None (with a warning) when it is not a
        regular file of this user closed to others; a symlink is never followed."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            os.close(fd)
            warnings.warn(
                CacheWarning(
                    f"node cache {self.path} is not a private file of this user; not used"
                ),
                stacklevel=4,
            )
            return None
        return fd

    def _discard(self, why: str, remove: bool = True) -> NodeStore | None:
        warnings.warn(CacheWarning(f"node cache {self.path} {why}; rebuilding it"), stacklevel=3)
        if remove:
            with contextlib.suppress(OSError), self._locked(exclusive=True):
                self.path.unlink()
        return None


def clear_cache_folder(folder: str | os.PathLike[str]) -> int:
    """Remove every megafast node cache in ``folder``; returns how many were removed."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in Path(folder).iterdir():
            if entry.name.endswith(_SUFFIX) or entry.name.endswith(".lock"):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed += entry.name.endswith(_SUFFIX)
    return removed


def _pread(fd: int, n: int, offset: int) -> bytes:
    data = os.pread(fd, n, offset)
    if len(data) != n:
        raise OSError("the cache file changed size while being read")
    return data


def _ctr(key: bytes, nonce: bytes, offset: int, src: Any, dst: Any) -> None:
    from ..crypto import _backend

    if len(src):
        _backend.kernels.ctr_xor_into(key, nonce, offset, src, dst)


# -- the store as bytes ---------------------------------------------------------------------
_SLICE = 1 << 16  # nodes per slice of the handles, names and attributes parts


def encode_store(store: NodeStore) -> Iterator[tuple[int, Iterable[Any]]]:
    """The parts, made one at a time, as (length, pieces): a JSON header, then per slice of
    65,536 slots the handles and names (JSON lists), the attribute lengths and the attribute
    bytes, then the columns as raw arrays cut into pieces of a few MB (each part is written
    length-prefixed), so that writing holds the store and one slice, never a copy of it all."""
    owners = sorted(set(store.owners))
    owner_index = {o: i for i, o in enumerate(owners)}
    count = len(store.handles)
    meta = {
        "sn": store.sn,
        "count": count,
        "roots": {str(t): h for t, h in store.roots.items()},
        "owners": owners,
        "extra": {str(s): v for s, v in store.extra.items()},
        "orphan": {str(s): v for s, v in store.orphan_parent.items()},
        "undec": {str(s): v for s, v in store.undecryptable.items()},
        "share_keys": {h: k.hex() for h, k in store.share_keys.items()},
        "exported": sorted(store.exported),
    }
    text = json.dumps(meta, separators=(",", ":")).encode()
    yield len(text), (text,)
    del text
    for i in range(0, count, _SLICE):
        for values in (store.handles[i : i + _SLICE], store.names[i : i + _SLICE]):
            text = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
            yield len(text), (text,)
        attrs = store.attrs[i : i + _SLICE]
        lengths = array("i", [-1 if a is None else len(a) for a in attrs])
        yield len(lengths) * lengths.itemsize, (memoryview(lengths).cast("B"),)
        blob = b"".join([a for a in attrs if a is not None])
        yield len(blob), (blob,)
        del attrs, lengths, blob
    owner_column = array("i", map(owner_index.__getitem__, store.owners))
    for column in (owner_column, store.keys, *(getattr(store, name) for name in _COLUMNS)):
        view = memoryview(column).cast("B")
        yield len(view), (view[i : i + _PIECE] for i in range(0, len(view), _PIECE))
        del view


def decode_store(parts: Iterable[bytes | bytearray]) -> NodeStore:
    """The inverse of :func:`encode_store` (its parts in order, each dropped once used);
    ValueError (and the like) on anything inconsistent."""
    it = iter(parts)

    def part() -> bytes | bytearray:
        value = next(it, None)
        if value is None:
            raise ValueError("a part is missing")
        return value

    meta = json.loads(part())
    count = meta["count"]
    if type(count) is not int or count < 0:
        raise ValueError("a bad node count")
    store = NodeStore()
    handles: list[str | None] = []
    names: list[str | None] = []
    attrs: list[bytes | None] = []
    for i in range(0, count, _SLICE):
        n = min(_SLICE, count - i)
        some_handles, some_names = json.loads(part()), json.loads(part())
        if type(some_handles) is not list or type(some_names) is not list:
            raise ValueError("handles or names are not lists")
        handles += some_handles
        names += some_names
        lengths = array("i")
        lengths.frombytes(part())
        blob = bytes(part())
        if len(some_handles) != n or len(some_names) != n or len(lengths) != n:
            raise ValueError("a slice has the wrong number of nodes")
        if min(lengths) < -1:
            raise ValueError("a negative attribute length")
        ends = list(accumulate(map(max, lengths, repeat(0))))
        if ends[-1] != len(blob):
            raise ValueError("attribute lengths do not match")
        starts = [0, *ends[:-1]]
        attrs += [
            None if k < 0 else blob[a:b] for k, a, b in zip(lengths, starts, ends, strict=True)
        ]
        del some_handles, some_names, lengths, blob, ends, starts
    owners_table = meta["owners"]
    owner_ix = array("i")
    owner_ix.frombytes(part())
    if owner_ix and not 0 <= min(owner_ix) <= max(owner_ix) < len(owners_table):
        raise ValueError("an owner index points outside the table")
    store.owners = list(map(owners_table.__getitem__, owner_ix))
    del owner_ix
    keys = part()
    store.keys = keys if type(keys) is bytearray else bytearray(keys)
    for name in _COLUMNS:
        getattr(store, name).frombytes(part())
    if next(it, None) is not None:
        raise ValueError("more parts than expected")
    if (
        len(store.owners) != count
        or len(store.keys) != 32 * count
        or any(len(getattr(store, c)) != count for c in _COLUMNS)
    ):
        raise ValueError("columns differ in length")
    store.handles = handles
    store.names = names
    store.attrs = attrs
    store.sn = meta["sn"] if isinstance(meta["sn"], str) else None
    store.roots = {int(t): h for t, h in meta["roots"].items()}
    store.extra = {int(s): v for s, v in meta["extra"].items()}
    store.orphan_parent = {int(s): v for s, v in meta["orphan"].items()}
    store.undecryptable = {int(s): v for s, v in meta["undec"].items()}
    store.share_keys = {h: bytes.fromhex(k) for h, k in meta["share_keys"].items()}
    store.exported = set(meta["exported"])
    if any(len(k) != 16 for k in store.share_keys.values()) or not all(
        type(h) is str for h in store.exported
    ):
        raise ValueError("bad share keys or exported handles")
    free = [i for i, h in enumerate(handles) if h is None] if None in handles else []
    slot_of: dict[Any, int] = dict(zip(handles, range(count), strict=True))
    slot_of.pop(None, None)
    store.slot_of = slot_of
    store._free = free
    store.count = len(store.slot_of)
    if store.count + len(free) != count or set(map(type, store.slot_of)) - {str}:
        raise ValueError("bad or repeated handles")
    _link_all(store, free)
    store._interned = {o: o for o in owners_table}
    return store


def _link_all(store: NodeStore, free: list[int]) -> None:
    """The children arrays (and name index marks) from the parent column, checked: a
    parent inside the tree, removed slots (and only those) marked free."""
    parent, handles, count = store.parent, store.handles, len(store.handles)
    if not count:
        return
    if min(parent) < _FREE_PARENT or max(parent) >= count:
        raise ValueError("a parent points outside the tree")
    if any(parent[s] != _FREE_PARENT for s in free) or parent.count(_FREE_PARENT) != len(free):
        raise ValueError("removed slots do not match")
    if free and any(handles[p] is None for p in set(parent) if p >= 0):
        raise ValueError("a parent is a removed node")
    live = parent
    if free:  # the free slots have no parent: link the others only
        slots = [s for s in range(count) if handles[s] is not None]
        live = array("i", map(parent.__getitem__, slots))
        store._add_children(slots, live)
    else:
        store._add_children(list(range(count)), live)
