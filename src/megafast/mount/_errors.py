"""Exceptions as errno values: what a FUSE operation answers when something failed."""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import (
    AccessDeniedError,
    IntegrityError,
    MegaError,
    NotFoundError,
    OverQuotaError,
    ValidationError,
)

__all__ = ["errno_of", "as_errno", "fail"]

log = logging.getLogger("megafast.mount")
F = TypeVar("F", bound=Callable[..., Any])


def errno_of(exc: BaseException) -> int:
    """The errno a failed operation reports: ENOSPC over quota, EIO on integrity or any
    other server failure, EROFS for writes to a read-only view, EACCES when refused."""
    if isinstance(exc, OverQuotaError):
        return errno.ENOSPC
    if isinstance(exc, IntegrityError):
        return errno.EIO
    if isinstance(exc, PermissionError) and not exc.errno:  # a read-only view refused it
        return errno.EROFS
    if isinstance(exc, AccessDeniedError):
        return errno.EACCES
    if isinstance(exc, NotFoundError):
        return errno.ENOENT
    if isinstance(exc, ValidationError):
        return errno.EINVAL
    if isinstance(exc, MegaError):
        return errno.EIO
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    return errno.EIO


def fail(code: int) -> OSError:
    """The exception that makes a FUSE operation answer ``-code``."""
    return OSError(code, os.strerror(code))


def as_errno(func: F) -> F:
    """Run a FUSE operation; any exception becomes an ``OSError`` with its errno (logged
    unless it is an ordinary answer such as ENOENT)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            code = errno_of(exc)
            if isinstance(exc, OSError) and exc.errno == code:
                raise
            if code not in (errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EROFS):
                log.warning("%s failed: %s (%s)", func.__name__, exc, errno.errorcode.get(code))
            raise fail(code) from None

    return wrapper  # type: ignore[return-value]
