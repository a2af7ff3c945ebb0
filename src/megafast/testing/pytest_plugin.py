"""pytest fixtures for testing code against the MEGA emulator (opt-in).

Enable in a ``conftest.py`` with ``pytest_plugins = ["megafast.testing.pytest_plugin"]``, then::

    def test_upload(mega_emulator):
        mega_emulator.create_account("me@example.com", "pw")
        m = megafast.Mega().login("me@example.com", "pw")   # talks to the emulator
        ...

``mega_emulator`` starts a fresh emulator per test and points ``$MEGAFAST_API_URL`` (which
megafast's client and CLI read) at it for the duration of the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emulator import MegaEmulator


@pytest.fixture
def mega_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[MegaEmulator]:
    """A running :class:`MegaEmulator`; ``$MEGAFAST_API_URL`` points at it."""
    with MegaEmulator() as emu:
        monkeypatch.setenv("MEGAFAST_API_URL", emu.api_url)
        yield emu
