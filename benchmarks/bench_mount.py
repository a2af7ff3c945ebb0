"""``megafast mount`` and ``megafast http`` against ``Mega.download``/``Mega.upload`` and a
direct ranged read, side by side in one run (issue 20's table). The emulator serves a data
directory in /dev/shm from another process; the mount and the HTTP server are the real
commands in their own processes; reads go through the kernel (FUSE) or a socket.

    PYTHONPATH=src python benchmarks/bench_mount.py                   # the issue's sizes
    PYTHONPATH=src python benchmarks/bench_mount.py --quick           # a check in ~1 min
    PYTHONPATH=src python benchmarks/bench_mount.py --only-big        # the 1M-node row alone

The cold sequential read is measured twice: on a new mount each round (a first read after
``megafast mount``: the mount process, its buffers and connections are new), and on one
running mount reading a file it has not read before (cold data in a warm process, as
``Mega.download`` runs in this one), each against ``Mega.download`` of the same file.

Sizes: --size-mib (sequential file, 256), --big-mib (the peak-RSS file, 4096), --copy-mib
(cp into the mount, 1024), --files (the ls -l folder, 2000), --nodes (the big account of the
warm-mount row, 1000000; 0 skips it; seeding a million nodes takes minutes). ``--only-big``
seeds and measures that row alone: the warm start (in this process, and as a warm
``megafast ls /``), the mount until ``os.listdir`` answers (wall and the mount process's CPU
time, a steadier figure on a busy machine), its peak RSS, and ``ls`` of the root and of a
folder through the mount (time and API requests, counted by the emulator).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
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
        if args.only_big:
            emu.create_account(BIG_EMAIL, PASSWORD)
            from bench_client import seed_nodes

            seed_nodes(emu, BIG_EMAIL, args.nodes)
            return
        emu.create_account(EMAIL, PASSWORD)
        fresh = [(f"seq{i}.bin", args.size_mib) for i in range(args.rounds)]
        for name, mib in [("seq.bin", args.size_mib), ("big.bin", args.big_mib), *fresh]:
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

    def cpu_s(self) -> float:
        """The mount process's CPU time so far (user + system), from /proc/PID/stat."""
        return cpu_seconds(self.proc.pid)

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


class Emulator:
    """The emulator in its own process (this script with ``--serve``); its request counters
    are asked over a pipe."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.api_url = self.proc.stdout.readline().strip()

    def _ask(self, what: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")

    def reset_stats(self) -> None:
        self._ask("reset")

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the server stops at the end of its input
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def serve(data_dir: str) -> None:
    """Serve the emulator on ``data_dir``: print its URL, then answer ``stats`` and ``reset``
    lines on stdin until it closes."""
    from megafast.testing import MegaEmulator

    with MegaEmulator(data_dir=data_dir) as emu:
        print(emu.api_url, flush=True)
        for line in sys.stdin:
            if line.strip() == "reset":
                emu.reset_stats()
                print("{}", flush=True)
            else:
                print(json.dumps(emu.stats()), flush=True)


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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_big(emu: Emulator, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The warm mount of the big account against its warm start (see the module doc)."""
    from megafast import Mega

    r: dict[str, Any] = {}
    api_url = emu.api_url
    home = work / "home-big"
    big_env = Env(home, api_url)
    big_env.run("login", BIG_EMAIL, "--password-stdin", stdin=PASSWORD.encode() + b"\n")
    t = time.perf_counter()
    big_env.run("ls", "/")  # cold: lists everything and writes the node cache
    r["cold_ls_s"] = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    warm = Mega(api_url=api_url, cache=str(home / "cache" / "megafast"))
    warm.login(BIG_EMAIL, PASSWORD)
    warm._load_tree()
    r["warm_start_s"] = time.perf_counter() - t
    r["warm_start_cpu_s"] = time.process_time() - cpu
    del warm
    rounds: dict[str, list[float]] = {k: [] for k in ("ls", "ls_cpu", "mount", "mount_cpu")}
    for _ in range(args.rounds):
        # a warm `megafast ls /`: a process that resumes the session and reads the cache,
        # as the mount does
        t, cpu = time.perf_counter(), _children_cpu()
        big_env.run("ls", "/")
        rounds["ls"].append(time.perf_counter() - t)
        rounds["ls_cpu"].append(_children_cpu() - cpu)
        start = time.perf_counter()
        with Mount(big_env, work / "mnt-big") as m:
            os.listdir(m.path)
            rounds["mount"].append(time.perf_counter() - start)
            rounds["mount_cpu"].append(m.cpu_s())
            r["big_rss_ready_mb"] = m.peak_rss_mb()
            # ls through the mount: the root (every top folder) and one folder
            emu.reset_stats()
            folder = sorted(os.listdir(m.path))[0]
            for key, path in (("root", m.path), ("folder", m.path / folder)):
                t = time.perf_counter()
                subprocess.run(["ls", "-l", str(path)], capture_output=True, check=True)
                r[f"big_ls_{key}_s"] = time.perf_counter() - t
            r["big_ls_requests"] = emu.stats().get("api_requests", 0)
            r["big_rss_mb"] = m.peak_rss_mb()
    for k, v in rounds.items():
        r[f"big_{k}_s"] = statistics.median(v)
        r[f"big_{k}_rounds"] = [round(x, 2) for x in v]
    return r


def measure(api_url: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from megafast import Mega
    from megafast.crypto import FileCipher
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
    # the same on one running mount: each round a file it has not read before (cold data, a
    # warm process, as Mega.download's), against Mega.download of that file
    rounds.update({"running_download": [], "running": [], "running_cpu": []})
    with Mount(env, mnt) as m:
        read_file(m.path / "many" / "file 00000.txt")  # the mount is serving
        for i in range(args.rounds):
            node = mega.find(f"seq{i}.bin")
            t = timed(lambda n=node: mega.download(n, dest_path=str(dest), dest_filename="d.bin"))
            rounds["running_download"].append(size / t / 1e6)
            os.unlink(dest / "d.bin")
            cpu = cpu_seconds(m.proc.pid)
            path = m.path / f"seq{i}.bin"
            rounds["running"].append(size / timed(lambda p=path: read_file(p)) / 1e6)
            rounds["running_cpu"].append(cpu_seconds(m.proc.pid) - cpu)
    r["running_ratio_rounds"] = [
        round(m / d * 100)
        for m, d in zip(rounds["running"], rounds["running_download"], strict=True)
    ]
    for k, v in rounds.items():
        r[k] = statistics.median(v)
        r[k + "_rounds"] = [round(x) for x in v]

    # 20 random 64 KiB reads: through the mount (fresh, its URL fetched) and directly
    rng = random.Random(20)
    offsets = [rng.randrange(0, size - 65536) for _ in range(20)]
    node = seq[1]
    g = mega._request({"a": "g", "g": 1, "n": node["h"]})

    # one reader, its connection open: each read is one ranged GET from the start of the MAC
    # chunk that holds the bytes to their end, decrypted and MAC-ed (the engine's reader, the
    # library's own random access). Its reads alternate with the mount's (and later the HTTP
    # server's), so that both see the same load. A bare ranged GET of just the bytes (out to
    # AES blocks) on a kept connection, and their decryption, is timed beside them: the floor.
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

    cipher = FileCipher(node["key"], size=size)

    def read_bare(off: int, times: list[float]) -> None:
        t = time.perf_counter()
        begin, end = off // 16 * 16, -(-(off + 65536) // 16) * 16
        body = mega.http.get(f"{g['g']}/{begin}-{end - 1}").content
        assert len(cipher.ctr(body, begin)[off - begin :][:65536]) == 65536
        times.append(time.perf_counter() - t)

    direct: list[float] = []
    through: list[float] = []
    bare: list[float] = []
    reader = direct_reader()
    with Mount(env, mnt) as m:
        read_file(m.path / "many" / "file 00000.txt")  # the mount is serving
        with open(m.path / "seq.bin", "rb", buffering=0) as f:
            f.read(1)  # its URL
        cpu = cpu_seconds(m.proc.pid)
        for off in offsets:
            read_direct(reader, off, direct)
            read_bare(off, bare)
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
        # cp into the mount until the file is in the account, and Mega.upload of the same
        # file, in turn (each pair sees the same state of the machine): the median ratio
        local = work / "copy.bin"
        _pattern_file(local, args.copy_mib * MiB)
        copies: list[float] = []
        uploads: list[float] = []
        cp_cpu: list[float] = []
        for i in range(args.rounds):
            target = str(m.path / f"copy{i}.bin")
            cpu = cpu_seconds(m.proc.pid)
            copies.append(timed(lambda t=target: subprocess.run(["cp", str(local), t], check=True)))
            cp_cpu.append(cpu_seconds(m.proc.pid) - cpu)
            uploads.append(timed(lambda i=i: mega.upload(str(local), dest_filename=f"api{i}.bin")))
            # both files deleted for good: the emulator frees their storage, and the next
            # pair's writes land in memory used a moment before, not in pages the VM's host
            # took back (on this machine that alone can hold an upload under 400 MB/s)
            mega.refresh()
            for name in (f"copy{i}.bin", f"api{i}.bin"):
                found = mega.find(name)
                assert found is not None, name
                mega.destroy(found[0])
        pairs = list(zip(uploads, copies, strict=True))
        r["cp_s"], r["upload_s"] = statistics.median(copies), statistics.median(uploads)
        r["cp_cpu_rounds"] = [round(x, 2) for x in cp_cpu]
        r["cp_ratio_rounds"] = [round(u / c * 100) for u, c in pairs]
        r["cp_ratio"] = statistics.median(u / c for u, c in pairs)
    local.unlink()
    r["random_mount_ms"] = statistics.mean(through) * 1000
    r["random_direct_ms"] = statistics.mean(direct) * 1000
    r["bare_ms"] = statistics.mean(bare) * 1000

    # peak RSS of the mount reading the big file
    with Mount(env, mnt) as m:
        read_file(m.path / "big.bin")
        r["rss_mb"] = m.peak_rss_mb()

    # HTTP: 64 KiB Range GETs on a fresh server (cold, as the mount's random reads), a
    # sequential GET, then the same Range GETs again (re-reads: each chunk's MAC and its
    # running MACs every 64 KiB are known from the sequential GET, so the server checks the
    # 64 KiB steps it fetches before their first byte goes out)
    server = env.popen("http", "--addr", "127.0.0.1:0", stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().decode().strip() + "seq.bin"

        def get_all() -> None:
            with urllib.request.urlopen(url) as resp:
                while resp.read(MiB):
                    pass

        def range_gets(tag: str) -> None:
            # one connection kept open (HTTP/1.1), as a player keeps it and as the direct
            # reader keeps its own
            ranged: list[float] = []
            direct_http: list[float] = []
            reader = direct_reader()
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
            cpu = cpu_seconds(server.pid)
            for off in offsets:
                read_direct(reader, off, direct_http)
                t = time.perf_counter()
                conn.request("GET", parts.path, headers={"Range": f"bytes={off}-{off + 65535}"})
                resp = conn.getresponse()
                assert resp.status == 206 and len(resp.read()) == 65536
                ranged.append(time.perf_counter() - t)
            r[f"http_{tag}_cpu_ms"] = (cpu_seconds(server.pid) - cpu) / len(offsets) * 1000
            conn.close()
            reader.close()
            r[f"http_{tag}_ms"] = statistics.mean(ranged) * 1000
            r[f"http_{tag}_direct_ms"] = statistics.mean(direct_http) * 1000

        first = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
        with urllib.request.urlopen(first) as resp:  # the server is serving, the URL fetched
            resp.read()
        range_gets("range")
        r["http_mb_s"] = size / timed(get_all) / 1e6
        range_gets("reread")
    finally:
        server.terminate()
        server.wait(timeout=60)

    return r


def big_rows(r: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, str, str]]:
    if "big_mount_s" not in r:
        return []
    return [
        (
            f"mount of a {args.nodes:,}-node account, warm cache, ready",
            f"{r['big_mount_s']:.2f} s, CPU {r['big_mount_cpu_s']:.2f} s "
            f"(rounds {r['big_mount_rounds']}; warm start alone {r['warm_start_s']:.2f} s, "
            f"CPU {r['warm_start_cpu_s']:.2f} s; warm `megafast ls /` {r['big_ls_s']:.2f} s, "
            f"CPU {r['big_ls_cpu_s']:.2f} s)",
            "<= 3 s",
        ),
        (
            "  its peak RSS: at ready / after the ls below",
            f"{r['big_rss_ready_mb']:.0f} MB / {r['big_rss_mb']:.0f} MB",
            "-",
        ),
        (
            "  `ls -l` through it: the root / one folder",
            f"{r['big_ls_root_s']:.3f} s / {r['big_ls_folder_s']:.3f} s, "
            f"{r['big_ls_requests']} API requests",
            "0 requests",
        ),
    ]


def table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| work | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


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
            f"the same on a running mount, a file it has not read before ({args.size_mib} MiB)",
            f"{r['running']:.0f} MB/s vs `Mega.download` {r['running_download']:.0f} MB/s "
            f"(medians) = {statistics.median(r['running_ratio_rounds']):.0f}% (rounds "
            f"{r['running_ratio_rounds']} %; mount CPU {r['running_cpu']:.2f} s)",
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
            f"(mount CPU {r['random_cpu_ms']:.1f} ms a read; a bare ranged GET of the bytes "
            f"and their decryption {r['bare_ms']:.1f} ms)",
            "<= 1.2x",
        ),
        (f"`ls -l` of {args.files} files", f"{r['ls_s']:.3f} s", "<= 0.3 s"),
        ("a change by another client visible", f"{r['change_s']:.2f} s", "<= 2 s"),
    ]
    rows += big_rows(r, args)
    rows += [
        (
            f"peak RSS of the mount reading a {args.big_mib} MiB file",
            f"{r['rss_mb']:.0f} MB",
            "<= 200 MB",
        ),
        (
            f"`cp` of {args.copy_mib} MiB into the mount, until in the account",
            f"{args.copy_mib * MiB / r['cp_s'] / 1e6:.0f} MB/s vs `Mega.upload` "
            f"{args.copy_mib * MiB / r['upload_s'] / 1e6:.0f} MB/s (medians) = "
            f"{r['cp_ratio']:.0%} (median of the pairs; rounds {r['cp_ratio_rounds']} %; "
            f"mount CPU {r['cp_cpu_rounds']} s)",
            ">= 70 %",
        ),
        (
            "HTTP: sequential GET",
            f"{r['http_mb_s']:.0f} MB/s = {r['http_mb_s'] / dl:.0%}",
            ">= 85 %",
        ),
    ]
    for tag, what in (
        ("range", "HTTP: a 64 KiB Range GET, cold"),
        ("reread", "HTTP: the same after a full GET (MAC-checked re-reads)"),
    ):
        ms, direct = r[f"http_{tag}_ms"], r[f"http_{tag}_direct_ms"]
        rows.append(
            (
                what,
                f"{ms:.1f} ms = {ms / direct:.2f}x direct {direct:.1f} ms "
                f"(server CPU {r[f'http_{tag}_cpu_ms']:.1f} ms a request)",
                "<= 1.2x",
            )
        )
    return table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=4096)
    parser.add_argument("--copy-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that it runs")
    parser.add_argument(
        "--only-big", action="store_true", help="only the warm mount of the --nodes account"
    )
    parser.add_argument("--seed-into", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.quick:
        args.size_mib, args.big_mib, args.copy_mib = 32, 64, 32
        args.files, args.nodes, args.rounds = 200, 2000, 1
    if args.only_big and args.nodes <= 0:
        parser.error("--only-big needs --nodes > 0")
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
        with Emulator(data_dir) as emu:
            if args.only_big:
                r = measure_big(emu, work, args)
            else:
                r = measure(emu.api_url, work, args)
                if args.nodes:
                    r.update(measure_big(emu, work, args))
        print(table(big_rows(r, args)) if args.only_big else report(r, args))
        print(f"(load average {os.getloadavg()[0]:.1f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
