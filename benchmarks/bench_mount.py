"""``megafast mount`` and ``megafast http`` against ``Mega.download``/``Mega.upload`` and a
direct ranged read, side by side in one run (issue 20's table). The emulator serves a data
directory in /dev/shm from another process; the mount and the HTTP server are the real
commands in their own processes; reads go through the kernel (FUSE) or a socket.

    PYTHONPATH=src python benchmarks/bench_mount.py                   # the issue's sizes
    PYTHONPATH=src python benchmarks/bench_mount.py --quick           # a check in ~1 min

Sizes: --size-mib (sequential file, 256), --big-mib (the peak-RSS file, 4096), --copy-mib
(cp into the mount, 1024), --files (the ls -l folder, 2000), --nodes (the big account of the
warm-mount row, 1000000; 0 skips it; seeding a million nodes takes minutes).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
MiB = 1 << 20
EMAIL, PASSWORD = "mount-bench@example.com", "bench password"
BIG_EMAIL = "mount-big@example.com"
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _pattern_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            f.write(block[i % 251 :] + block[: i % 251])
        f.write(block[: size % MiB])


def seed(data_dir: Path, work: Path, args: argparse.Namespace) -> None:
    """Fill the emulator's data directory (run in a child process: it exits after)."""
    sys.path.insert(0, str(HERE))
    from megafast.testing import MegaEmulator

    with MegaEmulator(data_dir=str(data_dir)) as emu:
        emu.create_account(EMAIL, PASSWORD)
        for name, mib in (("seq.bin", args.size_mib), ("big.bin", args.big_mib)):
            src = work / name
            _pattern_file(src, mib * MiB)
            emu.add_file(EMAIL, str(src), name)
            src.unlink()
        folder = emu.add_folder(EMAIL, "many")
        for i in range(args.files):
            emu.add_file(EMAIL, b"x" * 100, f"file {i:05d}.txt", folder)
        if args.nodes:
            from bench_client import seed_nodes

            emu.create_account(BIG_EMAIL, PASSWORD)
            seed_nodes(emu, BIG_EMAIL, args.nodes)


class Env:
    """A command line environment (config, state, cache) for one account."""

    def __init__(self, home: Path, api_url: str) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
            "MEGAFAST_CONFIG_DIR": str(home / "config"),
            "MEGAFAST_STATE_DIR": str(home / "state"),
            "MEGAFAST_API_URL": api_url,
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_STATE_HOME": str(home / "xdg-state"),
        }

    def run(self, *args: str, stdin: bytes = b"") -> None:
        subprocess.run(
            [sys.executable, "-m", "megafast", *args],
            input=stdin,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "megafast", *args], env=self.env, **kwargs)


class Mount:
    """``megafast mount`` in its own process; unmounted on exit (always)."""

    def __init__(self, env: Env, path: Path, *extra: str) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.proc = env.popen("mount", *extra, str(path), stderr=subprocess.DEVNULL)
        while not os.path.ismount(path):
            if self.proc.poll() is not None:
                raise RuntimeError("the mount failed")
            time.sleep(0.005)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __enter__(self) -> Mount:
        return self

    def __exit__(self, *exc: object) -> None:
        for flag in ("-u", "-uz"):
            if os.path.ismount(self.path):
                subprocess.run(["fusermount3", flag, str(self.path)], capture_output=True)
        self.proc.wait(timeout=120)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_file(path: Path, block: int = MiB) -> int:
    buf = bytearray(block)
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            got = f.readinto(buf)
            if not got:
                return n
            n += got


def timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(api_url: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from megafast import Mega
    from megafast.transfer import TransferConfig, open_reader

    r: dict[str, Any] = {}
    mega = Mega(api_url=api_url).login(EMAIL, PASSWORD)
    seq = mega.find("seq.bin")
    size = args.size_mib * MiB
    env = Env(work / "home", api_url)
    env.run("login", EMAIL, "--password-stdin", stdin=PASSWORD.encode() + b"\n")
    mnt = work / "mnt"
    dest = work / "dl"
    dest.mkdir()
    rounds: dict[str, list[float]] = {"download": [], "cold": [], "cached": [], "cold_cpu": []}
    for _ in range(args.rounds):
        t = timed(lambda: mega.download(seq, dest_path=str(dest), dest_filename="d.bin"))
        rounds["download"].append(size / t / 1e6)
        os.unlink(dest / "d.bin")
        with Mount(env, mnt) as m:
            cpu = cpu_seconds(m.proc.pid)
            rounds["cold"].append(size / timed(lambda: read_file(m.path / "seq.bin")) / 1e6)
            rounds["cold_cpu"].append(cpu_seconds(m.proc.pid) - cpu)
            rounds["cached"].append(size / timed(lambda: read_file(m.path / "seq.bin")) / 1e6)
    for k, v in rounds.items():
        r[k] = statistics.median(v)
        r[k + "_rounds"] = [round(x) for x in v]

    # 20 random 64 KiB reads: through the mount (fresh, its URL fetched) and directly
    rng = random.Random(20)
    offsets = [rng.randrange(0, size - 65536) for _ in range(20)]
    node = seq[1]
    g = mega._request({"a": "g", "g": 1, "n": node["h"]})

    # one reader, its connection open: each read is one ranged GET of the MAC chunk(s) that
    # hold the bytes, decrypted (a 1 MiB window, as the mount fetches). Its reads alternate
    # with the mount's (and later the HTTP server's), so that both see the same load.
    def direct_reader() -> Any:
        reader = open_reader(
            mega.http, lambda _r: g["g"], size, node["key"], config=TransferConfig(piece_size=MiB)
        )
        reader.seek(size - 1)
        reader.read(1)  # the connection is open
        return reader

    def read_direct(reader: Any, off: int, times: list[float]) -> None:
        t = time.perf_counter()
        reader.seek(off)
        assert len(reader.read(65536)) == 65536
        times.append(time.perf_counter() - t)

    direct: list[float] = []
    through: list[float] = []
    reader = direct_reader()
    with Mount(env, mnt) as m:
        read_file(m.path / "many" / "file 00000.txt")  # the mount is serving
        with open(m.path / "seq.bin", "rb", buffering=0) as f:
            f.read(1)  # its URL
        cpu = cpu_seconds(m.proc.pid)
        for off in offsets:
            read_direct(reader, off, direct)
            t = time.perf_counter()
            with open(m.path / "seq.bin", "rb", buffering=0) as f:
                f.seek(off)
                assert len(f.read(65536)) == 65536
            through.append(time.perf_counter() - t)
        r["random_cpu_ms"] = (cpu_seconds(m.proc.pid) - cpu) / len(offsets) * 1000
        reader.close()
        # ls -l of the folder of small files (first listing after the mount)
        r["ls_s"] = timed(
            lambda: subprocess.run(
                ["ls", "-l", str(m.path / "many")], capture_output=True, check=True
            )
        )
        # a change by another client
        other = Mega(api_url=api_url).login(EMAIL, PASSWORD)
        (work / "new.txt").write_text("new")
        t = time.perf_counter()
        other.upload(str(work / "new.txt"))
        uploaded = time.perf_counter()
        while not (m.path / "new.txt").exists() and time.perf_counter() - t < 30:
            time.sleep(0.01)
        r["change_s"] = time.perf_counter() - uploaded
        # cp into the mount until the file is in the account
        local = work / "copy.bin"
        _pattern_file(local, args.copy_mib * MiB)
        r["cp_s"] = timed(
            lambda: subprocess.run(["cp", str(local), str(m.path / "copy.bin")], check=True)
        )
    r["upload_s"] = timed(lambda: mega.upload(str(local), dest_filename="copy-api.bin"))
    local.unlink()
    r["random_mount_ms"] = statistics.mean(through) * 1000
    r["random_direct_ms"] = statistics.mean(direct) * 1000

    # peak RSS of the mount reading the big file
    with Mount(env, mnt) as m:
        read_file(m.path / "big.bin")
        r["rss_mb"] = m.peak_rss_mb()

    # HTTP: a sequential GET and 64 KiB Range GETs
    server = env.popen("http", "--addr", "127.0.0.1:0", stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().decode().strip() + "seq.bin"

        def get_all() -> None:
            with urllib.request.urlopen(url) as resp:
                while resp.read(MiB):
                    pass

        r["http_mb_s"] = size / timed(get_all) / 1e6
        ranged: list[float] = []
        direct_http: list[float] = []
        reader = direct_reader()
        cpu = cpu_seconds(server.pid)
        for off in offsets:
            read_direct(reader, off, direct_http)
            req = urllib.request.Request(url, headers={"Range": f"bytes={off}-{off + 65535}"})
            t = time.perf_counter()
            with urllib.request.urlopen(req) as resp:
                assert len(resp.read()) == 65536
            ranged.append(time.perf_counter() - t)
        r["http_range_cpu_ms"] = (cpu_seconds(server.pid) - cpu) / len(offsets) * 1000
        reader.close()
        r["http_range_ms"] = statistics.mean(ranged) * 1000
        r["http_direct_ms"] = statistics.mean(direct_http) * 1000
    finally:
        server.terminate()
        server.wait(timeout=60)

    if args.nodes:
        big_env = Env(work / "home-big", api_url)
        big_env.run(
            "login",
            BIG_EMAIL,
            "--password-stdin",
            stdin=PASSWORD.encode() + b"\n",
        )
        big_env.run("ls", "/")  # cold: lists everything and writes the node cache
        t = time.perf_counter()
        warm = Mega(api_url=api_url, cache=str(work / "home-big" / "cache" / "megafast"))
        warm.login(BIG_EMAIL, PASSWORD)
        warm._load_tree()
        r["warm_start_s"] = time.perf_counter() - t
        start = time.perf_counter()
        with Mount(big_env, work / "mnt-big") as m:
            os.listdir(m.path)
            r["big_mount_s"] = time.perf_counter() - start
    return r


def report(r: dict[str, Any], args: argparse.Namespace) -> str:
    dl = r["download"]
    rows = [
        ("`Mega.download`", f"{dl:.0f} MB/s (rounds {r['download_rounds']})", "-"),
        (
            f"sequential read through the mount, cold ({args.size_mib} MiB)",
            f"{r['cold']:.0f} MB/s = {r['cold'] / dl:.0%} (rounds {r['cold_rounds']}; "
            f"mount CPU {r['cold_cpu']:.2f} s)",
            ">= 85 %",
        ),
        (
            "re-read, cached",
            f"{r['cached'] / 1000:.2f} GB/s (rounds {r['cached_rounds']})",
            ">= 1 GB/s",
        ),
        (
            "20 random 64 KiB reads, mean",
            f"{r['random_mount_ms']:.1f} ms vs direct {r['random_direct_ms']:.1f} ms = "
            f"{r['random_mount_ms'] / r['random_direct_ms']:.2f}x "
            f"(mount CPU {r['random_cpu_ms']:.1f} ms a read)",
            "<= 1.2x",
        ),
        (f"`ls -l` of {args.files} files", f"{r['ls_s']:.3f} s", "<= 0.3 s"),
        ("a change by another client visible", f"{r['change_s']:.2f} s", "<= 2 s"),
    ]
    if "big_mount_s" in r:
        rows.append(
            (
                f"mount of a {args.nodes:,}-node account, warm cache, ready",
                f"{r['big_mount_s']:.2f} s (warm start alone {r['warm_start_s']:.2f} s)",
                "<= 3 s",
            )
        )
    rows += [
        (
            f"peak RSS of the mount reading a {args.big_mib} MiB file",
            f"{r['rss_mb']:.0f} MB",
            "<= 200 MB",
        ),
        (
            f"`cp` of {args.copy_mib} MiB into the mount, until in the account",
            f"{args.copy_mib * MiB / r['cp_s'] / 1e6:.0f} MB/s vs `Mega.upload` "
            f"{args.copy_mib * MiB / r['upload_s'] / 1e6:.0f} MB/s = {r['upload_s'] / r['cp_s']:.0%}",
            ">= 70 %",
        ),
        (
            "HTTP: sequential GET / 64 KiB Range GET",
            f"{r['http_mb_s']:.0f} MB/s = {r['http_mb_s'] / dl:.0%} / {r['http_range_ms']:.1f} ms = "
            f"{r['http_range_ms'] / r['http_direct_ms']:.2f}x direct {r['http_direct_ms']:.1f} ms "
            f"(server CPU {r['http_range_cpu_ms']:.1f} ms a request)",
            ">= 85 % / <= 1.2x",
        ),
    ]
    lines = ["| work | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=4096)
    parser.add_argument("--copy-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that it runs")
    parser.add_argument("--seed-into", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size_mib, args.big_mib, args.copy_mib = 32, 64, 32
        args.files, args.nodes, args.rounds = 200, 2000, 1
    if args.seed_into:
        data_dir, work = args.seed_into.split(os.pathsep)
        seed(Path(data_dir), Path(work), args)
        return
    if shutil.which("fusermount3") is None or not os.path.exists("/dev/fuse"):
        sys.exit("needs FUSE: /dev/fuse and fusermount3 (Debian: apt-get install fuse3)")
    work = Path(tempfile.mkdtemp(prefix="megafast-bench-mount-", dir=SHM))
    try:
        data_dir = work / "emu"
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                __file__,
                *sys.argv[1:],
                "--seed-into",
                f"{data_dir}{os.pathsep}{work}",
            ],
            check=True,
        )
        print(f"seeded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        server = subprocess.Popen(
            [sys.executable, "-m", "megafast.testing", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            api_url = server.stdout.readline().strip()
            r = measure(api_url, work, args)
        finally:
            server.terminate()
            server.wait(timeout=60)
        print(report(r, args))
        print(f"(load average {os.getloadavg()[0]:.1f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
