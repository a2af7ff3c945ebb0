"""megafast: a fast MEGA client with a native crypto core.

``from megafast import Mega`` gives mega.py's interface; ``megafast.crypto`` keeps mega.py's
crypto helper names; ``megafast.testing`` is a MEGA emulator for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .errors import MegaError, RequestError, ValidationError

__version__ = "0.1.0"
__all__ = ["Mega", "MegaError", "RequestError", "ValidationError", "errors", "__version__"]

if TYPE_CHECKING:
    from .client import Mega


def __getattr__(name: str) -> Any:
    # Import the client lazily so that `import megafast` (and the CLI's start-up) stays fast.
    if name == "Mega":
        from .client import Mega

        return Mega
    raise AttributeError(f"module 'megafast' has no attribute {name!r}")
