"""``ls``, ``mkdir``, ``mv``, ``rm``, ``link`` and ``import``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .errors import CommandError, UsageError
from .progress import format_bytes
from .remote import ROOT, RemoteNode, RemoteTree, display_path, is_url, split_remote

if TYPE_CHECKING:
    from .commands import Context

__all__ = ["cmd_ls", "cmd_mkdir", "cmd_mv", "cmd_rm", "cmd_link", "cmd_import", "load_tree"]


def load_tree(client: Any) -> RemoteTree:
    """The account's whole tree, undecryptable nodes included (one ``f`` request)."""
    try:
        files = client.get_files(include_undecryptable=True)
    except TypeError:  # a client with mega.py's exact signature
        files = client.get_files()
    return RemoteTree(files)


def _entry(node: RemoteNode, path: str) -> dict[str, Any]:
    return {
        "name": node.display_name,
        "path": path,
        "type": "file" if node.is_file else "folder",
        "size": node.size if node.is_file else None,
        "mtime": node.mtime,
        "handle": node.handle,
        "decrypted": node.name is not None,
    }


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


def tree_entries(
    tree: RemoteTree, node: RemoteNode, recursive: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """``ls`` entries for ``node`` (its children, or every node below with ``recursive``)
    and the names to show (relative to ``node``, folders ending in ``/``)."""
    entries: list[dict[str, Any]] = []
    shown: list[str] = []
    if node.is_file:
        return [_entry(node, tree.path_of(node))], [node.display_name]
    base = tree.path_of(node).rstrip("/")
    listed = tree.walk(node) if recursive else ((child, 1) for child in node.children)
    for child, _depth in listed:
        path = tree.path_of(child)
        relative = path[len(base) + 1 :] if path.startswith(base + "/") else path
        entries.append(_entry(child, path))
        shown.append(relative + ("/" if child.is_folder else ""))
    return entries, shown


def cmd_ls(ctx: Context) -> int:
    target: str = ctx.args.path
    if is_url(target):
        from . import links

        entries = links.list_link(ctx, target, recursive=ctx.args.recursive)
        shown = [
            entry["path"].lstrip("/") + ("/" if entry["type"] == "folder" else "")
            for entry in entries
        ]
    else:
        tree = load_tree(ctx.client())
        entries, shown = tree_entries(tree, tree.resolve(target), ctx.args.recursive)
    _print_listing(ctx, entries, shown)
    return 0


def create_folder(client: Any, name: str, parent: RemoteNode) -> str:
    """Create one folder ``name`` under ``parent``; returns its handle."""
    created = client.create_folder(name, parent.handle)  # {name: handle}
    if isinstance(created, str):
        return created
    if isinstance(created, dict) and created:
        handle = list(created.values())[-1]
        if isinstance(handle, str):
            return handle
    raise CommandError(f"the server did not return the new folder for {name!r}")


def ensure_folder(client: Any, tree: RemoteTree, path: str, parents: bool = True) -> RemoteNode:
    """The folder at ``path``, created (with its parents when ``parents``) if missing.

    New folders are added to ``tree`` so later lookups see them.
    """
    node = tree.require_root()
    parts = split_remote(path)
    for index, part in enumerate(parts):
        matches = [child for child in node.children if child.name == part]
        folder = next((m for m in matches if m.is_folder), None)
        if folder is None:
            if matches:
                raise CommandError(f"not a folder: {display_path('/'.join(parts[: index + 1]))}")
            if not parents and index < len(parts) - 1:
                missing = display_path("/".join(parts[: index + 1]))
                raise CommandError(f"no such folder: {missing} (use mkdir -p)")
            handle = create_folder(client, part, node)
            folder = RemoteNode(handle, node.handle, 1, part, 0, int(time.time()))
            tree.nodes[handle] = folder
            node.children.append(folder)
        node = folder
    return node


def cmd_mkdir(ctx: Context) -> int:
    client = ctx.client()
    tree = load_tree(client)
    made = []
    for path in ctx.args.paths:
        if not split_remote(path):
            if ctx.args.parents:
                continue
            raise CommandError("the root folder already exists")
        existing = tree.lookup(path)
        if existing is not None:
            if ctx.args.parents and existing.is_folder:
                continue
            raise CommandError(f"already exists: {display_path(path)}")
        node = ensure_folder(client, tree, path, parents=ctx.args.parents)
        made.append({"path": display_path(path), "handle": node.handle})
    ctx.result(made, None)
    return 0


def cmd_mv(ctx: Context) -> int:
    paths: list[str] = ctx.args.paths
    if len(paths) < 2:
        raise UsageError("mv needs a source and a destination")
    client = ctx.client()
    tree = load_tree(client)
    *sources, destination = paths
    sources_nodes = [_removable(tree, path, "move") for path in sources]
    target = tree.lookup(destination)
    moved = []
    if target is not None and target.is_folder:
        for path, node in zip(sources, sources_nodes, strict=False):
            if tree.is_inside(target, node):
                raise CommandError(f"cannot move {display_path(path)} into itself")
            if node.parent != target.handle:
                client.move(node.handle, target.handle)
            moved.append(
                {
                    "from": display_path(path),
                    "to": tree.path_of(target).rstrip("/") + "/" + node.display_name,
                }
            )
    else:
        if target is not None:
            raise CommandError(f"already exists: {display_path(destination)}")
        if len(sources) != 1:
            raise CommandError(f"no such folder: {display_path(destination)}")
        parts = split_remote(destination)
        parent = tree.resolve_folder("/".join(parts[:-1]))
        node = sources_nodes[0]
        if tree.is_inside(parent, node):
            raise CommandError(f"cannot move {display_path(sources[0])} into itself")
        if node.parent != parent.handle:
            client.move(node.handle, parent.handle)
        if node.name != parts[-1]:
            client.rename(node.as_tuple, parts[-1])
        moved.append({"from": display_path(sources[0]), "to": display_path(destination)})
    ctx.result(moved, None)
    return 0


def _removable(tree: RemoteTree, path: str, verb: str) -> RemoteNode:
    node = tree.resolve(path)
    if node.type == ROOT or not split_remote(path):
        raise CommandError(f"cannot {verb} the root folder")
    return node


def cmd_rm(ctx: Context) -> int:
    client = ctx.client()
    tree = load_tree(client)
    nodes = [(path, _removable(tree, path, "remove")) for path in ctx.args.paths]
    for path, node in nodes:  # check every argument before removing anything
        if node.is_folder and not ctx.args.recursive:
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


def cmd_link(ctx: Context) -> int:
    client = ctx.client()
    tree = load_tree(client)
    nodes = [(path, _removable(tree, path, "export")) for path in ctx.args.paths]
    results = []
    for path, node in nodes:
        link = client.export(node_id=node.handle)
        results.append({"path": display_path(path), "link": link})
    ctx.result(results, [entry["link"] for entry in results])
    return 0


def cmd_import(ctx: Context) -> int:
    url: str = ctx.args.url
    if not is_url(url):
        raise UsageError(f"not a MEGA link: {url}")
    client = ctx.client()
    tree = load_tree(client)
    folder = tree.resolve_folder(ctx.args.dest)
    answer = client.import_public_url(url, dest_node=folder.raw or {"h": folder.handle})
    handle = None
    if isinstance(answer, dict):
        new_nodes = answer.get("f") or []
        if new_nodes and isinstance(new_nodes[0], dict):
            handle = new_nodes[0].get("h")
    name = None
    if handle:
        node = load_tree(client).nodes.get(handle)
        name = node.display_name if node else None
    where = tree.path_of(folder).rstrip("/") + "/" + (name or "")
    ctx.result({"path": where, "handle": handle}, f"imported to {where}")
    return 0
