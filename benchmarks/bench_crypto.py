"""Crypto speed, side by side in one run: megafast's native kernels (each of them), its
pure-Python twin (pycryptodome used well: whole-chunk calls), mega.py 1.0.8's algorithm, and
plain pycryptodome where that is the natural baseline.

    PYTHONPATH=src pytest benchmarks/bench_crypto.py --benchmark-enable \
        --benchmark-json=/tmp/bench_crypto.json
    python benchmarks/report_crypto.py /tmp/bench_crypto.json       # one table, with ratios

Every benchmark stores ``extra_info["bytes"]`` (or ``["items"]``) so that the report can give
MB/s (or time per item); MB = 10**6 bytes. The mega.py download loop is sized to stay short
(4 MiB); its MB/s compares directly with the 64 MiB runs of the others.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import random
import struct
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from Crypto.Cipher import AES
from Crypto.Util import Counter

from megafast import crypto as mf_crypto
from megafast.crypto import _backend, _pure

try:
    from megafast.crypto import _native
except ImportError:  # pure-only build: native rows are skipped
    _native = None

mega_crypto = pytest.importorskip("mega.crypto")

MIB = 1 << 20
BIG = 64 * MIB
MEGAPY_SIZE = 4 * MIB
PASSWORD = "correct-horse-battery!"  # 22 characters: 24 bytes of a32 = 2 AES key blocks
EMAIL = "someone.with.a.long.name@example.com"
NATIVE_KERNELS = _native.available_kernels() if _native is not None else []
IMPLS = [f"native-{k}" for k in NATIVE_KERNELS] + ["pure"]


def _record(benchmark: Any, nbytes: int = 0, items: int = 0, **info: Any) -> None:
    if nbytes:
        benchmark.extra_info["bytes"] = nbytes
    if items:
        benchmark.extra_info["items"] = items
    benchmark.extra_info.update(info)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and nbytes:
        benchmark.extra_info["MB_per_s"] = round(nbytes / stats.stats.median / 1e6, 1)


@pytest.fixture
def impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The kernel module for an implementation name, with that native kernel selected."""
    name: str = request.param
    if name == "pure":
        yield _pure
        return
    if _native is None:
        pytest.skip("native extension not built")
    previous = _native.KERNEL
    _native.set_kernel(name.split("-", 1)[1])
    try:
        yield _native
    finally:
        _native.set_kernel(previous)


@pytest.fixture(scope="module")
def big() -> tuple[bytes, bytes, bytearray, bytearray]:
    key, nonce = os.urandom(16), os.urandom(8)
    return key, nonce, bytearray(os.urandom(BIG)), bytearray(BIG)


def _pw_bytes() -> bytes:
    words = mf_crypto.str_to_a32_mega(PASSWORD)
    return struct.pack(f">{len(words)}I", *words)


# -- password key and login hash ------------------------------------------------------------


@pytest.mark.benchmark(group="prepare_key (22-char password, 2 blocks)")
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_prepare_key(benchmark: Any, impl: ModuleType) -> None:
    pw = _pw_bytes()
    assert len(pw) == 24
    if impl is _pure:
        benchmark.pedantic(impl.prepare_key, args=(pw,), rounds=3, iterations=1)
    else:
        benchmark(impl.prepare_key, pw)
    _record(benchmark, items=2, unit="16-byte block")


@pytest.mark.benchmark(group="prepare_key (22-char password, 2 blocks)")
def test_prepare_key_megapy(benchmark: Any) -> None:
    arr = mega_crypto.str_to_a32(PASSWORD)
    result = benchmark.pedantic(mega_crypto.prepare_key, args=(arr,), rounds=1, iterations=1)
    assert struct.pack(">4I", *result) == _pure.prepare_key(_pw_bytes())
    _record(benchmark, items=2, unit="16-byte block", impl="mega.py")


@pytest.mark.benchmark(group="stringhash")
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_stringhash(benchmark: Any, impl: ModuleType) -> None:
    data = EMAIL.encode() + bytes(-len(EMAIL) % 4)
    benchmark(impl.stringhash, data, bytes(range(16)))
    _record(benchmark, items=1)


@pytest.mark.benchmark(group="stringhash")
def test_stringhash_megapy(benchmark: Any) -> None:
    key = mega_crypto.str_to_a32(bytes(range(16)))
    benchmark.pedantic(mega_crypto.stringhash, args=(EMAIL, key), rounds=3, iterations=1)
    _record(benchmark, items=1, impl="mega.py")


# -- file content ---------------------------------------------------------------------------


@pytest.mark.benchmark(group="chunk MAC alone, 64 MiB")
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_mac(benchmark: Any, impl: ModuleType, big: tuple) -> None:
    key, nonce, src, _ = big
    benchmark(impl.mac, key, nonce, 0, src, None, True)
    _record(benchmark, BIG)


@pytest.mark.benchmark(group="fused decrypt+MAC, 64 MiB")
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_decrypt_mac(benchmark: Any, impl: ModuleType, big: tuple) -> None:
    key, nonce, src, dst = big
    benchmark(impl.decrypt_mac_into, key, nonce, 0, src, dst, None, True)
    _record(benchmark, BIG)


@pytest.mark.benchmark(group="fused MAC+encrypt, 64 MiB")
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_mac_encrypt(benchmark: Any, impl: ModuleType, big: tuple) -> None:
    key, nonce, src, dst = big
    benchmark(impl.mac_encrypt_into, key, nonce, 0, src, dst, None, True)
    _record(benchmark, BIG)


@pytest.mark.benchmark(group="plain AES-CTR, 64 MiB, into a preallocated buffer")
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_ctr(benchmark: Any, impl: ModuleType, big: tuple) -> None:
    key, nonce, src, dst = big
    benchmark(impl.ctr_xor_into, key, nonce, 0, src, dst)
    _record(benchmark, BIG)


def _megapy_download_decrypt_mac(k_str: bytes, iv: tuple[int, int], data: bytes) -> bytes:
    """mega.py 1.0.8's download loop (Mega._download_file), rewritten here with the same
    calls: one CTR call per chunk, then one pycryptodome CBC call per 16-byte block, and
    the per-chunk fold. Writes to memory instead of a temporary file (favours mega.py).
    Returns the meta-MAC (8 bytes)."""
    size = len(data)
    counter = Counter.new(128, initial_value=((iv[0] << 32) + iv[1]) << 64)
    ctr = AES.new(k_str, AES.MODE_CTR, counter=counter)
    folder = AES.new(k_str, AES.MODE_CBC, bytes(16))
    chain_iv = struct.pack(">4I", iv[0], iv[1], iv[0], iv[1])
    out = io.BytesIO()
    fm = bytes(16)
    for start, length in mega_crypto.get_chunks(size):
        chunk = ctr.decrypt(data[start : start + length])
        out.write(chunk)
        chain = AES.new(k_str, AES.MODE_CBC, chain_iv)
        pos = 0
        for pos in range(0, len(chunk) - 16, 16):
            chain.encrypt(chunk[pos : pos + 16])
        pos = pos + 16 if size > 16 else 0
        last = chunk[pos : pos + 16]
        last += bytes(-len(last) % 16)
        fm = folder.encrypt(chain.encrypt(last))
    a, b, c, d = struct.unpack(">4I", fm)
    return struct.pack(">2I", a ^ b, c ^ d)


@pytest.mark.benchmark(group="fused decrypt+MAC, 64 MiB")
def test_decrypt_mac_megapy(benchmark: Any) -> None:
    key, nonce = os.urandom(16), os.urandom(8)
    data = os.urandom(MEGAPY_SIZE)
    iv = struct.unpack(">2I", nonce)
    meta = benchmark.pedantic(
        _megapy_download_decrypt_mac, args=(key, iv, data), rounds=1, iterations=1
    )
    done, _ = _pure.decrypt_mac_into(key, nonce, 0, data, bytearray(len(data)), None, True)
    assert meta == _pure.fold_meta_mac(key, b"".join(m for _, m in done))
    _record(benchmark, MEGAPY_SIZE, impl="mega.py", note="4 MiB")


# -- two threads ----------------------------------------------------------------------------

SPLIT = 4608 * 1024 + 27 * MIB  # a chunk boundary near the middle of 64 MiB


@pytest.mark.benchmark(group="fused decrypt+MAC, 64 MiB, threads")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_decrypt_mac_threads(benchmark: Any, impl: ModuleType, big: tuple, threads: int) -> None:
    key, nonce, src, dst = big
    s, d = memoryview(src), memoryview(dst)

    def one() -> None:
        impl.decrypt_mac_into(key, nonce, 0, s, d, None, True)

    def two() -> None:
        t = threading.Thread(
            target=impl.decrypt_mac_into, args=(key, nonce, 0, s[:SPLIT], d[:SPLIT], None, False)
        )
        t.start()
        impl.decrypt_mac_into(key, nonce, SPLIT, s[SPLIT:], d[SPLIT:], None, True)
        t.join()

    benchmark(one if threads == 1 else two)
    _record(benchmark, BIG, threads=threads)


# -- node decryption ------------------------------------------------------------------------

NODES = 100_000


@pytest.fixture(scope="module")
def nodes() -> tuple[bytes, list[bytes], list[bytes]]:
    rnd = random.Random(5)
    master = rnd.randbytes(16)
    ecb = AES.new(master, AES.MODE_ECB)
    enc_keys, enc_attrs = [], []
    for i in range(NODES):
        key = rnd.randbytes(32 if i % 4 else 16)
        ak = (
            bytes(a ^ b for a, b in zip(key[:16], key[16:], strict=True)) if len(key) == 32 else key
        )
        name = f"file {i:06d} {'x' * rnd.randrange(0, 30)}.jpg"
        plain = b'MEGA{"n":"' + name.encode() + b'","c":"AAAAAAAAAAAAAAAAAAAAAAAA"}'
        plain += bytes(-len(plain) % 16)
        enc_keys.append(ecb.encrypt(key))
        enc_attrs.append(AES.new(ak, AES.MODE_CBC, iv=bytes(16)).encrypt(plain))
    return master, enc_keys, enc_attrs


@pytest.mark.benchmark(group="node decryption, 100,000 nodes (kernel)")
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_decrypt_nodes_kernel(benchmark: Any, impl: ModuleType, nodes: tuple) -> None:
    if impl is _pure:
        out = benchmark.pedantic(impl.decrypt_nodes, args=nodes, rounds=3, iterations=1)
    else:
        out = benchmark(impl.decrypt_nodes, *nodes)
    assert all(a is not None for _, a in out)
    _record(benchmark, items=NODES)


@pytest.fixture
def backend_kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pure":
        monkeypatch.setattr(_backend, "kernels", _pure)
    elif _native is None:
        pytest.skip("native extension not built")
    else:
        monkeypatch.setattr(_backend, "kernels", _native)
    return request.param


@pytest.mark.benchmark(group="node decryption, 100,000 nodes (public API, JSON parsed)")
@pytest.mark.parametrize("backend_kernels", ["native", "pure"], indirect=True)
def test_decrypt_nodes_public(benchmark: Any, backend_kernels: str, nodes: tuple) -> None:
    out = benchmark.pedantic(mf_crypto.decrypt_nodes, args=nodes, rounds=3, iterations=1)
    assert out[7][1]["n"].startswith("file 000007")
    _record(benchmark, items=NODES, impl=backend_kernels)


@pytest.mark.benchmark(group="node decryption, 100,000 nodes (public API, JSON parsed)")
def test_decrypt_nodes_megapy(benchmark: Any, nodes: tuple) -> None:
    """mega.py's per-node calls (decrypt_key, key folding, decrypt_attr) on 10,000 nodes."""
    master, enc_keys, enc_attrs = nodes
    count = 10_000
    master_a32 = mega_crypto.str_to_a32(master)

    def run() -> list[Any]:
        out = []
        for ek, ea in zip(enc_keys[:count], enc_attrs[:count], strict=True):
            key = mega_crypto.decrypt_key(mega_crypto.str_to_a32(ek), master_a32)
            if len(key) == 8:
                k = (key[0] ^ key[4], key[1] ^ key[5], key[2] ^ key[6], key[3] ^ key[7])
            else:
                k = key
            out.append(mega_crypto.decrypt_attr(ea, k))
        return out

    out = benchmark.pedantic(run, rounds=1, iterations=1)
    assert out[7]["n"].startswith("file 000007")
    _record(benchmark, items=count, impl="mega.py", note="10,000 nodes")


# -- hashcash -------------------------------------------------------------------------------

HASHCASH_EASINESS = 192
HASHCASH_ROUNDS = 7


def _challenges() -> Callable[[], tuple[tuple[str, int], dict[str, Any]]]:
    """The same sequence of challenges for every implementation (paired comparison)."""
    rnd = random.Random(192)
    tokens = [rnd.randbytes(48) for _ in range(HASHCASH_ROUNDS + 1)]
    it = iter(tokens)

    def setup() -> tuple[tuple[str], dict[str, Any]]:
        token = mf_crypto.base64_url_encode(next(it))
        return (f"1:{HASHCASH_EASINESS}:1700000000:{token}",), {}

    return setup


@pytest.mark.benchmark(group="hashcash, easiness 192 (median solve)")
@pytest.mark.parametrize("threads", [0, 1], ids=["all-cores", "one-thread"])
@pytest.mark.parametrize("backend_kernels", ["native", "pure"], indirect=True)
def test_hashcash_solve(benchmark: Any, backend_kernels: str, threads: int) -> None:
    def solve(header: str) -> str:
        return mf_crypto.solve_hashcash(header, threads=threads or None)

    benchmark.pedantic(solve, setup=_challenges(), rounds=HASHCASH_ROUNDS, iterations=1)
    _record(benchmark, items=1, threads=threads or os.cpu_count(), impl=backend_kernels)


def _solve_in_batches(token: bytes, threshold: int, threads: int, batch: int) -> int:
    """Ordered batches on a thread pool, like solve_hashcash, with a chosen batch size."""
    search = _native.hashcash_search
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        pending: list[concurrent.futures.Future[int]] = []
        nxt = 0
        while True:
            while len(pending) < 2 * threads:
                pending.append(pool.submit(search, token, threshold, nxt, batch))
                nxt += batch
            n = pending.pop(0).result()
            if n >= 0:
                for f in pending:
                    f.cancel()
                return n


@pytest.mark.benchmark(group="hashcash, easiness 192 (median solve)")
@pytest.mark.parametrize("threads", [0, 1], ids=["all-cores", "one-thread"])
def test_hashcash_solve_kernel_batches(benchmark: Any, threads: int) -> None:
    """What solve_hashcash gives with batches of HASHCASH_BATCH (32 with AVX-512)."""
    if _native is None:
        pytest.skip("native extension not built")
    batch = getattr(_native, "HASHCASH_BATCH", 4)
    workers = threads or os.cpu_count() or 1
    threshold = mf_crypto.hashcash_threshold(HASHCASH_EASINESS)

    def solve(header: str) -> int:
        token = mf_crypto.base64_url_decode(header.split(":")[3])
        return _solve_in_batches(token, threshold, workers, batch)

    benchmark.pedantic(solve, setup=_challenges(), rounds=HASHCASH_ROUNDS, iterations=1)
    _record(benchmark, items=1, threads=workers, impl=f"native kernel, batches of {batch}")


@pytest.mark.benchmark(group="hashcash tries (12 MiB of SHA-256 each), one thread")
@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_hashcash_try(benchmark: Any, impl: ModuleType) -> None:
    token = bytes(range(48))
    tries = 32 if impl is _native else 4
    benchmark.pedantic(impl.hashcash_search, args=(token, 0, 0, tries), rounds=3, iterations=1)
    _record(benchmark, nbytes=tries * (4 + 48 * 262144), items=tries, unit="try")
