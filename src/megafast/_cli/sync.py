"""``megafast sync LOCAL REMOTE`` (up) / ``megafast sync REMOTE LOCAL`` (down) and
``megafast versions PATH [--remove]``, registered with the command registry on import
(the registry's ``MODULES`` names this module to make them part of ``megafast``).

Exit codes: 0 done; 1 failure; 2 usage; 3 the sync finished but some paths were skipped
(unreadable, symlinks, names that cannot exist on the other side) or failed: the report
lists them.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from .errors import CommandError, ExitCode, UsageError
from .options import transfer_options
from .progress import TransferProgress, format_bytes
from .registry import register

if TYPE_CHECKING:
    from .context import Context

__all__ = ["EXIT_PARTIAL", "cmd_sync", "cmd_versions", "split_direction"]

EXIT_PARTIAL = ExitCode.PARTIAL
REMOTE_PREFIX = "mega:"

_SYNC_HELP = """\
Sync, moving only what changed (MEGA's fingerprint and the size decide; an
unchanged size and mtime skip reading a file).

  megafast sync ~/photos /backup/photos       up: make the MEGA folder match the local one
  megafast sync /backup/photos ~/photos       down: make the local folder match MEGA
  megafast sync --both ~/photos /photos       two-way: changes on either side go across
  megafast sync --both --watch ~/photos /photos   two-way, and keep running

The side that exists as a local folder is the local side; write the remote one as
mega:/path when both exist locally. A changed remote file is kept as a version
(--replace: replaced). Content already in the account is copied on the server, a renamed
file is moved there. Nothing is deleted without --delete: remote files go to the Rubbish
Bin, local ones to LOCAL/.megafast-trash/<date>/ (--delete-permanently: removed).
Patterns are gitignore-style, after LOCAL/.megafastignore, last match wins.
When both sides changed a file since the last run, both are kept (the remote copy gets a
"(conflict <date>)" name). Exit code 3: finished, but some paths were skipped or failed.

Two-way (--both LOCAL REMOTE): what changed on either side since the last agreed state
goes to the other; a deletion only where the other side did not change; renames become
moves; both changed: both kept. A first run merges and deletes nothing. A run that would
delete more than --max-delete percent of a side, or finds a side empty or missing, stops
(--force to go on). --watch keeps running (local changes and MEGA's live updates).
"""


def _exclude(value: str) -> tuple[str, str]:
    return ("exclude", value)


def _include(value: str) -> tuple[str, str]:
    return ("include", value)


def _sync_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("first", metavar="LOCAL|REMOTE")
    p.add_argument("second", metavar="REMOTE|LOCAL")
    p.add_argument("-n", "--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--delete", action="store_true", help="delete what the source side lacks")
    p.add_argument(
        "--delete-permanently",
        action="store_true",
        help="with local deletions, remove instead of moving into .megafast-trash",
    )
    p.add_argument(
        "--replace", action="store_true", help="replace changed remote files (no versions)"
    )
    p.add_argument(
        "--exclude",
        dest="patterns",
        action="append",
        type=_exclude,
        metavar="PATTERN",
        default=[],
        help="leave matching paths alone (gitignore-style; repeatable)",
    )
    p.add_argument(
        "--include",
        dest="patterns",
        action="append",
        type=_include,
        metavar="PATTERN",
        help="take matching paths back in (after the excludes before it)",
    )
    p.add_argument("--state-dir", metavar="DIR", help="where the pair's state file lives")
    p.add_argument(
        "--no-thumbnails",
        action="store_true",
        help="no thumbnails or previews for uploaded images and videos (made by default)",
    )
    both = p.add_argument_group("two-way sync")
    both.add_argument(
        "--both", action="store_true", help="two-way: LOCAL REMOTE, changes on either side"
    )
    both.add_argument(
        "--max-delete",
        type=float,
        default=50.0,
        metavar="PCT",
        help="stop when a run would delete more than PCT%% of either side (default 50)",
    )
    both.add_argument("--force", action="store_true", help="run past the safety checks")
    both.add_argument(
        "--resync", action="store_true", help="forget the last agreed state: merge, delete nothing"
    )
    both.add_argument(
        "--watch", action="store_true", help="keep running, syncing as changes arrive"
    )
    both.add_argument(
        "--debounce",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="with --watch: wait this long after the last change (default 0.5)",
    )
    transfer_options(p)


def _versions_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH")
    p.add_argument("--remove", action="store_true", help="delete every older version")


def split_direction(first: str, second: str) -> tuple[str, str, str]:
    """``(direction, local, remote)`` from the two arguments (see the help text)."""
    if first.startswith(REMOTE_PREFIX) and not second.startswith(REMOTE_PREFIX):
        return "down", second, first[len(REMOTE_PREFIX) :]
    if second.startswith(REMOTE_PREFIX) and not first.startswith(REMOTE_PREFIX):
        return "up", first, second[len(REMOTE_PREFIX) :]
    if first.startswith(REMOTE_PREFIX):
        raise UsageError("one side is local: only one argument may start with mega:")
    first_local = os.path.isdir(os.path.expanduser(first))
    second_local = os.path.isdir(os.path.expanduser(second))
    if first_local and second_local:
        raise UsageError("both arguments are local folders: write the remote one as mega:/path")
    if first_local:
        return "up", first, second
    return "down", second, first


@register(
    "sync",
    "sync a folder up to MEGA, down from it, or both ways (--both)",
    description=_SYNC_HELP,
    arguments=_sync_arguments,
)
def cmd_sync(ctx: Context) -> int:
    from megafast.sync import Sync

    args = ctx.args
    if args.both or args.watch:
        return _two_way(ctx)
    direction, local, remote = split_direction(args.first, args.second)
    if not remote.startswith("/"):
        remote = "/" + remote
    client = ctx.client()
    bar = TransferProgress(f"sync {direction}", None, ctx.progress and not args.dry_run)
    try:
        report = Sync(
            client,
            local,
            remote,
            direction=direction,
            delete=args.delete,
            delete_permanently=args.delete_permanently,
            versions=not args.replace,
            patterns=args.patterns or (),
            state_dir=args.state_dir,
            config=ctx.transfer_config(),
            progress=bar,
            thumbnails=False if args.no_thumbnails else None,
        ).run(dry_run=args.dry_run)
    except OSError as exc:
        raise CommandError(f"{exc.filename or local}: {exc.strerror or exc}") from None
    finally:
        bar.close()
    ctx.result(report.to_dict(), report_lines(report))
    return 0 if report.ok else EXIT_PARTIAL


def _two_way(ctx: Context) -> int:
    from megafast.sync import StateFileError, SyncSafetyError, TwoWaySync

    args = ctx.args
    if not args.both:
        raise UsageError("--watch runs a two-way sync: add --both")
    if args.delete:
        raise UsageError("--delete is one-way only: a two-way sync applies deletions itself")
    local, remote = args.first, args.second
    if remote.startswith(REMOTE_PREFIX):
        remote = remote[len(REMOTE_PREFIX) :]
    if not remote.startswith("/"):
        remote = "/" + remote
    client = ctx.client()
    job = TwoWaySync(
        client,
        local,
        remote,
        delete_permanently=args.delete_permanently,
        versions=not args.replace,
        patterns=args.patterns or (),
        state_dir=args.state_dir,
        config=ctx.transfer_config(),
        max_delete=args.max_delete,
        force=args.force,
        resync=args.resync,
        thumbnails=False if args.no_thumbnails else None,
    )
    try:
        if args.watch:
            from megafast.sync import watch_pair

            return watch_pair(job, debounce=args.debounce, json_lines=ctx.json)
        report = job.run(dry_run=args.dry_run)
    except (StateFileError, SyncSafetyError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{exc.filename or local}: {exc.strerror or exc}") from None
    ctx.result(report.to_dict(), report_lines(report))
    return 0 if report.ok else EXIT_PARTIAL


def report_lines(report: Any) -> list[str]:
    """The report for people: one line per action, then skipped and failed paths, totals."""
    out: list[str] = []
    for a in report.actions:
        side = {"up": "MEGA  ", "down": "local "}.get(a.side, "")
        text = f"{side}{a.kind:<9} {a.path}" + (f"  (from {a.source})" if a.source else "")
        if a.size and a.kind not in ("mkdir", "touch"):
            text += f"  {format_bytes(a.size)}"
        out.append(text + (f"  [{a.detail}]" if a.detail else ""))
    out += [f"skipped   {p}: {r}" for p, r in sorted(report.skipped.items())]
    out += [f"FAILED    {p}: {r}" for p, r in sorted(report.failed.items())]
    out += [f"conflict  both kept: {c}" for c in report.conflicts]
    out += [f"note: {n}" for n in report.notes]
    counts: dict[str, int] = {}
    for a in report.actions:
        counts[a.kind] = counts.get(a.kind, 0) + 1
    done = ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing to do"
    out.append(
        f"{'would do' if report.dry_run else 'done'}: {done}; {report.files_unchanged} "
        f"unchanged; up {format_bytes(report.bytes_uploaded)}, down "
        f"{format_bytes(report.bytes_downloaded)}, not sent again "
        f"{format_bytes(report.bytes_copied)}"
        + (f"; {len(report.skipped)} skipped" if report.skipped else "")
        + (f"; {len(report.failed)} failed" if report.failed else "")
    )
    return out


@register(
    "versions",
    "list (or remove) the older versions of a remote file",
    description="List the older versions of a remote file; --remove deletes them "
    "(the file itself stays).",
    arguments=_versions_arguments,
)
def cmd_versions(ctx: Context) -> int:
    from megafast.sync import list_versions, refresh_if_changed, remove_versions

    client = ctx.client()
    refresh_if_changed(client)
    found = client.find(ctx.args.path.strip("/"), exclude_deleted=True)
    if found is None or found[1].get("t") != 0:
        raise CommandError(f"no such remote file: {ctx.args.path}")
    versions = list_versions(client, found[0])
    rows = [
        {"handle": n["h"], "size": int(n.get("s") or 0), "ts": int(n.get("ts") or 0)}
        for n in versions
    ]
    if ctx.args.remove:
        removed = remove_versions(client, found[0])
        ctx.result({"removed": removed}, f"removed {removed} older version(s)")
        return 0
    ctx.result(
        {"path": ctx.args.path, "versions": rows},
        [f"{r['handle']}  {format_bytes(r['size'])}  ts {r['ts']}" for r in rows]
        or ["no older versions"],
    )
    return 0
