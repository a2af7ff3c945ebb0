"""Turning exceptions into one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import enum
import json
import re
import sys
import traceback

__all__ = ["ExitCode", "UsageError", "CommandError", "report_error", "scrub", "describe_error"]


class ExitCode(enum.IntEnum):
    """The command line's exit codes (the one table; docs/CLI.md lists them)."""

    OK = 0
    FAILURE = 1  # the command failed (a CommandError, a server or file error)
    USAGE = 2  # the command line makes no sense (a UsageError, argparse's errors)
    PARTIAL = 3  # finished, but some paths were skipped or failed (sync lists them)
    INTERRUPTED = 130  # Ctrl-C


class UsageError(Exception):
    """The command line makes no sense (exit code 2)."""


class CommandError(Exception):
    """A command failed for a reason the user can act on (exit code 1)."""


def scrub(text: str) -> str:
    """Remove session ids and link keys from a message (megafast._wire.redact's rule)."""
    from .._wire.redact import redact

    return redact(text)


def describe_error(exc: BaseException) -> str:
    """One human line for an exception, without secrets."""
    # Imported here: requests is not loaded for commands that never touch the network.
    requests_exc = sys.modules.get("requests.exceptions")
    if requests_exc is not None and isinstance(exc, requests_exc.RequestException):
        request = getattr(exc, "request", None)
        url = getattr(request, "url", None) or ""
        host = re.sub(r"^(\w+://[^/?#]+).*$", r"\1", url) if url else "the server"
        if isinstance(exc, requests_exc.ConnectionError):
            return f"cannot connect to {host}"
        if isinstance(exc, requests_exc.Timeout):
            return f"no answer from {host} in time"
        return f"HTTP error talking to {host}: {type(exc).__name__}"
    errors_module = sys.modules.get("megafast.errors")
    if errors_module is not None and isinstance(exc, errors_module.ServerUnreachableError):
        return str(exc.message)
    if errors_module is not None and isinstance(exc, errors_module.RetryExhaustedError):
        return f"no usable answer from the server: {exc.message}"
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        message = exc.strerror or type(exc).__name__
        return f"{message}: {exc.filename}" if exc.filename else message
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    first_line = text.splitlines()[0]
    return first_line


def report_error(exc: BaseException, args: argparse.Namespace) -> int:
    """Print ``exc`` as one line (or a traceback with --debug); return the exit code."""
    code = ExitCode.USAGE if isinstance(exc, UsageError) else ExitCode.FAILURE
    message = scrub(describe_error(exc))
    if getattr(args, "debug", False):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    if getattr(args, "json", False):
        payload: dict[str, object] = {"error": message, "type": type(exc).__name__}
        api_code = getattr(exc, "code", None)
        if isinstance(api_code, int):
            payload["code"] = api_code
        print(json.dumps(payload), file=sys.stderr)
    else:
        from .text import printable

        print(f"megafast: error: {printable(message)}", file=sys.stderr)
    return int(code)
