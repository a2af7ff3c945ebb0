"""``megafast bench``: time each crypto kernel on every native kernel and on pure Python."""

from __future__ import annotations

import importlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = ["BenchRow", "run_bench", "format_table"]

_NODES = 1000
_HASHCASH_TRIES = 2
_HASHCASH_BYTES = 48 * 262144  # bytes hashed per hashcash try


@dataclass
class BenchRow:
    """One kernel: ``rates`` maps a column (native kernel name or "python") to units/s."""

    name: str
    unit: str  # "MB/s", "keys/s", "nodes/s", "tries/s"
    rates: dict[str, float] = field(default_factory=dict)

    def ratio(self) -> float | None:
        """Best native rate over the pure-Python rate (None without both)."""
        native = [rate for column, rate in self.rates.items() if column != "python"]
        python = self.rates.get("python")
        if not native or not python:
            return None
        return max(native) / python


def _time(call: Callable[[], Any], budget: float) -> float:
    """Calls per second of ``call`` within about ``budget`` seconds (after one warm-up)."""
    call()
    calls = 0
    start = time.perf_counter()
    deadline = start + budget
    while True:
        call()
        calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def _node_batch(count: int) -> tuple[bytes, list[bytes], list[bytes]]:
    """A master key and ``count`` realistic encrypted file keys and attributes."""
    from Crypto.Cipher import AES

    kek = secrets.token_bytes(16)
    ecb = AES.new(kek, AES.MODE_ECB)
    enc_keys: list[bytes] = []
    enc_attrs: list[bytes] = []
    for index in range(count):
        key = secrets.token_bytes(32)
        attr_key = bytes(a ^ b for a, b in zip(key[:16], key[16:], strict=False))
        plain = b'MEGA{"n":"file-%05d.bin","c":"AAAAAAAAAAAAAAAAAAAAAAAAAA"}' % index
        plain += b"\0" * (-len(plain) % 16)
        enc_attrs.append(AES.new(attr_key, AES.MODE_CBC, iv=b"\0" * 16).encrypt(plain))
        enc_keys.append(ecb.encrypt(key))
    return kek, enc_keys, enc_attrs


def _cases(size: int) -> list[tuple[str, str, float, Callable[[ModuleType], Callable[[], Any]]]]:
    """(name, unit, units per call, make(module) -> call) for every kernel."""
    key = secrets.token_bytes(16)
    nonce = secrets.token_bytes(8)
    src = bytearray(secrets.token_bytes(size))
    dst = bytearray(size)
    password = secrets.token_bytes(16)
    email = b"bench@example.com" + b"\0" * 15
    kek, enc_keys, enc_attrs = _node_batch(_NODES)
    token = secrets.token_bytes(48)
    megabytes = size / 1e6
    return [
        ("prepare_key (v1 login)", "keys/s", 1, lambda m: lambda: m.prepare_key(password)),
        ("stringhash (v1 login)", "hashes/s", 1, lambda m: lambda: m.stringhash(email, key)),
        ("AES-CTR", "MB/s", megabytes, lambda m: lambda: m.ctr_xor_into(key, nonce, 0, src, dst)),
        ("chunk MAC", "MB/s", megabytes, lambda m: lambda: m.mac(key, nonce, 0, src, None, True)),
        (
            "decrypt + MAC (download)",
            "MB/s",
            megabytes,
            lambda m: lambda: m.decrypt_mac_into(key, nonce, 0, src, dst, None, True),
        ),
        (
            "MAC + encrypt (upload)",
            "MB/s",
            megabytes,
            lambda m: lambda: m.mac_encrypt_into(key, nonce, 0, src, dst, None, True),
        ),
        (
            f"decrypt nodes ({_NODES} per call)",
            "nodes/s",
            _NODES,
            lambda m: lambda: m.decrypt_nodes(kek, enc_keys, enc_attrs),
        ),
        (
            "hashcash search (one thread)",
            "MB/s",
            _HASHCASH_TRIES * _HASHCASH_BYTES / 1e6,
            lambda m: lambda: m.hashcash_search(token, 0, 0, _HASHCASH_TRIES),
        ),
    ]


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def run_bench(seconds: float = 3.0, size: int = 1 << 20) -> tuple[list[BenchRow], dict[str, Any]]:
    """Time every kernel; returns the rows and facts about the run (backend, kernels, errors)."""
    if size < 16:
        raise ValueError("the buffer size must be at least 16 bytes")
    pure = _load("megafast.crypto._pure")
    native = _load("megafast.crypto._native")
    if pure is None:
        raise RuntimeError("megafast.crypto._pure cannot be imported")
    columns: list[tuple[str, ModuleType]] = []
    original_kernel = None
    if native is not None:
        original_kernel = native.KERNEL
        columns += [(name, native) for name in native.available_kernels()]
    columns.append(("python", pure))
    cases = _cases(size)
    budget = seconds / (len(cases) * len(columns))
    rows = [BenchRow(name, unit) for name, unit, _, _ in cases]
    try:
        for column, module in columns:
            if module is native:
                native.set_kernel(column)
            for row, (_, _, units, make) in zip(rows, cases, strict=False):
                row.rates[column] = _time(make(module), budget) * units
    finally:
        if native is not None and original_kernel is not None:
            native.set_kernel(original_kernel)
    facts = {
        "native": native is not None,
        "columns": [name for name, _ in columns],
        "default_kernel": original_kernel or "python",
        "size": size,
    }
    return rows, facts


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows: list[BenchRow], columns: list[str]) -> str:
    """Rows as a text table: one column per kernel, then the native/pure ratio."""
    header = ["kernel", "unit", *columns, "native/pure"]
    lines = [header]
    for row in rows:
        ratio = row.ratio()
        lines.append(
            [
                row.name,
                row.unit,
                *(_number(row.rates[column]) for column in columns),
                f"{ratio:.1f}x" if ratio is not None else "-",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        cells = [
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)
