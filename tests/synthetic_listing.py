"""Synthetic ``f`` answers for big-account tests and benchmarks, encrypted with the emulator's
independent crypto (``megafast.testing._crypto``, pycryptodome), never with megafast's own."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

from megafast.testing import _crypto as C


def handle(n: int, width: int = 8) -> str:
    """A distinct MEGA-style handle for ``n``."""
    return C.b64encode(n.to_bytes(6, "big"))[:width]


class Account:
    """Keys of a synthetic account: ``user`` handle and 16-byte ``master`` key."""

    def __init__(self, user: str = "UsEr_hAnDlE", master: bytes | None = None) -> None:
        self.user = user
        self.master = master or secrets.token_bytes(16)
        self.root = handle(1)
        self.inbox = handle(2)
        self.trash = handle(3)
        self._serial = 100

    def new_handle(self) -> str:
        self._serial += 1
        return handle(self._serial)

    def roots(self) -> list[dict[str, Any]]:
        return [
            {"h": h, "p": "", "u": self.user, "t": t, "a": "", "k": "", "ts": 1}
            for h, t in ((self.root, 2), (self.inbox, 3), (self.trash, 4))
        ]

    def folder(self, h: str, parent: str, name: str, key: bytes | None = None) -> dict[str, Any]:
        key = key or secrets.token_bytes(16)
        return {
            "h": h,
            "p": parent,
            "u": self.user,
            "t": 1,
            "a": C.encrypt_attr({"n": name}, key),
            "k": f"{self.user}:{C.b64encode(C.ecb_encrypt(self.master, key))}",
            "ts": 1700000000,
        }

    def file(
        self, h: str, parent: str, name: str, size: int = 1234, attrs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        packed = secrets.token_bytes(32)
        k = bytes(a ^ b for a, b in zip(packed[:16], packed[16:], strict=True))
        return {
            "h": h,
            "p": parent,
            "u": self.user,
            "t": 0,
            "s": size,
            "a": C.encrypt_attr({"n": name, **(attrs or {})}, k),
            "k": f"{self.user}:{C.b64encode(C.ecb_encrypt(self.master, packed))}",
            "ts": 1700000001,
        }


def big_answer_chunks(
    account: Account, folders: int, files_per_folder: int, chunk: int = 1 << 16
) -> Iterator[bytes]:
    """The bytes of ``[{"f":[...],"ok":[],"s":[],"u":[...],"sn":...}]`` for ``folders``
    folders of ``files_per_folder`` files each, produced piece by piece."""
    out: list[str] = ['[{"f":[']
    size = 0
    first = True
    serial = 1000

    def emit(node: dict[str, Any]) -> Iterator[bytes]:
        nonlocal first, size
        text = ("" if first else ",") + json.dumps(node, separators=(",", ":"))
        first = False
        out.append(text)
        size += len(text)
        if size >= chunk:
            yield "".join(out).encode()
            out.clear()
            size = 0

    for node in account.roots():
        yield from emit(node)
    for f in range(folders):
        serial += 1
        fh = handle(serial)
        yield from emit(account.folder(fh, account.root, f"folder{f}"))
        for i in range(files_per_folder):
            serial += 1
            attrs = {"c": C.b64encode(secrets.token_bytes(20))}
            yield from emit(account.file(handle(serial), fh, f"file{i}.bin", 1000 + i, attrs))
    out.append(
        f'],"ok":[],"s":[],"u":[{{"u":"{account.user}","c":2,"m":"a@b.c"}}],"sn":"AAAAAAAAAAE"}}]'
    )
    yield "".join(out).encode()
