"""Private files written atomically: the session saved by :meth:`Mega.save_session` and the
CLI's session store."""

from __future__ import annotations

import contextlib
import os
import secrets

__all__ = ["write_private_file"]


def write_private_file(path: str | os.PathLike[str], payload: bytes) -> None:
    """Create or replace ``path`` with ``payload`` atomically (a temporary file beside it,
    flushed to disk, then renamed over it); the file has mode 0600 from the start, so it is
    never readable by others, not even briefly. The temporary file is removed on failure."""
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
