"""``get``, ``put`` and ``cat``: transfers with progress bars."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CommandError, UsageError
from .files import ensure_folder, load_tree
from .progress import TransferProgress, format_bytes, format_rate
from .remote import RemoteNode, RemoteTree, display_path, is_url, split_remote

if TYPE_CHECKING:
    from .commands import Context

__all__ = ["cmd_get", "cmd_put", "cmd_cat", "safe_local_name"]


def safe_local_name(name: str | None, fallback: str) -> str:
    """A remote name made safe as one local path component (no separators, no ``..``)."""
    if not name:
        return fallback
    cleaned = name.replace("/", "_").replace("\0", "_")
    if os.sep != "/":
        cleaned = cleaned.replace(os.sep, "_")
    if os.altsep:
        cleaned = cleaned.replace(os.altsep, "_")
    if cleaned in (".", ".."):
        cleaned = cleaned.replace(".", "_")
    return cleaned


def report_transfer(
    ctx: Context, verb: str, label: str, size: int, progress: TransferProgress
) -> None:
    """A status line with the size, time and speed of a finished transfer."""
    seconds = progress.elapsed
    ctx.status(
        f"{verb} {label} ({format_bytes(size)}) in {seconds:.1f} s, {format_rate(size, seconds)}"
    )


# -- get ----------------------------------------------------------------------------------


def _download_node(
    ctx: Context, client: Any, tree: RemoteTree, node: RemoteNode, directory: Path, name: str
) -> dict[str, Any]:
    """Download a file or a whole folder as ``directory/name`` with one progress bar."""
    if node.is_file:
        size = node.size
    else:
        size = sum(child.size for child, _ in tree.walk(node) if child.is_file)
    label = tree.path_of(node)
    directory.mkdir(parents=True, exist_ok=True)
    with TransferProgress(label, size, ctx.progress) as progress:
        result = client.download(
            node.as_tuple,
            dest_path=str(directory),
            dest_filename=name,
            progress=progress,
            config=ctx.transfer_config(),
        )
    report_transfer(ctx, "downloaded", label, size, progress)
    return {
        "source": label,
        "path": str(result or directory / name),
        "size": size,
        "seconds": round(progress.elapsed, 3),
    }


def _destination(ctx: Context, count: int, any_folder: bool) -> tuple[Path, bool]:
    """(path, is_folder) for -o: a folder with several sources, a folder source, a trailing
    separator or an existing folder; otherwise the file's new name."""
    output = ctx.args.output
    if output is None:
        return Path.cwd(), True
    path = Path(output).expanduser()
    as_folder = count > 1 or any_folder or output.endswith(("/", os.sep)) or path.is_dir()
    if as_folder and path.exists() and not path.is_dir():
        raise CommandError(f"not a folder: {output}")
    return path, as_folder


def cmd_get(ctx: Context) -> int:
    sources: list[str] = ctx.args.sources
    client = ctx.client() if any(not is_url(source) for source in sources) else None
    tree = load_tree(client) if client is not None else None
    plan: list[tuple[str, RemoteNode | None]] = []
    for source in sources:
        if is_url(source):
            plan.append((source, None))
        else:
            assert tree is not None
            plan.append((source, tree.resolve(source)))
    any_folder = any(node is not None and node.is_folder for _, node in plan) or any(
        node is None and _is_folder_link(source) for source, node in plan
    )
    destination, as_folder = _destination(ctx, len(sources), any_folder)
    results: list[dict[str, Any]] = []
    for source, node in plan:
        if node is None:
            from . import links

            results += links.download_link(ctx, source, destination, as_folder)
            continue
        assert tree is not None
        if node is tree.root:
            raise CommandError("name a file or folder to download, not the whole Cloud Drive")
        if node.name is None:
            raise CommandError(f"{display_path(source)} cannot be decrypted")
        if as_folder:
            directory, name = destination, safe_local_name(node.name, node.handle)
        else:
            directory, name = destination.parent, destination.name
        results.append(_download_node(ctx, client, tree, node, directory, name))
    ctx.result(results, None)
    return 0


def _is_folder_link(url: str) -> bool:
    from .links import link_kind

    return link_kind(url) == "folder"


# -- put ----------------------------------------------------------------------------------


def _upload_file(
    ctx: Context, client: Any, local: Path, folder: RemoteNode, name: str, remote_path: str
) -> dict[str, Any]:
    size = local.stat().st_size
    with TransferProgress(remote_path, size, ctx.progress) as progress:
        answer = client.upload(
            str(local),
            dest=folder.handle,
            dest_filename=name,
            progress=progress,
            config=ctx.transfer_config(),
        )
    report_transfer(ctx, "uploaded", remote_path, size, progress)
    handle = None
    if isinstance(answer, dict):
        nodes = answer.get("f") or []
        if nodes and isinstance(nodes[0], dict):
            handle = nodes[0].get("h")
    return {
        "source": str(local),
        "path": remote_path,
        "handle": handle,
        "size": size,
        "seconds": round(progress.elapsed, 3),
    }


def cmd_put(ctx: Context) -> int:
    paths: list[str] = ctx.args.paths
    if len(paths) == 1:
        sources, destination = paths, "/"
    else:
        *sources, destination = paths
    locals_ = [Path(source).expanduser() for source in sources]
    for local in locals_:
        if not local.exists():
            raise CommandError(f"no such file or folder: {local}")
        if not (local.is_file() or local.is_dir()):
            raise CommandError(f"not a regular file or folder: {local}")
    client = ctx.client()
    tree = load_tree(client)
    target = tree.lookup(destination)
    new_name: str | None = None
    if target is None:
        parts = split_remote(destination)
        parent = tree.lookup("/".join(parts[:-1])) if parts else None
        if len(locals_) == 1 and locals_[0].is_file() and parent is not None and parent.is_folder:
            target, new_name = parent, parts[-1]
        elif Path(destination).exists():
            raise UsageError(
                f"{destination!r} is not a remote folder; the last argument is the remote "
                "destination (give / to upload to the root)"
            )
        else:
            raise CommandError(f"no such remote folder: {display_path(destination)} (mkdir -p it)")
    elif not target.is_folder:
        raise CommandError(f"already exists and is not a folder: {display_path(destination)}")
    results: list[dict[str, Any]] = []
    base = tree.path_of(target).rstrip("/")
    for local in locals_:
        if local.is_file():
            name = new_name or local.name
            results.append(_upload_file(ctx, client, local, target, name, f"{base}/{name}"))
            continue
        top_name = local.resolve().name
        remote_top = f"{base}/{top_name}"
        for directory, dirnames, filenames in os.walk(local):
            dirnames.sort()
            relative = Path(directory).relative_to(local).parts
            remote_dir = "/".join([remote_top, *relative])
            folder = ensure_folder(client, tree, remote_dir)
            for filename in sorted(filenames):
                file_path = Path(directory) / filename
                if not file_path.is_file():
                    ctx.status(f"megafast: warning: skipped {file_path} (not a regular file)")
                    continue
                results.append(
                    _upload_file(
                        ctx, client, file_path, folder, filename, f"{remote_dir}/{filename}"
                    )
                )
    ctx.result(results, None)
    return 0


# -- cat ----------------------------------------------------------------------------------


def cmd_cat(ctx: Context) -> int:
    from . import links

    source: str = ctx.args.source
    out = sys.stdout.buffer
    if is_url(source):
        links.cat_link(ctx, source, out)
    else:
        client = ctx.client()
        tree = load_tree(client)
        node = tree.resolve(source)
        if node.is_folder:
            raise CommandError(f"is a folder: {display_path(source)}")
        if "key" not in (node.raw or {}):
            raise CommandError(f"{display_path(source)} cannot be decrypted")
        links.stream_with_progress(ctx, client, node.handle, out, tree.path_of(node))
    out.flush()
    return 0
