"""The reader's caches: plaintext chunks in memory, MEGA's ciphertext on disk.

:class:`MemoryCache` keeps decrypted MAC chunks, least recently used out first, up to a byte
cap. :class:`DiskCache` keeps the ciphertext MEGA sent (so no plaintext rests on disk) in a
private folder (0700; files 0600): one sparse ``<id>.bin`` per file holding the bytes at their
file offsets, and an ``<id>.idx`` of 32-byte records (chunk start, length, chunk MAC). The
``<id>`` is a keyed digest of the node's handle and key, so names reveal neither. Chunks read
back are decrypted and MAC-ed again and must give the recorded MAC (else they are dropped and
fetched again). When the folder grows past its cap, whole files go, least recently used first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["MemoryCache", "DiskCache", "Recent"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_RECORD = struct.Struct("<QQ16s")


class Recent(Generic[K, V]):
    """At most ``cap`` entries, the least recently used going first. Its lock is a leaf:
    nothing else is locked while it is held."""

    def __init__(self, cap: int) -> None:
        self.cap = max(0, cap)
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The entry ``key``, now the most recently used."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.cap:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class MemoryCache:
    """Decrypted chunks (read-only views) keyed by ``(handle, chunk start)``, at most ``cap``
    bytes."""

    def __init__(self, cap: int) -> None:
        self.cap = max(0, cap)
        self._items: OrderedDict[tuple[str, int], memoryview] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, handle: str, start: int) -> memoryview | None:
        with self._lock:
            data = self._items.get((handle, start))
            if data is not None:
                self._items.move_to_end((handle, start))
            return data

    def put(self, handle: str, start: int, data: memoryview) -> None:
        if len(data) > self.cap:
            return
        with self._lock:
            old = self._items.pop((handle, start), None)
            if old is not None:
                self._bytes -= len(old)
            self._items[(handle, start)] = data
            self._bytes += len(data)
            while self._bytes > self.cap:
                _, gone = self._items.popitem(last=False)
                self._bytes -= len(gone)

    def drop(self, handle: str, starts: list[int]) -> None:
        """Forget the chunks ``starts`` of ``handle`` (those not held are skipped)."""
        with self._lock:
            for start in starts:
                gone = self._items.pop((handle, start), None)
                if gone is not None:
                    self._bytes -= len(gone)

    @property
    def used(self) -> int:
        """Bytes held now."""
        return self._bytes


class _DiskFile:
    def __init__(self, folder: Path, ident: str) -> None:
        self.bin = folder / f"{ident}.bin"
        self.idx = folder / f"{ident}.idx"
        self.chunks: dict[int, tuple[int, bytes]] = {}
        self.bytes = 0
        if self.idx.exists():
            data = self.idx.read_bytes()
            for i in range(0, len(data) - len(data) % _RECORD.size, _RECORD.size):
                start, length, mac = _RECORD.unpack_from(data, i)
                if start not in self.chunks:
                    self.bytes += length
                self.chunks[start] = (length, mac)


def _folder_secret(folder: Path) -> bytes:
    """The folder's digest key (``.key``, 0600), made on first use."""
    path = folder / ".key"
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
    except FileExistsError:
        data = path.read_bytes()
        if len(data) == 32:
            return data
        path.unlink()
        return _folder_secret(folder)
    try:
        secret = os.urandom(32)
        os.write(fd, secret)
        return secret
    finally:
        os.close(fd)


class DiskCache:
    """Ciphertext chunks under ``folder`` (created 0700), at most ``cap`` bytes in all."""

    def __init__(self, folder: str | os.PathLike[str], cap: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self.cap = max(0, cap)
        self._secret = _folder_secret(self.folder)
        self._lock = threading.Lock()
        self._files: OrderedDict[str, _DiskFile] = OrderedDict()
        self._bytes = 0
        for idx in sorted(self.folder.glob("*.idx"), key=lambda p: p.stat().st_mtime):
            f = _DiskFile(self.folder, idx.stem)
            self._files[idx.stem] = f
            self._bytes += f.bytes
        self._trim()

    def ident(self, handle: str, key: bytes) -> str:
        """The file id of a node: a keyed digest of its handle and key (hex)."""
        return hashlib.blake2b(handle.encode() + b"\0" + key, key=self._secret).hexdigest()[:40]

    def _file(self, ident: str) -> _DiskFile:
        f = self._files.get(ident)
        if f is None:
            f = self._files[ident] = _DiskFile(self.folder, ident)
            self._bytes += f.bytes
        self._files.move_to_end(ident)
        return f

    def lookup(self, ident: str, starts: list[int]) -> list[tuple[int, bytes]] | None:
        """``(length, mac)`` of each chunk when all are cached, else None."""
        with self._lock:
            f = self._files.get(ident)
            if f is None:
                return None
            found = [f.chunks.get(s) for s in starts]
            if any(x is None for x in found):
                return None
            self._files.move_to_end(ident)
            return [x for x in found if x is not None]

    def read(self, ident: str, start: int, buf: memoryview) -> bool:
        """Fill ``buf`` with the ciphertext at ``start``; False when it cannot be read."""
        path = self.folder / f"{ident}.bin"
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return False
        try:
            got = 0
            while got < len(buf):
                n = os.preadv(fd, [buf[got:]], start + got)
                if n <= 0:
                    return False
                got += n
            return True
        finally:
            os.close(fd)

    def write(
        self, ident: str, start: int, data: memoryview, macs: list[tuple[int, int, bytes]]
    ) -> None:
        """Store ciphertext ``data`` at ``start`` and record its chunks ``(start, len, mac)``."""
        if self.cap <= 0 or len(data) > self.cap:
            return
        with self._lock:
            f = self._file(ident)
            flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(f.bin, flags, 0o600)
                try:
                    got = 0
                    while got < len(data):
                        got += os.pwrite(fd, data[got:], start + got)
                finally:
                    os.close(fd)
                fd = os.open(f.idx, flags | os.O_APPEND, 0o600)
                try:
                    records = b"".join(_RECORD.pack(s, n, m) for s, n, m in macs)
                    os.write(fd, records)
                finally:
                    os.close(fd)
            except OSError:
                return  # a full or unwritable disk: the cache is only a cache
            for s, n, m in macs:
                if s not in f.chunks:
                    f.bytes += n
                    self._bytes += n
                f.chunks[s] = (n, m)
            self._trim()

    def drop(self, ident: str) -> None:
        """Forget and remove a file's cached bytes (after a MAC did not match)."""
        with self._lock:
            self._remove(ident)

    def _remove(self, ident: str) -> None:
        f = self._files.pop(ident, None)
        if f is not None:
            self._bytes -= f.bytes
            for p in (f.bin, f.idx):
                with contextlib.suppress(OSError):
                    p.unlink()

    def _trim(self) -> None:
        while self._bytes > self.cap and self._files:
            self._remove(next(iter(self._files)))

    @property
    def used(self) -> int:
        """Bytes of ciphertext held now."""
        return self._bytes
