"""Throughput of the MEGA emulator to and from a loopback client.

The client here is as cheap as possible (raw sockets, ``recv_into`` a reused buffer), so
the figure is the emulator's, not the client's:

    PYTHONPATH=src python benchmarks/bench_emulator.py            # prints GB/s
    PYTHONPATH=src pytest benchmarks/bench_emulator.py --benchmark-enable
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest

from megafast.testing import MegaEmulator

SIZE = 256 * 1024 * 1024


def _request(sock: socket.socket, method: str, path: str, body_len: int = 0) -> None:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {body_len}\r\n\r\n"
    sock.sendall(head.encode())


def _read_head(sock: socket.socket) -> tuple[int, int, bytes]:
    """(status, content length, body bytes already read)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"
    )
    return status, length, rest


def download(url: str, start: int, end: int, buf: bytearray) -> int:
    """GET url/start-end on a fresh connection; returns bytes received."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as s:
        _request(s, "GET", f"{parts.path}/{start}-{end}")
        status, length, rest = _read_head(s)
        assert status == 200, status
        got = len(rest)
        view = memoryview(buf)
        while got < length:
            n = s.recv_into(view)
            if not n:
                raise ConnectionError("short body")
            got += n
        return got


def parallel_download(url: str, size: int, connections: int) -> float:
    """Seconds to fetch the whole blob over ``connections`` parallel ranged GETs."""
    step = -(-size // connections)
    bufs = [bytearray(1 << 20) for _ in range(connections)]
    threads = []
    t0 = time.perf_counter()
    for i in range(connections):
        a, b = i * step, min(size, (i + 1) * step) - 1
        threads.append(threading.Thread(target=download, args=(url, a, b, bufs[i])))
        threads[-1].start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def upload(url: str, offset: int, length: int, payload: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as s:
        _request(s, "POST", f"{parts.path}/{offset}", length)
        left = length
        view = memoryview(payload)
        while left:
            n = min(left, len(payload))
            s.sendall(view[:n])
            left -= n
        status, length_out, rest = _read_head(s)
        while len(rest) < length_out:
            rest += s.recv(65536)
        return rest


def parallel_upload(url: str, size: int, connections: int) -> tuple[float, bytes]:
    step = -(-size // connections)
    payload = os.urandom(1 << 20)
    answers: list[bytes] = [b""] * connections

    def one(i: int) -> None:
        a = i * step
        answers[i] = upload(url, a, min(size, a + step) - a, payload)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, b"".join(answers)


@pytest.fixture(scope="module")
def seeded() -> tuple[MegaEmulator, str]:
    emu = MegaEmulator().start()
    emu.create_account("bench@example.com", "pw")
    url = emu.upload_url("bench@example.com", SIZE)
    _, token = parallel_upload(url, SIZE, 8)
    emu.store.execute(
        "INSERT INTO nodes(h, owner, parent, t, a, k, s, ts, blob, seq)"
        " SELECT 'benchblb', ?, NULL, 0, '', '', size, 0, blob, 0 FROM completions WHERE token=?",
        emu.account("bench@example.com").handle,
        token.decode(),
    )
    yield emu, emu.download_url("benchblb")
    emu.stop()


@pytest.mark.parametrize("connections", [1, 4, 8])
def test_download_throughput(benchmark, seeded, connections: int) -> None:
    _, url = seeded
    seconds = benchmark.pedantic(parallel_download, args=(url, SIZE, connections), rounds=3)
    benchmark.extra_info["MB/s"] = round(SIZE / 1e6 / (seconds or 1e-9))


@pytest.mark.parametrize("connections", [1, 8])
def test_upload_throughput(benchmark, seeded, connections: int) -> None:
    emu, _ = seeded

    def run() -> float:
        return parallel_upload(
            emu.upload_url("bench@example.com", SIZE // 4), SIZE // 4, connections
        )[0]

    seconds = benchmark.pedantic(run, rounds=3)
    benchmark.extra_info["MB/s"] = round(SIZE / 4 / 1e6 / (seconds or 1e-9))


def main() -> int:
    with MegaEmulator() as emu:
        emu.create_account("bench@example.com", "pw")
        url = emu.upload_url("bench@example.com", SIZE)
        secs, token = parallel_upload(url, SIZE, 8)
        print(f"upload   8 connections: {SIZE / secs / 1e9:.2f} GB/s")
        emu.store.execute(
            "INSERT INTO nodes(h, owner, parent, t, a, k, s, ts, blob, seq)"
            " SELECT 'benchblb', ?, NULL, 0, '', '', size, 0, blob, 0 FROM completions"
            " WHERE token=?",
            emu.account("bench@example.com").handle,
            token.decode(),
        )
        dl = emu.download_url("benchblb")
        for conns in (1, 2, 4, 8, 16):
            best = min(parallel_download(dl, SIZE, conns) for _ in range(3))
            print(f"download {conns:2d} connections: {SIZE / best / 1e9:.2f} GB/s (best of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
