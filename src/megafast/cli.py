"""The ``megafast`` command line.

Only :mod:`argparse` runs at import time: every command imports what it needs (requests, the
crypto core, the client) when it runs, so ``megafast --help`` starts fast. The commands live
in :mod:`megafast._cli`.

Exit codes: 0 success, 1 failure, 2 usage error (130 on Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_API_URL = "https://g.api.mega.co.nz"

_DESCRIPTION = "A fast MEGA (mega.nz) client with a native crypto core."
_EPILOG = """\
Remote paths start at the Cloud Drive root ("/docs/a.txt"; the leading "/" is optional).
Public links (https://mega.nz/file/..., /folder/...) work wherever PATH|URL is accepted.
The session (never the password) is kept in $MEGAFAST_CONFIG_DIR, $XDG_CONFIG_HOME/megafast
or ~/.config/megafast. The API server is --api-url, $MEGAFAST_API_URL or MEGA's own.
Exit codes: 0 ok, 1 failure, 2 usage error."""


def _common_options(for_subcommand: bool) -> argparse.ArgumentParser:
    """Options accepted both before and after the command name.

    On the subcommands their defaults are SUPPRESS, so a value given before the command is not
    overwritten by the subcommand's default.
    """
    parser = argparse.ArgumentParser(add_help=False)

    def default(value: object) -> object:
        return argparse.SUPPRESS if for_subcommand else value

    group = parser.add_argument_group("output and connection options")
    group.add_argument(
        "--json", action="store_true", default=default(False), help="print results as JSON"
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress bars or status lines",
    )
    group.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default=default("auto"),
        help="progress bars on stderr (auto: when stderr is a terminal)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks on errors",
    )
    group.add_argument(
        "--api-url",
        metavar="URL",
        default=default(None),
        help="MEGA API server (default: $MEGAFAST_API_URL, else the session's, else MEGA's)",
    )
    group.add_argument(
        "--retry-time",
        type=_positive_float,
        metavar="S",
        default=default(None),
        help="seconds an API request may keep retrying temporary errors (default 120)",
    )
    return parser


def _transfer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--connections",
        type=_positive_int,
        metavar="N",
        help="parallel connections per file (default 8)",
    )
    parser.add_argument(
        "--limit",
        type=_size,
        metavar="SIZE",
        help="speed limit per file in bytes/s (suffixes K, M, G: powers of 1024)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMGT])(?:I?B)?|B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Parse a size such as ``123``, ``64M``, ``1GiB`` or ``1.5G`` into bytes (powers of 1024)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 1000, 64K, 64M, 1G)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """Return the ``megafast`` argument parser (all commands)."""
    common_sub = _common_options(for_subcommand=True)
    parser = argparse.ArgumentParser(
        prog="megafast",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        parents=[_common_options(for_subcommand=False)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=description or help_text,
            parents=[common_sub],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add(
        "login",
        "log in and keep the session",
        "Log in and store the session (never the password) in the config directory, mode 0600.",
    )
    p.add_argument("email", nargs="?", help="account email (asked when missing)")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of asking",
    )
    p.add_argument("--mfa", metavar="CODE", help="two-factor code (asked when needed)")

    add("logout", "end the session and forget it")
    add("whoami", "show the logged-in account")
    add("df", "show storage used and available")

    p = add("ls", "list a folder (or a public link)")
    p.add_argument("path", nargs="?", default="/", metavar="PATH|URL")
    p.add_argument("-l", "--long", action="store_true", help="sizes, dates and handles")
    p.add_argument("-R", "--recursive", action="store_true", help="list sub-folders too")

    p = add(
        "get",
        "download files, folders or public links",
        "Download files, folders, public file and folder links. An interrupted download\n"
        "resumes where it stopped when run again.",
    )
    p.add_argument("sources", nargs="+", metavar="PATH|URL")
    p.add_argument(
        "-o",
        "--output",
        metavar="DEST",
        help="local file or folder (default: the current folder)",
    )
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    _transfer_options(p)

    p = add(
        "put",
        "upload files or folders",
        "Upload files or folders. With two or more arguments the last one is the remote\n"
        "destination folder (or, for one file, the new remote name); give / for the root.",
    )
    p.add_argument("paths", nargs="+", metavar="FILE|DIR... [DEST]")
    _transfer_options(p)

    p = add("mkdir", "create folders")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument(
        "-p", "--parents", action="store_true", help="create parents; no error if it exists"
    )

    p = add(
        "mv",
        "move or rename",
        "Move into an existing folder, or move and rename one item (mv SRC NEWPATH).",
    )
    p.add_argument("paths", nargs="+", metavar="SRC... DEST")

    p = add("rm", "move to the rubbish bin (or delete for good)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-r", "--recursive", action="store_true", help="allow removing folders")
    p.add_argument(
        "--permanent", action="store_true", help="delete for good instead of the rubbish bin"
    )

    p = add("link", "make a public link (export)")
    p.add_argument("paths", nargs="+", metavar="PATH")

    p = add("import", "copy a public file link into your account")
    p.add_argument("url", metavar="URL")
    p.add_argument("dest", nargs="?", default="/", metavar="FOLDER")

    p = add("cat", "write a file's content to standard output")
    p.add_argument("source", metavar="PATH|URL")
    _transfer_options(p)

    p = commands.add_parser(
        "serve",
        help="run the MEGA emulator (for tests and demos)",
        description="Run the MEGA emulator; every option is the emulator's own "
        "(megafast serve --help lists them).",
        add_help=False,  # --help goes to the emulator's own parser
    )

    p = add("bench", "time the crypto kernels, native against pure Python")
    p.add_argument(
        "--seconds",
        type=_positive_float,
        default=3.0,
        metavar="S",
        help="time budget for the whole run (default 3)",
    )
    p.add_argument(
        "--size", type=_size, default=1 << 20, metavar="SIZE", help="buffer size (default 1M)"
    )

    add("info", "show the crypto backend, kernel, CPU features and versions")

    p = add(
        "demo",
        "upload and download through an embedded emulator, and time it",
        "Start an embedded emulator, create an account, upload and download a generated\n"
        "file, verify it and print the speeds and the kernel in use. No network needed.",
    )
    p.add_argument(
        "--size", type=_size, default=1 << 30, metavar="SIZE", help="file size (default 1G)"
    )
    _transfer_options(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    if argv is None:
        argv = sys.argv[1:]
    argv = list(argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command == "serve":
            args.serve_argv = extra  # the emulator parses its own options
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.version:
        from . import __version__

        print(f"megafast {__version__}")
        return EXIT_OK
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.api_url is None:
        args.api_url = os.environ.get("MEGAFAST_API_URL") or None

    from ._cli.errors import report_error

    try:
        from ._cli import commands

        return commands.run(args)
    except KeyboardInterrupt:
        print("megafast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (megafast cat ... | head): not an error of ours.
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:  # every error becomes one line and an exit code
        return report_error(exc, args)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
