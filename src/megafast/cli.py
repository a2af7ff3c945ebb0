"""The ``megafast`` command line.

Only :mod:`argparse` runs at import time: every command imports what it needs (requests, the
crypto core, the client) when it runs, so ``megafast --help`` starts fast. The commands live
in :mod:`megafast._cli`: each command module registers its parser and handler with
:mod:`megafast._cli.registry`; the shared context is :mod:`megafast._cli.context`.

Exit codes (:class:`megafast._cli.errors.ExitCode`): 0 success, 1 failure, 2 usage error,
130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ._cli.errors import ExitCode
from ._cli.options import common_options

__all__ = ["main", "build_parser", "ExitCode"]

_DESCRIPTION = "A fast MEGA (mega.nz) client with a native crypto core."
_EPILOG = """\
Remote paths start at the Cloud Drive root ("/docs/a.txt"; the leading "/" is optional).
Public links (https://mega.nz/file/..., /folder/...) work wherever PATH|URL is accepted.
The session (never the password) is kept in $MEGAFAST_CONFIG_DIR, $XDG_CONFIG_HOME/megafast
or ~/.config/megafast. The API server is --api-url, $MEGAFAST_API_URL or MEGA's own.
Exit codes: 0 ok, 1 failure, 2 usage error."""


def build_parser() -> argparse.ArgumentParser:
    """Return the ``megafast`` argument parser (every registered command)."""
    from ._cli.registry import all_commands

    common_sub = common_options(for_subcommand=True)
    parser = argparse.ArgumentParser(
        prog="megafast",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        parents=[common_options(for_subcommand=False)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in all_commands().values():
        if command.passthrough:  # --help and every option go to the command's own parser
            subparsers.add_parser(
                command.name, help=command.help, description=command.description, add_help=False
            )
            continue
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.description or command.help,
            parents=[common_sub],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command.arguments is not None:
            command.arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    if argv is None:
        argv = sys.argv[1:]
    argv = list(argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command and _passthrough(args.command):
            args.passthrough = extra  # the command parses its own options
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE)
    if args.version:
        from . import __version__

        print(f"megafast {__version__}")
        return int(ExitCode.OK)
    if not args.command:
        parser.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    if args.api_url is None:
        args.api_url = os.environ.get("MEGAFAST_API_URL") or None

    from ._cli.context import Context
    from ._cli.errors import report_error
    from ._cli.registry import all_commands

    try:
        return all_commands()[args.command].handler(Context(args))
    except KeyboardInterrupt:
        print("megafast: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (megafast cat ... | head): not an error of ours.
        _silence_stdout()
        return int(ExitCode.OK)
    except Exception as exc:  # every error becomes one line and an exit code
        return report_error(exc, args)


def _passthrough(name: str) -> bool:
    from ._cli.registry import all_commands

    command = all_commands().get(name)
    return command is not None and command.passthrough


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
