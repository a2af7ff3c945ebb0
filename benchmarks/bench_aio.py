"""The asyncio API (megafast.aio.AsyncMega) against Mega and async-mega-py 2.5.0, one run.

    PYTHONPATH=src python benchmarks/bench_aio.py                  # the full run (1 GiB, 1M nodes)
    PYTHONPATH=src python benchmarks/bench_aio.py --size-mib 64 --amp-size-mib 32 \\
        --nodes 20000 --files 100 --links 200                      # a quick check

Every server is ``megafast serve`` in another process (data in ``--tmp``, tmpfs by default):

- 1 GiB download and upload, AsyncMega against Mega (target: >= 95% of Mega's speed);
- event-loop lag (a task that sleeps 1 ms and records how late it wakes) while AsyncMega
  moves that file and while it logs in to an account of 1,000,000 nodes (target: p99 <= 20 ms);
- 500 files of 4 KiB uploaded with ``asyncio.gather`` on a server that answers after 50 ms
  (target: <= 5 s), and 1,000 concurrent ``get_link`` calls there (target: <= 2 s);
- a 1 GiB download cancelled mid-way (target: stops within 1 s) and the same call again
  (it resumes: the time and the bytes the part file already held are shown);
- async-mega-py 2.5.0 (its API URL pointed at the emulator) against AsyncMega at 256 MiB
  (target: >= 5x both ways). It runs in a venv of its own (``--amp-python``; by default one
  is made in the temporary folder with ``pip install async-mega-py==2.5.0``); ``--skip-amp``
  leaves it out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from megafast import Mega  # noqa: E402
from megafast.aio import AsyncMega  # noqa: E402
from megafast.transfer import MiB, part_paths  # noqa: E402

EMAIL, PASSWORD = "bench@example.com", "bench password"
T = TypeVar("T")


# -- servers -----------------------------------------------------------------------------------
@contextmanager
def served(data_dir: Path, *extra: str) -> Iterator[str]:
    """``megafast serve`` on ``data_dir`` in another process; yields its API URL."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "megafast.testing", "--data-dir", str(data_dir),
         "--user", f"{EMAIL}:{PASSWORD}", *extra],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("megafast serve did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def seed_big_account(data_dir: Path, nodes: int) -> None:
    """An account of ``nodes`` nodes in ``data_dir`` (kept for later runs)."""
    marker = data_dir / f"seeded-{nodes}"
    if marker.exists():
        return
    from bench_client import seed_nodes
    from megafast.testing import MegaEmulator

    with MegaEmulator(data_dir=str(data_dir)) as emu:
        emu.create_account(EMAIL, PASSWORD)
        seed_nodes(emu, EMAIL, nodes)
    marker.write_text("ok")


# -- measuring ---------------------------------------------------------------------------------
class LagProbe:
    """A task that sleeps 1 ms again and again and records how late it wakes (seconds)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.lags.append(time.perf_counter() - start - 0.001)

    def __enter__(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._beat())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def p99_ms(self) -> float:
        if len(self.lags) < 2:
            return float("nan")
        return statistics.quantiles(self.lags, n=100)[98] * 1e3


async def timed(work: Awaitable[T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await work
    return result, time.perf_counter() - start


def rate(size: int, seconds: float) -> float:
    return size / seconds / 1e6


# -- the parts ---------------------------------------------------------------------------------
def sync_transfer(url: str, src: Path, out: Path) -> tuple[float, float]:
    m = Mega(api_url=url)
    m.login(EMAIL, PASSWORD)
    start = time.perf_counter()
    node = m.upload(src, dest_filename="sync.bin")
    up = time.perf_counter() - start
    out.mkdir(exist_ok=True)
    start = time.perf_counter()
    m.download(m.find("sync.bin"), out)
    down = time.perf_counter() - start
    assert node is not None
    return up, down


async def async_transfer(url: str, src: Path, out: Path) -> dict[str, float]:
    async with AsyncMega(url) as m:
        await m.login(EMAIL, PASSWORD)
        with LagProbe() as lag:
            node, up = await timed(m.upload(src, name="async.bin"))
            out.mkdir(exist_ok=True)
            _, down = await timed(m.download(node, out))
        return {"up": up, "down": down, "lag_p99_ms": lag.p99_ms()}


async def big_login(url: str) -> dict[str, float]:
    async with AsyncMega(url) as m:
        with LagProbe() as lag:
            _, seconds = await timed(m.login(EMAIL, PASSWORD))
            _, listing = await timed(m.refresh())
        count = len((await m.tree()).store)
        return {"seconds": seconds + listing, "nodes": count, "lag_p99_ms": lag.p99_ms()}


async def many_small(url: str, files: int, links: int) -> dict[str, float]:
    async with AsyncMega(url) as m:
        await m.login(EMAIL, PASSWORD)
        folder = await m.create_folder("small")
        payloads = [os.urandom(4096) for _ in range(max(files, links))]
        nodes, upload_s = await timed(
            asyncio.gather(
                *(m.upload_bytes(p, f"f{i}.bin", folder) for i, p in enumerate(payloads[:files]))
            )
        )
        if links > files:
            nodes += await asyncio.gather(
                *(m.upload_bytes(p, f"g{i}.bin", folder) for i, p in enumerate(payloads[files:]))
            )
        _, links_s = await timed(asyncio.gather(*(m.get_link(n) for n in nodes[:links])))
        return {"upload_s": upload_s, "links_s": links_s}


async def cancel_and_resume(url: str, out: Path, after: float) -> dict[str, float]:
    async with AsyncMega(url) as m:
        await m.login(EMAIL, PASSWORD)
        node = await m.find("async.bin")
        assert node is not None
        out.mkdir(exist_ok=True)
        task = asyncio.create_task(m.download(node, out))
        await asyncio.sleep(after)
        finished_first = task.done()
        start = time.perf_counter()
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        stop_s = time.perf_counter() - start
        part, _ = part_paths(out / "async.bin")
        held = part.stat().st_size if part.exists() else 0
        half_written = (out / "async.bin").exists()
        _, resume_s = await timed(m.download(node, out))
        return {"stop_s": stop_s, "part_bytes": held, "resume_s": resume_s,
                "target_before_resume": float(half_written),
                "finished_first": float(finished_first)}  # fmt: skip


AMP_CHILD = r"""
import asyncio, json, sys, time, yarl
from mega.api import MegaAPI
from mega.client import MegaNzClient
url, email, password, src, out = sys.argv[1:6]
MegaAPI._entrypoint = yarl.URL(url + "/cs")
async def main():
    async with MegaNzClient() as c:
        await c.login(email, password)
        t = time.perf_counter(); node = await c.upload(src); up = time.perf_counter() - t
        t = time.perf_counter(); await c.download(node, out); down = time.perf_counter() - t
        print(json.dumps({"up": up, "down": down}))
asyncio.run(main())
"""


def amp_python(tmp: Path, given: str | None) -> str:
    if given:
        return given
    venv = tmp / "amp-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "async-mega-py==2.5.0"], check=True
        )
    return str(python)


def run_amp(python: str, url: str, src: Path, out: Path) -> dict[str, float]:
    out.mkdir(exist_ok=True)
    proc = subprocess.run(
        [python, "-c", AMP_CHILD, url, EMAIL, PASSWORD, str(src), str(out)],
        capture_output=True, text=True, check=False, env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def make_file(path: Path, size: int) -> Path:
    if not path.exists() or path.stat().st_size != size:
        with open(path, "wb") as fh:
            left = size
            while left:
                n = min(left, 64 * MiB)
                fh.write(os.urandom(n))
                left -= n
    return path


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the big file (MiB)")
    parser.add_argument("--amp-size-mib", type=int, default=256, help="async-mega-py's file")
    parser.add_argument("--nodes", type=int, default=1_000_000, help="the big account's nodes")
    parser.add_argument("--files", type=int, default=500, help="4 KiB files uploaded at once")
    parser.add_argument("--links", type=int, default=1000, help="concurrent get_link calls")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument(
        "--cancel-after", type=float, help="seconds (default: 40%% of the measured download)"
    )
    parser.add_argument("--amp-python", help="python of a venv with async-mega-py 2.5.0")
    parser.add_argument("--skip-amp", action="store_true")
    default_tmp = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    parser.add_argument("--tmp", default=default_tmp, help="where data and servers live")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="megafast-bench-aio-", dir=args.tmp))
    keep = Path(args.tmp) / "megafast-bench-aio-keep"  # the seeded big account, reused
    keep.mkdir(exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    try:
        size = args.size_mib * MiB
        src = make_file(work / "big.bin", size)
        with served(work / "plain") as url:
            sync_up, sync_down = sync_transfer(url, src, work / "sync-out")
            shutil.rmtree(work / "sync-out")
            res = asyncio.run(async_transfer(url, src, work / "async-out"))
            shutil.rmtree(work / "async-out")
            gib = f"{args.size_mib} MiB"
            rows.append((f"download {gib}: AsyncMega / Mega (MB/s)",
                         f"{rate(size, res['down']):.0f} / {rate(size, sync_down):.0f} "
                         f"= {sync_down / res['down']:.0%}", ">= 95%"))  # fmt: skip
            rows.append((f"upload {gib}: AsyncMega / Mega (MB/s)",
                         f"{rate(size, res['up']):.0f} / {rate(size, sync_up):.0f} "
                         f"= {sync_up / res['up']:.0%}", ">= 95%"))  # fmt: skip
            rows.append((f"loop lag p99 during the {gib} transfers (ms)",
                         f"{res['lag_p99_ms']:.1f}", "<= 20"))  # fmt: skip
            after = args.cancel_after or 0.4 * res["down"]
            cancel = asyncio.run(cancel_and_resume(url, work / "cancel-out", after))
            stopped = (
                "finished before the cancel"
                if cancel["finished_first"]
                else (f"{cancel['stop_s']:.2f}")
            )
            rows.append((f"{gib} download cancelled after {after:.1f} s: stops in (s)",
                         stopped, "<= 1"))  # fmt: skip
            rows.append(("  the same call again: part file kept / took",
                         f"{'yes' if cancel['part_bytes'] else 'NO'} / {cancel['resume_s']:.1f} s "
                         f"(full: {res['down']:.1f} s); no target while cancelled: "
                         f"{'yes' if not cancel['target_before_resume'] else 'NO'}", "resumes"))  # fmt: skip
            shutil.rmtree(work / "cancel-out")
            if not args.skip_amp:
                amp_size = args.amp_size_mib * MiB
                amp_src = make_file(work / "amp.bin", amp_size)
                theirs = run_amp(amp_python(Path(args.tmp), args.amp_python), url, amp_src,
                                 work / "amp-out")  # fmt: skip
                ours = asyncio.run(async_transfer(url, amp_src, work / "ours-out"))
                for way in ("up", "down"):
                    rows.append((f"{args.amp_size_mib} MiB {way}load: AsyncMega / async-mega-py",
                                 f"{rate(amp_size, ours[way]):.0f} / {rate(amp_size, theirs[way]):.0f} "
                                 f"MB/s = {theirs[way] / ours[way]:.1f}x", ">= 5x"))  # fmt: skip
        with served(work / "slow", "--latency", str(args.latency)) as url:
            small = asyncio.run(many_small(url, args.files, args.links))
            ms = int(args.latency * 1000)
            rows.append((f"{args.files} files of 4 KiB, gather of uploads, {ms} ms answers (s)",
                         f"{small['upload_s']:.2f}", "<= 5"))  # fmt: skip
            rows.append((f"{args.links} concurrent get_link, {ms} ms answers (s)",
                         f"{small['links_s']:.2f}", "<= 2"))  # fmt: skip
        big_dir = keep / f"account-{args.nodes}"
        big_dir.mkdir(exist_ok=True)
        seed_big_account(big_dir, args.nodes)
        with served(big_dir) as url:
            login = asyncio.run(big_login(url))
            rows.append((f"login to {login['nodes']:,.0f} nodes: time (s) / loop lag p99 (ms)",
                         f"{login['seconds']:.1f} / {login['lag_p99_ms']:.1f}", "p99 <= 20"))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload {os.getloadavg()[0]:.1f}, data in {args.tmp}")
    print(f"| {'work':<62} | {'result':<44} | target |")
    print(f"|{'-' * 64}|{'-' * 46}|--------|")
    for label, result, target in rows:
        print(f"| {label:<62} | {result:<44} | {target} |")


if __name__ == "__main__":
    main()
