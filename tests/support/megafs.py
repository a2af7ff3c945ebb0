"""The mega:// filesystem tests' account and data (fixtures in conftest.py: fs_emulator,
fs_options)."""

from __future__ import annotations

from typing import Any

EMAIL, PASSWORD = "fs@example.com", "fs password"


def session_options(emu: Any) -> dict[str, Any]:
    """storage_options for the tests' account on ``emu``: a session (no password), the URL."""
    from megafast import Mega

    session = Mega(api_url=emu.api_url).login(EMAIL, PASSWORD).dump_session()
    return {"session": session, "api_url": emu.api_url}


def payload(n: int, seed: int = 1) -> bytes:
    """``n`` bytes of a pattern that differs with ``seed``."""
    return (bytes(range(251)) * (n // 251 + 1))[seed : seed + n]
