"""Private files written atomically: the session saved by :meth:`Mega.save_session` and the
CLI's session store."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable

__all__ = ["write_private_file"]


def write_private_file(
    path: str | os.PathLike[str], payload: bytes | Iterable[bytes | bytearray | memoryview]
) -> None:
    """Create or replace ``path`` with ``payload`` (bytes, or pieces written in turn)
    atomically (a temporary file beside it, flushed to disk, then renamed over it); the file
    has mode 0600 from the start, so it is never readable by others, not even briefly. The
    temporary file is removed on failure."""
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in (payload,) if isinstance(payload, bytes) else payload:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
