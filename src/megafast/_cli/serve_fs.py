"""``mount`` and ``http``: MEGA as a folder (FUSE) and as a URL (a streaming HTTP server).

Both stand on :class:`megafast.vfs.Backend`: one tree of display paths, one reader with its
memory and disk caches. See docs/MOUNT.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CommandError, UsageError
from .registry import register
from .remote import is_url

if TYPE_CHECKING:
    import argparse

    from .context import Context

__all__ = ["cmd_mount", "cmd_http", "cmd_webdav", "parse_bytes"]

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """``"512M"`` -> bytes (units K, M, G, T: powers of 1024; an optional ``iB``/``B``)."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = value[: len(value) - len(unit)] if unit else value
    try:
        amount = float(number)
    except ValueError:
        raise UsageError(f"not a size: {text!r} (for example 512M or 2G)") from None
    if not 0 <= amount < 1 << 60:
        raise UsageError(f"size out of range: {text!r}")
    return int(amount * _UNITS[unit])


def _cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", help="keep fetched ciphertext in this folder (0700)")
    parser.add_argument("--cache-size", default="1G", help="size cap of --cache-dir (default 1G)")
    parser.add_argument(
        "--memory-cache", default="128M", help="decrypted bytes kept in memory (default 128M)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")


def _mount_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="[REMOTE|LINK] MOUNTPOINT")
    parser.add_argument("--read-only", action="store_true", help="refuse every change")
    parser.add_argument("--allow-other", action="store_true", help="let other users see the mount")
    parser.add_argument(
        "--delete-permanently",
        action="store_true",
        help="unlink and rmdir delete for good (default: move to the Rubbish Bin)",
    )
    parser.add_argument(
        "--upload-queue", help="folder of files waiting for upload (default: per account)"
    )
    parser.add_argument(
        "--keep-spool",
        default="1G",
        metavar="SIZE",
        help="spool space of uploaded big files kept for the next ones (default 1G; 0: none)",
    )
    parser.add_argument("--fuse-debug", action="store_true", help="libfuse's debug output")
    _cache_arguments(parser)


def _http_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("remote", nargs="?", default="/", metavar="REMOTE|LINK")
    parser.add_argument("--addr", default="127.0.0.1:8080", help="HOST:PORT (default %(default)s)")
    parser.add_argument("--token", help="require this bearer token (or ?token=)")
    parser.add_argument("--basic-auth", metavar="USER:PASSWORD", help="require basic auth")
    _cache_arguments(parser)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="megafast: %(message)s",
    )


def _address(args: argparse.Namespace) -> tuple[str, int]:
    host, _, port_text = str(args.addr).rpartition(":")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError("--addr is HOST:PORT, for example 127.0.0.1:8080")
    if args.basic_auth is not None and ":" not in args.basic_auth:
        raise UsageError("--basic-auth is USER:PASSWORD")
    return host.strip("[]"), int(port_text)


def _backend(ctx: Context, remote: str) -> Any:
    from megafast.transfer import TransferConfig
    from megafast.vfs import Backend

    args = ctx.args
    options = {
        "memory_cache": parse_bytes(args.memory_cache),
        "cache_dir": args.cache_dir,
        "disk_cache": parse_bytes(args.cache_size),
    }
    if is_url(remote):
        return Backend(ctx.public_client(), remote, config=TransferConfig(), **options)
    client = ctx.client()
    backend = Backend(client, config=ctx.transfer_config(), **options)
    backend.load()
    if remote.strip("/"):
        handle = backend.view.lookup(remote)
        entry = backend.view.entry(handle) if handle is not None else None
        if handle is None or entry is None or not entry.is_dir:
            raise CommandError(f"no such folder: {remote}")
        backend.select_root(handle)
    return backend


def _queue_folder(ctx: Context, backend: Any) -> Path:
    if ctx.args.upload_queue:
        return Path(ctx.args.upload_queue)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    who = hashlib.sha256(f"{backend.core.api_url}\0{backend.view.root()}".encode()).hexdigest()
    return Path(base) / "megafast" / "mount-uploads" / who[:24]


@register(
    "mount",
    "mount the account (or a folder, or a public folder link) as a local folder",
    description="Runs in the foreground until unmounted (fusermount3 -u) or Ctrl-C; logs "
    "to stderr. Needs libfuse 3 and pip install megafast[mount]. See docs/MOUNT.md.",
    arguments=_mount_arguments,
)
def cmd_mount(ctx: Context) -> int:
    paths: list[str] = ctx.args.paths
    if len(paths) > 2:
        raise UsageError("give at most REMOTE and MOUNTPOINT")
    remote, mountpoint = (paths[0], paths[1]) if len(paths) == 2 else ("/", paths[0])
    _logging(ctx.args.verbose)
    try:
        from megafast.mount import run_mount
    except ImportError as exc:
        raise CommandError(f"mounting needs: pip install 'megafast[mount]' ({exc})") from exc
    if not Path(mountpoint).is_dir():
        raise CommandError(f"the mount point is not a folder: {mountpoint}")
    backend = _backend(ctx, remote)
    read_only = bool(ctx.args.read_only or backend.read_only)
    try:
        run_mount(
            backend,
            mountpoint,
            spool_dir=None if read_only else _queue_folder(ctx, backend),
            keep_spool=parse_bytes(ctx.args.keep_spool),
            read_only=read_only,
            allow_other=ctx.args.allow_other,
            permanent=ctx.args.delete_permanently,
            debug=ctx.args.fuse_debug,
        )
    except (OSError, RuntimeError) as exc:
        raise CommandError(f"mount failed: {exc}") from exc
    return 0


@register(
    "http",
    "serve the account (or a folder, or a public link) over HTTP, streaming",
    description="Prints its URL, then serves GET and HEAD with ranges until Ctrl-C. "
    "Binds 127.0.0.1 unless --addr says otherwise; elsewhere --token or --basic-auth is "
    "required. See docs/MOUNT.md.",
    arguments=_http_arguments,
)
def cmd_http(ctx: Context) -> int:
    from megafast.httpd import MegaHTTPServer

    args = ctx.args
    _logging(args.verbose)
    host, port = _address(args)
    backend = _backend(ctx, args.remote)
    try:
        server = MegaHTTPServer(backend, host, port, token=args.token, basic=args.basic_auth)
    except PermissionError as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.addr}: {exc}") from exc
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        backend.close()
    return 0


def _webdav_arguments(parser: argparse.ArgumentParser) -> None:
    _http_arguments(parser)
    parser.add_argument(
        "--writable",
        action="store_true",
        help="accept PUT, MKCOL, DELETE (to the Rubbish Bin) and MOVE (default: read-only)",
    )


@register(
    "webdav",
    "serve the account (or a folder, or a public link) over WebDAV",
    description="Prints its URL, then serves WebDAV (wsgidav; read-only unless --writable) "
    "until Ctrl-C. Same address and auth rules as http. Needs pip install megafast[webdav]. "
    "See docs/MOUNT.md.",
    arguments=_webdav_arguments,
)
def cmd_webdav(ctx: Context) -> int:
    args = ctx.args
    _logging(args.verbose)
    try:
        from megafast.httpd._webdav import make_webdav_server
    except ImportError as exc:
        raise CommandError(f"WebDAV needs: pip install 'megafast[webdav]' ({exc})") from exc
    host, port = _address(args)
    backend = _backend(ctx, args.remote)
    try:
        server = make_webdav_server(
            backend,
            host,
            port,
            token=args.token,
            basic=args.basic_auth,
            read_only=not args.writable,
        )
    except PermissionError as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.addr}: {exc}") from exc
    shown = f"[{host}]" if ":" in host else host
    print(f"http://{shown}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        backend.close()
    return 0
