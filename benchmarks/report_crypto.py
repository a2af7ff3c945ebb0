"""Print the crypto benchmark results as one Markdown table, with speed ratios.

    PYTHONPATH=src pytest benchmarks/bench_crypto.py --benchmark-enable \
        --benchmark-json=/tmp/bench_crypto.json
    python benchmarks/report_crypto.py /tmp/bench_crypto.json

Per row: the median time, the throughput (MB/s, MB = 10**6 bytes) or the time per item, and
how many times faster than the pure twin ("x pure") and than mega.py ("x mega.py") in the
same group, compared per byte or per item. Thread rows also give the gain over one thread.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _label(bench: dict[str, Any]) -> str:
    params = bench.get("params") or {}
    info = bench.get("extra_info") or {}
    name = str(info.get("impl") or params.get("impl") or params.get("backend_kernels") or "")
    if "megapy" in bench["name"]:
        name = "mega.py 1.0.8 algorithm"
    elif name == "pure":
        name = "pure twin (hashlib)" if "hashcash" in bench["name"] else "pure twin (pycryptodome)"
    if "threads" in params:
        t = params["threads"]
        name += f", {t or info.get('threads')} thread{'s' if t != 1 else ''}"
        if "hashcash" in bench["name"]:
            name += " (all cores)" if t == 0 else ""
    if info.get("note"):
        name += f" [{info['note']}]"
    return name


def _time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _per_unit(bench: dict[str, Any]) -> float:
    info = bench.get("extra_info") or {}
    units = info.get("bytes") or info.get("items") or 1
    return bench["stats"]["median"] / units


def report(data: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for bench in data["benchmarks"]:
        groups.setdefault(bench["group"] or bench["name"], []).append(bench)
    lines = [
        "| work | implementation | median | min | throughput / per item | x pure | x mega.py |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, benches in groups.items():
        pure = [b for b in benches if _label(b).startswith("pure")]
        megapy = [b for b in benches if "megapy" in b["name"]]
        for b in sorted(benches, key=_per_unit):
            info = b.get("extra_info") or {}
            median = b["stats"]["median"]
            rate = ""
            if info.get("bytes"):
                rate = f"{info['bytes'] / median / 1e6:,.0f} MB/s"
            if info.get("items", 1) > 1:
                per = f"{_time(median / info['items'])} per {info.get('unit', 'item')}"
                rate = f"{rate} ({per})" if rate else per
            base = [
                p
                for p in pure
                if (p.get("params") or {}).get("threads") == (b.get("params") or {}).get("threads")
            ]
            vs_pure = f"{_per_unit(base[0]) / _per_unit(b):.1f}" if base else ""
            vs_mega = f"{_per_unit(megapy[0]) / _per_unit(b):.0f}" if megapy else ""
            label = _label(b)
            threads = (b.get("params") or {}).get("threads")
            if threads and threads != 1 and "hashcash" not in b["name"]:
                one = [
                    x
                    for x in benches
                    if (x.get("params") or {}).get("threads") == 1
                    and (x.get("params") or {}).get("impl") == b["params"].get("impl")
                ]
                if one:
                    gain = one[0]["stats"]["median"] / median
                    gain_min = one[0]["stats"]["min"] / b["stats"]["min"]
                    label += f" ({gain:.2f}x one thread; {gain_min:.2f}x by min)"
            lines.append(
                f"| {group} | {label} | {_time(median)} | {_time(b['stats']['min'])} | {rate} "
                f"| {vs_pure} | {vs_mega} |"
            )
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", "")
    head = (
        f"Crypto benchmarks ({cpu}, {machine.get('python_version', '')}); medians unless said.\n\n"
    )
    return head + "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        print(report(json.load(f)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
