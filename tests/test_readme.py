"""The README's commands, word for word, in a fresh virtual environment (slow)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def readme_commands() -> list[str]:
    """The shell commands in the README's "Two commands" section, in order."""
    text = README.read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_readme_has_two_commands_and_ci_runs_both():
    commands = readme_commands()
    assert len(commands) == 2
    install_and_demo, test_command = commands
    assert "megafast demo" in install_and_demo
    assert "pytest" in test_command
    ci_lines = (ROOT / ".ci" / "test-command").read_text().splitlines()
    assert test_command in ci_lines, "CI must run the README's test command word for word"
    demo_lines = (ROOT / ".ci" / "demo-command").read_text().splitlines()
    assert install_and_demo in demo_lines, "CI must run the README's demo command word for word"
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/demo-command" in ci_run and "bash .ci/test-command" in ci_run


@pytest.mark.slow
def test_readme_install_and_demo_in_a_fresh_venv(tmp_path):
    install_and_demo = readme_commands()[0]
    work = tmp_path / "checkout"
    shutil.copytree(
        ROOT,
        work,
        ignore=shutil.ignore_patterns(
            ".git", "*.so", "build", "*.egg-info", ".ci-venv", "__pycache__"
        ),
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    env = dict(os.environ)
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(env_dir)
    env.pop("PYTHONPATH", None)
    env["MEGAFAST_REQUIRE_EXTENSIONS"] = "1"
    env["TMPDIR"] = str(tmp_path)
    # `python` must be the venv's, as it is for a person who activated it
    result = subprocess.run(
        ["bash", "-c", install_and_demo],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verified" in result.stdout.lower()
    info = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import megafast.crypto as c; print(c.BACKEND)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert info.stdout.strip() == "native", info.stderr
