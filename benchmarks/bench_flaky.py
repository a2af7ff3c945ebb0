"""Links that really drop (issues 15 and 18): transfers while every connection is cut at once.

Two ways to cut, both every connection at the same moment on one clock:

* ``clock``: the emulator's ``cut_every`` fault (API, transfers, idle or busy, even a
  connection accepted a millisecond before: a reset);
* ``ss -K``: ``ss -K dst 127.0.0.1 dport = :PORT`` from outside the process (needs root and a
  kernel with CONFIG_INET_DIAG_DESTROY; skipped with the reason otherwise).

Rows (8 connections; bytes counted by the emulator, that is on the server side):

* download of ``--size-mib`` at 4 MB/s per connection, a cut every 0.25 s: fetched / file;
* download of ``--slow-size-mib`` at 256 KB/s per connection, a cut every 1 s: fetched / file;
* upload of ``--size-mib`` at 4 MB/s per connection, a cut every 1 s: sent / file;
* upload of ``--slow-size-mib`` at 256 KB/s per connection, a cut every 5 s (a 1 MiB MAC
  chunk needs 4 s there): sent / file;
* a download SIGKILLed a third of the way in, then run again: what the rerun fetched / file;
* no cuts, no cap, ``--cpu-size-mib`` (1 GiB): MB/s and client CPU seconds per GiB, up and
  down, this checkout and ``--baseline SRC`` (another checkout's ``src``) side by side,
  best of ``--rounds`` (the first touch of new memory is slow on some machines).

The emulator runs in this process; each client in a child process of its own (its CPU time
is its own). Put the temporary files in tmpfs (``TMPDIR=/dev/shm``): the emulator's data and
the downloads then measure megafast, not the disk.

    TMPDIR=/dev/shm PYTHONPATH=src python benchmarks/bench_flaky.py --baseline ../main/src
    TMPDIR=/dev/shm PYTHONPATH=src python benchmarks/bench_flaky.py --cpu-only --rounds 4 \
        --baseline ../main/src                                    # only the no-cuts rows
    PYTHONPATH=src python benchmarks/bench_flaky.py --quick        # small, to see it runs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MiB = 1 << 20
GiB = 1 << 30
HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"
FAST, SLOW = 4e6, 256e3  # bytes/s per connection


def _client_main(spec: dict[str, Any]) -> dict[str, Any]:
    """One transfer in this (child) process; its figures as a dict."""
    import requests

    from megafast.transfer import TransferConfig, download_file, upload_file

    cfg = TransferConfig(connections=spec["connections"], max_retries=spec.get("retries", 8))
    out: dict[str, Any] = {}
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    try:
        if spec["mode"] == "download":
            download_file(
                requests.Session(),
                lambda refresh: spec["url"],
                spec["size"],
                tuple(spec["key"]),
                spec["path"],
                config=cfg,
                resume_id=spec.get("resume_id"),
            )
        else:
            res = upload_file(
                requests.Session(), lambda size: spec["url"], spec["path"], config=cfg
            )
            out.update(token=res.token, key=list(res.key))
    except Exception as exc:  # reported as a row that failed
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out.update(seconds=time.perf_counter() - t0, cpu=cpu)
    return out


def _child(spec: dict[str, Any], src: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    return subprocess.Popen(
        [sys.executable, str(HERE), "client", json.dumps(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_client(spec: dict[str, Any], src: Path = SRC) -> dict[str, Any]:
    proc = _child(spec, src)
    out, err = proc.communicate(timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"client failed:\n{err[-3000:]}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def _sidecar_bytes(path: Path) -> float:
    """Bytes a download sidecar records as written (whole chunks and chunk prefixes)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0.0
    spans = state.get("done", []) + state.get("partial", [])
    return float(sum(e - s for s, e in spans))


def ss_kill_unavailable() -> str | None:
    """Why ``ss -K`` cannot cut connections here, or None."""
    sys.path.insert(0, str(HERE.parents[1] / "tests"))
    from support.cuts import ss_kill_unavailable as check

    return check()


class OutsideCuts:
    """``ss -K`` every ``every`` seconds on the connections to ``port`` (a thread)."""

    def __init__(self, port: int, every: float) -> None:
        from support.cuts import OutsideCutter

        self.cutter = OutsideCutter(port, every)

    def __enter__(self) -> OutsideCuts:
        self.cutter.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cutter.__exit__(None, None, None)

    @property
    def cuts(self) -> int:
        return self.cutter.cuts


class Flaky:
    def __init__(self, size: int, slow_size: int, connections: int) -> None:
        sys.path.insert(0, str(HERE.parents[1] / "tests"))
        from megafast.testing import MegaEmulator
        from support.transfer import EMAIL, Remote

        self.connections = connections
        self.tmp = Path(tempfile.mkdtemp(prefix="megafast-flaky-"))
        self.emu = MegaEmulator().start()
        self.emu.create_account(EMAIL, "pw")
        self.remote = Remote(self.emu)
        self.nodes: dict[int, tuple[str, tuple[int, ...]]] = {}
        for n in {size, slow_size}:
            self._node(n)

    def _file(self, size: int) -> tuple[Path, str, tuple[int, ...]]:
        """A source file of ``size`` random bytes, and its node on the emulator (added the
        first time a download needs it)."""
        src = self.tmp / f"src-{size}.bin"
        if not src.exists():
            with src.open("wb") as f:
                left = size
                while left:
                    f.write(os.urandom(min(left, 16 * MiB)))
                    left -= min(left, 16 * MiB)
        return (src, *self.nodes.get(size, ("", ())))

    def _node(self, size: int) -> tuple[str, tuple[int, ...]]:
        if size not in self.nodes:
            src = self._file(size)[0]
            self.nodes[size] = self.remote.add_file(src.read_bytes(), src.name)
        return self.nodes[size]

    def close(self) -> None:
        import shutil

        self.emu.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _stats(self) -> dict[str, Any]:
        self.emu.wait_idle(120)  # requests of a killed client end first
        return self.emu.stats()

    def _download_spec(self, size: int, dest: Path, **extra: Any) -> dict[str, Any]:
        handle, key = self._node(size)
        return {
            "mode": "download",
            "url": self.emu.download_url(handle),
            "size": size,
            "key": list(key),
            "path": str(dest),
            "connections": self.connections,
            **extra,
        }

    def _upload_spec(self, size: int) -> dict[str, Any]:
        url = self.remote.api.request({"a": "u", "s": size})["p"]
        src, _, _ = self._file(size)
        return {"mode": "upload", "url": url, "path": str(src), "connections": self.connections}

    def _with_cuts(
        self,
        kind: str,
        size: int,
        spec: dict[str, Any],
        rate: float,
        every: float,
        how: str,
        src: Path,
    ) -> dict[str, Any]:
        """Run the client ``spec`` while every connection is cut every ``every`` seconds
        (``how``: "clock" or "ss -K"); the row (without ``identical``) and the client's
        figures."""
        before = self._stats()
        if how == "clock":
            self.emu.set_faults(bandwidth=rate, cut_every=every)
            try:
                fig = run_client(spec, src)
            finally:
                cuts = self.emu.fault_counts.get("cut_ticks", 0)
                self.emu.clear_faults()
        else:
            self.emu.set_faults(bandwidth=rate)
            try:
                with OutsideCuts(self.emu.port, every) as outside:
                    fig = run_client(spec, src)
            finally:
                cuts = outside.cuts
                self.emu.clear_faults()
        after = self._stats()
        return {
            "moved": (after[f"{kind}_bytes"] - before.get(f"{kind}_bytes", 0)) / size,
            "seconds": fig["seconds"],
            "attempts": after[f"{kind}_requests"] - before.get(f"{kind}_requests", 0),
            "cuts": cuts,
            "error": fig.get("error"),
            "figures": fig,
        }

    def download_with_cuts(
        self, size: int, rate: float, every: float, how: str, src: Path = SRC
    ) -> dict[str, Any]:
        dest = self.tmp / "cuts.bin"
        spec = self._download_spec(size, dest, retries=8)
        row = self._with_cuts("download", size, spec, rate, every, how, src)
        row["identical"] = (
            row["error"] is None and dest.read_bytes() == self._file(size)[0].read_bytes()
        )
        dest.unlink(missing_ok=True)
        return row

    def upload_with_cuts(
        self, size: int, rate: float, every: float, how: str, src: Path = SRC
    ) -> dict[str, Any]:
        row = self._with_cuts("upload", size, self._upload_spec(size), rate, every, how, src)
        if row["error"] is None:
            key = tuple(row["figures"]["key"])
            handle = self.remote.create_node(row["figures"]["token"], key, "up.bin")
            plain = self.remote.stored_plaintext(handle, key)
            row["identical"] = plain == self._file(size)[0].read_bytes()
        else:
            row["identical"] = False
        return row

    def killed_then_rerun(self, size: int, src: Path = SRC) -> dict[str, Any]:
        dest = self.tmp / "killed.bin"
        side = dest.with_name(dest.name + ".megafast-part.json")
        self.emu.set_faults(bandwidth=FAST)
        spec = self._download_spec(size, dest, resume_id="bench-kill")
        child = _child(spec, src)
        kept = 0.0
        while kept < size / 3 and child.poll() is None:  # what the sidecar holds
            time.sleep(0.02)
            kept = _sidecar_bytes(side)
        child.send_signal(signal.SIGKILL)
        child.wait()
        kept = _sidecar_bytes(side)
        self.emu.clear_faults()
        before = self._stats()
        fig = run_client(spec, src)
        after = self._stats()
        ok = fig.get("error") is None and dest.read_bytes() == self._file(size)[0].read_bytes()
        dest.unlink(missing_ok=True)
        return {
            "kept_at_kill": kept / size,
            "moved": (after["download_bytes"] - before["download_bytes"]) / size,
            "seconds": fig["seconds"],
            "attempts": after["download_requests"] - before["download_requests"],
            "cuts": 0,
            "error": fig.get("error"),
            "identical": ok,
        }

    def no_cuts(self, size: int, src: Path) -> dict[str, Any]:
        """Unthrottled upload then download of ``size`` bytes with the engine in ``src``."""
        source, _, _ = self._file(size)
        up = run_client({**self._upload_spec(size), "connections": 8}, src)
        if up.get("error"):
            raise RuntimeError(up["error"])
        handle = self.remote.create_node(up["token"], tuple(up["key"]), "nocuts.bin")
        dest = self.tmp / "nocuts.bin"
        down = run_client(
            {
                "mode": "download",
                "url": self.emu.download_url(handle),
                "size": size,
                "key": up["key"],
                "path": str(dest),
                "connections": 8,
            },
            src,
        )
        ok = down.get("error") is None and dest.read_bytes() == source.read_bytes()
        dest.unlink(missing_ok=True)
        gib = size / GiB
        return {
            "up_mb_s": size / 1e6 / up["seconds"],
            "up_cpu_gib": up["cpu"] / gib,
            "down_mb_s": size / 1e6 / down["seconds"],
            "down_cpu_gib": down["cpu"] / gib,
            "identical": ok,
        }


def _print_row(name: str, r: dict[str, Any]) -> None:
    ok = "yes" if r["identical"] else "NO"
    print(
        f"{name:52} {r['moved']:8.3f} {r['seconds']:8.1f} {r['attempts']:8d} {r['cuts']:5d} {ok:>4}"
    )
    if r.get("error"):
        print(f"{'':52} failed: {r['error']}")
    if "kept_at_kill" in r:
        print(f"{'  (the sidecar kept at the kill)':52} {r['kept_at_kill']:8.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=256, help="the 4 MB/s rows (MiB)")
    p.add_argument("--slow-size-mib", type=int, default=64, help="the 256 KB/s rows (MiB)")
    p.add_argument("--cpu-size-mib", type=int, default=1024, help="the no-cuts rows (MiB)")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2, help="no-cuts rounds (best kept)")
    p.add_argument("--baseline", type=Path, help="another checkout's src/ to compare with")
    p.add_argument(
        "--baseline-cuts", action="store_true", help="also run the cut rows with --baseline"
    )
    p.add_argument("--no-ss", action="store_true", help="skip the ss -K rows")
    p.add_argument("--cpu-only", action="store_true", help="only the no-cuts rows")
    p.add_argument("--quick", action="store_true", help="small sizes: check that it runs")
    args = p.parse_args(argv)
    if args.quick:
        args.size_mib, args.slow_size_mib, args.cpu_size_mib, args.rounds = 16, 2, 64, 1
    size, slow, cpu_size = (n * MiB for n in (args.size_mib, args.slow_size_mib, args.cpu_size_mib))
    hows = ["clock"]
    reason = "--no-ss" if args.no_ss else ss_kill_unavailable()
    if reason is None:
        hows.append("ss -K")
    engines = [("this checkout", SRC)]
    if args.baseline is not None:
        engines.append((f"baseline {args.baseline}", args.baseline.resolve()))
    bench = Flaky(size, slow, args.connections)
    try:
        print(
            f"\n{args.connections} connections, every connection cut at once; "
            f"moved = bytes the server sent (download) or received (upload) / file size"
        )
        if reason is not None:
            print(f"(no ss -K rows: {reason})")
        head = f"{'work':52} {'moved':>8} {'seconds':>8} {'attempts':>8} {'cuts':>5} {'ok':>4}"
        cut_engines = [] if args.cpu_only else engines if args.baseline_cuts else engines[:1]
        for label, src in cut_engines:
            print(f"\n{label}\n{head}")
            for how in hows:
                for name, row in (
                    (
                        f"download {args.size_mib} MiB, 4 MB/s, cut 0.25 s",
                        lambda h=how, s=src: bench.download_with_cuts(size, FAST, 0.25, h, s),
                    ),
                    (
                        f"download {args.slow_size_mib} MiB, 256 KB/s, cut 1 s",
                        lambda h=how, s=src: bench.download_with_cuts(slow, SLOW, 1.0, h, s),
                    ),
                    (
                        f"upload {args.size_mib} MiB, 4 MB/s, cut 1 s",
                        lambda h=how, s=src: bench.upload_with_cuts(size, FAST, 1.0, h, s),
                    ),
                    (
                        f"upload {args.slow_size_mib} MiB, 256 KB/s, cut 5 s",
                        lambda h=how, s=src: bench.upload_with_cuts(slow, SLOW, 5.0, h, s),
                    ),
                ):
                    _print_row(f"{name} ({how})", row())
            _print_row(
                f"download {args.size_mib} MiB SIGKILLed a third in, rerun",
                bench.killed_then_rerun(size, src),
            )
        print(f"\nno cuts, no cap ({args.cpu_size_mib} MiB, 8 connections, best of {args.rounds})")
        print(f"{'engine':40} {'up MB/s':>8} {'CPU s/GiB':>9} {'down MB/s':>9} {'CPU s/GiB':>9}")
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):  # engines alternate: side by side, whatever the load
            for label, src in engines:
                r = bench.no_cuts(cpu_size, src)
                if not r["identical"]:
                    print(f"{label}: the download was not byte-identical")
                b = best.setdefault(label, dict(r))
                for k in ("up_mb_s", "down_mb_s"):
                    b[k] = max(b[k], r[k])
                for k in ("up_cpu_gib", "down_cpu_gib"):
                    b[k] = min(b[k], r[k])
        for label, r in best.items():
            print(
                f"{label[:40]:40} {r['up_mb_s']:8.0f} {r['up_cpu_gib']:9.2f} "
                f"{r['down_mb_s']:9.0f} {r['down_cpu_gib']:9.2f}"
            )
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "client":
        print(json.dumps(_client_main(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
