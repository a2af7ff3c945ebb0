"""``du`` and ``find``: questions about a whole tree, answered from the node store.

``du`` ("where did my space go") sums sizes and counts files and folders below a folder, per
child too, biggest first; ``find`` ("where is that file") walks a tree and prints the nodes
that pass its tests. Both read the account's node store (or a public folder link's) through
:class:`~megafast._cli.remote.RemoteView`: no request beyond the listing, no mega.py dict,
output streamed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .files import print_listing
from .links import public_view
from .options import parse_size
from .progress import format_bytes
from .registry import register
from .remote import RemoteView, Row, display_name, is_url, ls_order

if TYPE_CHECKING:
    from .._tree.typed import Totals, TreeNode
    from .context import Context

__all__ = ["cmd_du", "cmd_find", "parse_newer", "parse_size_test"]


def _view(ctx: Context, target: str) -> tuple[RemoteView, TreeNode]:
    """The view a PATH or URL names, and its node."""
    if is_url(target):
        view = public_view(ctx, target)
        return view, view.require_top()
    view = RemoteView.of_account(ctx.client())
    return view, view.resolve(target)


# -- du -------------------------------------------------------------------------------------


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _du_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="/", metavar="PATH|URL")
    parser.add_argument(
        "-d",
        "--max-depth",
        type=_depth,
        default=1,
        metavar="N",
        help="show folders down to N levels below PATH (default 1; 0: PATH alone)",
    )
    parser.conflict_handler = "resolve"  # -h is "human", as du's; --help stays help
    sizes = parser.add_argument_group("sizes")  # made after: it resolves the conflict
    sizes.add_argument(
        "-h", "--human", action="store_true", help="sizes as 1.5 GiB (default: bytes)"
    )
    parser.add_argument("-a", "--all", action="store_true", help="show files too, not only folders")


@register(
    "du",
    "where the space went: size, files and folders below a folder, per sub-folder",
    description="Total size and file/folder counts of PATH (default /) and of each folder below "
    "it, down to\n-d N levels (default 1), biggest first under each folder; PATH's own line "
    "comes first.\nRead from the node tree: nothing is downloaded.",
    arguments=_du_arguments,
)
def cmd_du(ctx: Context) -> int:
    view, top = _view(ctx, ctx.args.path)
    depth: int = ctx.args.max_depth
    human: bool = ctx.args.human

    def line(row: dict[str, Any]) -> str:
        size = format_bytes(row["size"]) if human else str(row["size"])
        counts = f"{row['files']:>9} files  {row['folders']:>7} folders"
        return f"{size:>{10 if human else 15}}  {counts}  {row['path']}"

    ctx.stream((row, line(row)) for row in du_rows(view, top, depth, ctx.args.all))
    return 0


def du_rows(view: RemoteView, top: TreeNode, depth: int, files: bool) -> Iterator[dict[str, Any]]:
    """``du``'s rows: ``top`` first, then depth first, each folder's children biggest first
    (folders down to ``depth`` levels; ``files``: files too). Each row: path, handle, type,
    size (bytes), files, folders, depth."""
    from .._tree import typed

    path = view.path_of(top)
    if top.is_file:
        yield _du_row(path, top, typed.Totals(top.size, 1, 0), 0)
        return
    sums = typed.totals(view.store, top.handle, depth)
    yield _du_row(path, top, sums[top.handle], 0)
    stack: list[tuple[str, Iterator[TreeNode], int]] = []

    def below(node: TreeNode, at: str, level: int) -> None:
        if level > depth:
            return
        kids = typed.children(view.store, node.handle, folders_only=not files)
        ranked = sorted(kids, key=lambda n: (-_totals(n, sums).size, ls_order(n)))
        stack.append((at.rstrip("/") + "/", iter(ranked), level))

    below(top, path, 1)
    while stack:
        prefix, pending, level = stack[-1]
        for node in pending:
            at = prefix + display_name(node)
            yield _du_row(at, node, _totals(node, sums), level)
            if not node.is_file:
                below(node, at, level + 1)
                break
        else:
            stack.pop()


def _totals(node: TreeNode, sums: dict[str, Totals]) -> Totals:
    from .._tree.typed import Totals

    if node.is_file:
        return Totals(node.size, 1, 0)
    return sums.get(node.handle) or Totals(0, 0, 0)  # a folder met twice (a cycle)


def _du_row(path: str, node: TreeNode, sums: Totals, depth: int) -> dict[str, Any]:
    return {
        "path": path,
        "handle": node.handle,
        "type": "file" if node.is_file else "folder",
        "size": sums.size,
        "files": sums.files,
        "folders": sums.folders,
        "depth": depth,
    }


# -- find -----------------------------------------------------------------------------------

_AGO = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_newer(text: str, now: float | None = None) -> float:
    """``--newer``'s DATE as seconds since the epoch: ``2026-01-31``, ``2026-01-31 14:00``
    (local time unless it names a zone), ``@1767225600`` (epoch seconds) or an age:
    ``30m``, ``12h``, ``7d``, ``2w`` ago."""
    ago = _AGO.match(text)
    if ago:
        seconds = int(ago.group(1)) * _SECONDS[ago.group(2).lower()]
        return (time.time() if now is None else now) - seconds
    if text.startswith("@"):
        try:
            return float(int(text[1:]))
        except ValueError:
            pass
    else:
        try:
            return dt.datetime.fromisoformat(text.strip()).timestamp()
        except (ValueError, OverflowError, OSError):
            pass
    raise UsageError(
        f"not a date: {text!r} (examples: 2026-01-31, '2026-01-31 14:00', @1767225600, 7d, 12h)"
    )


def parse_size_test(text: str) -> Callable[[int], bool]:
    """``--size``'s test: ``+N`` more than N bytes, ``-N`` less than N, ``N`` exactly N
    (N takes K, M, G, T: powers of 1024)."""
    sign, number = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
    try:
        limit = parse_size(number)
    except ValueError as exc:
        raise UsageError(f"--size: {exc} (+N: more than N, -N: less than N)") from None
    if sign == "+":
        return lambda size: size > limit
    if sign == "-":
        return lambda size: size < limit
    return lambda size: size == limit


def _find_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="/", metavar="PATH|URL")
    parser.add_argument("--name", metavar="GLOB", help="the name matches GLOB (*, ?, [abc])")
    parser.add_argument("--iname", metavar="GLOB", help="as --name, ignoring case")
    parser.add_argument("--type", choices=("f", "d"), help="f: files only, d: folders only")
    parser.add_argument(
        "--size",
        metavar="[+-]N",
        help="files of more (+N) or less (-N) than N bytes, or exactly N (suffixes K, M, G, T)",
    )
    parser.add_argument(
        "--newer",
        metavar="DATE",
        help="stored after DATE: 2026-01-31, '2026-01-31 14:00', @EPOCH, or an age (7d, 12h)",
    )
    parser.add_argument("-l", "--long", action="store_true", help="sizes, dates and handles")


@register(
    "find",
    "find files and folders by name, type, size or date",
    description="Every node below PATH (default /), PATH included, that passes all the tests "
    "given,\nprinted with its full path (folders ending in /). Read from the node tree: "
    "nothing is downloaded.",
    arguments=_find_arguments,
)
def cmd_find(ctx: Context) -> int:
    args = ctx.args
    tests = _tests(args)
    view, top = _view(ctx, args.path)
    print_listing(ctx, find_rows(view, top, tests), args.long)
    return 0


def _tests(args: argparse.Namespace) -> list[Callable[[TreeNode], bool]]:
    """The tests every node found must pass (checked before anything is listed)."""
    from fnmatch import translate

    tests: list[Callable[[TreeNode], bool]] = []
    for glob, flags in ((args.name, 0), (args.iname, re.IGNORECASE)):
        if glob is not None:
            tests.append(_named(re.compile(translate(glob), flags | re.DOTALL)))
    if args.type == "f":
        tests.append(lambda n: n.is_file)
    elif args.type == "d":
        tests.append(lambda n: not n.is_file)
    if args.size is not None:
        size_test = parse_size_test(args.size)
        tests.append(lambda n: n.is_file and size_test(n.size))
    if args.newer is not None:
        after = parse_newer(args.newer)
        tests.append(lambda n: n.mtime > after)
    return tests


def _named(pattern: re.Pattern[str]) -> Callable[[TreeNode], bool]:
    def test(node: TreeNode) -> bool:
        return node.name is not None and pattern.match(node.name) is not None

    return test


def find_rows(
    view: RemoteView, top: TreeNode, tests: list[Callable[[TreeNode], bool]]
) -> Iterator[Row]:
    """``ls`` rows (node, full path, the full path shown: a folder's ends in ``/``) of
    ``top`` and of every node below it that passes every test, depth first, each folder's
    children as ``ls`` sorts them."""
    from .._tree import typed

    base = view.path_of(top)
    if all(test(top) for test in tests):
        yield top, base, base if top.is_file else base.rstrip("/") + "/"
    if top.is_file:
        return
    prefix = base.rstrip("/") + "/"
    for rel, node in typed.walk(view.store, top.handle, ls_order, display_name):
        if all(test(node) for test in tests):
            path = prefix + rel
            yield node, path, path if node.is_file else path + "/"
