"""``--watch``: a two-way sync that keeps running.

Local changes arrive through watchdog (inotify on Linux, FSEvents on macOS,
ReadDirectoryChangesW on Windows); remote changes through MEGA's change channel (``/sc``),
long-polled in a thread of its own that only signals (the client's node tree is brought up
to date in the sync's own thread, with the client's watcher's ``catch_up``, so the tree is
never changed while a pass reads it). After the last change, ``debounce`` seconds of quiet,
then one two-way pass. A pass that fails (the network is gone, the machine was suspended)
is logged and tried again with a growing pause; the channel reconnects by itself; a full
pass also runs every ``rescan`` seconds, so nothing a missed event hid stays unsynced. A
restart carries on from the pair's state file.

Events go to the ``megafast.sync`` logger and to ``emit`` (the CLI prints them as text, or
with ``--json`` one JSON object per line): ``start``, ``change`` (what woke the loop),
``sync`` (a pass's report), ``error``, ``stop``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import MegaError
from ._both import TwoWaySync
from ._local import TRASH_DIR
from ._remote import refresh_if_changed
from ._report import SyncReport
from ._state import StateFileError

__all__ = ["WatchLoop", "watch_pair"]

log = logging.getLogger("megafast.sync")
_IGNORED_SUFFIXES = (".megafast-part", ".megafast-part.json")


class WatchLoop:
    """One pair kept in sync until :meth:`stop`; see the module docstring."""

    def __init__(
        self,
        job: TwoWaySync,
        *,
        debounce: float = 0.5,
        rescan: float = 300.0,
        emit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.job = job
        self.debounce = debounce
        self.rescan = rescan
        self.emit = emit or (lambda event: None)
        self.stopped = threading.Event()
        self._wake = threading.Event()
        self._remote_pending = threading.Event()
        self._lock = threading.Lock()
        self._last_change = 0.0
        self._channel: Any = None
        self._announced: set[str] = set()
        self.passes = 0

    # -- signals ------------------------------------------------------------------------
    def _changed(self, where: str, path: str = "") -> None:
        """A change seen: the loop wakes; the first change of each side between two passes
        is logged (a copy of many files is one event, not one per file)."""
        with self._lock:
            self._last_change = time.monotonic()
            first = where not in self._announced
            self._announced.add(where)
        if where == "remote":
            self._remote_pending.set()
        if first:
            self._event({"event": "change", "side": where, **({"path": path} if path else {})})
        self._wake.set()

    def _event(self, event: dict[str, Any]) -> None:
        event = {"time": round(time.time(), 3), **event}
        log.info("sync %s", json.dumps(event, ensure_ascii=False))
        try:
            self.emit(event)
        except Exception:  # a printer that fails must not stop the sync
            log.exception("sync event printer failed")

    def _start_local(self) -> Any:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        root = str(self.job.local)
        loop = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                path = str(getattr(event, "dest_path", "") or event.src_path)
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if TRASH_DIR in path or path.endswith(_IGNORED_SUFFIXES):
                    return
                loop._changed("local", path)

        observer = Observer()
        observer.schedule(Handler(), root, recursive=True)
        observer.daemon = True
        observer.start()
        return observer

    def _remote_thread(self) -> threading.Thread:
        from .._tree.watch import ScChannel
        from ._store import store_sn

        mega = self.job.mega

        def poll() -> None:
            channel: ScChannel | None = None
            while not self.stopped.is_set():
                try:
                    if channel is None:
                        channel = ScChannel(mega.api_url, mega.sid, store_sn(mega) or "")
                        self._channel = channel
                    packets, _ = channel.poll(wait=True)
                    if packets:
                        self._changed("remote")
                except Exception as exc:  # the channel is made again after a pause
                    if self.stopped.is_set():
                        return
                    self._event({"event": "error", "side": "remote", "error": str(exc)})
                    channel = None
                    self.stopped.wait(2.0)

        thread = threading.Thread(target=poll, daemon=True, name="megafast-sync-sc")
        thread.start()
        return thread

    # -- the loop -----------------------------------------------------------------------
    def _catch_up(self) -> None:
        """Apply the remote changes to the client's tree (in this thread)."""
        mega = self.job.mega
        refresh_if_changed(mega)
        if self._remote_pending.is_set():
            self._remote_pending.clear()
            watcher = mega.watch()
            try:
                watcher.catch_up()
            finally:
                watcher.stop()
                watcher.channel.http.close()

    def run_pass(self) -> SyncReport | None:
        with self._lock:
            self._announced.clear()
        self._catch_up()
        report = self.job.run()
        self.passes += 1
        self._event({"event": "sync", **report.to_dict()})
        return report

    def run(self) -> int:
        """Sync now, then at every change until :meth:`stop`; returns 0."""
        self._event({"event": "start", "local": str(self.job.local), "remote": self.job.remote})
        observer = None
        pause = 1.0
        try:
            self._remote_thread()
            due = True
            next_rescan = time.monotonic() + self.rescan
            while not self.stopped.is_set():
                if observer is None and self.job.local.is_dir():
                    observer = self._start_local()
                if due:
                    try:
                        self.run_pass()
                        pause = 1.0
                    except StateFileError:
                        raise
                    except (MegaError, OSError) as exc:
                        self._event({"event": "error", "error": str(exc)})
                        self.stopped.wait(pause)
                        pause = min(pause * 2, 60.0)
                        continue
                    next_rescan = time.monotonic() + self.rescan
                due = False
                self._wake.wait(max(0.05, min(1.0, next_rescan - time.monotonic())))
                if self._wake.is_set():
                    self._wake.clear()
                    self._settle()
                    due = True
                elif time.monotonic() >= next_rescan:
                    due = True
        finally:
            if observer is not None:
                observer.stop()
            if self._channel is not None:
                self._channel.close()
            self._event({"event": "stop", "passes": self.passes})
        return 0

    def _settle(self) -> None:
        """Wait until ``debounce`` seconds passed without a change."""
        while not self.stopped.is_set():
            with self._lock:
                quiet = time.monotonic() - self._last_change
            if quiet >= self.debounce:
                return
            self.stopped.wait(self.debounce - quiet)
        self._wake.clear()

    def stop(self) -> None:
        self.stopped.set()
        self._wake.set()
        if self._channel is not None:
            self._channel.close()


def watch_pair(
    job: TwoWaySync,
    *,
    debounce: float = 0.5,
    json_lines: bool = False,
    rescan: float = 300.0,
) -> int:
    """The CLI's ``sync --both --watch``: run until interrupted, printing events (text, or
    one JSON object per line)."""

    def emit(event: dict[str, Any]) -> None:
        if json_lines:
            print(json.dumps(event, ensure_ascii=False), flush=True)
            return
        kind = event["event"]
        if kind == "sync":
            done = [f"{a.get('side', '')} {a['action']} {a['path']}" for a in event["actions"]]
            for line in done:
                print(line.strip(), flush=True)
            for path, why in ((s["path"], s["reason"]) for s in event["skipped"]):
                print(f"skipped {path}: {why}", flush=True)
            for f in event["failed"]:
                print(f"FAILED {f['path']}: {f['error']}", flush=True)
        elif kind in ("error", "start", "stop"):
            text = event.get("error") or event.get("local") or ""
            print(f"{kind} {text}".strip(), flush=True)

    loop = WatchLoop(job, debounce=debounce, rescan=rescan, emit=emit)
    try:
        return loop.run()
    except KeyboardInterrupt:
        loop.stop()
        return 0
