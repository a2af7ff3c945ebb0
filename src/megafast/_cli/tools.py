"""``serve``, ``bench`` and ``info``: the emulator, the kernel timings, the installation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import CommandError
from .options import positive_float, size
from .progress import format_bytes
from .registry import register

if TYPE_CHECKING:
    import argparse

    from .context import Context

__all__ = ["cmd_serve", "cmd_bench", "cmd_info"]


@register(
    "serve",
    "run the MEGA emulator (for tests and demos)",
    description="Run the MEGA emulator; every option is the emulator's own "
    "(megafast serve --help lists them).",
    passthrough=True,
)
def cmd_serve(ctx: Context) -> int:
    try:
        from megafast.testing import serve_main
    except ImportError as exc:
        raise CommandError(f"the emulator is not available: {exc}") from exc
    code = serve_main(list(ctx.args.passthrough))
    return int(code) if isinstance(code, int) else 0


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=3.0,
        metavar="S",
        help="time budget for the whole run (default 3)",
    )
    parser.add_argument(
        "--size", type=size, default=1 << 20, metavar="SIZE", help="buffer size (default 1M)"
    )


@register(
    "bench", "time the crypto kernels, native against pure Python", arguments=_bench_arguments
)
def cmd_bench(ctx: Context) -> int:
    from .bench import format_table, run_bench

    if not ctx.json:
        ctx.status(f"timing the kernels for about {ctx.args.seconds:g} s ...")
    rows, facts = run_bench(ctx.args.seconds, ctx.args.size)
    data = {
        **facts,
        "results": [
            {"name": row.name, "unit": row.unit, "rates": row.rates, "ratio": row.ratio()}
            for row in rows
        ],
    }
    lines = format_table(rows, facts["columns"]).splitlines()
    lines.append("")
    lines.append(
        f"buffer {format_bytes(facts['size'])}; in use: kernel {facts['default_kernel']}"
        + ("" if facts["native"] else " (the native extension is not available)")
    )
    ctx.result(data, lines)
    return 0


@register("info", "show the crypto backend, kernel, CPU features and versions")
def cmd_info(ctx: Context) -> int:
    from . import session as session_store
    from .info import collect_info, format_info

    facts = collect_info(ctx.api_url(session_store.load_session()))
    ctx.result(facts, format_info(facts))
    return 0
