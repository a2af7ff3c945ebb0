"""Flaky links (issue 15) at full size: transfers against an emulator that drops every
connection moving a transfer body on a jittered timer (``drop_every``), each connection
capped at 4 MB/s, as ``megafast serve --bandwidth 4000000`` plus ``ss -K`` on a timer.

Rows of the table:

* download of the file with a drop every 0.25 s: bytes fetched / file size, seconds,
  requests (attempts), byte-identical;
* upload with a drop every 1 s: bytes sent / file size, seconds, POSTs, byte-identical;
* download killed with SIGKILL a third in, then run again: what the second run fetched;
* no drops, no cap: MB/s and CPU seconds per GiB of the client process, this checkout
  against another one (``--baseline SRC``, e.g. the main branch's ``src``), side by side.

The emulator runs in this process; every client runs in a child process of its own (its CPU
time is its own).

    PYTHONPATH=src python benchmarks/bench_flaky.py                      # 256 MiB
    PYTHONPATH=src python benchmarks/bench_flaky.py --size-mib 64 --baseline ../main/src
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


def _client_main(spec: dict[str, Any]) -> dict[str, Any]:
    """One transfer in this (child) process; its figures as a dict."""
    import requests

    from megafast.transfer import TransferConfig, download_file, upload_file

    cfg = TransferConfig(connections=spec["connections"], max_retries=spec.get("retries", 8))
    out: dict[str, Any] = {}
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
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
        res = upload_file(requests.Session(), lambda size: spec["url"], spec["path"], config=cfg)
        out.update(token=res.token, key=list(res.key))
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


def _sidecar_bytes(path: Path) -> float:
    """Bytes a download sidecar records as written (whole chunks and chunk prefixes)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0.0
    spans = state.get("done", []) + state.get("partial", [])
    return float(sum(e - s for s, e in spans))


def run_client(spec: dict[str, Any], src: Path = SRC) -> dict[str, Any]:
    proc = _child(spec, src)
    out, err = proc.communicate(timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"client failed:\n{err[-3000:]}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


class Flaky:
    def __init__(self, size: int, connections: int, rate: float) -> None:
        sys.path.insert(0, str(HERE.parents[1] / "tests"))
        from megafast.testing import MegaEmulator
        from support.transfer import EMAIL, Remote

        self.size, self.connections, self.rate = size, connections, rate
        self.tmp = Path(tempfile.mkdtemp(prefix="megafast-flaky-"))
        self.emu = MegaEmulator().start()
        self.emu.create_account(EMAIL, "pw")
        self.remote = Remote(self.emu)
        self.data = os.urandom(size)
        self.src = self.tmp / "src.bin"
        self.src.write_bytes(self.data)
        self.handle, self.key = self.remote.add_file(self.data, "flaky.bin")

    def close(self) -> None:
        import shutil

        self.emu.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _stats(self) -> dict[str, Any]:
        while self.emu.stats().get("active_transfers"):
            time.sleep(0.01)  # requests of a killed client end first
        return self.emu.stats()

    def _download_spec(self, dest: Path, **extra: Any) -> dict[str, Any]:
        return {
            "mode": "download",
            "url": self.emu.download_url(self.handle),
            "size": self.size,
            "key": list(self.key),
            "path": str(dest),
            "connections": self.connections,
            **extra,
        }

    def _with_drops(self, kind: str, every: float, spec: dict[str, Any]) -> dict[str, Any]:
        """Run the client ``spec`` while the emulator drops connections every ``every``
        seconds; the row of the table (without ``identical``) plus the client's figures."""
        before = self._stats()
        self.emu.set_faults(bandwidth=self.rate, drop_every=every)
        try:
            fig = run_client(spec)
        finally:
            drops = self.emu.fault_counts.get("timer_drop", 0)
            self.emu.clear_faults()
        after = self._stats()
        return {
            "moved": (after[f"{kind}_bytes"] - before.get(f"{kind}_bytes", 0)) / self.size,
            "seconds": fig["seconds"],
            "attempts": after[f"{kind}_requests"] - before.get(f"{kind}_requests", 0),
            "drops": drops,
            "figures": fig,
        }

    def download_with_drops(self, every: float) -> dict[str, Any]:
        dest = self.tmp / "drops.bin"
        row = self._with_drops("download", every, self._download_spec(dest, retries=8))
        row["identical"] = dest.read_bytes() == self.data
        dest.unlink()
        return row

    def upload_with_drops(self, every: float) -> dict[str, Any]:
        url = self.remote.api.request({"a": "u", "s": self.size})["p"]
        spec = {
            "mode": "upload",
            "url": url,
            "path": str(self.src),
            "connections": self.connections,
        }
        row = self._with_drops("upload", every, spec)
        key = tuple(row["figures"]["key"])
        handle = self.remote.create_node(row["figures"]["token"], key, "up.bin")
        row["identical"] = self.remote.stored_plaintext(handle, key) == self.data
        return row

    def killed_then_rerun(self) -> dict[str, Any]:
        dest = self.tmp / "killed.bin"
        side = dest.with_name(dest.name + ".megafast-part.json")
        self.emu.set_faults(bandwidth=self.rate)
        spec = self._download_spec(dest, resume_id="bench-kill")
        child = _child(spec, SRC)
        kept = 0.0
        while kept < self.size / 3 and child.poll() is None:  # what the sidecar holds
            time.sleep(0.02)
            kept = _sidecar_bytes(side)
        child.send_signal(signal.SIGKILL)
        child.wait()
        kept = _sidecar_bytes(side)
        self.emu.clear_faults()
        before = self._stats()
        t0 = time.perf_counter()
        run_client(spec)
        after = self._stats()
        ok = dest.read_bytes() == self.data
        dest.unlink()
        return {
            "kept_at_kill": kept / self.size,
            "moved": (after["download_bytes"] - before["download_bytes"]) / self.size,
            "seconds": time.perf_counter() - t0,
            "attempts": after["download_requests"] - before["download_requests"],
            "identical": ok,
        }

    def no_drops(self, src: Path) -> dict[str, Any]:
        """Unthrottled upload then download with the engine found in ``src``."""
        url = self.remote.api.request({"a": "u", "s": self.size})["p"]
        up = run_client(
            {"mode": "upload", "url": url, "path": str(self.src), "connections": 8}, src
        )
        handle = self.remote.create_node(up["token"], tuple(up["key"]), "nodrop.bin")
        dest = self.tmp / "nodrop.bin"
        down = run_client(
            {
                "mode": "download",
                "url": self.emu.download_url(handle),
                "size": self.size,
                "key": up["key"],
                "path": str(dest),
                "connections": 8,
            },
            src,
        )
        ok = dest.read_bytes() == self.data
        dest.unlink()
        gib = self.size / GiB
        return {
            "up_mb_s": self.size / 1e6 / up["seconds"],
            "up_cpu_gib": up["cpu"] / gib,
            "down_mb_s": self.size / 1e6 / down["seconds"],
            "down_cpu_gib": down["cpu"] / gib,
            "identical": ok,
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--rate", type=float, default=4e6, help="bytes/s per connection")
    p.add_argument("--baseline", type=Path, help="another checkout's src/ to compare speed")
    args = p.parse_args(argv)
    size = args.size_mib * MiB
    bench = Flaky(size, args.connections, args.rate)
    try:
        rows = [
            ("download, drop every 0.25 s", bench.download_with_drops(0.25)),
            ("upload, drop every 1 s", bench.upload_with_drops(1.0)),
            ("download SIGKILLed a third in, rerun", bench.killed_then_rerun()),
        ]
        print(
            f"\n{args.size_mib} MiB, {args.connections} connections, {args.rate / 1e6:g} MB/s each"
        )
        print(f"{'work':40} {'moved/file':>10} {'seconds':>8} {'attempts':>8} {'ok':>4}")
        for name, r in rows:
            print(
                f"{name:40} {r['moved']:10.3f} {r['seconds']:8.1f} {r['attempts']:8d} "
                f"{'yes' if r['identical'] else 'NO':>4}"
            )
            if "kept_at_kill" in r:
                print(f"{'  (the sidecar kept at the kill)':40} {r['kept_at_kill']:10.3f}")
        engines = [("this checkout", SRC)]
        if args.baseline is not None:
            engines.append((f"baseline {args.baseline}", args.baseline.resolve()))
        print(f"\nno drops, no cap ({args.size_mib} MiB, 8 connections)")
        print(f"{'engine':40} {'up MB/s':>8} {'CPU s/GiB':>9} {'down MB/s':>9} {'CPU s/GiB':>9}")
        for name, src in engines:
            r = bench.no_drops(src)
            print(
                f"{name[:40]:40} {r['up_mb_s']:8.0f} {r['up_cpu_gib']:9.2f} "
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
