"""Shared fixtures: the known-answer vectors, a fixture that runs a test on every backend, a
fresh emulator with a raw client for it, and the emulator account the transfer tests
(test_transfer_*.py) work with."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Machines are shared and noisy: no per-example deadlines. CI sets HYPOTHESIS_PROFILE=ci.
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

HERE = Path(__file__).resolve().parent


def _vectors_dir() -> Path:
    """The in-repository copy of the known answers (tests/vectors, see its README).
    MEGAFAST_VECTORS may point elsewhere (CI uses it to run the same tests on the project's
    shared vector set when one sits beside the checkout); the suite never looks outside the
    checkout by itself."""
    env = os.environ.get("MEGAFAST_VECTORS")
    path = Path(env) if env else HERE / "vectors"
    if not (path / "external_vectors.json").is_file():
        raise RuntimeError(f"known-answer vectors not found in {path}")
    return path


VECTORS_DIR = _vectors_dir()


@pytest.fixture(scope="session", autouse=True)
def _isolated_state_and_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Upload sidecars and CLI sessions go to temporary folders, never the user's own
    (subprocesses inherit the environment)."""
    saved = {k: os.environ.get(k) for k in ("MEGAFAST_STATE_DIR", "MEGAFAST_CONFIG_DIR")}
    os.environ["MEGAFAST_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    os.environ["MEGAFAST_CONFIG_DIR"] = str(tmp_path_factory.mktemp("config"))
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS_DIR


@pytest.fixture(scope="session")
def external_vectors() -> dict[str, Any]:
    return json.loads((VECTORS_DIR / "external_vectors.json").read_text())


@pytest.fixture(scope="session")
def crypto_vectors() -> dict[str, Any]:
    return json.loads((VECTORS_DIR / "mega_crypto_vectors.json").read_text())


def _backend_params() -> list[str]:
    """'python' plus every native kernel this build and CPU can run."""
    params = ["python"]
    from megafast.crypto import _backend

    if _backend.BACKEND == "native":
        params += [f"native-{k}" for k in _backend.kernels.available_kernels()]
    return params


BACKENDS = _backend_params()


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """Run the test once per backend: the pure twin and each native kernel.

    The public ``megafast.crypto`` API looks its kernel module up at call time, so patching
    ``_backend.kernels`` switches everything, FileCipher included.
    """
    from megafast.crypto import _backend, _pure

    name: str = request.param
    if name == "python":
        monkeypatch.setattr(_backend, "kernels", _pure)
        yield _pure
        return
    native = _backend.kernels
    previous = native.KERNEL
    native.set_kernel(name.split("-", 1)[1])
    try:
        yield native
    finally:
        native.set_kernel(previous)


# -- the emulator -----------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[Any]:
    """A fresh MegaEmulator for this test (modules that share one define their own ``emu``)."""
    from megafast.testing import MegaEmulator

    with MegaEmulator() as e:
        yield e


@pytest.fixture
def client(emu: Any) -> Any:
    """A RawClient (tests/support/raw_client.py), not logged in, for ``emu``."""
    from support.raw_client import RawClient

    return RawClient(emu.api_url)


# -- transfer tests (helpers in tests/support/transfer.py) -----------------------------------


@pytest.fixture(scope="module")
def transfer_emulator() -> Iterator[Any]:
    """One emulator per test module, with the transfer tests' account."""
    from megafast.testing import MegaEmulator
    from support.transfer import EMAIL

    with MegaEmulator() as emu:
        emu.create_account(EMAIL, "pw")
        yield emu


@pytest.fixture
def remote(
    transfer_emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    """The transfer account as a logged-in client sees it: no faults, upload sidecars in
    this test's own state folder (``tmp_path / "state"``). Tests pass
    ``support.transfer.fast_config(...)`` for millisecond back-off."""
    from support.transfer import Remote

    transfer_emulator.clear_faults()
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))
    yield Remote(transfer_emulator)
    transfer_emulator.clear_faults()


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every (start, end) range the download engine asked the server for."""
    from megafast.transfer import _download

    calls: list[tuple[int, int]] = []
    real = _download.fetch_range

    def spy(ctl, urls, start, end, *args, **kwargs):
        calls.append((start, end))
        return real(ctl, urls, start, end, *args, **kwargs)

    monkeypatch.setattr(_download, "fetch_range", spy)
    return calls


# -- mega:// filesystem tests (helpers in support/megafs.py) ----------------------------


@pytest.fixture(scope="module")
def fs_emulator() -> Iterator[Any]:
    """One emulator per test module, with the mega:// tests' account."""
    from megafast.testing import MegaEmulator
    from support.megafs import EMAIL, PASSWORD

    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest.fixture(scope="module")
def fs_options(fs_emulator: Any) -> dict[str, Any]:
    """storage_options for that account: its session (never the password) and the API URL."""
    from support.megafs import session_options

    return session_options(fs_emulator)


@pytest.fixture
def scripted() -> Iterator[Any]:
    """A scripted API server (support.scripted_api) for one test."""
    from support.servers import scripted_server

    yield from scripted_server()


@pytest.fixture
def hostile() -> Iterator[Any]:
    """A hostile HTTP server (support.hostile) for one test."""
    from support.servers import hostile_server

    yield from hostile_server()
