"""``bulk_copy``: one Dask task per file, so a big copy spreads over a cluster's machines."""

from __future__ import annotations

import shutil
from typing import Any

__all__ = ["bulk_copy"]

_COPY_BLOCK = 4 << 20


def bulk_copy(
    source: str,
    dest: str,
    *,
    source_options: dict[str, Any] | None = None,
    dest_options: dict[str, Any] | None = None,
) -> list[str]:
    """Copy every file below the URL ``source`` to the same relative path below ``dest``,
    one Dask task per file, on the current Dask scheduler (a ``distributed.Client`` when one
    is active, else local threads). Returns the destination paths.

    Either side may be any fsspec URL (``mega://``, ``s3://``, a local path on each worker,
    ...). A task downloading from MEGA to a local path uses the parallel, verified, resumable
    download; one uploading from a local path uses the parallel upload; a copy inside one MEGA
    account is a server-side copy; anything else streams through the worker, and a sequential
    read of a whole MEGA file is MAC-checked before its last bytes are written.
    """
    from dask.base import compute
    from dask.delayed import delayed
    from fsspec.core import url_to_fs

    src_fs, src_root = url_to_fs(source, **(source_options or {}))
    dst_fs, dst_root = url_to_fs(dest, **(dest_options or {}))
    src_root = src_root.rstrip("/")
    files = src_fs.find(src_root) if src_fs.isdir(src_root) else [src_root]
    tasks = []
    targets = []
    for path in files:
        rel = path[len(src_root) :].lstrip("/") if path != src_root else path.rsplit("/", 1)[-1]
        target = f"{dst_root.rstrip('/')}/{rel}" if dst_root.rstrip("/") else rel
        targets.append(target)
        tasks.append(delayed(_copy_one, pure=False)(src_fs, path, dst_fs, target))
    compute(*tasks)  # type: ignore[no-untyped-call]
    return targets


def _copy_one(src_fs: Any, src: str, dst_fs: Any, dst: str) -> str:
    from fsspec.implementations.local import LocalFileSystem

    from ._filesystem import MegaFileSystem

    mega_pair = isinstance(src_fs, MegaFileSystem) and isinstance(dst_fs, MegaFileSystem)
    one_account = mega_pair and src_fs._engine is dst_fs._engine  # from any thread
    if one_account or src_fs == dst_fs:
        src_fs.cp_file(src, dst)
    elif isinstance(dst_fs, LocalFileSystem):
        dst_fs.makedirs(dst_fs._parent(dst), exist_ok=True)
        src_fs.get_file(src, dst)
    elif isinstance(src_fs, LocalFileSystem):
        dst_fs.put_file(src, dst)
    else:
        with src_fs.open(src, "rb") as fin, dst_fs.open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, _COPY_BLOCK)
    return dst
