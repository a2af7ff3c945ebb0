"""``cache clear``: remove the encrypted node caches the commands keep (one per account)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import register

if TYPE_CHECKING:
    import argparse

    from .context import Context

__all__ = ["cmd_cache"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("clear",), help="clear: remove every cached tree")


@register(
    "cache",
    "the local node cache: clear it",
    description="Commands keep each account's decrypted node tree in an encrypted cache "
    "($XDG_CACHE_HOME/megafast, else ~/.cache/megafast) and start from it; --no-cache skips it.",
    arguments=_arguments,
)
def cmd_cache(ctx: Context) -> int:
    from .._account.livetree import cache_folder
    from .._tree.cache import clear_cache_folder

    folder = cache_folder(True)
    assert folder is not None
    removed = clear_cache_folder(folder)
    ctx.result(
        {"folder": str(folder), "removed": removed},
        f"removed {removed} cached tree{'s' if removed != 1 else ''} from {folder}",
    )
    return 0
