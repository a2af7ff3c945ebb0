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


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


NO_EXTENSIONS = _flag("MEGAFAST_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("MEGAFAST_REQUIRE_EXTENSIONS")
IMPORT_ERROR: BaseException | None = None

kernels: ModuleType
if NO_EXTENSIONS:
    from . import _pure as kernels

    BACKEND = "python"
else:
    try:
        from . import _native as kernels  # noqa: F401

        BACKEND = "native"
    except ImportError as exc:
        if REQUIRE_EXTENSIONS:
            raise ImportError(
                "megafast: MEGAFAST_REQUIRE_EXTENSIONS is set but the native extension "
                f"megafast.crypto._native cannot be imported: {exc}"
            ) from exc
        IMPORT_ERROR = exc
        from . import _pure as kernels  # noqa: F401

        BACKEND = "python"
        warnings.warn(
            "megafast: the native crypto extension is not available "
            f"({exc}); using the pure-Python backend, which is much slower. "
            "Set MEGAFAST_NO_EXTENSIONS=1 to choose it on purpose.",
            RuntimeWarning,
            stacklevel=2,
        )
