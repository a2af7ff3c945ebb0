"""Public links on the command line: list, download and stream them (no login needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import scrub
from .progress import TransferProgress, outcome_rows, run_tree
from .remote import RemoteView, Row

if TYPE_CHECKING:
    from .context import Context

__all__ = [
    "link_kind",
    "link_rows",
    "public_view",
    "download_link",
    "cat_link",
    "stream_with_progress",
]


def _parse(url: str) -> Any:
    from megafast._wire.links import parse_link

    return parse_link(url.strip())


def link_kind(url: str) -> str:
    """``"file"`` or ``"folder"``: what the link finally names (a file inside a folder link
    is a file)."""
    link = _parse(url)
    if link.kind == "file" or link.child_kind == "file":
        return "file"
    return "folder"


def public_view(ctx: Context, url: str) -> RemoteView:
    """The tree of a public folder link, from the node the link names."""
    return RemoteView.of_public(ctx.public_client(), url)


def link_rows(ctx: Context, url: str, recursive: bool) -> Iterator[Row]:
    """The ``ls`` rows of a public file or folder link (a folder's as they are read: the
    link is fetched before the first one)."""
    link = _parse(url)
    if link.kind == "file":
        info = ctx.public_client().get_public_url_info(url)
        name = info.get("name") or link.handle
        entry = {
            "name": name,
            "path": "/" + name,
            "type": "file",
            "size": int(info.get("size") or 0),
            "mtime": None,
            "handle": link.handle,
            "decrypted": True,
        }
        return iter([(entry, entry["path"], name)])
    view = public_view(ctx, url)
    return view.rows(view.require_top(), recursive)


def download_link(
    ctx: Context, url: str, destination: Path, as_folder: bool
) -> list[dict[str, Any]]:
    """Download a public link into ``destination`` (a folder) or as ``destination`` (a file)."""
    client = ctx.public_client()
    if as_folder:
        destination.mkdir(parents=True, exist_ok=True)
        directory, name = destination, None
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        directory, name = destination.parent, destination.name
    label = scrub(url.strip())
    config = ctx.transfer_config()
    if link_kind(url) == "folder":
        _, result, display = run_tree(
            ctx,
            label,
            "downloaded",
            lambda result, subs: client.download_url(
                url.strip(),
                str(directory),
                name,
                config=config,
                result=result,
                subscribers=subs,
            ),
        )
        top = Path(result.folders.get(".", directory))
        return outcome_rows(
            result,
            lambda rel: f"{label} {rel}",
            lambda o: o.result or str(top / o.rel),
            display.bar.elapsed,
        )
    with TransferProgress(label, None, ctx.progress) as progress:
        path = client.download_url(
            url.strip(),
            dest_path=str(directory),
            dest_filename=name,
            progress=progress,
            config=config,
        )
    size = progress.total or 0
    ctx.report_transfer("downloaded", label, size, progress)
    return [
        {
            "source": label,
            "path": str(path),
            "size": size,
            "status": "done",
            "seconds": round(progress.elapsed, 3),
            **report_renamed(ctx, path),
        }
    ]


def report_renamed(ctx: Context, result: Any) -> dict[str, Any]:
    """A status line for each entry of a folder download saved under another name (its name
    was taken in its folder); ``{"renamed": {remote: local}}`` for the JSON result, or {}."""
    renamed = dict(getattr(result, "renamed", None) or {})
    for remote, local in renamed.items():
        ctx.status(f"megafast: {remote}: the name is taken in its folder; saved as {local}")
    return {"renamed": renamed} if renamed else {}


def cat_link(ctx: Context, url: str, out: BinaryIO) -> None:
    """Stream a public file (or a file inside a public folder link) to ``out``."""
    client = ctx.public_client()
    stream_with_progress(ctx, client, url.strip(), out, scrub(url.strip()))


def stream_with_progress(ctx: Context, client: Any, source: Any, out: BinaryIO, label: str) -> None:
    """The client's verified in-order download of ``source`` (a node handle or a public
    link) into ``out``, with a progress bar on stderr (when bars are on)."""
    with TransferProgress(label, None, ctx.progress) as progress:
        client.download_to_fileobj(source, out, progress=progress, config=ctx.transfer_config())
