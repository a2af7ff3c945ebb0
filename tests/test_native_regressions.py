"""Regressions found by auditing the native core under AddressSanitizer and UBSan.

Each case once crashed, corrupted the heap or read freed memory in ``_native.decrypt_nodes``,
so each runs in a child interpreter: a crash there fails the test instead of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import megafast

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
