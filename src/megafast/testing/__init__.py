"""A faithful MEGA emulator on loopback, for tests (like moto for AWS).

``MegaEmulator`` runs MEGA's ``/cs`` API and its download/upload servers on 127.0.0.1;
``serve_main`` is ``megafast serve`` / ``python -m megafast.testing``::

    from megafast.testing import MegaEmulator

    with MegaEmulator() as emu:
        emu.create_account("alice@example.com", "secret")            # v2; version=1 too
        folder = emu.add_folder("alice@example.com", "docs")
        handle, key = emu.add_file("alice@example.com", b"hi", "hi.txt", folder)
        link = emu.export(handle)                                    # https://mega.nz/file/...
        emu.set_faults(transfer_error_rate=0.2, drop_after_bytes=65536, drop_limit=3)
        ...  # point any MEGA client at emu.api_url (it POSTs to {api_url}/cs)
        print(emu.stats(), emu.fault_counts)
"""

from __future__ import annotations

from ._faults import Faults
from ._serve import serve_main
from .emulator import Account, MegaEmulator

__all__ = ["Account", "Faults", "MegaEmulator", "serve_main"]
