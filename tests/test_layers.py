"""The layers of docs/DESIGN.md hold: import-linter's contracts in pyproject.toml pass, and
they fail when a module imports a layer above it (so CI catches an upward import)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = 3


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with ``root``'s pyproject.toml over ``root/src``'s megafast."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    script = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", script, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_package(tmp_path: Path) -> Path:
    """The sources (Python files only) and pyproject.toml in a scratch checkout."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "src" / "megafast",
        tmp_path / "src" / "megafast",
        ignore=lambda _d, names: [
            n for n in names if not n.endswith(".py") and not (Path(_d) / n).is_dir()
        ],
    )
    return tmp_path


def test_the_layering_contracts_are_kept() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {CONTRACTS} kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("transfer/_config.py", "megafast._account.treejobs"),  # the engine reaching for nodes
        ("_account/quota.py", "megafast.client"),  # the core reaching for the facade
        ("_wire/codec.py", "megafast._tree.nodes"),  # the wire reaching for the tree
        ("testing/_common.py", "megafast.crypto"),  # the emulator borrowing client code
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, upward: str) -> None:
    root = copy_package(tmp_path)
    path = root / "src" / "megafast" / module
    path.write_text(path.read_text() + f"\nimport {upward}  # noqa\n")
    done = lint_imports(root)
    assert done.returncode != 0, done.stdout
    assert "BROKEN" in done.stdout and upward in done.stdout
