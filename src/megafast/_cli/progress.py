"""Progress bars for transfers (tqdm on stderr), with speed and ETA."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .text import printable

if TYPE_CHECKING:
    from .context import Context

__all__ = [
    "TransferProgress",
    "TreeProgress",
    "run_tree",
    "outcome_rows",
    "progress_enabled",
    "format_bytes",
    "format_rate",
]


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

    def note(self, text: str) -> None:
        """Show ``text`` after the bar (files done, in flight...)."""
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix_str(text, refresh=False)

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


class TreeProgress:
    """One display for a whole tree, as a :class:`~megafast.transfer.TransferSubscriber`
    (duck-typed, so that importing the CLI stays light): a byte bar with speed and ETA (the
    bytes counted by a :class:`~megafast.transfer.BytesProgress`), and ``files done/total,
    N in flight`` after it; the totals grow as files are queued. Its :attr:`bar` measures the
    elapsed time like a :class:`TransferProgress`."""

    def __init__(self, label: str, enabled: bool) -> None:
        from megafast.transfer import BytesProgress

        self.bar = TransferProgress(label, 0, enabled)
        self._bytes = BytesProgress(self.bar)
        self._lock = threading.Lock()
        self.files_total = 0
        self.files_done = 0
        self._started: set[int] = set()  # the files in flight

    @property
    def in_flight(self) -> int:
        return len(self._started)

    def _note(self) -> None:
        self.bar.note(f"{self.files_done}/{self.files_total} files, {self.in_flight} in flight")

    def on_queued(self, future: Any) -> None:
        with self._lock:
            self.files_total += 1
            self._bytes.on_queued(future)
            self._note()

    def on_started(self, future: Any) -> None:
        with self._lock:
            self._started.add(id(future))  # a file re-queued after a 509 starts again
            self._note()

    def on_progress(self, future: Any, done: int, total: int) -> None:
        self._bytes.on_progress(future, done, total)

    def on_done(self, future: Any) -> None:
        with self._lock:
            self._started.discard(id(future))
            self.files_done += future.state in ("done", "skipped")
            self._bytes.on_done(future)
            self._note()

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> TreeProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_tree(
    ctx: Context, label: str, verb: str, start: Callable[[Any, list[Any]], Any]
) -> tuple[Any, Any, TreeProgress]:
    """Run ``start(result, subscribers)`` (one of Mega's folder methods) under one tree
    display; returns (what it returned, or None when files failed; the TransferResult; the
    display). Skipped entries, renames and failed files get a status line each."""
    from megafast.errors import TransferError
    from megafast.transfer import TransferResult

    result = TransferResult()
    value = None
    with TreeProgress(label, ctx.progress) as display:
        try:
            value = start(result, [display])
        except TransferError:
            if not result.failed and not result.cancelled:
                raise
    for rel, why in result.ignored:
        ctx.status(f"megafast: warning: skipped {label}/{rel} ({why})")
    for rel, new in result.renamed:
        ctx.status(f"megafast: note: {label}/{rel} was given the name {new}")
    for outcome in result.failed:
        ctx.status(f"megafast: error: {label}/{outcome.rel}: {outcome.reason}")
    ctx.report_transfer(verb, label, result.bytes_done, display.bar)
    return value, result, display


def outcome_rows(
    result: Any,
    source_of: Callable[[str], str],
    path_of: Callable[[Any], str],
    seconds: float,
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One ``--json`` object per file of a tree transfer: source, path, size, status
    (``done``, ``skipped``, ``failed``, ``cancelled``), reason (unless done), seconds (the
    tree's), and what ``extra(outcome)`` adds."""
    outcomes = (*result.succeeded, *result.skipped, *result.failed, *result.cancelled)
    rows = []
    for outcome in sorted(outcomes, key=lambda o: o.rel):
        row: dict[str, Any] = {
            "source": source_of(outcome.rel),
            "path": path_of(outcome),
            "size": outcome.size,
            "status": outcome.status,
            "seconds": round(seconds, 3),
        }
        if outcome.reason:
            row["reason"] = outcome.reason
        if extra is not None:
            row.update(extra(outcome))
        rows.append(row)
    return rows


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]
