"""A big account through ``megafast serve`` (issue 19): the emulator answering ``f``, a cold
login to a usable tree end to end, and 1,000 ``Mega.find`` calls on random nested paths.

    PYTHONPATH=src python benchmarks/bench_emulator_listing.py                  # 100,000 nodes
    PYTHONPATH=src python benchmarks/bench_emulator_listing.py --nodes 1000000  # the targets

Targets at 1,000,000 nodes: the emulator answers ``f`` in <= 3 s; a cold login to a usable
tree takes <= 8 s end to end; 1,000 finds take <= 10 ms.

The account (folders of 100 files under the Cloud Drive, as ``bench_client.seed_nodes``
writes them straight into the emulator's database) is seeded once into a folder in the
temporary directory and kept for later runs (``--fresh`` seeds again). ``megafast serve
--data-dir`` serves it from another process; each measurement runs in a child process:

- ``f``: a bare HTTP client (``requests``, 1 MiB reads, bytes dropped) posts ``f`` with a
  session made at seeding: the time from the request to the answer's last byte, the first
  time after the server started and the best of the next two;
- ``cold``: ``Mega(api_url=...).login()`` and the tree loaded (``_load_tree``: the listing
  streamed and decrypted into the node store, no cache), then 1,000 ``find`` by path, the
  first time (folder indexes made) and the best of five more, and the client's peak RSS.

The server's peak RSS (``VmHWM``) is read at the end. On a loaded machine wall-clock
figures include waiting for a CPU; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EMAIL, PASSWORD = "listing@example.com", "listing pw"
TARGETS = {"f_s": 3.0, "cold_s": 8.0, "finds_ms": 10.0}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_seed(data_dir: str, nodes: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from bench_client import seed_nodes
    from megafast.testing import MegaEmulator

    with MegaEmulator(data_dir=data_dir) as emu:
        emu.create_account(EMAIL, PASSWORD)
        paths = seed_nodes(emu, EMAIL, nodes)
        sid = emu.create_session(EMAIL)
    return {"paths": random.Random(1).sample(paths, min(1000, len(paths))), "sid": sid}


def child_f(api_url: str, sid: str) -> dict[str, Any]:
    import requests

    times, size = [], 0
    for i in range(3):
        start = time.perf_counter()
        with requests.post(
            f"{api_url}/cs",
            params={"id": str(i), "sid": sid},
            data=b'[{"a":"f","c":1,"r":1}]',
            stream=True,
            timeout=600,
        ) as response:
            size = sum(len(piece) for piece in response.iter_content(1 << 20))
        times.append(time.perf_counter() - start)
    return {"f_first_s": times[0], "f_s": min(times[1:]), "answer_mb": size / 1e6}


def child_cold(api_url: str, paths: list[str]) -> dict[str, Any]:
    from megafast import Mega

    start = time.perf_counter()
    client = Mega(api_url=api_url).login(EMAIL, PASSWORD)
    login = time.perf_counter() - start
    tree = client._load_tree()
    out: dict[str, Any] = {"login_s": login, "cold_s": time.perf_counter() - start}
    out["nodes"] = len(tree.store)
    out["client_peak_mb"] = _peak_mb()
    times = []
    for _ in range(6):
        start = time.perf_counter()
        found = sum(client.find(p) is not None for p in paths)
        times.append((time.perf_counter() - start) * 1e3)
    out["finds_first_ms"], out["finds_again_ms"] = times[0], min(times[1:])
    out["found"] = found
    return out


def _child(*args: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def _seeded(nodes: int, fresh: bool) -> tuple[Path, dict[str, Any]]:
    """The data folder of a seeded account (made once, kept in the temporary directory)."""
    folder = Path(tempfile.gettempdir()) / f"megafast-emulator-listing-{nodes}"
    meta_path = folder / "bench.json"
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    if meta_path.exists():
        return folder / "data", json.loads(meta_path.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    meta = _child("seed", str(folder / "data"), str(nodes))
    meta_path.write_text(json.dumps(meta))
    print(f"seeded {nodes:,} nodes in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return folder / "data", meta


def _server_peak_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), None)
    return int(line.split()[1]) / 1024 if line else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--fresh", action="store_true", help="seed the account again")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "seed":
            result = child_seed(rest[0], int(rest[1]))
        elif kind == "f":
            result = child_f(rest[0], rest[1])
        else:
            result = child_cold(rest[0], json.loads(Path(rest[1]).read_text()))
        print(json.dumps(result))
        return
    data_dir, meta = _seeded(args.nodes, args.fresh)
    paths_file = data_dir.parent / "paths.json"
    paths_file.write_text(json.dumps(meta["paths"]))
    server = subprocess.Popen(
        [sys.executable, "-m", "megafast", "serve", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(HERE.parent / "src")),
    )
    try:
        assert server.stdout is not None
        api_url = server.stdout.readline().strip()
        f = _child("f", api_url, meta["sid"])
        cold = _child("cold", api_url, str(paths_file))
        server_mb = _server_peak_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    rows = [
        ("the emulator answering f (s)", f["f_s"], TARGETS["f_s"]),
        ("  the same, first request after the start (s)", f["f_first_s"], None),
        ("cold login to a usable tree, end to end (s)", cold["cold_s"], TARGETS["cold_s"]),
        ("  of which the login (s)", cold["login_s"], None),
        ("1,000 find by path, first time (ms)", cold["finds_first_ms"], None),
        ("1,000 find by path, again: best of 5 (ms)", cold["finds_again_ms"], TARGETS["finds_ms"]),
        ("client peak RSS (MB)", cold["client_peak_mb"], None),
        ("server peak RSS (MB)", server_mb, None),
    ]
    print(
        f"\n{cold['nodes']:,} nodes, answer {f['answer_mb']:.0f} MB, found "
        f"{cold['found']}/{len(meta['paths'])}; load {os.getloadavg()[0]:.1f}"
    )
    print(f"| work, {args.nodes:,} nodes | figure | target |\n|---|---|---|")
    for work, figure, target in rows:
        shown = "-" if figure is None else f"{figure:.2f}"
        print(f"| {work} | {shown} | {'' if target is None else f'<= {target:g}'} |")


if __name__ == "__main__":
    main()
