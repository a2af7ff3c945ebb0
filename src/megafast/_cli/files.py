"""``ls``, ``mkdir``, ``mv``, ``rm``, ``link`` and ``import``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .errors import CommandError, UsageError
from .links import list_link
from .media import link_password, password_option, unlock_link
from .progress import format_bytes
from .registry import register
from .remote import ROOT, RemoteView, display_name, display_path, is_file, is_url, split_remote

if TYPE_CHECKING:
    import argparse

    from .context import Context

__all__ = ["cmd_ls", "cmd_mkdir", "cmd_mv", "cmd_rm", "cmd_link", "cmd_import"]


def _long_line(entry: dict[str, Any], shown: str) -> str:
    kind = "-" if entry["type"] == "file" else "d"
    size = format_bytes(entry["size"]) if entry["size"] is not None else "-"
    mtime = (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["mtime"]))
        if entry["mtime"] is not None
        else "-" * 16
    )
    return f"{kind} {size:>10}  {mtime}  {entry['handle']:<8}  {shown}"


def _print_listing(ctx: Context, entries: list[dict[str, Any]], shown: list[str]) -> None:
    if ctx.args.long:
        lines = [_long_line(entry, name) for entry, name in zip(entries, shown, strict=False)]
    else:
        lines = shown
    ctx.result(entries, lines)


def _ls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="/", metavar="PATH|URL")
    parser.add_argument("-l", "--long", action="store_true", help="sizes, dates and handles")
    parser.add_argument("-R", "--recursive", action="store_true", help="list sub-folders too")
    password_option(parser)


@register("ls", "list a folder (or a public link)", arguments=_ls_arguments)
def cmd_ls(ctx: Context) -> int:
    target: str = ctx.args.path
    if is_url(target):
        entries = list_link(ctx, unlock_link(ctx, target), recursive=ctx.args.recursive)
        shown = [
            entry["path"].lstrip("/") + ("/" if entry["type"] == "folder" else "")
            for entry in entries
        ]
    else:
        client = ctx.client()
        view = RemoteView.of_account(client)
        entries, shown = view.entries(view.resolve(client, target), ctx.args.recursive)
    _print_listing(ctx, entries, shown)
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
        view = RemoteView.of_account(client)  # again: the folders made just before count
        existing = view.lookup(client, path)
        if existing is not None:
            if ctx.args.parents and not is_file(existing):
                continue
            raise CommandError(f"already exists: {display_path(path)}")
        if ctx.args.parents:
            for depth in range(1, len(parts)):
                above = view.lookup(client, "/".join(parts[:depth]))
                if above is not None and is_file(above):
                    raise CommandError(f"not a folder: {display_path('/'.join(parts[:depth]))}")
            client.create_folder("/".join(parts))  # like mkdir -p, from the Cloud Drive
        else:
            parent = view.lookup(client, "/".join(parts[:-1]))
            if parent is None or is_file(parent):
                missing = display_path("/".join(parts[:-1]))
                raise CommandError(f"no such folder: {missing} (use mkdir -p)")
            client.create_folder(parts[-1], parent["h"])
        node = RemoteView.of_account(client).resolve(client, path)
        made.append({"path": display_path(path), "handle": node["h"]})
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
    sources_nodes = [_removable(client, view, path, "move") for path in sources]
    target = view.lookup(client, destination)
    moved = []
    if target is not None and not is_file(target):
        for path, node in zip(sources, sources_nodes, strict=False):
            if view.is_inside(target, node):
                raise CommandError(f"cannot move {display_path(path)} into itself")
            if node.get("p") != target["h"]:
                client.move(node["h"], target["h"])
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
        parent = view.resolve_folder(client, "/".join(parts[:-1]))
        node = sources_nodes[0]
        if view.is_inside(parent, node):
            raise CommandError(f"cannot move {display_path(sources[0])} into itself")
        if node.get("p") != parent["h"]:
            client.move(node["h"], parent["h"])
        if display_name(node) != parts[-1]:
            client.rename(node["h"], parts[-1])
        moved.append({"from": display_path(sources[0]), "to": display_path(destination)})
    ctx.result(moved, None)
    return 0


def _removable(client: Any, view: RemoteView, path: str, verb: str) -> dict[str, Any]:
    node = view.resolve(client, path)
    if node.get("t") == ROOT or not split_remote(path):
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
    nodes = [(path, _removable(client, view, path, "remove")) for path in ctx.args.paths]
    for path, node in nodes:  # check every argument before removing anything
        if not is_file(node) and not ctx.args.recursive:
            raise CommandError(f"is a folder: {display_path(path)} (use rm -r)")
    removed = []
    for path, node in nodes:
        if ctx.args.permanent:
            client.destroy(node["h"])
        else:
            client.delete(node["h"])
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
    nodes = [(path, _removable(client, view, path, "export")) for path in ctx.args.paths]
    results = []
    password = link_password(ctx)
    for path, node in nodes:
        link = client.export(node_id=node["h"], password=password)
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
    folder = view.resolve_folder(client, ctx.args.dest)
    answer = client.import_public_url(url, dest_node=folder)
    handle = None
    if isinstance(answer, dict):
        new_nodes = answer.get("f") or []
        if new_nodes and isinstance(new_nodes[0], dict):
            handle = new_nodes[0].get("h")
    name = None
    if isinstance(handle, str):
        node = client.find(handle=handle)
        name = display_name(node) if isinstance(node, dict) else None
    where = view.path_of(folder).rstrip("/") + "/" + (name or "")
    ctx.result({"path": where, "handle": handle}, f"imported to {where}")
    return 0
