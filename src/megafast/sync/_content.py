"""What a file's content is, for deciding what changed: MEGA's ``c`` fingerprint (four CRC
samples plus the mtime, see ``megafast.crypto.fingerprint``), read so that a file changing
while it is read is noticed, and a full MAC check against a remote node's key."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._tree.nodes import b64_bytes
from ..crypto import fingerprint
from ..errors import MegaError

__all__ = [
    "MTIME_TOLERANCE",
    "ChangingFileError",
    "Fingerprint",
    "parse_fingerprint",
    "read_fingerprint",
    "mac_matches",
    "stat_key",
]

MTIME_TOLERANCE = 2  # seconds, as MEGA's SDK compares fingerprints (FS_MTIME_TOLERANCE_SECS)
READ_TRIES = 3
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class ChangingFileError(MegaError, OSError):
    """A local file kept changing (size or mtime moved) while it was being read."""


@dataclass(frozen=True)
class Fingerprint:
    """A parsed ``c``: ``crc`` the 16 sample bytes, ``mtime`` in seconds."""

    crc: bytes
    mtime: int

    def same_content(self, other: Fingerprint) -> bool:
        return self.crc == other.crc

    def same(self, other: Fingerprint) -> bool:
        """MEGA's equality (sizes compared by the caller): same samples, mtimes within 2 s."""
        return self.crc == other.crc and abs(self.mtime - other.mtime) <= MTIME_TOLERANCE


def parse_fingerprint(c: Any) -> Fingerprint | None:
    """``c`` (base64url: 16 CRC bytes, a count byte, the mtime's bytes least significant
    first) as a :class:`Fingerprint`, or None when it is missing or malformed."""
    if not isinstance(c, str) or len(c) > 64:
        return None
    raw = b64_bytes(c)
    if raw is None or len(raw) < 18:
        return None
    count = raw[16]
    if not 1 <= count <= 8 or len(raw) != 17 + count:
        return None
    return Fingerprint(raw[:16], int.from_bytes(raw[17:], "little"))


def stat_key(st: os.stat_result) -> tuple[int, int]:
    """What "the file did not change" means for the fast pre-check: (size, mtime in ns)."""
    return st.st_size, st.st_mtime_ns


def _open_regular(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    st = os.fstat(fd)
    if not _is_regular(st.st_mode):
        os.close(fd)
        raise IsADirectoryError(f"{path} is not a regular file")
    return fd


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def read_fingerprint(path: Path, tries: int = READ_TRIES) -> tuple[str, os.stat_result]:
    """The ``c`` of the file at ``path`` (never through a symlink) and the stat it belongs
    to. The file is stat-ed before and after; when its size or mtime moved in between it is
    read again (``tries`` times in all), then :class:`ChangingFileError`. OSError when it
    cannot be read."""
    for attempt in range(tries):
        fd = _open_regular(path)
        with os.fdopen(fd, "rb") as handle:
            before = os.fstat(handle.fileno())
            c = fingerprint(handle, before.st_mtime_ns // 1_000_000_000)
            after = os.fstat(handle.fileno())
        if stat_key(before) == stat_key(after) and stat_key(os.lstat(path)) == stat_key(after):
            return c, after
        time.sleep(0.05 * (attempt + 1))
    raise ChangingFileError(f"{path} kept changing while it was read")


def mac_matches(path: Path, node: dict[str, Any], block: int = 8 << 20) -> bool:
    """Whether the local file has exactly the content of the remote file ``node`` (its
    size and its meta-MAC under the node's key): a whole read, no transfer."""
    from ..crypto import FileCipher

    key = node.get("key")
    size = node.get("s")
    if not isinstance(key, (tuple, list)) or len(key) != 8 or not isinstance(size, int):
        return False
    try:
        fd = _open_regular(path)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        if os.fstat(handle.fileno()).st_size != size:
            return False
        cipher = FileCipher(tuple(key), size=size)
        offset = 0
        while True:
            data = handle.read(block)
            if not data:
                break
            cipher.update_mac(data, offset)
            offset += len(data)
    if offset != size:
        return False
    try:
        cipher.verify()
    except ValueError:
        return False
    return True
