"""gc_paused: the cyclic garbage collector paused while many small objects are built."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Generator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Generator[None, None, None]:
    """Pause the cyclic garbage collector while building many small objects (a 100,000-node
    listing allocates millions; the collector would rescan them all again and again)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
