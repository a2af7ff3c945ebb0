"""The command registry: each command module registers its parser and its handler here.

``cli.build_parser`` imports the command modules named in ``MODULES`` (their top level is
light: argparse and this package only) and adds one sub-parser per registered command, in
registration order. Nothing here imports a command module's dependencies.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import Context

__all__ = ["Command", "MODULES", "all_commands", "register"]


# The command modules, in the order their commands appear in ``megafast --help``.
MODULES = (
    "account",
    "files",
    "tree",
    "transfers",
    "media",
    "sync",
    "backup",
    "serve_fs",
    "tools",
    "cache",
    "demo",
)


@dataclass(frozen=True)
class Command:
    """One ``megafast`` command: its name, help, arguments and handler."""

    name: str
    help: str
    handler: Callable[[Context], int]
    description: str | None = None
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    # The command parses its own arguments (``serve``): they reach it as ``args.passthrough``.
    passthrough: bool = False


_COMMANDS: dict[str, Command] = {}


def register(
    name: str,
    help: str,  # noqa: A002 - argparse's word
    *,
    description: str | None = None,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    passthrough: bool = False,
) -> Callable[[Callable[[Context], int]], Callable[[Context], int]]:
    """Decorator: register the decorated function as the handler of command ``name``."""

    def decorate(handler: Callable[[Context], int]) -> Callable[[Context], int]:
        if name in _COMMANDS and _COMMANDS[name].handler is not handler:
            raise RuntimeError(f"command {name!r} is registered twice")
        _COMMANDS[name] = Command(name, help, handler, description, arguments, passthrough)
        return handler

    return decorate


def all_commands() -> dict[str, Command]:
    """Every command, after importing the modules that register them."""
    for module in MODULES:
        importlib.import_module(f"{__package__}.{module}")
    return dict(_COMMANDS)
