"""The CPU floor of a transfer on this machine: what each step no client can skip costs.

For ``--size-mib`` (1 GiB) it measures, in one run, the CPU time (user + system, of the
thread doing the work: ``getrusage(RUSAGE_THREAD)``) of

* ``write``: writing them into a new file in ``TMPDIR`` with ``pwrite`` from one reused block,
  after ``posix_fallocate`` (as a download does), and ``write (no fallocate)`` without it;
* ``recv``: reading that file from a loopback TCP socket into one reused block
  (``recv_into``), sent with ``sendfile`` by another process (as the emulator sends: the
  bytes are copied out of pages no cache holds; and on loopback part of the peer's TCP work
  runs in whichever process sends or acknowledges);
* ``send``: sending them to such a process with ``sendall`` of one reused block;
* ``recv (socket timeout)``, ``send (socket timeout)``: the same with the socket in Python's
  timeout mode (what ``requests`` and ``http.client`` do with a read timeout: the socket is
  non-blocking and each call waits in ``poll``): not part of the floor, the price of it;
* ``read``: reading that file back with ``preadv`` into one reused block, and ``read
  (mmap)``: touching every page of it mapped (what a client that maps the source pays);
* ``decrypt`` / ``encrypt``: the native kernels (CTR and the chunk MACs in one pass) through
  :class:`~megafast.crypto.FileCipher`, in place, block by block,

and prints each row (the best of ``--rounds``: the first touch of new memory is slow on some
machines) and the sums: a download is at least recv + decrypt + write, an upload read +
encrypt + send. Put TMPDIR on tmpfs to match ``bench_flaky.py``'s no-cuts rows:

    TMPDIR=/dev/shm PYTHONPATH=src python benchmarks/floor_cpu.py
"""

from __future__ import annotations

import argparse
import mmap
import os
import resource
import socket
import tempfile
from collections.abc import Callable

MiB = 1 << 20
BLOCK = 8 * MiB  # the engine's I/O block (transfer.IO_BLOCK): eight MAC chunks, all lanes


def thread_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime + r.ru_stime


def measure(work: Callable[[], object]) -> float:
    """CPU seconds of ``work()`` on this thread."""
    before = thread_cpu()
    work()
    return thread_cpu() - before


def _peer(port: int, size: int, source: str | None) -> None:
    """The other end, in a process of its own (as the server is): sends ``size`` bytes of
    the file ``source`` with ``sendfile`` (as the emulator does), or (None) reads them into
    one reused 1 MiB block."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        block = memoryview(bytearray(MiB))
        fd = os.open(source, os.O_RDONLY) if source is not None else -1
        left = size
        while left:
            if fd >= 0:
                n = os.sendfile(s.fileno(), fd, size - left, min(left, BLOCK))
            else:
                n = s.recv_into(block)
            if not n:
                break
            left -= n
        if fd >= 0:
            os.close(fd)


def socket_cpu(size: int, source: str | None, timeout: float | None = None) -> float:
    """CPU seconds of this end receiving (``recv_into`` one reused block) the file
    ``source`` sent by the peer, or (None) sending ``size`` bytes (``sendall`` of one reused
    block) over loopback TCP; ``timeout``: the socket in Python's timeout mode (non-blocking,
    a ``poll`` before each call), as HTTP clients with a read timeout use it."""
    import multiprocessing

    receive = source is not None
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        peer = multiprocessing.get_context("fork").Process(target=_peer, args=(port, size, source))
        peer.start()
        conn, _ = server.accept()
        buf = memoryview(bytearray(BLOCK))

        def recv_all() -> None:
            got = 0
            while got < size:
                n = conn.recv_into(buf)
                if not n:
                    raise RuntimeError("the sender stopped early")
                got += n

        def send_all() -> None:
            left = size
            while left:
                n = min(left, BLOCK)
                conn.sendall(buf[:n])
                left -= n

        with conn:
            conn.settimeout(timeout)
            seconds = measure(recv_all if receive else send_all)
        peer.join()
    return seconds


def write_file(path: str, size: int, fallocate: bool) -> float:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    block = memoryview(bytearray(os.urandom(BLOCK)))
    try:

        def write_all() -> None:
            if fallocate:
                os.posix_fallocate(fd, 0, size)
            pos = 0
            while pos < size:
                n = min(BLOCK, size - pos)
                pos += os.pwrite(fd, block[:n], pos)

        return measure(write_all)
    finally:
        os.close(fd)


def read_file(path: str, size: int) -> float:
    fd = os.open(path, os.O_RDONLY)
    buf = memoryview(bytearray(BLOCK))
    try:

        def read_all() -> None:
            pos = 0
            while pos < size:
                n = os.preadv(fd, [buf[: min(BLOCK, size - pos)]], pos)
                if not n:
                    raise RuntimeError("the file is shorter than written")
                pos += n

        return measure(read_all)
    finally:
        os.close(fd)


def read_mapped(path: str, size: int) -> float:
    """Every page of the file read through a mapping (one byte a page, as a kernel reading
    the mapping touches it; the copy-free part of an upload that maps its source)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as m:
        view = memoryview(m)
        try:
            return measure(lambda: bytes(view[::4096]))
        finally:
            view.release()


def kernels(size: int) -> tuple[float, float]:
    """(decrypt, encrypt) CPU seconds of the native kernels over ``size`` bytes."""
    from megafast.crypto import FileCipher

    buf = memoryview(bytearray(os.urandom(BLOCK)))
    key, nonce = bytes(range(16)), bytes(range(8))

    def run(encrypt: bool) -> None:
        cipher = FileCipher(key, nonce, size=size)
        step = cipher.encrypt_into if encrypt else cipher.decrypt_into
        pos = 0
        while pos < size:
            n = min(BLOCK, size - pos)
            step(buf[:n], buf[:n], pos)
            pos += n

    return measure(lambda: run(False)), measure(lambda: run(True))


def one_round(size: int, folder: str) -> dict[str, float]:
    row: dict[str, float] = {}
    path = os.path.join(folder, "floor.bin")
    row["write (no fallocate)"] = write_file(path, size, fallocate=False)
    os.unlink(path)
    row["write"] = write_file(path, size, fallocate=True)
    row["recv"] = socket_cpu(size, path)
    row["send"] = socket_cpu(size, None)
    row["recv (socket timeout)"] = socket_cpu(size, path, timeout=60.0)
    row["send (socket timeout)"] = socket_cpu(size, None, timeout=60.0)
    row["read"] = read_file(path, size)
    row["read (mmap)"] = read_mapped(path, size)
    os.unlink(path)
    row["decrypt"], row["encrypt"] = kernels(size)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=3, help="the best of this many is kept")
    args = p.parse_args(argv)
    size = args.size_mib * MiB
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="megafast-floor-") as folder:
        for _ in range(args.rounds):
            for name, seconds in one_round(size, folder).items():
                best[name] = min(best.get(name, seconds), seconds)
    gib = size / (1 << 30)
    print(f"CPU seconds per GiB, best of {args.rounds} ({args.size_mib} MiB, TMPDIR={folder!r})")
    for name, seconds in best.items():
        print(f"  {name:22} {seconds / gib:6.3f}")
    down = best["recv"] + best["decrypt"] + best["write"]
    up = best["read"] + best["encrypt"] + best["send"]
    print(f"  {'download floor':22} {down / gib:6.3f}   (recv + decrypt + write)")
    print(f"  {'upload floor':22} {up / gib:6.3f}   (read + encrypt + send)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
