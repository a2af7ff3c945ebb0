"""The commands of ``megafast``: one ``cmd_<name>(ctx)`` function each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .errors import CommandError, UsageError
from .progress import format_bytes, progress_enabled

__all__ = ["run", "Context"]


class Context:
    """The parsed arguments plus output helpers shared by every command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(args.json)
        self.quiet: bool = bool(args.quiet)
        self.progress: bool = progress_enabled(args)
        self._client: Any = None

    # -- output -------------------------------------------------------------------------
    def result(self, data: Any, text: str | list[str] | None = None) -> None:
        """Print a command's result: JSON with --json, else the text lines (if any)."""
        if self.json:
            print(json.dumps(data, ensure_ascii=False))
        elif text is not None:
            lines = [text] if isinstance(text, str) else text
            for line in lines:
                print(line)
        sys.stdout.flush()

    def status(self, message: str) -> None:
        """A human status line on stderr (not with --quiet or --json)."""
        if not self.quiet and not self.json:
            print(message, file=sys.stderr)

    # -- the client ----------------------------------------------------------------------
    def client(self) -> Any:
        """The logged-in client, resumed from the stored session."""
        if self._client is None:
            from . import account

            self._client = account.resume(self)
        return self._client

    def transfer_config(self) -> Any:
        from . import account

        return account.transfer_config(self)


def cmd_info(ctx: Context) -> int:
    from .info import collect_info, format_info

    facts = collect_info(ctx.args.api_url)
    ctx.result(facts, format_info(facts))
    return 0


def cmd_bench(ctx: Context) -> int:
    from .bench import format_table, run_bench

    if not ctx.json:
        ctx.status(f"timing the kernels for about {ctx.args.seconds:g} s ...")
    rows, facts = run_bench(ctx.args.seconds, ctx.args.size)
    data = {
        **facts,
        "results": [
            {"name": row.name, "unit": row.unit, "rates": row.rates, "ratio": row.ratio()}
            for row in rows
        ],
    }
    lines = [format_table(rows, facts["columns"])]
    lines.append("")
    lines.append(
        f"buffer {format_bytes(facts['size'])}; in use: kernel {facts['default_kernel']}"
        + ("" if facts["native"] else " (the native extension is not available)")
    )
    ctx.result(data, lines)
    return 0


def cmd_serve(ctx: Context) -> int:
    try:
        from megafast.testing import serve_main
    except ImportError as exc:
        raise CommandError(f"the emulator is not available: {exc}") from exc
    argv: list[str] = list(ctx.args.serve_argv)
    code = serve_main(argv)
    return int(code) if isinstance(code, int) else 0


def _lazy(module: str, name: str) -> Callable[[Context], int]:
    def command(ctx: Context) -> int:
        import importlib

        function: Callable[[Context], int] = getattr(
            importlib.import_module(f"{__package__}.{module}"), name
        )
        return function(ctx)

    return command


COMMANDS: dict[str, Callable[[Context], int]] = {
    "info": cmd_info,
    "bench": cmd_bench,
    "serve": cmd_serve,
    "login": _lazy("account", "cmd_login"),
    "logout": _lazy("account", "cmd_logout"),
    "whoami": _lazy("account", "cmd_whoami"),
    "df": _lazy("account", "cmd_df"),
    "ls": _lazy("files", "cmd_ls"),
    "mkdir": _lazy("files", "cmd_mkdir"),
    "mv": _lazy("files", "cmd_mv"),
    "rm": _lazy("files", "cmd_rm"),
    "link": _lazy("files", "cmd_link"),
    "import": _lazy("files", "cmd_import"),
    "get": _lazy("transfers", "cmd_get"),
    "put": _lazy("transfers", "cmd_put"),
    "cat": _lazy("transfers", "cmd_cat"),
    "demo": _lazy("demo", "cmd_demo"),
}


def run(args: argparse.Namespace) -> int:
    """Run the command named in ``args``; returns the exit code."""
    command = COMMANDS.get(args.command)
    if command is None:  # argparse already rejects unknown names
        raise UsageError(f"unknown command: {args.command}")
    return command(Context(args))
