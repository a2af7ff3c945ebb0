"""Regressions found by auditing the native core under AddressSanitizer and UBSan.

The decrypt_nodes cases once crashed, corrupted the heap or read freed memory, so each runs in
a child interpreter: a crash there fails the test instead of killing pytest. The last test
feeds the kernels exact-size buffers (array.array: no spare byte after the data, unlike bytes
and bytearray), so a sanitizer build catches even a one-byte over-read or over-write.
"""

from __future__ import annotations

import array
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import megafast
from megafast.crypto import _pure

native = pytest.importorskip("megafast.crypto._native")

SRC = str(Path(megafast.__file__).resolve().parent.parent)


def run_child(code: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter that imports this megafast; return its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"child exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_decrypt_nodes_sequence_shorter_than_its_len_raises_index_error() -> None:
    # Used to index the list past its end (no bounds check): a segfault.
    out = run_child(
        """
        from collections.abc import Sequence
        from megafast.crypto import _native, _pure

        class Liar(Sequence):
            def __init__(self, item):
                self.item = item
            def __len__(self):
                return 64
            def __getitem__(self, i):
                if i != 0:
                    raise IndexError(i)
                return self.item

        for mod in (_pure, _native):
            try:
                mod.decrypt_nodes(b"k" * 16, Liar(b"e" * 16), Liar(None))
            except IndexError:
                print(mod.__name__.rsplit(".", 1)[1], "IndexError")
        """
    )
    assert out.split("\n") == ["_pure IndexError", "_native IndexError", ""]


def test_decrypt_nodes_huge_claimed_len_does_not_overflow_the_allocations() -> None:
    # len() == 2**62 made every malloc size wrap to 0; the kek loop then wrote 16 KiB past it.
    out = run_child(
        """
        from megafast.crypto import _native, _pure

        class LyingList(list):
            def __len__(self):
                return 2**62

        keks = LyingList([bytes([i % 256]) * 16 for i in range(1024)])
        keys = LyingList([b"e" * 16] * 1024)
        attrs = LyingList([None] * 1024)
        for mod in (_pure, _native):
            try:
                mod.decrypt_nodes(keks, keys, attrs)
            except IndexError:
                print(mod.__name__.rsplit(".", 1)[1], "IndexError")
        """
    )
    assert out.split("\n") == ["_pure IndexError", "_native IndexError", ""]


def test_decrypt_nodes_keeps_items_alive_while_another_thread_replaces_them() -> None:
    # The GIL is released while the kernels read the items: a thread that replaced list items
    # meanwhile freed them under the kernels (wrong keys from reused memory, or a crash).
    out = run_child(
        """
        import os, threading
        from megafast.crypto import _native

        N = 50_000
        kek = os.urandom(16)
        keys = [os.urandom(16) for _ in range(N)]
        attrs = [os.urandom(64) for _ in range(N)]
        expected = _native.decrypt_nodes(kek, list(keys), list(attrs))
        stop = threading.Event()
        junk = []

        def churn():
            # equal new objects (the right answer never changes); junk reuses the old blocks
            while not stop.is_set():
                for i in range(N - 1, -1, -1):
                    keys[i] = keys[i][:8] + keys[i][8:]
                    attrs[i] = attrs[i][:32] + attrs[i][32:]
                    junk.append(os.urandom(16))
                    junk.append(os.urandom(64))
                junk.clear()

        t = threading.Thread(target=churn)
        t.start()
        try:
            bad = sum(_native.decrypt_nodes(kek, keys, attrs) != expected for _ in range(10))
        finally:
            stop.set()
            t.join()
        print("mismatching calls:", bad)
        """
    )
    assert out.strip() == "mismatching calls: 0"


TOP = 1 << 68  # bytes addressable by the 64-bit CTR block counter
MIB = 1 << 20
EDGES = [*_pure._SMALL_STARTS, _pure._BIG_START + MIB, _pure.chunk_span(TOP - 1)[0], TOP]
KERNEL_VARIANTS = [k for k in native.available_kernels() if k != "vaes"] + [
    f"vaes-{v}" for v in native._vaes_variants()
]


def exact(data: bytes, pad: int) -> object:
    """An exact-size buffer holding data; with pad > 0, a view that starts pad bytes in."""
    a = array.array("B", bytes(pad) + data)
    return memoryview(a)[pad:] if pad else a


@pytest.mark.parametrize("variant", KERNEL_VARIANTS)
def test_kernels_on_exact_size_buffers_at_chunk_and_counter_edges_match_pure(variant: str) -> None:
    name, _, vaes = variant.partition("-")
    previous = native.KERNEL
    native.set_kernel(name)
    native._set_vaes_variant(vaes or "auto")
    rng = random.Random(variant)
    try:
        for case in range(120):
            op = case % 4  # ctr, mac, decrypt_mac, mac_encrypt
            n = rng.choice([rng.randrange(0, 600), rng.randrange(0, 140_000)])
            off = rng.choice(EDGES) + rng.randrange(-4096, 4096)
            off = min(max(off, 0), TOP - max(n, 1))
            final = True
            if op:
                off -= off % 16
                final = rng.random() < 0.5
                n -= 0 if final else n % 16
            key, nonce, data = rng.randbytes(16), rng.randbytes(8), rng.randbytes(n)
            pad = rng.choice([0, 1, 7, 15])
            inplace = op != 1 and rng.random() < 0.3
            got_src, want_src = exact(data, pad), exact(data, pad)
            got_dst, want_dst = (
                (got_src, want_src) if inplace else (exact(bytes(n), 0), exact(bytes(n), 0))
            )
            where = (variant, case, off, n, final, pad, inplace)
            if op == 0:
                native.ctr_xor_into(key, nonce, off, got_src, got_dst)
                _pure.ctr_xor_into(key, nonce, off, want_src, want_dst)
                assert bytes(got_dst) == bytes(want_dst), where
                continue
            mac_in = None if _pure.chunk_span(off)[0] == off else rng.randbytes(16)
            if op == 1:
                got = native.mac(key, nonce, off, got_src, mac_in, final)
                want = _pure.mac(key, nonce, off, want_src, mac_in, final)
            else:
                fn = "decrypt_mac_into" if op == 2 else "mac_encrypt_into"
                got = getattr(native, fn)(key, nonce, off, got_src, got_dst, mac_in, final)
                want = getattr(_pure, fn)(key, nonce, off, want_src, want_dst, mac_in, final)
                assert bytes(got_dst) == bytes(want_dst), where
            assert got == want, where
    finally:
        native._set_vaes_variant("auto")
        native.set_kernel(previous)
