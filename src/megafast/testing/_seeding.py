"""Seeding helpers of :class:`~megafast.testing.MegaEmulator`: folders, files and links made
as a client would make them (the emulator's registering client knows the master keys), each
announced on ``/sc`` like any other change."""

from __future__ import annotations

import io
import os
import secrets
import sqlite3
import time
from typing import BinaryIO

from . import _crypto as C
from ._api import Service
from ._store import FOLDER_TYPES, Store


class Seeding:
    """``add_folder``, ``add_file``, ``export``, ``node_key``, ``decrypt_attributes``."""

    @property
    def store(self) -> Store:
        raise NotImplementedError

    @property
    def service(self) -> Service:
        raise NotImplementedError

    def _user(self, email_or_handle: str) -> sqlite3.Row:
        row = self.store.user_by_email(email_or_handle) or self.store.user(email_or_handle)
        if row is None:
            raise KeyError(f"no such account: {email_or_handle!r}")
        return row

    def _master_key(self, handle: str) -> bytes:
        row = self.store.one("SELECT master_key FROM helper_keys WHERE user=?", handle)
        if row is None:
            raise KeyError("the emulator did not create this account, so it has no key for it")
        return C.b64decode(row["master_key"])

    # --- seeding nodes -----------------------------------------------------------------

    def _parent(self, owner: str, parent: str | None) -> str:
        if parent is None:
            return self.store.root_node(owner, 2)
        node = self.store.node(parent)
        if node is None or node["owner"] != owner or node["t"] not in FOLDER_TYPES:
            raise ValueError(f"{parent!r} is not a folder of this account")
        return parent

    def _share_keys_above(self, owner: str, parent: str) -> list[tuple[str, bytes]]:
        """(share handle, share key) for every share at or above ``parent``."""
        mk = self._master_key(owner)
        out = []
        for h in [parent, *self.store.ancestors(parent)]:
            row = self.store.one("SELECT ok FROM share_keys WHERE h=?", h)
            if row is not None:
                out.append((h, C.ecb_decrypt(mk, C.b64decode(row["ok"]))))
        return out

    def _add_share_keys(self, owner: str, parent: str, h: str, node_key: bytes) -> None:
        for share, key in self._share_keys_above(owner, parent):
            self.store.execute(
                "INSERT OR REPLACE INTO node_keys(h, share, k) VALUES(?,?,?)",
                h,
                share,
                C.b64encode(C.ecb_encrypt(key, node_key)),
            )

    def add_folder(self, email: str, name: str, parent: str | None = None) -> str:
        """Create a folder as a client would (random key, encrypted name); returns its handle."""
        owner = self._user(email)["handle"]
        mk = self._master_key(owner)
        key = secrets.token_bytes(16)
        with self.store.transaction():
            parent = self._parent(owner, parent)
            h = self.store.insert_node(
                owner,
                parent,
                1,
                C.encrypt_attr({"n": name}, key),
                C.b64encode(C.ecb_encrypt(mk, key)),
            )
            self._add_share_keys(owner, parent, h, key)
            self.service.emit_nodes([h], None, owner)
        return h

    def add_file(
        self,
        email: str,
        data_or_path: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO,
        name: str,
        parent: str | None = None,
        *,
        mtime: int | None = None,
    ) -> tuple[str, tuple[int, ...]]:
        """Encrypt and store a file as a client's upload would; returns (handle, packed key).

        ``data_or_path``: bytes, a path, or a binary file object (streamed in 1 MiB pieces).
        The packed key is the 8 words of the file's public link key.
        """
        owner = self._user(email)["handle"]
        mk = self._master_key(owner)
        parent = self._parent(owner, parent)
        mtime = int(time.time()) if mtime is None else int(mtime)
        if isinstance(data_or_path, (bytes, bytearray, memoryview)):
            with io.BytesIO(data_or_path) as source:
                enc, blob, fp = self._store_encrypted(source, mtime)
        elif isinstance(data_or_path, (str, os.PathLike)):
            with open(data_or_path, "rb") as source:
                enc, blob, fp = self._store_encrypted(source, mtime)
        else:
            enc, blob, fp = self._store_encrypted(data_or_path, mtime)
        packed = enc.packed_key()
        attrs: dict = {"n": name, "c": fp}
        with self.store.transaction():
            h = self.store.insert_node(
                owner,
                parent,
                0,
                C.encrypt_attr(attrs, enc.key),
                C.b64encode(C.ecb_encrypt(mk, C.a32_to_bytes(packed))),
                s=enc.size,
                blob=blob,
                ts=mtime,
            )
            self._add_share_keys(owner, parent, h, C.a32_to_bytes(packed))
            self.service.emit_nodes([h], None, owner)
        return h, packed

    def _store_encrypted(self, source: BinaryIO, mtime: int) -> tuple[C.FileEncryptor, str, str]:
        """Encrypt ``source`` (from its position to its end) into a new blob file.

        Returns (the encryptor, with its key and MAC; the blob id; the fingerprint).
        """
        start = source.tell()
        size = source.seek(0, os.SEEK_END) - start

        def read_at(offset: int, length: int) -> bytes:
            source.seek(start + offset)
            return source.read(length)

        fp = C.fingerprint(read_at, size, mtime)
        source.seek(start)
        blob = secrets.token_hex(16)
        enc = C.FileEncryptor(size)
        path = self.store.blob_path(blob)
        try:
            with open(path, "wb") as out:
                left = size
                while left:
                    piece = source.read(min(1 << 20, left))
                    if not piece:
                        raise ValueError("the source ended before its size")
                    out.write(enc.encrypt(piece))
                    left -= len(piece)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return enc, blob, fp

    def node_key(self, handle: str) -> bytes:
        """The node's key (32 bytes packed for files, 16 for folders), decrypted as its owner."""
        node = self.store.node(handle)
        if node is None:
            raise KeyError(f"no such node: {handle!r}")
        return C.ecb_decrypt(self._master_key(node["owner"]), C.b64decode(node["k"]))

    def export(self, handle: str) -> str:
        """Make a public link (``https://mega.nz/file/H#K`` or ``/folder/H#K``) as a client would.

        Folders are shared with ``EXP`` first: a random share key, ``ok``/``ha``, and every
        node below re-keyed under the share key, as MEGA's web client does.
        """
        node = self.store.node(handle)
        if node is None:
            raise KeyError(f"no such node: {handle!r}")
        if node["t"] == 0:
            with self.store.transaction():
                ph = self.service.public_handle(handle)
            return f"https://mega.nz/file/{ph}#{C.b64encode(self.node_key(handle))}"
        if node["t"] != 1:
            raise ValueError("only files and folders can be exported")
        owner = node["owner"]
        mk = self._master_key(owner)
        with self.store.transaction():
            row = self.store.one("SELECT ok FROM share_keys WHERE h=?", handle)
            if row is None:
                share_key = secrets.token_bytes(16)
                self.store.execute(
                    "INSERT INTO share_keys(h, owner, ok, ha) VALUES(?,?,?,?)",
                    handle,
                    owner,
                    C.b64encode(C.ecb_encrypt(mk, share_key)),
                    C.b64encode(C.ecb_encrypt(mk, (handle + handle).encode())),
                )
            else:
                share_key = C.ecb_decrypt(mk, C.b64decode(row["ok"]))
            self.store.execute(
                "INSERT OR REPLACE INTO shares(h, u, r, k, ts) VALUES(?,?,?,?,strftime('%s','now'))",
                handle,
                "EXP",
                0,
                None,
            )
            self.service.changes.add(
                {owner: {"a": "s2", "n": handle, "o": owner, "u": "EXP", "r": 0, "ou": owner}}
            )
            for r in self.store.subtree(handle):
                key = C.ecb_decrypt(mk, C.b64decode(r["k"]))
                self.store.execute(
                    "INSERT OR REPLACE INTO node_keys(h, share, k) VALUES(?,?,?)",
                    r["h"],
                    handle,
                    C.b64encode(C.ecb_encrypt(share_key, key)),
                )
            ph = self.service.public_handle(handle)
        return f"https://mega.nz/folder/{ph}#{C.b64encode(share_key)}"

    def decrypt_attributes(self, handle: str) -> dict | None:
        """The node's attributes decrypted with its owner's key (None when undecryptable)."""
        node = self.store.node(handle)
        if node is None:
            raise KeyError(f"no such node: {handle!r}")
        key = self.node_key(handle)
        if len(key) == 32:
            w = C.bytes_to_a32(key)
            key = C.a32_to_bytes([w[i] ^ w[i + 4] for i in range(4)])
        return C.decrypt_attr(node["a"] or "", key)
