"""``megafast mount``: MEGA as a folder (FUSE through mfusepy and libfuse 3).

See docs/MOUNT.md. Needs the ``mount`` extra (``pip install megafast[mount]``) and libfuse 3.
"""

from __future__ import annotations

from ._run import retry_pending, run_mount

__all__ = ["run_mount", "retry_pending"]
