"""``megafast serve``: run the emulator in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from typing import Any

__all__ = ["build_parser", "emulator_options", "serve_main"]


def _parse_user(text: str) -> tuple[str, str, int]:
    version = 2
    for suffix, v in ((":v1", 1), (":v2", 2)):
        if text.endswith(suffix):
            text, version = text[: -len(suffix)], v
            break
    email, sep, password = text.partition(":")
    if not sep or "@" not in email:
        raise argparse.ArgumentTypeError("--user wants EMAIL:PASSWORD[:v1]")
    return email, password, version


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("--port wants a number 0-65535 (0: a free port)")
    return port


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="megafast serve",
        description="Run a MEGA emulator (API + transfer servers) on loopback until stopped.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=0, help="port (default: a free one)")
    p.add_argument("--data-dir", help="keep state and blobs here (default: a temporary dir)")
    p.add_argument(
        "--user",
        action="append",
        default=[],
        type=_parse_user,
        metavar="EMAIL:PASSWORD[:v1]",
        help="create this account unless it exists (repeatable; v2 unless :v1)",
    )
    p.add_argument(
        "--hashcash",
        type=int,
        metavar="EASINESS",
        help="challenge new clients with HTTP 402 hashcash of this easiness",
    )
    p.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds added to every answer (API, /sc and transfer requests alike)",
    )
    p.add_argument("--bandwidth", type=float, help="per-connection cap (bytes/s)")
    p.add_argument(
        "--link-bandwidth",
        type=float,
        help="one cap all connections share (bytes/s), for uploads and again for downloads",
    )
    p.add_argument(
        "--drop-every",
        type=float,
        metavar="SECONDS",
        help="drop every connection moving a transfer body on this timer (jittered +-50%%)",
    )
    p.add_argument(
        "--cut-every",
        type=float,
        metavar="SECONDS",
        help="cut every open connection at once on one global clock (as ss -K on a timer)",
    )
    p.add_argument(
        "--cut-phase",
        choices=("connect", "headers", "body"),
        help="cut transfer requests right after connect, during the headers, or before the "
        "first body byte (see --cut-phase-rate)",
    )
    p.add_argument(
        "--cut-phase-rate",
        type=float,
        default=1.0,
        help="fraction of requests --cut-phase cuts (default 1)",
    )
    p.add_argument(
        "--eagain-rate", type=float, default=0.0, help="fraction of API requests answered -3"
    )
    p.add_argument(
        "--api-error-rate",
        type=float,
        default=0.0,
        help="fraction of API requests answered HTTP 500/503/429",
    )
    p.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction of transfer requests answered HTTP 500/503/429",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        metavar="N",
        help="refuse /cs batches of more than N commands (see --max-batch-status)",
    )
    p.add_argument(
        "--max-batch-status",
        type=int,
        choices=(200, 429, 503),
        default=200,
        help="how too big a batch is refused: 200 (answer -3, the default), 429 or 503",
    )
    p.add_argument(
        "--max-connections-per-ip",
        type=int,
        metavar="N",
        help="answer HTTP 429 on connections beyond N open ones per client address",
    )
    p.add_argument(
        "--sc-log-size",
        type=int,
        default=100_000,
        help="action packets kept for /sc (an older sn gets -6; default 100000)",
    )
    p.add_argument(
        "--sc-wait-timeout",
        type=float,
        default=30.0,
        help="seconds the /sc wait URL holds a request when nothing happens (<= 40)",
    )
    p.add_argument(
        "--fresh-rsa-keys", action="store_true", help="a new RSA key pair per account (slower)"
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a certificate from a fresh local authority (see --ca-file)",
    )
    p.add_argument(
        "--plain-transfers",
        action="store_true",
        help="with --tls: download and upload URLs on a second, plain HTTP port",
    )
    p.add_argument(
        "--ca-file",
        metavar="PATH",
        help="with --tls: also copy the authority's certificate here (clients trust it)",
    )
    return p


def emulator_options(args: argparse.Namespace) -> dict[str, Any]:
    """``MegaEmulator`` keyword arguments for the parsed command line."""
    return {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "fresh_rsa_keys": args.fresh_rsa_keys,
        "hashcash_easiness": args.hashcash,
        "sc_log_size": args.sc_log_size,
        "sc_wait_timeout": args.sc_wait_timeout,
        "tls": args.tls,
        "plain_transfers": args.plain_transfers,
        "faults": {
            "latency": args.latency,
            "bandwidth": args.bandwidth,
            "link_bandwidth": args.link_bandwidth,
            "drop_every": args.drop_every,
            "cut_every": args.cut_every,
            "cut_phase": args.cut_phase,
            "cut_phase_rate": args.cut_phase_rate,
            "api_eagain_rate": args.eagain_rate,
            "api_error_rate": args.api_error_rate,
            "transfer_error_rate": args.error_rate,
            "max_batch": args.max_batch,
            "max_batch_status": args.max_batch_status,
            "max_connections_per_ip": args.max_connections_per_ip,
        },
    }


def serve_main(argv: list[str] | None = None) -> int:
    """Entry point of ``megafast serve``; returns the exit status."""
    from .emulator import MegaEmulator

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: argparse has printed why
        return int(exc.code or 0)
    if (args.ca_file or args.plain_transfers) and not args.tls:
        print("megafast serve: --ca-file and --plain-transfers need --tls", file=sys.stderr)
        return 2
    try:
        emu = MegaEmulator(**emulator_options(args))
        emu.start()
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"megafast serve: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for email, password, version in args.user:
            if emu.store.user_by_email(email) is None:
                emu.create_account(email, password, version=version)
        if emu.ca_file is not None:
            if args.ca_file:
                shutil.copyfile(emu.ca_file, args.ca_file)
            print(f"CA certificate: {args.ca_file or emu.ca_file}", file=sys.stderr, flush=True)
        print(emu.api_url, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        emu.stop()
    return 0
