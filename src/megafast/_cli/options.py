"""Argument types and the option groups shared by several commands (argparse only)."""

from __future__ import annotations

import argparse
import re

__all__ = [
    "common_options",
    "transfer_options",
    "parse_size",
    "positive_float",
    "positive_int",
    "size",
]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def positive_float(text: str) -> float:
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


def size(text: str) -> int:
    """argparse type for sizes."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def common_options(for_subcommand: bool) -> argparse.ArgumentParser:
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
        type=positive_float,
        metavar="S",
        default=default(None),
        help="seconds an API request may keep retrying temporary errors (default 120)",
    )
    group.add_argument(
        "--no-cache",
        action="store_true",
        default=default(False),
        help="do not use the encrypted node cache ($XDG_CACHE_HOME/megafast): list everything",
    )
    return parser


def transfer_options(parser: argparse.ArgumentParser) -> None:
    """--connections and --limit, for the commands that move file content."""
    parser.add_argument(
        "-c",
        "--connections",
        type=positive_int,
        metavar="N",
        help="parallel connections per file (default 8)",
    )
    parser.add_argument(
        "--limit",
        type=size,
        metavar="SIZE",
        help="speed limit per file in bytes/s (suffixes K, M, G: powers of 1024)",
    )
