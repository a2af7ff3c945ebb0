"""Two-way sync, ``--watch`` and backups, with the emulator in another process (issue 23):

- a two-way re-run over N unchanged files (<= 10 s, 0 bytes moved);
- ``--watch``: a local write reaching MEGA (<= 2 s after the file is closed) and a change
  made by another client reaching the disk (<= 2 s), each timed 5 times;
- a backup of B files where 10 changed (<= 15 s, 10 files uploaded, the snapshot complete);
- a restore of a snapshot of R files (byte-identical, with mtimes).

    PYTHONPATH=src python benchmarks/bench_bisync.py --files 2000 --backup-files 2000 \\
        --restore-files 200                                       # a quick check
    PYTHONPATH=src python benchmarks/bench_bisync.py              # 100,000 / 100,000 / 1,000
    PYTHONPATH=src python benchmarks/bench_bisync.py --files 0    # the backup rows only

The two-way pair's remote side is seeded into the emulator (see bench_sync.py); the first
two-way run finds every file on both sides (it reads each fingerprint once) and is setup.
The backup's first run uploads B files (setup, reported); the timed run is the second, and
its snapshot is then listed by a fresh login and compared with the disk (names and sizes).
``--watch`` runs in its own small emulator so its passes are not those of a big tree.
Bytes moved are the emulator's own counters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sync import EMAIL, PASSWORD, _make_local, _peak_mb, _serve  # noqa: E402

Row = tuple[str, str, str, str]


class _Server:
    """An emulator process seeded with ``manifest`` (see bench_sync._serve)."""

    def __init__(self, manifest: list[Any]) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
        self.proc.start()
        self.conn.send((manifest, 0))
        self.api_url: str = self.conn.recv()

    def moved(self) -> int:
        self.conn.send("stats")
        stats = self.conn.recv()
        return int(stats.get("upload_bytes", 0)) + int(stats.get("download_bytes", 0))

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(30)


def _login(api_url: str) -> Any:
    from megafast import Mega

    return Mega(api_url=api_url).login(EMAIL, PASSWORD)


def two_way(work: Path, files: int) -> list[Row]:
    from megafast.sync import TwoWaySync

    local = work / "pair"
    local.mkdir()
    manifest = _make_local(local, files)
    server = _Server(manifest)
    try:
        mega = _login(server.api_url)
        job = TwoWaySync(mega, local, "/bench", state_dir=work / "state-pair")
        t = time.perf_counter()
        first = job.run()
        setup = time.perf_counter() - t
        assert first.ok and not first.actions, first.to_dict()
        before = server.moved()
        t = time.perf_counter()
        again = job.run()
        seconds = time.perf_counter() - t
        assert again.ok and not again.actions, again.to_dict()
        moved = server.moved() - before
    finally:
        server.stop()
    return [
        (
            f"two-way first run, {files + 1:,} files on both sides (setup)",
            f"{setup:.2f} s",
            "-",
            "-",
        ),
        (
            f"two-way re-run, {files + 1:,} files unchanged on both sides",
            f"{seconds:.2f} s",
            f"{moved:,} B moved; peak {_peak_mb():.0f} MB",
            "<= 10 s, 0 B",
        ),
    ]


def watch(work: Path, repeat: int = 5) -> list[Row]:
    from megafast.sync import TwoWaySync, WatchLoop

    server = _Server([])
    local = work / "watched"
    local.mkdir()
    events: list[tuple[float, dict[str, Any]]] = []
    try:
        mega, other = _login(server.api_url), _login(server.api_url)
        loop = WatchLoop(
            TwoWaySync(mega, local, "/watched", state_dir=work / "state-watch"),
            debounce=0.2,
            emit=lambda e: events.append((time.perf_counter(), e)),
        )
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        while loop.passes < 1:
            time.sleep(0.01)
        folder = None
        while folder is None:
            other.refresh()
            folder = other.find_path_descriptor("watched")
        ups, downs = [], []
        for i in range(repeat):
            name = f"local-{i}.txt"
            with open(local / name, "wb") as f:
                f.write(secrets.token_bytes(1000))
            closed = time.perf_counter()
            ups.append(_until_event(events, name, closed) - closed)
            source = work / "upload" / f"remote-{i}.txt"
            source.parent.mkdir(exist_ok=True)
            source.write_bytes(secrets.token_bytes(1000))
            other.upload(str(source), folder)
            sent = time.perf_counter()
            while not (local / source.name).exists():
                time.sleep(0.005)
            downs.append(time.perf_counter() - sent)
        loop.stop()
        thread.join(30)
    finally:
        server.stop()
    return [
        (
            f"--watch: a local write reaches MEGA ({repeat} times)",
            f"median {statistics.median(ups):.2f} s, max {max(ups):.2f} s",
            "after the file is closed, to its node made",
            "<= 2 s",
        ),
        (
            f"--watch: a remote change reaches the disk ({repeat} times)",
            f"median {statistics.median(downs):.2f} s, max {max(downs):.2f} s",
            "from the other client's upload to the local file",
            "<= 2 s",
        ),
    ]


def _until_event(events: list[tuple[float, dict[str, Any]]], name: str, since: float) -> float:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        for at, event in list(events):
            if (
                at >= since
                and event["event"] == "sync"
                and any(a["path"] == name for a in event["actions"])
            ):
                return at
        time.sleep(0.005)
    raise TimeoutError(f"{name} never reached MEGA")


def _small_tree(root: Path, count: int) -> None:
    for i in range(count):
        path = root / f"d{i // 100:04d}" / f"f{i:06d}.bin"
        if i % 100 == 0:
            path.parent.mkdir(parents=True)
        path.write_bytes(secrets.token_bytes(64 + i % 300))
        os.utime(path, (1_700_000_000 + i,) * 2)


def _local_files(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*.bin")}


def _snapshot_files(api_url: str, remote: str, name: str) -> dict[str, int]:
    """The files of snapshot ``name`` (path -> size) as a fresh login lists them."""
    from megafast.sync._ignore import IgnoreRules
    from megafast.sync._remote import RemoteIndex

    mega = _login(api_url)
    handle = mega.find_path_descriptor(f"{remote.strip('/')}/{name}")
    assert handle is not None, f"no snapshot {name} in {remote}"
    scan = RemoteIndex.of(mega).scan(str(handle), IgnoreRules())
    return {rel: int(node["s"]) for rel, node in scan.files.items()}


def backups(work: Path, count: int, restore_count: int) -> list[Row]:
    from megafast.sync import backup, list_snapshots, restore

    server = _Server([])
    rows: list[Row] = []
    try:
        mega = _login(server.api_url)
        src = work / "backed-up"
        _small_tree(src, count)
        day = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
        t = time.perf_counter()
        first = backup(mega, src, "/bk", state_dir=work / "state-bk", now=day)
        rows.append(
            (
                f"first backup of {count:,} files (setup)",
                f"{time.perf_counter() - t:.1f} s",
                f"{len(first.uploaded):,} uploaded",
                "-",
            )
        )
        for i in range(0, count, max(1, count // 10))[:10]:
            path = src / f"d{i // 100:04d}" / f"f{i:06d}.bin"
            path.write_bytes(secrets.token_bytes(100))
        before = server.moved()
        t = time.perf_counter()
        second = backup(mega, src, "/bk", state_dir=work / "state-bk", now=day + dt.timedelta(1))
        seconds = time.perf_counter() - t
        sent = server.moved() - before
        listed = _snapshot_files(server.api_url, "/bk", second.snapshot)
        complete = listed == _local_files(src) and not second.skipped
        rows.append(
            (
                f"backup of {count:,} files, 10 changed",
                f"{seconds:.2f} s",
                f"{len(second.uploaded)} uploaded ({sent:,} B), {second.copied:,} copied; "
                f"snapshot {'complete' if complete else 'INCOMPLETE'} ({len(listed):,} files,"
                f" names and sizes as on disk); peak {_peak_mb():.0f} MB",
                "<= 15 s, 10 uploads, complete",
            )
        )
        small = work / "restore-src"
        _small_tree(small, restore_count)
        backup(mega, small, "/bk-small", state_dir=work / "state-small", now=day)
        (snap,) = list_snapshots(mega, "/bk-small")
        out = work / "restored"
        t = time.perf_counter()
        report = restore(mega, "/bk-small", snap.name, out, state_dir=work / "state-restore")
        seconds = time.perf_counter() - t
        same = all(
            (out / p.relative_to(small)).read_bytes() == p.read_bytes()
            and int((out / p.relative_to(small)).stat().st_mtime) == int(p.stat().st_mtime)
            for p in small.rglob("*.bin")
        )
        rows.append(
            (
                f"restore of a snapshot of {restore_count:,} files",
                f"{seconds:.2f} s",
                f"{report.count('download')} downloaded; "
                + ("byte-identical, mtimes kept" if same else "DIFFERENT"),
                "byte-identical, with mtimes",
            )
        )
    finally:
        server.stop()
    return rows


def run(files: int, backup_files: int, restore_files: int) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="bench-bisync-"))
    os.environ.setdefault("MEGAFAST_STATE_DIR", str(work / "megafast-state"))
    try:
        rows = two_way(work, files) + watch(work) if files else []  # 0: the backup rows only
        if backup_files:  # 0: only the two-way and watch rows
            rows += backups(work, backup_files, restore_files)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--files", type=int, default=100_000, help="two-way pair's files (0: no two-way rows)"
    )
    parser.add_argument("--backup-files", type=int, default=100_000)
    parser.add_argument("--restore-files", type=int, default=1_000)
    args = parser.parse_args(argv)
    rows = run(args.files, args.backup_files, args.restore_files)
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    print("| work | time | result | target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def test_bench_bisync_small() -> None:
    """The benchmark's flow at a small size (collected only when benchmarks are run)."""
    assert len(run(200, 200, 50)) == 7


if __name__ == "__main__":
    sys.exit(main())
