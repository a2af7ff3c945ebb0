"""``megafast demo``: a round trip through an embedded emulator, timed and verified."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CommandError
from .options import size as size_type
from .options import transfer_options
from .progress import TransferProgress, format_bytes, format_rate
from .registry import register

if TYPE_CHECKING:
    import argparse

    from .context import Context

__all__ = ["cmd_demo", "write_random_file", "same_content"]

_BLOCK = 16 << 20


def write_random_file(path: Path, size: int, progress: TransferProgress | None = None) -> None:
    """Write ``size`` bytes of AES-CTR key stream (fast, incompressible) to ``path``."""
    from Crypto.Cipher import AES

    stream = AES.new(secrets.token_bytes(16), AES.MODE_CTR, nonce=secrets.token_bytes(8))
    zeros = bytes(min(_BLOCK, size))
    written = 0
    with open(path, "wb") as handle:
        while written < size:
            n = min(_BLOCK, size - written)
            handle.write(stream.encrypt(zeros[:n]))
            written += n
            if progress is not None:
                progress(written, size)


def same_content(first: Path, second: Path) -> bool:
    """Whether two files hold the same bytes (compared block by block)."""
    if first.stat().st_size != second.stat().st_size:
        return False
    with open(first, "rb") as a, open(second, "rb") as b:
        while True:
            block = a.read(_BLOCK)
            if block != b.read(_BLOCK):
                return False
            if not block:
                return True


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size", type=size_type, default=1 << 30, metavar="SIZE", help="file size (default 1G)"
    )
    transfer_options(parser)


@register(
    "demo",
    "upload and download through an embedded emulator, and time it",
    description="Start an embedded emulator, create an account, upload and download a "
    "generated\nfile, verify it and print the speeds and the kernel in use. No network needed.",
    arguments=_demo_arguments,
)
def cmd_demo(ctx: Context) -> int:
    import warnings

    from megafast.client import Mega
    from megafast.testing import MegaEmulator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reported below as the backend
        from megafast import crypto

    size: int = ctx.args.size
    config = ctx.transfer_config()
    workdir = Path(tempfile.mkdtemp(prefix="megafast-demo-"))
    try:
        free = shutil.disk_usage(workdir).free
        if free < 3 * size + (64 << 20):
            raise CommandError(
                f"not enough free space in {workdir.parent} for the demo "
                f"({format_bytes(3 * size)} needed); try a smaller --size"
            )
        source = workdir / "demo.bin"
        copy_dir = workdir / "downloaded"
        copy_dir.mkdir()
        with MegaEmulator(data_dir=workdir / "emulator") as emulator:
            ctx.status(
                f"megafast demo: {format_bytes(size)} through an embedded emulator at "
                f"{emulator.api_url} (backend {crypto.BACKEND}, kernel {crypto.KERNEL})"
            )
            email = "demo@megafast.invalid"
            password = secrets.token_urlsafe(16)
            emulator.create_account(email, password)
            client = Mega(api_url=emulator.api_url)
            client.login(email, password)

            with TransferProgress("generate", size, ctx.progress) as progress:
                write_random_file(source, size, progress)
            with TransferProgress("upload", size, ctx.progress) as upload:
                answer = client.upload(source, progress=upload, config=config)
            handle = answer["f"][0]["h"]
            node = (handle, client.find(handle=handle))
            with TransferProgress("download", size, ctx.progress) as download:
                copy = client.download(node, copy_dir, progress=download, config=config)
            verified = same_content(source, Path(copy))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    result: dict[str, Any] = {
        "size": size,
        "backend": crypto.BACKEND,
        "kernel": crypto.KERNEL,
        "connections": config.connections,
        "upload_seconds": round(upload.elapsed, 3),
        "upload_mb_per_s": round(size / upload.elapsed / 1e6, 1) if upload.elapsed else None,
        "download_seconds": round(download.elapsed, 3),
        "download_mb_per_s": (
            round(size / download.elapsed / 1e6, 1) if download.elapsed else None
        ),
        "verified": verified,
    }
    lines = [
        f"upload    {format_bytes(size)} in {upload.elapsed:.2f} s: "
        f"{format_rate(size, upload.elapsed)}",
        f"download  {format_bytes(size)} in {download.elapsed:.2f} s: "
        f"{format_rate(size, download.elapsed)}",
        f"kernel    {crypto.KERNEL} ({crypto.BACKEND} backend), {config.connections} connections",
        "verified: the download matches the original byte for byte"
        if verified
        else "NOT VERIFIED: the download differs from the original",
    ]
    ctx.result(result, lines)
    if not verified:
        raise CommandError("the downloaded file differs from the uploaded one")
    return 0
