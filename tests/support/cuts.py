"""Cutting connections from outside the process, as a real outage does: ``ss -K`` (the
kernel's SOCK_DESTROY, root and CONFIG_INET_DIAG_DESTROY needed) on a timer."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import threading
from types import TracebackType


def _ss_kill(port: int) -> None:
    subprocess.run(
        ["ss", "-K", "dst", "127.0.0.1", "dport", "=", f":{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=10,
        check=False,
    )


@functools.cache
def ss_kill_unavailable() -> str | None:
    """Why ``ss -K`` cannot cut connections here, or None when it can (checked once, on a
    loopback connection of our own)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "ss -K needs root"
    if shutil.which("ss") is None:
        return "ss (iproute2) is not installed"
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            peer, _ = server.accept()
            with peer:
                _ss_kill(port)
                client.settimeout(2)
                try:
                    client.recv(1)
                except OSError:
                    return None  # destroyed: ECONNABORTED
                return "ss -K did not cut the connection (no CONFIG_INET_DIAG_DESTROY?)"


class OutsideCutter:
    """Cut every TCP connection to ``port`` with ``ss -K`` every ``every`` seconds while the
    ``with`` block runs; ``cuts`` counts the rounds."""

    def __init__(self, port: int, every: float) -> None:
        self.port, self.every = port, every
        self.cuts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ss-cutter", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            _ss_kill(self.port)
            self.cuts += 1

    def __enter__(self) -> OutsideCutter:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
