"""The scripted and hostile API servers as pytest fixtures, for the sync and async tests alike.

``scripted`` and ``hostile`` (one server per test) are in conftest.py; a module whose tests
share one server imports :func:`scripted_per_module` (its fixture name is ``scripted``).
:data:`FUZZ_SETTINGS` is the hypothesis settings of the random-answer tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from support.hostile import HostileServer
from support.scripted_api import ScriptedAPI

__all__ = ["FUZZ_SETTINGS", "hostile_server", "scripted_per_module", "scripted_server"]

#: Examples per random-answer test: MEGAFAST_FUZZ_EXAMPLES (default 8)
FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("MEGAFAST_FUZZ_EXAMPLES", "8")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def scripted_server() -> Iterator[ScriptedAPI]:
    """A ScriptedAPI, closed when the fixture ends."""
    server = ScriptedAPI()
    yield server
    server.close()


def hostile_server() -> Iterator[HostileServer]:
    """A HostileServer, closed when the fixture ends."""
    server = HostileServer()
    yield server
    server.close()


@pytest.fixture(scope="module", name="scripted")
def scripted_per_module() -> Iterator[ScriptedAPI]:
    """One ScriptedAPI for all the tests of a module."""
    yield from scripted_server()
