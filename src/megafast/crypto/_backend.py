"""Choose the kernel module once, at import time.

``MEGAFAST_NO_EXTENSIONS=1`` forces the pure-Python twin; ``MEGAFAST_REQUIRE_EXTENSIONS=1``
turns a missing or broken native extension into an ImportError instead of a fallback.
The choice is never silent: ``BACKEND`` says which one runs and ``IMPORT_ERROR`` why the
native one did not load; a fallback that was not asked for also emits a RuntimeWarning.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import TYPE_CHECKING


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


__all__ = ["BACKEND", "IMPORT_ERROR", "NO_EXTENSIONS", "REQUIRE_EXTENSIONS", "kernels"]

NO_EXTENSIONS = _flag("MEGAFAST_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("MEGAFAST_REQUIRE_EXTENSIONS")
IMPORT_ERROR: BaseException | None = None


def _choose() -> tuple[ModuleType, str]:
    """The kernel module and its backend name, per the environment flags above."""
    global IMPORT_ERROR
    if NO_EXTENSIONS:
        from . import _pure

        return _pure, "python"
    try:
        from . import _native

        return _native, "native"
    except ImportError as exc:
        if REQUIRE_EXTENSIONS:
            raise ImportError(
                "megafast: MEGAFAST_REQUIRE_EXTENSIONS is set but the native extension "
                f"megafast.crypto._native cannot be imported: {exc}"
            ) from exc
        IMPORT_ERROR = exc
        warnings.warn(
            "megafast: the native crypto extension is not available "
            f"({exc}); using the pure-Python backend, which is much slower. "
            "Set MEGAFAST_NO_EXTENSIONS=1 to choose it on purpose.",
            RuntimeWarning,
            stacklevel=3,
        )
        from . import _pure

        return _pure, "python"


BACKEND: str
if TYPE_CHECKING:
    # Both kernel modules honour one contract, stated in _native.pyi: callers are checked
    # against it (tests/test_native_equivalence.py checks that _pure gives the same results).
    from . import _native as kernels
else:
    kernels, BACKEND = _choose()
