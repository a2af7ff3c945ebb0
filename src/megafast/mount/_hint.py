"""A guess of how big a file written into the mount will be, from the writing process.

A program copying a file (``cp``, ``dd``, ``install``, ``mv`` from another filesystem,
Python's ``shutil.copy``) opens its source before it creates the copy. When the process
that creates a file in the mount has exactly one regular file open for reading only, outside
the mount, that file's size is the guess. It is only a guess: the upload that starts from it
is kept only when the file is closed at that size (:mod:`megafast.vfs._growing`).

Nothing here blocks or fails: a process that is gone, or whose ``/proc`` entries cannot be
read (another user's, without ``allow_other`` rights), gives no guess.
"""

from __future__ import annotations

import os
import stat

__all__ = ["guess_size"]

#: A process with more descriptors than this is not a simple copy: no guess.
MAX_FDS = 256


def _read_only(pid: int, fd: str) -> bool:
    """True when descriptor ``fd`` of ``pid`` was opened for reading only."""
    with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("flags:"):
                return (int(line.split()[1], 8) & os.O_ACCMODE) == os.O_RDONLY
    return False


def guess_size(pid: int, mountpoint: str) -> int | None:
    """The size of the one regular file (not empty, not under ``mountpoint``) that process
    ``pid`` has open for reading only; None when there is none, or more than one size."""
    if pid <= 0:
        return None
    folder = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(folder)
    except OSError:
        return None
    if len(fds) > MAX_FDS:
        return None
    inside = mountpoint.rstrip("/") + "/"
    sizes: set[int] = set()
    for fd in fds:
        try:
            target = os.readlink(f"{folder}/{fd}")
            # pipes, sockets and anonymous files have no path; a file in the mount is
            # never looked at (its stat would come back to this process)
            if not target.startswith("/") or target == mountpoint or target.startswith(inside):
                continue
            if not _read_only(pid, fd):
                continue
            st = os.stat(f"{folder}/{fd}")
        except (OSError, ValueError, IndexError):
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            sizes.add(st.st_size)
    return sizes.pop() if len(sizes) == 1 else None
