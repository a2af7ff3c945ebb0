"""Trees of small files at real round-trip times: the TransferManager against today's
``Mega.upload_folder`` / ``Mega.download(folder)``, side by side on the same emulator.

    PYTHONPATH=src python benchmarks/bench_tree.py                       # the issue's table
    PYTHONPATH=src python benchmarks/bench_tree.py --files 200 --latency 0.05 --no-legacy
    PYTHONPATH=src python benchmarks/bench_tree.py --rss 100000          # peak RSS, queued tree

The emulator runs in another process (``megafast serve --latency L``) with its data in
``/dev/shm`` when that exists. The tree is ``--files`` files of ``--size`` bytes spread over
``--folders`` folders. API requests are counted by the client (``ApiClient.stats``: one per
HTTP request to ``/cs``, retries not included). ``--big MiB`` adds one large file downloaded
by ``download_file`` and by the manager (both at 0 ms). ``--rss N`` makes a local tree of N
empty files and reports the peak RSS of this process while the manager walks and queues it
(the upload is cancelled after ``--rss-seconds``).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from megafast import Mega
from megafast._account.sources import fetch, node_source
from megafast.transfer import TransferManager, download_file

EMAIL, PASSWORD = "bench@example.com", "bench password"


@contextmanager
def serve(latency: float, data_root: Path) -> Iterator[str]:
    """A ``megafast serve`` process with the bench account; yields its API URL."""
    data = Path(tempfile.mkdtemp(prefix="emu-", dir=data_root))
    cmd = [
        sys.executable,
        "-m",
        "megafast",
        "serve",
        "--data-dir",
        str(data),
        "--latency",
        str(latency),
        "--user",
        f"{EMAIL}:{PASSWORD}",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit(f"megafast serve did not start: {url!r}")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def make_tree(root: Path, files: int, folders: int, size: int) -> Path:
    top = root / "tree"
    for i in range(files):
        folder = top / f"folder{i % folders:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{i:05d}.bin").write_bytes(secrets.token_bytes(size))
    return top


def login(url: str) -> Mega:
    return Mega(api_url=url).login(EMAIL, PASSWORD)


def timed(fn, mega: Mega) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    before = mega._api.stats["requests"]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started, mega._api.stats["requests"] - before


def run_tree(url: str, top: Path, work: Path, files: int, legacy: bool, workers: int) -> list:
    rows = []
    mega = login(url)
    dest = mega.create_folder("manager")["manager"]
    with TransferManager(mega, workers=workers) as mgr:
        holder: dict = {}
        sec, req = timed(lambda: holder.update(r=mgr.upload_tree(top, dest)), mega)
        res = holder["r"]
        assert res.ok and len(res.succeeded) == files, res.failed[:3]
        rows.append(("upload", "manager", sec, req))
        out = work / "down-manager"
        out.mkdir()
        sec, req = timed(lambda: holder.update(r=mgr.download_tree(res.folders["."], out)), mega)
        assert holder["r"].ok and len(holder["r"].succeeded) == files
        rows.append(("download", "manager", sec, req))
    if legacy:
        dest2 = mega.create_folder("legacy")["legacy"]
        sec, req = timed(lambda: holder.update(h=mega.upload_folder(top, dest2)), mega)
        rows.append(("upload", "Mega.upload_folder", sec, req))
        out = work / "down-legacy"
        out.mkdir()
        node = mega._load_tree().nodes[holder["h"]["."]]
        sec, req = timed(lambda: mega.download((node["h"], node), out), mega)
        rows.append(("download", "Mega.download(folder)", sec, req))
    return rows


def run_big(url: str, work: Path, mib: int) -> list:
    mega = login(url)
    src = work / "big.bin"
    with open(src, "wb") as f:
        for _ in range(mib):
            f.write(secrets.token_bytes(1 << 20))
    handle = mega.get_id_from_obj(mega.upload(src))
    node = mega._load_tree().nodes[handle]
    src.unlink()
    rows = []
    target = work / "big-engine.bin"
    get = fetch(mega.core, node_source(node))
    started = time.perf_counter()
    download_file(mega.http, lambda refresh: get["g"], node["s"], node["key"], target)
    rows.append(("download 1 file", "download_file", time.perf_counter() - started, 1))
    target.unlink()
    folder = mega.create_folder("bigdir")["bigdir"]
    mega.move(handle, folder)
    out = work / "big-manager"
    out.mkdir()
    with TransferManager(mega) as mgr:
        sec, req = timed(lambda: mgr.download_tree(folder, out), mega)
    rows.append(("download 1 file", "manager", sec, req))
    return [(w, who, s, r, mib * (1 << 20) / s / 1e9) for w, who, s, r in rows]


def run_rss(url: str, work: Path, count: int, seconds: float) -> None:
    top = work / "many"
    for i in range(count):
        folder = top / f"f{i // 1000:04d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"{i:07d}").touch()
    mega = login(url)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mgr = TransferManager(mega, workers=16)
    timer = threading.Timer(seconds, mgr.shutdown, kwargs={"cancel": True})
    timer.start()
    res = mgr.upload_tree(top)
    timer.cancel()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"\n{count} files queued: peak RSS {peak / 1024:.0f} MB (before the walk "
        f"{base / 1024:.0f} MB); {len(res.succeeded)} uploaded, {len(res.cancelled)} "
        f"cancelled in {seconds:g} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=500, help="0: no tree (with --big)")
    p.add_argument("--folders", type=int, default=10)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--latency", type=float, action="append", help="default: 0.05 and 0")
    p.add_argument("--no-legacy", action="store_true", help="skip today's client (slow)")
    p.add_argument("--big", type=int, default=0, metavar="MiB")
    p.add_argument("--rss", type=int, default=0, metavar="FILES")
    p.add_argument("--rss-seconds", type=float, default=20.0)
    args = p.parse_args()
    shm = Path("/dev/shm")
    data_root = shm if shm.is_dir() else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="bench-tree-", dir=data_root))
    os.environ.setdefault("MEGAFAST_STATE_DIR", str(work / "state"))
    try:
        print(f"load: {os.getloadavg()}; data in {data_root}")
        if args.rss:
            with serve(0.0, data_root) as url:
                run_rss(url, work, args.rss, args.rss_seconds)
            return
        if args.files:
            top = make_tree(work, args.files, args.folders, args.size)
            print(
                f"\n{args.files} files x {args.size} B in {args.folders} folders, "
                f"{args.workers} workers"
            )
            print(
                f"{'latency':>8} {'work':<9} {'client':<22} {'seconds':>8} {'API req':>8} "
                f"{'req/file':>8}"
            )
            for latency in args.latency or [0.05, 0.0]:
                with serve(latency, data_root) as url:
                    run_dir = Path(tempfile.mkdtemp(dir=work))
                    rows = run_tree(url, top, run_dir, args.files, not args.no_legacy, args.workers)
                    for what, who, sec, req in rows:
                        print(
                            f"{latency * 1000:>6.0f}ms {what:<9} {who:<22} {sec:>8.2f} {req:>8} "
                            f"{req / args.files:>8.2f}"
                        )
        if args.big:
            with serve(0.0, data_root) as url:
                for what, who, sec, req, gbs in run_big(url, work, args.big):
                    print(f"{'0ms':>8} {what:<9} {who:<22} {sec:>8.2f} {req:>8} {gbs:>6.2f} GB/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
