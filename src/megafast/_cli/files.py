"""``ls``, ``mkdir``, ``mv``, ``rm``, ``link`` and ``import``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .errors import CommandError, UsageError
from .links import link_rows
from .media import link_password, password_option, unlock_link
from .progress import format_bytes
from .registry import register
from .remote import RemoteView, Row, display_name, display_path, entry, is_url, split_remote

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

    from .._tree.typed import TreeNode
    from .context import Context

__all__ = ["cmd_ls", "cmd_mkdir", "cmd_mv", "cmd_rm", "cmd_link", "cmd_import", "print_listing"]

_CLOUD_DRIVE = 2  # the node type of the Cloud Drive root


class _LongLines:
    """``ls -l`` lines; the local time of each timestamp is formatted once."""

    def __init__(self) -> None:
        self.times: dict[int | None, str] = {None: "-" * 16}

    def __call__(self, item: TreeNode | dict[str, Any], shown: str) -> str:
        if isinstance(item, dict):
            is_file, size, when, handle = (
                item["type"] == "file",
                item["size"],
                item["mtime"],
                item["handle"],
            )
        else:
            is_file, size, when, handle = item.is_file, item.size, item.mtime, item.handle
        mtime = self.times.get(when)
        if mtime is None:
            if len(self.times) > 100_000:
                self.times = {None: "-" * 16}
            mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
            self.times[when] = mtime
        shown_size = format_bytes(size) if is_file and size is not None else "-"
        return f"{'-' if is_file else 'd'} {shown_size:>10}  {mtime}  {handle:<8}  {shown}"


def print_listing(ctx: Context, rows: Iterable[Row], long: bool) -> None:
    """``ls`` output, streamed: the entries with --json (made only then), else the names
    (``long``: with type, size, date and handle)."""
    if ctx.json:
        ctx.stream((entry(item, path), None) for item, path, _ in rows)
    elif long:
        line = _LongLines()
        ctx.stream((None, line(item, shown)) for item, _, shown in rows)
    else:
        ctx.stream((None, shown) for _, _, shown in rows)


def _ls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="/", metavar="PATH|URL")
    parser.add_argument("-l", "--long", action="store_true", help="sizes, dates and handles")
    parser.add_argument("-R", "--recursive", action="store_true", help="list sub-folders too")
    password_option(parser)


@register("ls", "list a folder (or a public link)", arguments=_ls_arguments)
def cmd_ls(ctx: Context) -> int:
    target: str = ctx.args.path
    if is_url(target):
        rows = link_rows(ctx, unlock_link(ctx, target), recursive=ctx.args.recursive)
    else:
        view = RemoteView.of_account(ctx.client())
        rows = view.rows(view.resolve(target), ctx.args.recursive)
    print_listing(ctx, rows, ctx.args.long)
    return 0


def _mkdir_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument(
        "-p", "--parents", action="store_true", help="create parents; no error if it exists"
    )


@register("mkdir", "create folders", arguments=_mkdir_arguments)
def cmd_mkdir(ctx: Context) -> int:
    client = ctx.client()
    made = []
    for path in ctx.args.paths:
        parts = split_remote(path)
        if not parts:
            if ctx.args.parents:
                continue
            raise CommandError("the root folder already exists")
        view = RemoteView.of_account(client)  # the live tree: folders made just before count
        existing = view.lookup(path)
        if existing is not None:
            if ctx.args.parents and not existing.is_file:
                continue
            raise CommandError(f"already exists: {display_path(path)}")
        if ctx.args.parents:
            for depth in range(1, len(parts)):
                above = view.lookup("/".join(parts[:depth]))
                if above is not None and above.is_file:
                    raise CommandError(f"not a folder: {display_path('/'.join(parts[:depth]))}")
            client.create_folder("/".join(parts))  # like mkdir -p, from the Cloud Drive
        else:
            parent = view.lookup("/".join(parts[:-1]))
            if parent is None or parent.is_file:
                missing = display_path("/".join(parts[:-1]))
                raise CommandError(f"no such folder: {missing} (use mkdir -p)")
            client.create_folder(parts[-1], parent.handle)
        node = RemoteView.of_account(client).resolve(path)
        made.append({"path": display_path(path), "handle": node.handle})
    ctx.result(made, None)
    return 0


def _mv_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="SRC... DEST")


@register(
    "mv",
    "move or rename",
    description="Move into an existing folder, or move and rename one item (mv SRC NEWPATH).",
    arguments=_mv_arguments,
)
def cmd_mv(ctx: Context) -> int:
    paths: list[str] = ctx.args.paths
    if len(paths) < 2:
        raise UsageError("mv needs a source and a destination")
    client = ctx.client()
    view = RemoteView.of_account(client)
    *sources, destination = paths
    sources_nodes = [_removable(view, path, "move") for path in sources]
    target = view.lookup(destination)
    moved = []
    if target is not None and not target.is_file:
        for path, node in zip(sources, sources_nodes, strict=False):
            if view.is_inside(target, node):
                raise CommandError(f"cannot move {display_path(path)} into itself")
            if node.parent != target.handle:
                client.move(node.handle, target.handle)
            moved.append(
                {
                    "from": display_path(path),
                    "to": view.path_of(target).rstrip("/") + "/" + display_name(node),
                }
            )
    else:
        if target is not None:
            raise CommandError(f"already exists: {display_path(destination)}")
        if len(sources) != 1:
            raise CommandError(f"no such folder: {display_path(destination)}")
        parts = split_remote(destination)
        parent = view.resolve_folder("/".join(parts[:-1]))
        node = sources_nodes[0]
        if view.is_inside(parent, node):
            raise CommandError(f"cannot move {display_path(sources[0])} into itself")
        if node.parent != parent.handle:
            client.move(node.handle, parent.handle)
        if display_name(node) != parts[-1]:
            client.rename(node.handle, parts[-1])
        moved.append({"from": display_path(sources[0]), "to": display_path(destination)})
    ctx.result(moved, None)
    return 0


def _removable(view: RemoteView, path: str, verb: str) -> TreeNode:
    node = view.resolve(path)
    if node.type == _CLOUD_DRIVE or not split_remote(path):
        raise CommandError(f"cannot {verb} the root folder")
    return node


def _rm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("-r", "--recursive", action="store_true", help="allow removing folders")
    parser.add_argument(
        "--permanent", action="store_true", help="delete for good instead of the rubbish bin"
    )


@register("rm", "move to the rubbish bin (or delete for good)", arguments=_rm_arguments)
def cmd_rm(ctx: Context) -> int:
    client = ctx.client()
    view = RemoteView.of_account(client)
    nodes = [(path, _removable(view, path, "remove")) for path in ctx.args.paths]
    for path, node in nodes:  # check every argument before removing anything
        if not node.is_file and not ctx.args.recursive:
            raise CommandError(f"is a folder: {display_path(path)} (use rm -r)")
    removed = []
    for path, node in nodes:
        if ctx.args.permanent:
            client.destroy(node.handle)
        else:
            client.delete(node.handle)
        removed.append({"path": display_path(path), "permanent": bool(ctx.args.permanent)})
    ctx.result(removed, None)
    return 0


def _paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH")


def _link_arguments(parser: argparse.ArgumentParser) -> None:
    _paths_argument(parser)
    parser.add_argument(
        "--password",
        nargs="?",
        const="",
        metavar="PASSWORD",
        help="make password-protected #P! links (without a value: asked for, without echo)",
    )


@register("link", "make a public link (export)", arguments=_link_arguments)
def cmd_link(ctx: Context) -> int:
    client = ctx.client()
    view = RemoteView.of_account(client)
    nodes = [(path, _removable(view, path, "export")) for path in ctx.args.paths]
    results = []
    password = link_password(ctx)
    for path, node in nodes:
        link = client.export(node_id=node.handle, password=password)
        results.append({"path": display_path(path), "link": link})
    ctx.result(results, [entry["link"] for entry in results])
    return 0


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL")
    parser.add_argument("dest", nargs="?", default="/", metavar="FOLDER")


@register("import", "copy a public file link into your account", arguments=_import_arguments)
def cmd_import(ctx: Context) -> int:
    url: str = ctx.args.url
    if not is_url(url):
        raise UsageError(f"not a MEGA link: {url}")
    client = ctx.client()
    view = RemoteView.of_account(client)
    folder = view.resolve_folder(ctx.args.dest)
    answer = client.import_public_url(url, dest_node=folder.handle)
    handle = None
    if isinstance(answer, dict):
        new_nodes = answer.get("f") or []
        if new_nodes and isinstance(new_nodes[0], dict):
            handle = new_nodes[0].get("h")
    name = None
    if isinstance(handle, str):
        node = view.get(handle)
        name = display_name(node) if node is not None else None
    where = view.path_of(folder).rstrip("/") + "/" + (name or "")
    ctx.result({"path": where, "handle": handle}, f"imported to {where}")
    return 0
