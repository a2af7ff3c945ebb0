"""Many transfers over one connection pool and one worker budget.

A :class:`TransferManager` consumes an iterator of jobs lazily (a bounded queue sits between
the iterator and the workers, so a tree of a million files never becomes a list), runs them
on ``workers`` threads that share one :class:`requests.Session` and one
:class:`~megafast.transfer._batch.CommandBatcher`, and returns a :class:`TransferResult`
naming what succeeded, was skipped or failed and why. Each job is a :class:`TransferFuture`
with progress subscribers that can be cancelled. A 509 (over quota) pauses the whole queue;
:meth:`TransferManager.shutdown` with ``cancel=True`` (or Ctrl-C) stops the workers within
about a second, leaving the engine's part files and sidecars to resume from.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import MegaError, OverQuotaError, TransferError
from ._batch import CommandBatcher
from ._config import TransferConfig
from ._http import TransferCancelled
from ._session import clone_session

if TYPE_CHECKING:
    import requests

    from ._host import HasTransferHost, TransferHost

logger = logging.getLogger("megafast.transfer")

#: seconds to wait after a 509 that names no time
DEFAULT_QUOTA_WAIT = 60.0
#: how often idle workers look at the cancel flag (the "within a second" of Ctrl-C)
_POLL = 0.2


class SkipTransfer(Exception):
    """Raised by a job whose work is already done (``reason`` says why)."""

    def __init__(self, reason: str, handle: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.handle = handle


class FileProgress:
    """What a job's ``run`` gets as ``progress``: call it with ``(done, total)`` bytes; its
    ``cancel`` event is set when the file (or the whole manager) is cancelled, for the
    engine's ``cancel=`` (which stops within about 0.1 s, keeping resumable state)."""

    def __init__(self, future: TransferFuture) -> None:
        self.future = future
        self.cancel = future._cancel

    def __call__(self, done: int, total: int) -> None:
        self.future.bytes_done = done
        self.future._notify("on_progress", done, total)


class Job(Protocol):
    """One file to move. ``rel``: its name in results; ``size``: bytes."""

    rel: str
    size: int

    def prepare(self, manager: TransferManager) -> None:
        """Called when queued (in the feeding thread): start cheap look-ups early."""

    def run(self, manager: TransferManager, progress: FileProgress) -> str | None:
        """Do the transfer; return the new node handle or local path (or None). Raise
        :class:`SkipTransfer` when there is nothing to do. Pass ``manager.http`` with
        ``shared_session=True`` and ``cancel=progress.cancel`` to the engine."""


class TransferSubscriber:
    """Override what you need; every method runs on a worker thread (keep it short)."""

    def on_queued(self, future: TransferFuture) -> None:
        pass

    def on_started(self, future: TransferFuture) -> None:
        """A worker took the file (it is in flight until :meth:`on_done`)."""

    def on_progress(self, future: TransferFuture, done: int, total: int) -> None:
        pass

    def on_done(self, future: TransferFuture) -> None:
        pass


class BytesProgress(TransferSubscriber):
    """Adapts a whole-tree ``progress(done, total)`` callback (bytes, as the engine's) to
    subscriber events; ``total`` is the bytes known so far (the queue is fed lazily)."""

    def __init__(self, callback: Callable[[int, int], None]) -> None:
        self.callback = callback
        self._lock = threading.Lock()
        self._total = 0
        self._finished = 0  # bytes of files that ended
        self._running: dict[int, int] = {}

    def _report(self) -> None:
        self.callback(self._finished + sum(self._running.values()), self._total)

    def on_queued(self, future: TransferFuture) -> None:
        with self._lock:
            self._total += future.job.size
            self._report()

    def on_progress(self, future: TransferFuture, done: int, total: int) -> None:
        with self._lock:
            self._running[id(future)] = done
            self._report()

    def on_done(self, future: TransferFuture) -> None:
        with self._lock:
            self._running.pop(id(future), None)
            if future.state in ("done", "skipped"):
                self._finished += future.job.size
            else:
                self._total -= future.job.size
            self._report()


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file: ``status`` is ``done``, ``skipped``, ``failed`` or
    ``cancelled``; ``reason`` says why for the last three; ``result`` is the new node handle
    (uploads) or local path (downloads)."""

    rel: str
    status: str
    size: int
    reason: str = ""
    result: str | None = None
    error: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass
class TransferResult:
    """Every file's outcome, plus what the tree walk noticed on the way."""

    succeeded: list[FileOutcome] = field(default_factory=list)
    skipped: list[FileOutcome] = field(default_factory=list)
    failed: list[FileOutcome] = field(default_factory=list)
    cancelled: list[FileOutcome] = field(default_factory=list)
    #: (original relative path, the name it got) for name collisions
    renamed: list[tuple[str, str]] = field(default_factory=list)
    #: entries of the source tree that were not transferred and are no file failure
    #: (symlinks, special files), as (relative path, reason)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    #: relative folder path -> remote handle (uploads) or local path (downloads)
    folders: dict[str, str] = field(default_factory=dict)
    bytes_done: int = 0
    api_requests: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed or was cancelled."""
        return not self.failed and not self.cancelled

    def raise_for_failures(self) -> None:
        """Raise :class:`~megafast.errors.TransferError` naming the failed files (the first
        error as its cause), or :class:`TransferCancelled` when files were cancelled."""
        if self.failed:
            first = self.failed[0]
            more = f" and {len(self.failed) - 1} more" if len(self.failed) > 1 else ""
            raise TransferError(
                f"{len(self.failed)} of {self.total_files} files failed: "
                f"{first.rel}: {first.reason}{more}"
            ) from first.error
        if self.cancelled:
            raise TransferCancelled(f"{len(self.cancelled)} files were cancelled")

    @property
    def total_files(self) -> int:
        return len(self.succeeded) + len(self.skipped) + len(self.failed) + len(self.cancelled)

    def add(self, outcome: FileOutcome) -> None:
        {
            "done": self.succeeded,
            "skipped": self.skipped,
            "failed": self.failed,
            "cancelled": self.cancelled,
        }[outcome.status].append(outcome)
        if outcome.status == "done":
            self.bytes_done += outcome.size


class TransferFuture:
    """A queued transfer: wait for it, watch its progress, cancel it."""

    def __init__(self, job: Job, subscribers: Iterable[TransferSubscriber] = ()) -> None:
        self.job = job
        self.state = "queued"
        self.bytes_done = 0
        self.outcome: FileOutcome | None = None
        self._subscribers = list(subscribers)
        self._done = threading.Event()
        self._cancel = threading.Event()

    def __repr__(self) -> str:
        return f"<TransferFuture {self.job.rel!r} {self.state}>"

    def add_subscriber(self, subscriber: TransferSubscriber) -> None:
        self._subscribers.append(subscriber)

    def cancel(self) -> bool:
        """Ask the transfer to stop; False when it has already finished."""
        if self._done.is_set():
            return False
        self._cancel.set()
        return True

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> FileOutcome:
        """Wait for the outcome (it never raises for the file's own failure: see ``status``)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.job.rel} is still running")
        assert self.outcome is not None
        return self.outcome

    def _notify(self, method: str, *args: Any) -> None:
        for sub in self._subscribers:
            try:
                getattr(sub, method)(self, *args)
            except Exception:  # a broken display must not fail the transfer
                logger.exception("transfer subscriber %s failed", method)

    def _finish(self, outcome: FileOutcome) -> None:
        self.outcome = outcome
        self.state = outcome.status
        self._done.set()
        self._notify("on_done")


class TransferManager:
    """Run many transfers at once for ``mega``: a :class:`~megafast.transfer.TransferHost`
    (the account core), or a front end holding one as ``.core`` (a logged-in
    :class:`~megafast.Mega`). The host hands in the tree jobs (:class:`TreeJobs`).

    ``workers``: files in flight at once, and the size of the shared connection pool; a big
    file (over ``config.piece_size``) takes ``config.connections`` of that budget while it
    runs. ``folder``: the handle of a public folder whose nodes are downloaded (requests go
    with ``&n=``). ``subscribers`` watch every transfer.
    """

    def __init__(
        self,
        mega: TransferHost | HasTransferHost,
        *,
        workers: int = 16,
        config: TransferConfig | None = None,
        folder: str | None = None,
        subscribers: Iterable[TransferSubscriber] = (),
    ) -> None:
        if not isinstance(workers, int) or not 1 <= workers <= 256:
            raise ValueError("workers must be an int from 1 to 256")
        self.mega = mega  # as given (a front end or the host)
        self.host: TransferHost = mega.core if hasattr(mega, "core") else mega
        self.workers = workers
        base = config if config is not None else self.host.transfer_config or TransferConfig()
        # a 509 pauses the whole queue here, so the engine must hand it over, not wait itself
        self.config: TransferConfig = dataclasses.replace(base, wait_on_quota=False)
        self.folder = folder
        self.subscribers = list(subscribers)
        self.api = self.host.api()
        self.http: requests.Session = clone_session(self.host.http, workers)
        self.batcher = CommandBatcher(self.api, folder=folder)
        self._cancel = threading.Event()
        self._budget = threading.Condition()
        self._free = workers
        self._paused_until = 0.0
        self._running = 0
        self._shut = False
        self._background: (
            tuple[queue.Queue[TransferFuture | None], threading.Thread, TransferResult] | None
        ) = None
        self._lock = threading.Lock()
        self._active: set[TransferFuture] = set()  # futures a worker is running

    # -- public ----------------------------------------------------------------------------
    def run(
        self, jobs: Iterable[Job | TransferFuture], result: TransferResult | None = None
    ) -> TransferResult:
        """Transfer every job (consumed lazily) and return the outcomes; per-file failures
        are collected while the rest go on. Ctrl-C cancels everything and re-raises."""
        self._check_open()
        result = result if result is not None else TransferResult()
        started = time.monotonic()
        requests_before = self.api.stats["requests"]
        todo: queue.Queue[TransferFuture | None] = queue.Queue(maxsize=self.workers * 4)
        retry: deque[TransferFuture] = deque()
        fed = threading.Event()
        threads = [
            threading.Thread(
                target=self._worker, args=(todo, retry, result, fed), name=f"megafast-manager-{i}"
            )
            for i in range(self.workers)
        ]
        for t in threads:
            t.daemon = True
            t.start()
        try:
            for item in jobs:
                if isinstance(item, TransferFuture):
                    future, job = item, item.job
                else:
                    future, job = TransferFuture(item, self.subscribers), item
                if self._cancel.is_set():
                    self._record(result, future, _cancelled(job))
                    continue
                try:
                    job.prepare(self)
                except MegaError as exc:
                    failed = _cancelled(job) if self._cancel.is_set() else _failure(job, exc)
                    self._record(result, future, failed)
                    continue
                future._notify("on_queued")
                if not self._put(todo, future):
                    self._record(result, future, _cancelled(job))
            self._put(todo, None, force=True)
            for t in threads:
                while t.is_alive():
                    t.join(_POLL)
        except BaseException:
            self.shutdown(cancel=True)
            deadline = time.monotonic() + 5
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            raise
        result.api_requests += self.api.stats["requests"] - requests_before
        result.seconds += time.monotonic() - started
        return result

    def submit(self, job: Job) -> TransferFuture:
        """Queue one job now and return its future; the jobs submitted run in the background
        until :meth:`join` (which returns their outcomes)."""
        self._check_open()
        future = TransferFuture(job, self.subscribers)
        with self._lock:
            if self._background is None:
                inbox: queue.Queue[TransferFuture | None] = queue.Queue()
                done = TransferResult()
                runner = threading.Thread(
                    target=self.run,
                    args=(iter(inbox.get, None), done),
                    daemon=True,
                    name="megafast-manager-feed",
                )
                self._background = (inbox, runner, done)
                runner.start()
            self._background[0].put(future)
        return future

    def upload(self, path: str | os.PathLike[str], dest: Any = None) -> TransferFuture:
        """Queue the upload of one local file into ``dest`` (default: the Cloud Drive)."""
        return self.submit(self.host.tree_jobs.upload_job(self, Path(path), dest))

    def download(
        self, file: Any, dest_path: str | os.PathLike[str] | None = None
    ) -> TransferFuture:
        """Queue the download of one file node (a handle or node of the account's tree) into
        the folder ``dest_path`` (default: the current directory)."""
        dest = Path(dest_path) if dest_path not in (None, "") else None
        return self.submit(self.host.tree_jobs.download_job(self, file, dest))

    def join(self) -> TransferResult:
        """Wait for everything :meth:`submit` queued and return the outcomes (the next
        :meth:`submit` starts a new round)."""
        with self._lock:
            background, self._background = self._background, None
        if background is None:
            return TransferResult()
        inbox, runner, done = background
        inbox.put(None)
        while runner.is_alive():
            runner.join(_POLL)
        return done

    def _check_open(self) -> None:
        if self._shut:
            raise MegaError("this TransferManager is shut down: make a new one")

    def shutdown(self, cancel: bool = False) -> None:
        """Release the connections; ``cancel=True`` first stops every transfer (within about a
        second; part files and sidecars stay for a resume)."""
        if not cancel and not self._shut:
            self.join()  # what submit() queued finishes first
        self._shut = True
        with self._lock:
            if self._background is not None:
                self._background[0].put(None)  # the background feeder ends (cancelled below)
        if cancel:
            self._cancel.set()
            with self._lock:  # the engine sees each running file's own event
                for future in self._active:
                    future._cancel.set()
            with self._budget:
                self._budget.notify_all()
            self.batcher.close(cancel=TransferCancelled("the transfer was cancelled"))
        else:
            self.batcher.close()
        self.http.close()

    def __enter__(self) -> TransferManager:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.shutdown(cancel=exc_type is not None)

    def upload_tree(self, directory: str | os.PathLike[str], dest: Any = None) -> TransferResult:
        """Upload the local folder ``directory`` into ``dest`` (default: the Cloud Drive), like
        ``cp -r``; see :mod:`megafast._account.treejobs` for names, skips and resumes."""
        self._check_open()
        return self.host.tree_jobs.upload_tree(self, Path(directory), dest)

    def download_tree(
        self,
        folder: Any,
        dest_path: str | os.PathLike[str] | None = None,
        *,
        tree: Any = None,
    ) -> TransferResult:
        """Download the remote folder ``folder`` (a handle or node of ``tree``, default the
        account's tree) into ``dest_path`` (default: the current directory) as a folder of the
        same name."""
        self._check_open()
        dest = Path(dest_path) if dest_path not in (None, "") else None
        return self.host.tree_jobs.download_tree(self, folder, dest, tree)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (an over-quota answer applies to all files)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        logger.warning("over quota: pausing every transfer for %.0f s", seconds)

    def call(self, command: dict[str, Any], future: TransferFuture | None = None) -> Any:
        """Send ``command`` in the next batch and wait for its result (or its error), giving
        up with :class:`TransferCancelled` when the transfer is cancelled."""
        return self.wait(self.batcher.submit(command), future)

    def batch(self, commands: list[dict[str, Any]]) -> list[Any]:
        """Send ``commands`` through the batcher (together when they can be) and wait for
        their results in order; the first error raises."""
        return [self.wait(pending) for pending in [self.batcher.submit(c) for c in commands]]

    def wait(self, pending: Future[Any], future: TransferFuture | None = None) -> Any:
        """The result of a batched command, waited for in steps so that a cancel is seen."""
        while True:
            self.check(future)
            try:
                return pending.result(_POLL)
            except FutureTimeout:
                continue

    def check(self, future: TransferFuture | None = None) -> None:
        """Raise :class:`TransferCancelled` if the manager (or ``future``) was cancelled."""
        if self._cancel.is_set() or (future is not None and future.cancel_requested):
            raise TransferCancelled("the transfer was cancelled")

    # -- workers ---------------------------------------------------------------------------
    def _put(self, todo: queue.Queue[Any], item: Any, force: bool = False) -> bool:
        """Queue ``item`` when a worker has room; False when cancelled first (the end marker
        is ``force``d in, and is dropped only when the workers have stopped taking)."""
        while True:
            if self._cancel.is_set() and not force:
                return False
            try:
                todo.put(item, timeout=_POLL)
                return True
            except queue.Full:
                if force and self._cancel.is_set():
                    return False
                continue

    def _wait_pause(self) -> None:
        while True:
            with self._lock:
                left = self._paused_until - time.monotonic()
            if left <= 0:
                return
            if self._cancel.wait(min(left, _POLL)):
                return

    def _cost(self, job: Job) -> int:
        return (
            min(self.config.connections, self.workers) if job.size > self.config.piece_size else 1
        )

    def _worker(
        self,
        todo: queue.Queue[TransferFuture | None],
        retry: deque[TransferFuture],
        result: TransferResult,
        fed: threading.Event,
    ) -> None:
        while True:
            try:
                future = retry.popleft()
            except IndexError:
                try:
                    item = todo.get(timeout=_POLL)
                except queue.Empty:
                    with self._lock:
                        ended = fed.is_set() or self._cancel.is_set()
                        if ended and not retry and self._running == 0:
                            return
                    continue
                if item is None:  # the end marker: every job has been queued
                    fed.set()
                    continue
                future = item
            with self._lock:
                self._running += 1
            try:
                self._handle(future, retry, result)
            finally:
                with self._lock:
                    self._running -= 1

    def _handle(
        self, future: TransferFuture, retry: deque[TransferFuture], result: TransferResult
    ) -> None:
        self._wait_pause()
        if self._cancel.is_set() or future.cancel_requested:
            self._record(result, future, _cancelled(future.job))
            return
        cost = self._cost(future.job)
        with self._budget:
            while self._free < cost and not self._cancel.is_set():
                self._budget.wait(_POLL)
            self._free -= cost
        try:
            outcome = self._attempt(future)
        finally:
            with self._budget:
                self._free += cost
                self._budget.notify_all()
        if outcome is None:  # over quota: the whole queue waits, then this file again
            retry.append(future)
        else:
            self._record(result, future, outcome)

    def _attempt(self, future: TransferFuture) -> FileOutcome | None:
        job = future.job
        future.state = "running"
        with self._lock:
            self._active.add(future)
        if self._cancel.is_set():  # shutdown(cancel=True) may have looked at _active already
            future._cancel.set()
        future._notify("on_started")
        try:
            made = job.run(self, FileProgress(future))
        except SkipTransfer as skip:
            return FileOutcome(job.rel, "skipped", job.size, skip.reason, skip.handle)
        except TransferCancelled as exc:
            return FileOutcome(job.rel, "cancelled", job.size, str(exc), error=exc)
        except OverQuotaError as exc:
            if exc.time_left is None and "509" not in exc.message:
                return _failure(job, exc)  # storage quota (-17 from u/p): waiting does not help
            self.pause(exc.time_left if exc.time_left is not None else DEFAULT_QUOTA_WAIT)
            future.state = "queued"
            return None
        except (MegaError, OSError) as exc:
            if self._cancel.is_set() or future.cancel_requested:  # e.g. the batcher closed
                return FileOutcome(job.rel, "cancelled", job.size, str(exc), error=exc)
            return _failure(job, exc)
        finally:
            with self._lock:
                self._active.discard(future)
        return FileOutcome(job.rel, "done", job.size, result=made)

    def _record(self, result: TransferResult, future: TransferFuture, outcome: FileOutcome) -> None:
        with self._lock:
            result.add(outcome)
        future._finish(outcome)


def _cancelled(job: Job) -> FileOutcome:
    return FileOutcome(job.rel, "cancelled", job.size, "the transfer was cancelled")


def _failure(job: Job, exc: BaseException) -> FileOutcome:
    reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
    return FileOutcome(job.rel, "failed", job.size, reason, error=exc)
