"""The mega:// filesystem against ``Mega.download``, with the emulator in another process
(its data directory in /dev/shm, so the disk is not what is measured).

Targets (issue 13): ``fs.get_file`` >= 90 % of ``Mega.download``'s speed; ``open("rb").read()``
>= 70 %; random 1 MiB reads take <= 2 requests each; ``read_parquet`` of 2 of 20 columns of a
100 MB file transfers <= 15 % of the file. Rounds alternate between the ways of reading so
that a loaded machine slows them alike (each round starts with another one); the median
round of each is reported (with every round).

    PYTHONPATH=src python benchmarks/bench_fsspec.py                  # 1 GiB, prints a table
    PYTHONPATH=src python benchmarks/bench_fsspec.py --size-mib 256 --rounds 3
    PYTHONPATH=src pytest benchmarks/bench_fsspec.py --benchmark-enable -s   # 256 MiB
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

MiB = 1 << 20
EMAIL, PASSWORD = "bench@example.com", "bench password"
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _emulator_main(conn: Any, data_dir: str, source: str) -> None:
    from megafast.testing import MegaEmulator

    emu = MegaEmulator(data_dir=data_dir).start()
    emu.create_account(EMAIL, PASSWORD, version=1)
    emu.add_file(EMAIL, source, "big.bin")
    conn.send(emu.api_url)
    while True:
        cmd = conn.recv()
        if cmd == "stop":
            break
        if cmd == "reset":
            emu.reset_stats()
            conn.send(None)
        elif cmd == "stats":
            conn.send(emu.stats())
    emu.stop()


class Emulator:
    """The emulator in a child process, with the ``big.bin`` file of ``size`` bytes."""

    def __init__(self, size: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="megafast-bench-fs-", dir=SHM)
        source = os.path.join(self.dir, "source.bin")
        block = os.urandom(MiB)
        with open(source, "wb") as f:
            for i in range(size // MiB):
                f.write(block[i % 251 :] + block[: i % 251])
            f.write(block[: size % MiB])
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_emulator_main, args=(child, os.path.join(self.dir, "emu"), source)
        )
        self.proc.start()
        self.api_url: str = self.conn.recv()
        os.unlink(source)

    def reset(self) -> None:
        self.conn.send("reset")
        self.conn.recv()

    def stats(self) -> dict[str, Any]:
        self.conn.send("stats")
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send("stop")
        self.proc.join(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def measure(size_mib: int = 1024, rounds: int = 3, parquet_mb: int = 100) -> dict[str, Any]:
    import fsspec

    from megafast import Mega

    size = size_mib * MiB
    emu = Emulator(size)
    out: dict[str, Any] = {"size_mib": size_mib}
    try:
        mega = Mega(api_url=emu.api_url).login(EMAIL, PASSWORD)
        fs = fsspec.filesystem("mega", session=mega.dump_session(), api_url=emu.api_url)
        node = mega.find("big.bin")
        dest = Path(tempfile.mkdtemp(prefix="megafast-bench-dl-", dir=SHM))
        times: dict[str, list[float]] = {"download": [], "get_file": [], "read": []}

        def download() -> None:
            mega.download(node, dest_path=str(dest), dest_filename="d.bin")
            os.unlink(dest / "d.bin")

        def get_file() -> None:
            fs.get_file("big.bin", str(dest / "g.bin"))
            os.unlink(dest / "g.bin")

        def read() -> None:
            with fs.open("big.bin", "rb") as f:
                assert len(f.read()) == size

        ways = [("download", download), ("get_file", get_file), ("read", read)]
        for round_ in range(rounds):
            # each round starts with another way, so that none always follows the same one
            for name, run in ways[round_ % 3 :] + ways[: round_ % 3]:
                t = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t)
        shutil.rmtree(dest, ignore_errors=True)
        for name, spent in times.items():
            # the median round: on a shared machine single rounds swing by a factor of two
            out[f"{name}_mb_s"] = size / statistics.median(spent) / 1e6
            out[f"{name}_rounds_mb_s"] = [round(size / s / 1e6) for s in spent]
        out["get_file_ratio"] = out["get_file_mb_s"] / out["download_mb_s"]
        out["read_ratio"] = out["read_mb_s"] / out["download_mb_s"]

        rng = random.Random(13)
        per_read = []
        with fs.open("big.bin", "rb") as f:
            for _ in range(50):
                off = rng.randrange(0, size - MiB)
                emu.reset()
                f.seek(off)
                assert len(f.read(MiB)) == MiB
                s = emu.stats()
                per_read.append(s.get("download_requests", 0) + s.get("api_requests", 0))
        out["random_reads"] = len(per_read)
        out["random_max_requests"] = max(per_read)
        out["random_mean_requests"] = sum(per_read) / len(per_read)
        out.update(_parquet(fs, emu, parquet_mb))
    finally:
        emu.close()
    return out


def _parquet(fs: Any, emu: Emulator, megabytes: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    rows = megabytes * 1_000_000 // (20 * 8)
    rng = np.random.default_rng(7)
    df = pd.DataFrame({f"c{i:02d}": rng.random(rows) for i in range(20)})
    options = fs.storage_options
    df.to_parquet("mega://wide.parquet", storage_options=options, compression=None)
    file_size = fs.size("wide.parquet")
    emu.reset()
    t = time.perf_counter()
    got = pd.read_parquet("mega://wide.parquet", columns=["c03", "c17"], storage_options=options)
    spent = time.perf_counter() - t
    assert got.shape == (rows, 2)
    moved = emu.stats().get("download_bytes", 0)
    return {
        "parquet_file_mb": file_size / 1e6,
        "parquet_moved_mb": moved / 1e6,
        "parquet_fraction": moved / file_size,
        "parquet_seconds": spent,
    }


def report(r: dict[str, Any]) -> str:
    lines = [
        f"| work ({r['size_mib']} MiB file) | measured | target |",
        "|---|---|---|",
        f"| `Mega.download` | median {r['download_mb_s']:.0f} MB/s (rounds {r['download_rounds_mb_s']}) | - |",
        f"| `fs.get_file` | median {r['get_file_mb_s']:.0f} MB/s (rounds {r['get_file_rounds_mb_s']}) = "
        f"{r['get_file_ratio']:.0%} of download | >= 90 % |",
        f"| `open('rb').read()` | median {r['read_mb_s']:.0f} MB/s (rounds {r['read_rounds_mb_s']}) = "
        f"{r['read_ratio']:.0%} of download | >= 70 % |",
        f"| random 1 MiB reads ({r['random_reads']}) | max {r['random_max_requests']}, mean "
        f"{r['random_mean_requests']:.2f} requests each | <= 2 |",
        f"| `read_parquet` 2 of 20 columns, {r['parquet_file_mb']:.0f} MB | "
        f"{r['parquet_moved_mb']:.1f} MB moved = {r['parquet_fraction']:.1%} | <= 15 % |",
    ]
    return "\n".join(lines)


def test_fsspec_targets() -> None:
    """The targets on a 256 MiB file (1 GiB with the script)."""
    import pytest

    pytest.importorskip("fsspec")
    r = measure(size_mib=int(os.environ.get("MEGAFAST_BENCH_FS_MIB", "256")), rounds=5)
    print("\n" + report(r) + f"\n(load: {os.getloadavg()[0]:.1f})")
    assert r["random_max_requests"] <= 2
    assert r["parquet_fraction"] <= 0.15
    assert r["get_file_ratio"] >= 0.9
    assert r["read_ratio"] >= 0.7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parquet-mb", type=int, default=100)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    r = measure(args.size_mib, args.rounds, args.parquet_mb)
    print(report(r))
    print(f"(load average before: {load:.1f}, after: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
