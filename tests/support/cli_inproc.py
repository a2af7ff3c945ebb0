"""The command line run inside the test process (``megafast.cli.main``), against an emulator."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from megafast import Mega
from megafast.cli import main
from megafast.testing import MegaEmulator

__all__ = ["cli_login", "run_cli"]


def run_cli(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    """Run ``megafast argv`` in this process; returns (exit code, stdout, stderr)."""
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv))
    finally:
        sys.stdin = saved
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_login(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    emulator: MegaEmulator,
    email: str,
    password: str,
) -> Mega:
    """Log the command line in (its config and state under ``home``) and return a library
    client logged in to the same account."""
    monkeypatch.setenv("MEGAFAST_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(home / "state"))
    monkeypatch.setenv("MEGAFAST_API_URL", emulator.api_url)
    code, _, err = run_cli(capsys, "login", email, "--password-stdin", stdin=password + "\n")
    assert code == 0, err
    return Mega(api_url=emulator.api_url).login(email, password)
