"""A guess of how big a file written into the mount will be, from the writing process.

A program copying a file (``cp``, ``dd``, ``install``, ``mv`` from another filesystem,
Python's ``shutil.copy``) opens its source before it creates the copy. When the process
that creates a file in the mount has exactly one regular file open for reading only, outside
the mount, that file's size is the guess. It is only a guess: the upload that starts from it
is kept only when the file is closed at that size (:mod:`megafast.vfs._growing`).

Nothing here blocks or fails: only files on local filesystems are looked at, and a process
that is gone, or whose ``/proc`` entries cannot be read (another user's, unless the mount
runs as root), gives no guess.
"""

from __future__ import annotations

import os
import stat

__all__ = ["guess_size"]

#: A process with more descriptors than this is not a simple copy: no guess.
MAX_FDS = 256


#: Filesystems whose files are looked at: local ones, where a ``stat`` answers at once. A
#: file on any other (a FUSE mount, this one included under another path; NFS, SMB) is
#: skipped: its ``stat`` could wait on a dead server or come back to this process.
LOCAL_FILESYSTEMS = frozenset(
    {
        "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "bcachefs", "jfs", "reiserfs",
        "nilfs2", "tmpfs", "ramfs", "overlay", "squashfs", "erofs", "iso9660", "udf", "vfat",
        "msdos", "exfat", "ntfs", "ntfs3", "hfsplus",
    }
)  # fmt: skip


def _fdinfo(pid: int, fd: str) -> tuple[int, int]:
    """The open flags and the mount id of descriptor ``fd`` of ``pid``."""
    flags = mnt_id = -1
    with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "flags":
                flags = int(value.strip(), 8)
            elif key == "mnt_id":
                mnt_id = int(value.strip())
    return flags, mnt_id


def _local_mounts(pid: int) -> set[int]:
    """The ids of the mounts of local filesystems that process ``pid`` sees."""
    local = set()
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            head, sep, tail = line.partition(" - ")
            fields, kind = head.split(), tail.split()
            if sep and fields and fields[0].isdigit() and kind and kind[0] in LOCAL_FILESYSTEMS:
                local.add(int(fields[0]))
    return local


def guess_size(pid: int, mountpoint: str) -> int | None:
    """The size of the one regular file (not empty, on a local filesystem, not under
    ``mountpoint``) that process ``pid`` has open for reading only; None when there is none,
    or more than one size."""
    if pid <= 0:
        return None
    folder = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(folder)
        if len(fds) > MAX_FDS:
            return None
        local = _local_mounts(pid)
    except (OSError, ValueError):
        return None
    inside = mountpoint.rstrip("/") + "/"
    sizes: set[int] = set()
    for fd in fds:
        try:
            target = os.readlink(f"{folder}/{fd}")
            # pipes, sockets and anonymous files have no path
            if not target.startswith("/") or target == mountpoint or target.startswith(inside):
                continue
            flags, mnt_id = _fdinfo(pid, fd)
            if (flags & os.O_ACCMODE) != os.O_RDONLY or mnt_id not in local:
                continue
            st = os.stat(f"{folder}/{fd}")
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            sizes.add(st.st_size)
    return sizes.pop() if len(sizes) == 1 else None
