"""AsyncMega's folder transfers (methods of AsyncMega): a local folder up, a remote one down.

Files go ``workers`` at a time through :func:`._transfers.upload` / :func:`._transfers.download`
(each batched and cancellable as those are); one progress callback sees the bytes of the
whole tree. A file that fails raises its error after the others finished.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._account.transfers import dest_dir
from .._tree.nodes import NodeType
from .._tree.treewalk import cycle_error
from ..errors import DestinationError, SourceNotFoundError, ValidationError
from ..transfer._localnames import safe_local_name, unique_names
from ._bridge import Progress
from ._nodes import Node, NodeRef, handle_of
from ._transfers import PathArg, _raise_first, download, upload

if TYPE_CHECKING:
    from ._client import AsyncMega


async def upload_tree(
    m: AsyncMega,
    directory: PathArg,
    dest: NodeRef | None = None,
    *,
    progress: Progress | None = None,
    thumbnails: bool | None = None,
) -> Node:
    """Upload a local folder (its regular files; symlinks are not followed) into ``dest``
    as a folder of the same name; files go ``workers`` at a time (``thumbnails``: as for
    :func:`~megafast.aio._transfers.upload`). The new folder's Node; a file that fails
    raises its error after the others finished."""
    from .._account.transfers import local_tree
    from ._ops import create_folder

    top = Path(directory)
    if not top.is_dir():
        raise SourceNotFoundError(f"no such folder to upload: {top}")
    tree = await asyncio.get_running_loop().run_in_executor(m.executor, local_tree, top)
    root = await create_folder(m, top.resolve().name, dest)
    folders = {".": root}
    for rel in tree.folders:  # parents first
        if rel != ".":
            parent = folders[str(Path(rel).parent) if "/" in rel else "."]
            folders[rel] = await create_folder(m, Path(rel).name, parent)
    total = sum(p.stat().st_size for p, _ in tree.files)
    done: dict[str, int] = {}

    def file_progress(rel: str) -> Progress | None:
        if progress is None:
            return None

        def report(n: int, _: int) -> Any:
            done[rel] = n
            return progress(sum(done.values()), total)

        return report

    limit = asyncio.Semaphore(m.workers)

    async def one(path: Path, rel: str) -> Node:
        async with limit:
            parent = folders[str(Path(rel).parent) if "/" in rel else "."]
            return await upload(m, path, parent, progress=file_progress(rel), thumbnails=thumbnails)

    results = await asyncio.gather(*(one(p, r) for p, r in tree.files), return_exceptions=True)
    _raise_first(results)
    return root


async def download_tree(
    m: AsyncMega,
    folder: NodeRef,
    dest: PathArg | None = None,
    *,
    progress: Progress | None = None,
) -> Path:
    """Download a folder of the account into ``dest`` (a folder of its name is made
    there); files go ``workers`` at a time, each named safely and distinctly. The folder
    written; a file that fails raises its error after the others finished."""
    directory = dest_dir(dest)
    tree = await m.tree()
    top = handle_of(folder)
    if top not in tree.store or tree.store.types[tree.store.slot_of[top]] == NodeType.FILE:
        raise ValidationError("download_tree() takes a folder")
    jobs: list[tuple[str, Path, int]] = []
    base = directory / safe_local_name(tree.store.name_of(top) or top)
    todo = [(top, base)]
    while todo:
        handle, local = todo.pop()
        if local.is_symlink():
            raise DestinationError(f"a symlink is in the way: {local}")
        local.mkdir(exist_ok=True)
        kids = [h for h in tree.store.child_handles(handle) if tree.store.key_of(h)]
        if top in kids:  # each node has one parent: only the top can come round
            raise cycle_error(tree.nodes, top)
        names = unique_names([safe_local_name(tree.store.name_of(h) or h) for h in kids])
        for h, local_name in zip(kids, names, strict=True):
            if tree.store.types[tree.store.slot_of[h]] == NodeType.FILE:
                jobs.append((h, local, tree.store.sizes[tree.store.slot_of[h]]))
                jobs[-1] = (h, local / local_name, jobs[-1][2])
            else:
                todo.append((h, local / local_name))
    total = sum(size for _, _, size in jobs)
    done: dict[str, int] = {}
    limit = asyncio.Semaphore(m.workers)

    async def one(handle: str, target: Path) -> Path:
        def report(n: int, _: int) -> Any:
            done[handle] = n
            return progress(sum(done.values()), total) if progress is not None else None

        async with limit:
            return await download(
                m, handle, target.parent, name=target.name, progress=report if progress else None
            )

    results = await asyncio.gather(*(one(h, t) for h, t, _ in jobs), return_exceptions=True)
    _raise_first(results)
    return base
