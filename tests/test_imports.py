"""Every megafast module imports on its own in a fresh interpreter (catches import cycles).

An import cycle often works when the modules happen to be imported in one order and fails in
another; importing each module first, alone, tries every entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import megafast

PACKAGE_DIR = Path(megafast.__file__).resolve().parent
SRC = str(PACKAGE_DIR.parent)


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


MODULES = _modules()


def test_the_list_covers_the_cli_and_crypto_packages() -> None:
    assert "megafast.cli" in MODULES and "megafast._cli.registry" in MODULES
    assert "megafast.crypto._filecipher" in MODULES


def _import_alone(module: str) -> str | None:
    """None when ``import module`` works in a fresh interpreter, else its error output."""
    path = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=120,
    )
    return None if done.returncode == 0 else done.stderr.decode()[-2000:]


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    # One interpreter per module, a few at a time (each start costs ~0.2 s of CPU).
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        errors = dict(zip(MODULES, pool.map(_import_alone, MODULES), strict=True))
    failed = {module: error for module, error in errors.items() if error is not None}
    assert not failed, "\n\n".join(f"import {m} failed:\n{e}" for m, e in failed.items())
