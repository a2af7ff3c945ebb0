"""Native kernels from several threads: correct results, and the GIL is really released."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

native = pytest.importorskip("megafast.crypto._native")
KERNELS = native.available_kernels()
MIB = 1 << 20


@pytest.fixture(params=KERNELS)
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    previous = native.KERNEL
    native.set_kernel(request.param)
    try:
        yield request.param
    finally:
        native.set_kernel(previous)


def _jobs(seed: int) -> list[Callable[[], Any]]:
    """Independent calls with their own keys and buffers (each returns comparable values)."""
    rnd = random.Random(seed)
    key, nonce = rnd.randbytes(16), rnd.randbytes(8)
    size = rnd.choice([5 * MIB + 7, 2 * MIB, 384 * 1024 + 16, 100_000])
    src = rnd.randbytes(size)
    offset = rnd.choice([0, 4608 * 1024])

    def decrypt() -> Any:
        dst = bytearray(size)
        return native.decrypt_mac_into(key, nonce, offset, src, dst, None, True), bytes(dst)

    def encrypt() -> Any:
        dst = bytearray(src)
        return native.mac_encrypt_into(key, nonce, offset, dst, dst, None, True), bytes(dst)

    def ctr() -> Any:
        dst = bytearray(size)
        native.ctr_xor_into(key, nonce, offset + 3, src, dst)
        return bytes(dst)

    def mac() -> Any:
        return native.mac(key, nonce, offset, src, None, True)

    def small() -> Any:
        return (
            native.prepare_key(key),
            native.stringhash(src[:40], key),
            native.fold_meta_mac(key, src[:160]),
            native.decrypt_nodes(
                key, [src[i : i + 32] for i in range(0, 3200, 32)], [src[:64]] * 100
            ),
        )

    return [decrypt, encrypt, ctr, mac, small]


@pytest.mark.usefixtures("kernel")
def test_threads_calling_the_kernels_at_once_get_the_single_threaded_results() -> None:
    jobs = [job for seed in range(6) for job in _jobs(seed)]
    expected = [job() for job in jobs]
    order = list(range(len(jobs))) * 2
    random.Random(1).shuffle(order)
    results: dict[int, list[Any]] = {i: [] for i in range(len(jobs))}
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def worker(part: list[int]) -> None:
        try:
            barrier.wait()
            for i in part:
                r = jobs[i]()
                with lock:
                    results[i].append(r)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(order[t::4],)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, want in enumerate(expected):
        assert results[i] == [want, want]


def _runs_without_the_gil(call: Callable[[], Any]) -> tuple[int, float]:
    """Run ``call`` on a thread while this thread keeps timestamps; return how many
    timestamps fall in the middle 60% of the call, and the call's duration (s)."""
    span: list[float] = []
    ready = threading.Event()

    def target() -> None:
        ready.set()
        t0 = time.perf_counter()
        call()
        span.extend([t0, time.perf_counter()])

    th = threading.Thread(target=target)
    stamps: list[float] = []
    th.start()
    ready.wait()
    while th.is_alive():
        stamps.append(time.perf_counter())
    th.join()
    t0, t1 = span
    lo, hi = t0 + 0.2 * (t1 - t0), t1 - 0.2 * (t1 - t0)
    return sum(lo < s < hi for s in stamps), t1 - t0


def test_long_kernels_release_the_gil() -> None:
    previous = native.KERNEL
    native.set_kernel("portable")  # the slowest path: long calls, a clear signal
    try:
        key, nonce = os.urandom(16), os.urandom(8)
        buf = bytearray(os.urandom(24 * MIB))
        calls = {
            "ctr_xor_into": lambda: native.ctr_xor_into(key, nonce, 5, buf, buf),
            "mac": lambda: native.mac(key, nonce, 0, buf, None, True),
            "decrypt_mac_into": lambda: native.decrypt_mac_into(
                key, nonce, 0, buf, buf, None, True
            ),
            "mac_encrypt_into": lambda: native.mac_encrypt_into(
                key, nonce, 0, buf, buf, None, True
            ),
            "prepare_key": lambda: native.prepare_key(bytes(640)),  # 40 blocks
            "hashcash_search": lambda: native.hashcash_search(bytes(48), 0, 0, 3),
        }
        for name, call in calls.items():
            inside, seconds = _runs_without_the_gil(call)
            # With the GIL held for the whole call this thread could not take a single
            # timestamp in the middle of it.
            assert inside > 10, (name, inside, seconds)
    finally:
        native.set_kernel(previous)
