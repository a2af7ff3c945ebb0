"""What the emulator has seen: counters and a bounded request log."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any


class Stats:
    """What the emulator has seen: counters and a bounded log of requests (for assertions)."""

    def __init__(self, log_size: int = 10000) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.commands: Counter[str] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.active_transfers = 0
        self.max_active_transfers = 0

    def api(self, rid: str | None, names: list[str], outcome: str) -> None:
        with self._lock:
            self.counters["api_requests"] += 1
            self.counters[f"api_{outcome}"] += 1
            if outcome == "answered":
                self.commands.update(names)
            self.log.append({"kind": "api", "id": rid, "commands": names, "outcome": outcome})

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def transfer_begin(self) -> None:
        with self._lock:
            self.active_transfers += 1
            self.max_active_transfers = max(self.max_active_transfers, self.active_transfers)

    def transfer_end(self, kind: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self.active_transfers -= 1
            self.counters[f"{kind}_requests"] += 1
            self.counters[f"{kind}_bytes"] += entry.get("bytes", 0)
            self.log.append({"kind": kind, **entry})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.counters,
                "commands": dict(self.commands),
                "max_active_transfers": self.max_active_transfers,
                "active_transfers": self.active_transfers,
            }

    def reset(self) -> None:
        with self._lock:
            self.counters.clear()
            self.commands.clear()
            self.log.clear()
            self.max_active_transfers = self.active_transfers
