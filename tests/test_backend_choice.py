"""How the backend is chosen: forced, required, and the visible fallback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Blocks the native module the way a failed build would, then uses the crypto API.
PROBE = """
import sys, warnings
sys.modules["megafast.crypto._native"] = None  # import of it now raises ImportError
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import megafast.crypto as c
print(c.BACKEND, c.KERNEL, c.prepare_key("abc") == c.prepare_key([0x61626300]))
print(any("native crypto extension is not available" in str(w.message) for w in caught))
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MEGAFAST_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60
    )


def test_missing_extension_falls_back_visibly():
    out = run(PROBE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["python", "python", "True", "True"]


def test_required_extension_missing_is_an_import_error():
    out = run(PROBE, MEGAFAST_REQUIRE_EXTENSIONS="1")
    assert out.returncode != 0
    assert "MEGAFAST_REQUIRE_EXTENSIONS is set" in out.stderr


def test_no_extensions_forces_the_pure_backend_without_warning():
    out = run(
        "import warnings; warnings.simplefilter('error'); import megafast.crypto as c; print(c.BACKEND, c.KERNEL)",
        MEGAFAST_NO_EXTENSIONS="1",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["python", "python"]


def test_native_backend_is_used_when_built():
    from megafast.crypto import _backend

    if _backend.NO_EXTENSIONS:
        pytest.skip("pure backend forced for this run")
    out = run("import megafast.crypto as c; print(c.BACKEND, c.KERNEL)")
    assert out.stdout.split()[0] == "native", out.stderr
    assert out.stdout.split()[1] in ("vaes", "aesni", "portable")
