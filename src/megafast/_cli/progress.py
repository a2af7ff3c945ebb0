"""Progress bars for transfers (tqdm on stderr), with speed and ETA."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any

from .text import printable

__all__ = ["TransferProgress", "progress_enabled", "format_bytes", "format_rate"]


def progress_enabled(args: Any) -> bool:
    """Whether to draw bars: never with --quiet; --progress always/never; else when a TTY."""
    if getattr(args, "quiet", False):
        return False
    mode = getattr(args, "progress", "auto")
    if mode == "always":
        return True
    if mode == "never":
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def format_bytes(size: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_rate(nbytes: float, seconds: float) -> str:
    """Bytes over seconds as MB/s (10**6 bytes, as transfer speeds usually are)."""
    if seconds <= 0:
        return "- MB/s"
    return f"{nbytes / seconds / 1e6:.1f} MB/s"


class TransferProgress:
    """A callable ``(bytes_done, total)`` that draws one bar; safe to call from threads.

    ``bytes_done`` may step back (a piece being retried). Also measures the elapsed time, so
    callers can print speeds without a bar.
    """

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._bar: Any = None
        self._started = time.perf_counter()
        self._finished: float | None = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=_shorten(printable(label), 40),
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.2,
                leave=True,
            )

    def __call__(self, done: int, total: int | None = None) -> None:
        with self._lock:
            if total is not None and total != self.total:
                self.total = total
                if self._bar is not None:
                    self._bar.total = total
            step = done - self.done
            self.done = done
            if self._bar is not None and step:
                self._bar.update(step)

    @property
    def elapsed(self) -> float:
        """Seconds from creation to :meth:`close` (or to now)."""
        end = self._finished if self._finished is not None else time.perf_counter()
        return end - self._started

    def close(self) -> None:
        with self._lock:
            if self._finished is None:
                self._finished = time.perf_counter()
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]
