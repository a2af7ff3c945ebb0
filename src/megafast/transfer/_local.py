"""Local files a download creates beside its target, safe against planted links.

A download writes ``<name>.megafast-part`` and its sidecar ``<name>.megafast-part.json`` next
to the target. Another local user (or a hostile archive) may have planted a symlink, a hard
link or a file of their own at those names, so:

- every file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600: a name that
  already exists is never followed or truncated;
- an existing part file is adopted only when it is a regular file of ours, with one link,
  not writable by group or others; anything else is renamed aside (with a warning) and the
  download starts over;
- sidecars are written under a random temporary name and renamed over the old one (a
  rename replaces a planted link, it never writes through it);
- helper names always fit in ``NAME_MAX`` (255 bytes): a long target name is shortened and
  given a hash of the full name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import stat
from pathlib import Path

__all__ = ["helper_base", "open_part", "set_aside", "create_private", "final_mode"]

log = logging.getLogger("megafast.transfer")

NAME_MAX = 255
#: Bytes of a helper name kept for the target's own name; the rest of NAME_MAX is left for
#: the suffixes (``.megafast-part.json`` plus a temporary ``.<pid>.<random>.tmp``).
HELPER_BASE_MAX = 200
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def helper_base(name: str) -> str:
    """The part of helper names that comes from the target's name: the name itself when it
    is short enough, else its first bytes (whole characters) plus a hash of all of it."""
    raw = os.fsencode(name)
    if len(raw) <= HELPER_BASE_MAX:
        return name
    tag = hashlib.sha256(raw).hexdigest()[:16]
    keep = raw[: HELPER_BASE_MAX - len(tag) - 1]
    prefix = os.fsdecode(keep)
    while prefix and "\udc80" <= prefix[-1] <= "\udcff":
        prefix = prefix[:-1]  # never end inside a multi-byte character
    return f"{prefix}~{tag}"


def create_private(path: Path, flags: int = os.O_RDWR) -> int:
    """Create ``path`` (it must not exist, not even as a link) with mode 0600."""
    return os.open(path, flags | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)


def set_aside(path: Path, why: str) -> None:
    """Rename ``path`` (whatever it is: a link is renamed, not followed) to a free name
    beside it, with a warning; it is left for the user to inspect."""
    aside = path.with_name(f"{path.name[:HELPER_BASE_MAX]}.suspect-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    log.warning("%s: %s; moved aside to %s, the download starts over", path, why, aside.name)


def _unsafe(st: os.stat_result) -> str | None:
    """Why a part file with this ``lstat``/``fstat`` must not be adopted, or None."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != os.geteuid():
        return "owned by another user"
    if st.st_mode & 0o022:
        return "writable by group or others"
    if st.st_nlink != 1:
        return "has other hard links"
    return None


def open_part(part: Path) -> tuple[int, bool]:
    """Open the part file for reading and writing: ``(fd, adopted)``. ``adopted`` is True
    for a part file of an earlier run that is safe to continue; anything unsafe at that name
    is set aside and a fresh file is created (mode 0600)."""
    for _ in range(8):
        try:
            fd = os.open(part, os.O_RDWR | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            pass
        except OSError:  # a symlink (ELOOP), a FIFO, a folder ...
            if os.path.lexists(part):
                set_aside(part, "not a regular file")
        else:
            why = None
            try:
                why = _unsafe(os.fstat(fd))
            except OSError:
                why = "cannot be examined"
            if why is None:
                os.set_blocking(fd, True)
                return fd, True
            os.close(fd)
            set_aside(part, why)
        try:
            return create_private(part), False
        except FileExistsError:
            continue  # something appeared meanwhile: look at it again
    raise FileExistsError(f"{part.name}: the name keeps being taken by another process")


def final_mode() -> int:
    """The mode a finished download gets (0666 less the umask), read without changing the
    process umask (which other threads may rely on)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    return 0o644
