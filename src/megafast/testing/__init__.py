"""A faithful MEGA emulator on loopback, for tests (like moto for AWS).

``MegaEmulator`` runs MEGA's ``/cs`` API and its download/upload servers on 127.0.0.1;
``serve_main`` is ``megafast serve`` / ``python -m megafast.testing``.
"""

from __future__ import annotations

from ._faults import Faults
from ._serve import serve_main
from .emulator import Account, MegaEmulator

__all__ = ["Account", "Faults", "MegaEmulator", "serve_main"]
