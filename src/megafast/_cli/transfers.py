"""``get``, ``put`` and ``cat``: transfers with progress bars."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..transfer._localnames import safe_local_name
from .errors import CommandError, ExitCode, UsageError
from .links import cat_link, download_link, link_kind, stream_with_progress
from .media import password_option, unlock_link
from .options import transfer_options
from .progress import TransferProgress, outcome_rows, run_tree
from .registry import register
from .remote import RemoteView, display_path, is_url, split_remote

if TYPE_CHECKING:
    import argparse

    from .._tree.typed import TreeNode
    from .context import Context

__all__ = ["cmd_get", "cmd_put", "cmd_cat"]


# -- get ----------------------------------------------------------------------------------


def _download_node(
    ctx: Context, client: Any, view: RemoteView, node: TreeNode, directory: Path, name: str
) -> list[dict[str, Any]]:
    """Download a file (one bar) or a whole folder (one tree display) as ``directory/name``."""
    label = view.path_of(node)
    directory.mkdir(parents=True, exist_ok=True)
    config = ctx.transfer_config()
    if not node.is_file:
        _, result, display = run_tree(
            ctx,
            label,
            "downloaded",
            lambda result, subs: client.download(
                node.handle,
                str(directory),
                name,
                config=config,
                result=result,
                subscribers=subs,
            ),
        )
        top = Path(result.folders.get(".", directory / name))
        return outcome_rows(
            result,
            lambda rel: f"{label}/{rel}",
            lambda o: o.result or str(top / o.rel),
            display.bar.elapsed,
        )
    size = node.size
    with TransferProgress(label, size, ctx.progress) as progress:
        path = client.download(
            node.handle,
            dest_path=str(directory),
            dest_filename=name,
            progress=progress,
            config=config,
        )
    ctx.report_transfer("downloaded", label, size, progress)
    return [
        {
            "source": label,
            "path": str(path or directory / name),
            "size": size,
            "status": "done",
            "seconds": round(progress.elapsed, 3),
        }
    ]


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


def _get_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="PATH|URL")
    parser.add_argument(
        "-o",
        "--output",
        metavar="DEST",
        help="local file or folder (default: the current folder)",
    )
    parser.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    transfer_options(parser)
    password_option(parser)


@register(
    "get",
    "download files, folders or public links",
    description="Download files, folders, public file and folder links. An interrupted "
    "download\nresumes where it stopped when run again.",
    arguments=_get_arguments,
)
def cmd_get(ctx: Context) -> int:
    sources: list[str] = ctx.args.sources
    client = ctx.client() if any(not is_url(source) for source in sources) else None
    view = RemoteView.of_account(client) if client is not None else None
    plan: list[tuple[str, TreeNode | None]] = []
    for source in sources:
        if is_url(source):
            plan.append((unlock_link(ctx, source), None))
        else:
            assert view is not None
            plan.append((source, view.resolve(source)))
    any_folder = any(node is not None and not node.is_file for _, node in plan) or any(
        node is None and link_kind(source) == "folder" for source, node in plan
    )
    destination, as_folder = _destination(ctx, len(sources), any_folder)
    results: list[dict[str, Any]] = []
    for source, node in plan:
        if node is None:
            results += download_link(ctx, source, destination, as_folder)
            continue
        assert view is not None
        if node.handle == view.top:
            raise CommandError("name a file or folder to download, not the whole Cloud Drive")
        name = node.name
        if name is None:
            raise CommandError(f"{display_path(source)} cannot be decrypted")
        if as_folder:
            directory, name = destination, safe_local_name(name)
        else:
            directory, name = destination.parent, destination.name
        results += _download_node(ctx, client, view, node, directory, name)
    ctx.result(results, None)
    return _check_failures(ctx, results)


def _check_failures(ctx: Context, results: list[dict[str, Any]]) -> int:
    """0, or the partial exit code with a line saying how many files were not transferred
    (each was reported already)."""
    failed = sum(row.get("status") in ("failed", "cancelled") for row in results)
    if failed:
        ctx.status(f"megafast: {failed} of {len(results)} files were not transferred")
        return int(ExitCode.PARTIAL)
    return 0


# -- put ----------------------------------------------------------------------------------


def _new_handle(answer: Any) -> str | None:
    if isinstance(answer, dict):
        nodes = answer.get("f") or []
        if nodes and isinstance(nodes[0], dict) and isinstance(nodes[0].get("h"), str):
            return str(nodes[0]["h"])
    return None


def _upload_file(
    ctx: Context, client: Any, local: Path, folder: TreeNode, name: str, remote_path: str
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
    ctx.report_transfer("uploaded", remote_path, size, progress)
    return {
        "source": str(local),
        "path": remote_path,
        "handle": _new_handle(answer),
        "size": size,
        "status": "done",
        "seconds": round(progress.elapsed, 3),
    }


def _upload_folder(
    ctx: Context, client: Any, local: Path, folder: TreeNode, remote_top: str
) -> list[dict[str, Any]]:
    """``local`` and everything below it into ``folder`` with ``Mega.upload_folder`` (one
    tree display; files already there are skipped, each failure reported)."""
    if ctx.args.follow_symlinks:
        return _upload_folder_following(ctx, client, local, folder, remote_top)
    config = ctx.transfer_config()
    _, result, display = run_tree(
        ctx,
        remote_top,
        "uploaded",
        lambda result, subs: client.upload_folder(
            local, dest=folder.handle, config=config, result=result, subscribers=subs
        ),
    )
    links = sum(why.startswith("symlink") for _, why in result.ignored)
    if links:
        ctx.status(
            f"megafast: skipped {links} {'symlink' if links == 1 else 'symlinks'} in {local} "
            "(--follow-symlinks uploads what they point to)"
        )
    renamed = dict(result.renamed)

    def remote_path(outcome: Any) -> str:
        head, _, name = outcome.rel.rpartition("/")
        name = renamed.get(outcome.rel, name)
        return f"{remote_top}/{head}/{name}" if head else f"{remote_top}/{name}"

    def handle(outcome: Any) -> dict[str, Any]:
        return {"handle": outcome.result if outcome.status in ("done", "skipped") else None}

    return outcome_rows(
        result, lambda rel: str(local / rel), remote_path, display.bar.elapsed, handle
    )


def _tree_files(ctx: Context, top: Path) -> list[tuple[Path, str]]:
    """The regular files ``Mega.upload_folder`` uploads from ``top`` (path, POSIX relative
    path), with a warning for every entry it skips and a count of the symlinks skipped."""
    from .._account.transfers import local_tree

    follow: bool = ctx.args.follow_symlinks
    walked = local_tree(top, follow)
    for path, why in walked.skipped:
        ctx.status(f"megafast: warning: skipped {path}: {why}")
    if walked.symlinks:
        links = "symlink" if walked.symlinks == 1 else "symlinks"
        ctx.status(
            f"megafast: skipped {walked.symlinks} {links} in {top} "
            "(--follow-symlinks uploads what they point to)"
        )
    return walked.files


def _upload_folder_following(
    ctx: Context, client: Any, local: Path, folder: TreeNode, remote_top: str
) -> list[dict[str, Any]]:
    """``put --follow-symlinks DIR``: ``Mega.upload_folder`` with ``follow_symlinks`` (one
    file at a time, one bar)."""
    files = _tree_files(ctx, local)
    total = sum(path.stat().st_size for path, _ in files)
    with TransferProgress(remote_top, total, ctx.progress) as progress:
        handles = client.upload_folder(
            local,
            dest=folder.handle,
            progress=progress,
            config=ctx.transfer_config(),
            follow_symlinks=ctx.args.follow_symlinks,
        )
    ctx.report_transfer("uploaded", remote_top, total, progress)
    return [
        {
            "source": str(path),
            "path": f"{remote_top}/{relative}",
            "handle": handles.get(relative),
            "size": path.stat().st_size,
            "status": "done",
            "seconds": round(progress.elapsed, 3),
        }
        for path, relative in files
    ]


def _put_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="FILE|DIR... [DEST]")
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="upload what symlinks inside a folder point to (default: skip them and say so)",
    )
    parser.add_argument(
        "--no-thumbnails",
        action="store_true",
        help="no thumbnails or previews for images and videos (made by default with Pillow)",
    )
    transfer_options(parser)


@register(
    "put",
    "upload files or folders",
    description="Upload files or folders. With two or more arguments the last one is the "
    "remote\ndestination folder (or, for one file, the new remote name); give / for the root.",
    arguments=_put_arguments,
)
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
    view = RemoteView.of_account(client)
    target = view.lookup(destination)
    new_name: str | None = None
    if target is None:
        parts = split_remote(destination)
        parent = view.lookup("/".join(parts[:-1])) if parts else None
        one_file = len(locals_) == 1 and locals_[0].is_file()
        if one_file and parent is not None and not parent.is_file:
            target, new_name = parent, parts[-1]
        if target is None:
            if Path(destination).exists():
                raise UsageError(
                    f"{destination!r} is not a remote folder; the last argument is the remote "
                    "destination (give / to upload to the root)"
                )
            raise CommandError(f"no such remote folder: {display_path(destination)} (mkdir -p it)")
    elif target.is_file:
        raise CommandError(f"already exists and is not a folder: {display_path(destination)}")
    results: list[dict[str, Any]] = []
    base = view.path_of(target).rstrip("/")
    for local in locals_:
        if local.is_file():
            name = new_name or local.name
            results.append(_upload_file(ctx, client, local, target, name, f"{base}/{name}"))
        else:
            remote_top = f"{base}/{local.resolve().name}"
            results += _upload_folder(ctx, client, local, target, remote_top)
    ctx.result(results, None)
    return _check_failures(ctx, results)


# -- cat ----------------------------------------------------------------------------------


def _cat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="PATH|URL")
    transfer_options(parser)
    password_option(parser)


@register("cat", "write a file's content to standard output", arguments=_cat_arguments)
def cmd_cat(ctx: Context) -> int:
    source: str = ctx.args.source
    out = sys.stdout.buffer
    if is_url(source):
        cat_link(ctx, unlock_link(ctx, source), out)
    else:
        client = ctx.client()
        view = RemoteView.of_account(client)
        node = view.resolve(source)
        if not node.is_file:
            raise CommandError(f"is a folder: {display_path(source)}")
        if node.key is None:
            raise CommandError(f"{display_path(source)} cannot be decrypted")
        stream_with_progress(ctx, client, node.handle, out, view.path_of(node))
    out.flush()
    return 0
