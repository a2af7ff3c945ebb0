"""MEGA's own megacli (meganz/sdk, unpatched) and megafast side by side on one emulator.

Both clients move the same amount of data (default 256 MiB) up and down against one
``megafast serve --tls --plain-transfers`` (its own process, state on /dev/shm: the API over
HTTPS as megacli insists, transfers over plain HTTP so that Python's TLS in the emulator does not
cap both clients; ``--tls-transfers`` for HTTPS throughout), alternating round by round;
every download is checked byte for byte against its source. Target: megafast at least 3x
megacli in both directions. megacli comes from ``scripts/interop_megacli.sh`` (it builds it).

    PYTHONPATH=src python benchmarks/bench_megacli.py --megacli /path/to/megacli
    PYTHONPATH=src python benchmarks/bench_megacli.py --megacli ... --size-mib 256 --rounds 3

An upload is timed from the command to the moment the client holds the new node (megacli: it
prints the node its own ``t`` packet brought; megafast: ``upload`` returns); a download from
the command to the complete file on disk (megacli writes a temporary file and renames it after
its MAC check; megafast returns after its own). Each megacli round uploads fresh random bytes
(the SDK would otherwise copy the node it already has instead of uploading).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from interop_megacli import V2, Emulator, Megacli, wait_for_file  # noqa: E402

MiB = 1 << 20
TARGET = 3.0


def _random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            block = secrets.token_bytes(min(left, 16 * MiB))
            fh.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(16 * MiB):
            digest.update(block)
    return digest.hexdigest()


def _rate(size: int, seconds: float) -> float:
    return size / MiB / seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--megacli", default=os.environ.get("MEGACLI"), help="the megacli binary")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--tls-transfers",
        action="store_true",
        help="transfers over HTTPS too (default: the API over HTTPS, transfers over plain HTTP, "
        "so the emulator's Python TLS does not cap both clients)",
    )
    args = ap.parse_args(argv)
    if not args.megacli:
        ap.error("--megacli (or MEGACLI) is required: build it with scripts/interop_megacli.sh")
    size = args.size_mib * MiB
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="bench-megacli-", dir=base))
    (work / "cli").mkdir()
    (work / "mf").mkdir()
    emu = Emulator(work, plain_transfers=not args.tls_transfers)
    os.environ["REQUESTS_CA_BUNDLE"] = str(emu.ca_file)
    os.environ.pop("CURL_CA_BUNDLE", None)
    from megafast import Mega

    figures: dict[str, list[float]] = {k: [] for k in ("cli_up", "cli_down", "mf_up", "mf_down")}
    cli = Megacli(args.megacli, work / "cli", work / "megacli.log")
    try:
        cli.wait(r"MEGA|>", 0, 30)
        cli.run(f"apiurl {emu.api_url}/ true", r"\n", 10)
        cli.run(f"login {V2[0]} {V2[1]}", r"Login successful\.", 120)
        cli.wait(r"users? received or updated", 0, 120)  # tree loaded, /sc caught up
        mega = Mega(api_url=emu.api_url).login(*V2)
        for r in range(args.rounds):
            # megacli
            src = work / f"cli_{r}.bin"
            digest = _random_file(src, size)
            began = time.monotonic()
            mark = cli.send(f"put {src}")
            cli.wait(r"1 file added or updated", mark, 3600)
            figures["cli_up"].append(_rate(size, time.monotonic() - began))
            target = work / "cli" / src.name
            began = time.monotonic()
            cli.send(f"get {src.name}")
            if not wait_for_file(target, size, 3600):
                raise RuntimeError("megacli's download did not arrive")
            figures["cli_down"].append(_rate(size, time.monotonic() - began))
            if _sha(target) != digest:
                raise RuntimeError("megacli downloaded different bytes")
            target.unlink()
            src.unlink()
            # megafast
            src = work / f"mf_{r}.bin"
            digest = _random_file(src, size)
            began = time.monotonic()
            node = mega.upload(str(src))
            figures["mf_up"].append(_rate(size, time.monotonic() - began))
            began = time.monotonic()
            got = mega.download(mega.find(src.name), str(work / "mf"))
            figures["mf_down"].append(_rate(size, time.monotonic() - began))
            if _sha(got) != digest:
                raise RuntimeError("megafast downloaded different bytes")
            got.unlink()
            src.unlink()
            del node
            print(
                f"round {r + 1}: megacli up {figures['cli_up'][-1]:.0f} down "
                f"{figures['cli_down'][-1]:.0f} MiB/s; megafast up {figures['mf_up'][-1]:.0f} "
                f"down {figures['mf_down'][-1]:.0f} MiB/s (byte-identical)",
                flush=True,
            )
    finally:
        cli.close()
        emu.close()
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in figures.items()}
    ok = True
    how = "HTTPS" if args.tls_transfers else "HTTP (API over HTTPS)"
    print(f"\n{args.size_mib} MiB over {how}, {args.rounds} round(s), medians in MiB/s:")
    print(f"{'':10}{'megacli':>10}{'megafast':>10}{'ratio':>8}  target >= {TARGET:.0f}x")
    for way in ("up", "down"):
        ratio = med[f"mf_{way}"] / med[f"cli_{way}"]
        ok &= ratio >= TARGET
        print(
            f"{way:10}{med[f'cli_{way}']:>10.0f}{med[f'mf_{way}']:>10.0f}{ratio:>7.1f}x  "
            f"{'met' if ratio >= TARGET else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
