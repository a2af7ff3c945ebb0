"""Helpers for the sync tests: an emulator, an account per test, tree helpers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PASSWORD = "sync-password"


def new_account(emu: Any) -> tuple[str, Any]:
    """A fresh v1 account on ``emu`` (fast login) and a logged-in ``Mega`` for it."""
    from megafast import Mega

    email = f"sync-{secrets.token_hex(4)}@example.com"
    emu.create_account(email, PASSWORD, version=1)
    return email, Mega(api_url=emu.api_url).login(email, PASSWORD)


def write(path: Path, data: bytes | str, mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` (outside the trash) by POSIX path."""
    out: dict[str, bytes] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".megafast-trash") or not path.is_file() or path.is_symlink():
            continue
        out[rel] = path.read_bytes()
    return out


def remote_children(mega: Any, folder_path: str) -> dict[str, dict[str, Any]]:
    """Name -> node of what is directly in the remote folder (fresh listing)."""
    mega.refresh()
    handle = mega.find_path_descriptor(folder_path.strip("/"))
    assert handle is not None, folder_path
    return {n["a"]["n"]: n for n in mega.get_files_in_node(handle).values()}


def running_emulator() -> Iterator[Any]:
    """One emulator (used as a module-scoped fixture by the sync test modules)."""
    from megafast.testing import MegaEmulator

    with MegaEmulator() as emu:
        yield emu


def fresh_client(emu: Any) -> Any:
    """A logged-in ``Mega`` for a new account on ``emu`` (a per-test fixture)."""
    return new_account(emu)[1]
