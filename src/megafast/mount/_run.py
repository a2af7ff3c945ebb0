"""Mounting: uploads left from the last mount, the FUSE options, the foreground loop."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..vfs._backend import Backend
from ..vfs._spool import KEEP_DEFAULT, Spool

__all__ = ["run_mount", "retry_pending"]

log = logging.getLogger("megafast.mount")
#: Seconds the kernel keeps a looked-up entry or its attributes before asking again;
#: changes from other clients are pushed to it at once (``fuse_invalidate_path``).
CACHE_SECONDS = 1.0


def retry_pending(ops: object, spool: Spool) -> tuple[int, int]:
    """Upload what an earlier mount left in the queue: (uploaded, still waiting)."""
    from ._ops import MegaOperations

    assert isinstance(ops, MegaOperations)
    done = left = 0
    queued = {os.path.basename(item.spool) for item in spool.pending()}
    unclosed = [p for p in spool.folder.glob("spool-*") if p.name not in queued]
    if unclosed:
        log.warning(
            "%d file(s) being written when an earlier mount stopped were never closed, so never "
            "uploaded; kept in %s",
            len(unclosed),
            spool.folder,
        )
    for item in spool.pending():
        if not os.path.exists(item.spool):
            log.error("queued upload of %r lost its spool file; dropped from the queue", item.name)
            spool.dequeue(item)
            continue
        try:
            ops._finish(item)
        except Exception as exc:  # noqa: BLE001 - reported, kept for the next mount
            left += 1
            log.error("queued upload of %r failed again, kept in the queue: %s", item.name, exc)
            continue
        spool.discard(item.spool)
        done += 1
        log.warning("queued upload of %r from an earlier mount finished", item.name)
    return done, left


def run_mount(
    backend: Backend,
    mountpoint: str | os.PathLike[str],
    *,
    spool_dir: str | os.PathLike[str] | None,
    keep_spool: int = KEEP_DEFAULT,
    read_only: bool = False,
    allow_other: bool = False,
    permanent: bool = False,
    debug: bool = False,
) -> None:
    """Mount ``backend`` at ``mountpoint`` and serve until unmounted (``fusermount3 -u``)
    or interrupted (Ctrl-C, SIGTERM); returns after the unmount. Up to ``keep_spool`` bytes
    of spool files are kept for reuse while it runs (:class:`~megafast.vfs._spool.Spool`)."""
    from ._fuse import FastFUSE
    from ._ops import MegaOperations

    read_only = read_only or backend.read_only
    spool = None if read_only or spool_dir is None else Spool(spool_dir, keep_spool)
    backend.load()
    ops = MegaOperations(backend, spool, read_only=read_only, permanent=permanent)
    if spool is not None:
        retry_pending(ops, spool)
    options: dict[str, object] = {
        "foreground": True,
        "debug": debug,
        "fsname": "megafast",
        "subtype": "megafast",
        "default_permissions": True,
        "auto_unmount": True,
        "attr_timeout": CACHE_SECONDS,
        "entry_timeout": CACHE_SECONDS,
        "negative_timeout": 0,
        # MEGA keeps no access time; without this the kernel asks for the attributes again
        # after every read (it drops its cached atime)
        "noatime": True,
    }
    if read_only:
        options["ro"] = True
    if allow_other:
        options["allow_other"] = True
    path = Path(mountpoint)
    if not path.is_dir():
        raise NotADirectoryError(f"the mount point {mountpoint} is not a folder")
    ops.mountpoint = str(path.resolve())
    log.info("mounting on %s", path)
    FastFUSE(ops, str(path), raw_fi=True, **options)
