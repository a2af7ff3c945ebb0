"""megafast.Mega end to end on a big account, the emulator in another process (issue 12):
cold login + ``get_files()`` (streamed listing, then the cache written), 1,000 ``find`` by path,
a warm start from the cache after another session made 1,000 changes, and a change made by
another session seen through ``watch()``.

    PYTHONPATH=src python benchmarks/bench_client_cache.py                 # 100,000 nodes
    PYTHONPATH=src python benchmarks/bench_client_cache.py --nodes 1000000  # slow to seed

The account is seeded straight into the emulator's database (folders of 100 files, as
``bench_client.seed_nodes`` does) in a child process, ``megafast serve --data-dir`` serves it
from another process, and the client runs in a third one that reports its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EMAIL, PASSWORD = "big@example.com", "big account pw"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_seed(data_dir: str, nodes: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from bench_client import seed_nodes
    from megafast.testing import MegaEmulator

    with MegaEmulator(data_dir=data_dir) as emu:
        emu.create_account(EMAIL, PASSWORD)
        paths = seed_nodes(emu, EMAIL, nodes)
    return {"paths": random.Random(1).sample(paths, min(1000, len(paths)))}


def child_client(api_url: str, cache_dir: str, paths: list[str], changes: int) -> dict[str, Any]:
    from megafast import Mega

    out: dict[str, Any] = {}
    start = time.perf_counter()
    cold = Mega(api_url=api_url, cache=cache_dir).login(EMAIL, PASSWORD)
    out["login_s"] = time.perf_counter() - start
    cold._load_tree()
    out["tree_s"] = time.perf_counter() - start - out["login_s"]
    out["rss_tree_mb"] = _peak_mb()
    import requests

    raw_start = time.perf_counter()
    body = requests.post(  # the emulator's own time to answer f, for comparison
        f"{api_url}/cs",
        params={"id": 1, "sid": cold.sid},
        json=[{"a": "f", "c": 1, "r": 1}],
        timeout=600,
    ).content
    assert body
    out["raw_f_s"] = time.perf_counter() - raw_start
    start += out["raw_f_s"]
    files = cold.get_files()
    out["cold_s"] = time.perf_counter() - start
    out["nodes"] = len(files)
    del files
    out["rss_after_cold_mb"] = _peak_mb()
    for round_ in ("first", "again"):
        start = time.perf_counter()
        found = sum(cold.find(p) is not None for p in paths)
        out[f"finds_{round_}_s"] = time.perf_counter() - start
    out["found"] = found

    other = Mega(api_url=api_url).login(EMAIL, PASSWORD)
    targets = [other.find(p) for p in paths[:changes]]
    start = time.perf_counter()
    for i, node in enumerate(targets):
        other.rename(node, f"renamed {i:04d}.bin")
    out["changes_made_s"] = time.perf_counter() - start

    start = time.perf_counter()
    warm = Mega(api_url=api_url, cache=cache_dir).login(EMAIL, PASSWORD)
    warm._load_tree()
    out["warm_s"] = time.perf_counter() - start
    assert warm._live is not None
    out["warm_events"] = len(warm._live.events)
    out["warm_sees_changes"] = (
        warm.find(paths[0].rsplit("/", 1)[0] + "/renamed 0000.bin") is not None
    )

    seen: queue.Queue[float] = queue.Queue()
    watcher = warm.watch(lambda event: seen.put(time.perf_counter()))
    time.sleep(0.5)  # the watcher is waiting on /sc
    start = time.perf_counter()
    other.create_folder("watched")
    out["watch_s"] = seen.get(timeout=30) - start
    watcher.stop()
    out["peak_rss_mb"] = _peak_mb()
    return out


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "seed":
            result = child_seed(rest[0], int(rest[1]))
        else:
            paths = json.loads(Path(rest[2]).read_text())
            result = child_client(rest[0], rest[1], paths, int(rest[3]))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, cache_dir = Path(tmp) / "emu", Path(tmp) / "cache"
        start = time.perf_counter()
        seeded = _child("seed", str(data_dir), str(args.nodes))
        print(
            f"seeded {args.nodes:,} nodes in {time.perf_counter() - start:.0f} s", file=sys.stderr
        )
        paths_file = Path(tmp) / "paths.json"
        paths_file.write_text(json.dumps(seeded["paths"]))
        server = subprocess.Popen(
            [sys.executable, "-m", "megafast.testing", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            api_url = server.stdout.readline().strip()
            r = _child("client", api_url, str(cache_dir), str(paths_file), str(args.changes))
        finally:
            server.terminate()
            server.wait(timeout=30)
    rows = [
        ("cold login + get_files() (listing streamed, cache written)", f"{r['cold_s']:.2f} s"),
        (
            "  of which login / tree (f streamed + cache written) / get_files() dicts",
            f"{r['login_s']:.2f} / {r['tree_s']:.2f} / "
            f"{r['cold_s'] - r['login_s'] - r['tree_s']:.2f} s",
        ),
        ("  (the emulator alone answering f, a bare HTTP request)", f"{r['raw_f_s']:.2f} s"),
        (
            f"{r['found']} find by path: first (folder indexes built) / again",
            f"{r['finds_first_s'] * 1000:.0f} / {r['finds_again_s'] * 1000:.1f} ms",
        ),
        (
            f"warm start: cache + {args.changes} renames by another session",
            f"{r['warm_s']:.2f} s ({r['warm_events']} events)",
        ),
        ("a change by another session seen through watch()", f"{r['watch_s'] * 1000:.0f} ms"),
        (
            "client peak RSS: tree loaded / after get_files() / at the end",
            f"{r['rss_tree_mb']:.0f} / {r['rss_after_cold_mb']:.0f} / {r['peak_rss_mb']:.0f} MB",
        ),
    ]
    print(f"| work, {r['nodes']:,} nodes | megafast |\n|---|---|")
    for work, figure in rows:
        print(f"| {work} | {figure} |")
    print(
        f"(making the {args.changes} changes took {r['changes_made_s']:.1f} s; warm start saw "
        f"them: {r['warm_sees_changes']})"
    )


if __name__ == "__main__":
    main()
