"""The command line on a big account (issue 19): ``megafast --no-cache ls -R /`` and
``megafast du /``, the emulator in another process, each command a process of its own whose
time and peak RSS are measured.

    PYTHONPATH=src python benchmarks/bench_cli_bigaccount.py                  # 100,000 nodes
    PYTHONPATH=src python benchmarks/bench_cli_bigaccount.py --nodes 1000000  # the targets
    PYTHONPATH=src python benchmarks/bench_cli_bigaccount.py --profile        # cProfile of ls -R

Targets at 1,000,000 nodes: ``megafast --no-cache ls -R /`` (999,901 lines) <= 10 s and
<= 500 MB peak RSS; ``megafast du /`` <= 5 s and <= 500 MB.

The account (folders of 100 files under the Cloud Drive, written straight into the emulator's
database by ``bench_client.seed_nodes``) is seeded once into a folder in the temporary
directory and kept for later runs (``--fresh`` seeds again). ``megafast serve --data-dir``
serves it; the command line logs in once (its own config and cache folders), then runs:

- ``--no-cache ls -R /``: the whole listing streamed from ``f``, every line printed into a
  pipe this process reads (lines counted);
- ``--no-cache du /``: the listing, then the totals; ``du /`` twice more with the node cache
  (the first run writes it, the second starts from it: a warm ``du``);
- ``find / --name '*99.bin'`` from the cache.

Time is wall clock from the start of the process to its exit; its CPU time (user + system)
and peak RSS are the process's own (``os.wait4``). On a loaded machine wall-clock figures include waiting for a CPU; the load
average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
EMAIL, PASSWORD = "cli-big@example.com", "cli big pw"
TARGETS = {"ls -R": (10.0, 500.0), "du": (5.0, 500.0)}


def child_seed(data_dir: str, nodes: int) -> None:
    sys.path.insert(0, str(HERE))
    from bench_client import seed_nodes
    from megafast.testing import MegaEmulator

    with MegaEmulator(data_dir=data_dir) as emu:
        emu.create_account(EMAIL, PASSWORD)
        seed_nodes(emu, EMAIL, nodes)


def _seeded(nodes: int, fresh: bool) -> Path:
    """The data folder of a seeded account (made once, kept in the temporary directory)."""
    folder = Path(tempfile.gettempdir()) / f"megafast-cli-bigaccount-{nodes}"
    done = folder / "seeded"
    if fresh or not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--seed", str(folder / "data"), str(nodes)],
            check=True,
            env=_env(),
        )
        done.write_text("ok")
        print(f"seeded {nodes:,} nodes in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return folder / "data"


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def run_cli(env: dict[str, str], *args: str, profile: Path | None = None) -> dict[str, Any]:
    """Run ``megafast args`` as a process of its own: seconds, CPU seconds, peak RSS (MB)
    and lines printed."""
    command = [sys.executable, "-m", "megafast", *args]
    if profile is not None:
        command[1:3] = ["-m", "cProfile", "-o", str(profile), "-m", "megafast"]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    lines = 0
    for piece in iter(lambda: process.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
        lines += piece.count(b"\n")
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"megafast {' '.join(args)} failed ({process.returncode}): {err}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"s": seconds, "cpu_s": cpu, "rss_mb": usage.ru_maxrss / 1024, "lines": lines}


def _profile_report(path: Path) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(20)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--fresh", action="store_true", help="seed the account again")
    parser.add_argument("--profile", action="store_true", help="cProfile ls -R and print it")
    parser.add_argument("--seed", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed:
        child_seed(args.seed[0], int(args.seed[1]))
        return
    data_dir = _seeded(args.nodes, args.fresh)
    server = subprocess.Popen(
        [sys.executable, "-m", "megafast", "serve", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    with tempfile.TemporaryDirectory() as home:
        try:
            assert server.stdout is not None
            api_url = server.stdout.readline().strip()
            env = _env(
                MEGAFAST_API_URL=api_url,
                MEGAFAST_CONFIG_DIR=str(Path(home, "config")),
                MEGAFAST_STATE_DIR=str(Path(home, "state")),
                XDG_CACHE_HOME=str(Path(home, "cache")),
                HOME=home,
            )
            subprocess.run(
                [sys.executable, "-m", "megafast", "login", EMAIL, "--password-stdin"],
                input=(PASSWORD + "\n").encode(),
                env=env,
                check=True,
                capture_output=True,
            )
            if args.profile:
                profile = Path(home, "ls.prof")
                run_cli(env, "--no-cache", "ls", "-R", "/", profile=profile)
                _profile_report(profile)
                return
            rows = [
                ("--no-cache ls -R /", run_cli(env, "--no-cache", "ls", "-R", "/"), "ls -R"),
                ("--no-cache du /", run_cli(env, "--no-cache", "du", "/"), "du"),
                ("du / (node cache written)", run_cli(env, "du", "/"), None),
                ("du / (from the node cache)", run_cli(env, "du", "/"), "du"),
                (
                    "find / --name '*99.bin' (cache)",
                    run_cli(env, "find", "/", "--name", "*99.bin"),
                    None,
                ),
            ]
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"\n{args.nodes:,} nodes seeded; load {os.getloadavg()[0]:.1f}")
    print(f"| megafast ..., {args.nodes:,} nodes | s | CPU s | peak RSS MB | lines | target |")
    print("|---|---|---|---|---|---|")
    for work, r, target in rows:
        goal = (
            "" if target is None else f"<= {TARGETS[target][0]:g} s, <= {TARGETS[target][1]:g} MB"
        )
        print(
            f"| `{work}` | {r['s']:.2f} | {r['cpu_s']:.2f} | {r['rss_mb']:.0f} | {r['lines']:,} "
            f"| {goal} |"
        )


if __name__ == "__main__":
    main()
