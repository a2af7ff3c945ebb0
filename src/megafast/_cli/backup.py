"""``megafast backup LOCAL REMOTE``, ``megafast backup --list REMOTE`` and ``megafast restore
REMOTE --at DATE LOCAL``, registered with the command registry on import (see
docs/SYNC.md, "Backups").

Exit codes: 0 done; 1 failure; 2 usage; 3 the backup finished but some files were skipped
(the report lists them).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .errors import ExitCode, UsageError
from .progress import format_bytes
from .registry import register

if TYPE_CHECKING:
    from .context import Context

__all__ = ["cmd_backup", "cmd_restore"]

_BACKUP_HELP = """\
Back up a folder into dated snapshots on MEGA; unchanged files cost nothing (each snapshot
is complete, its unchanged files are server-side copies of the last one's).

  megafast backup ~/work /backups/work --keep-daily 7 --keep-weekly 4
  megafast backup --list /backups/work
  megafast restore /backups/work --at 2026-12-01 ~/work-restored
"""


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("a count of 0 or more")
    return value


def _backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="LOCAL REMOTE | REMOTE (with --list)")
    p.add_argument("--list", action="store_true", help="list the snapshots of REMOTE")
    p.add_argument("--keep-daily", type=_non_negative, metavar="N", help="keep N daily snapshots")
    p.add_argument("--keep-weekly", type=_non_negative, metavar="N", help="keep N weekly snapshots")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN")
    p.add_argument("--state-dir", metavar="DIR", help="where the backup's state file lives")


def _restore_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("remote", metavar="REMOTE")
    p.add_argument("local", metavar="LOCAL")
    p.add_argument("--at", required=True, metavar="DATE", help="2026-12-01 or 2026-12-01T10:30")
    p.add_argument("--state-dir", metavar="DIR", help="where the restore's state file lives")


@register(
    "backup",
    "dated snapshots of a folder on MEGA",
    description=_BACKUP_HELP,
    arguments=_backup_arguments,
)
def cmd_backup(ctx: Context) -> int:
    from megafast.sync import backup, list_snapshots

    args = ctx.args
    if args.list:
        if len(args.paths) != 1:
            raise UsageError("backup --list takes one argument: the backup folder on MEGA")
        snaps = list_snapshots(ctx.client(), args.paths[0])
        ctx.result(
            {"snapshots": [s.to_dict() for s in snaps]},
            [f"{s.name}  {s.when:%Y-%m-%d %H:%M:%S} UTC" for s in snaps] or ["no snapshots"],
        )
        return 0
    if len(args.paths) != 2:
        raise UsageError("backup takes two arguments: LOCAL REMOTE")
    report = backup(
        ctx.client(),
        args.paths[0],
        args.paths[1],
        keep_daily=args.keep_daily,
        keep_weekly=args.keep_weekly,
        exclude=args.exclude,
        state_dir=args.state_dir,
    )
    lines = [f"snapshot {report.snapshot}: {report.files} files"]
    lines += [f"uploaded  {rel}" for rel in report.uploaded]
    lines += [f"skipped   {p}: {r}" for p, r in sorted(report.skipped.items())]
    lines += [f"removed   {name} (retention)" for name in report.removed]
    lines.append(
        f"{len(report.uploaded)} uploaded ({format_bytes(report.bytes_uploaded)}), "
        f"{report.copied} unchanged (server-side copies)"
    )
    ctx.result(report.to_dict(), lines)
    return 0 if report.ok else int(ExitCode.PARTIAL)


@register(
    "restore",
    "restore a backup snapshot (the newest at or before --at)",
    description=_BACKUP_HELP,
    arguments=_restore_arguments,
)
def cmd_restore(ctx: Context) -> int:
    from megafast.sync import restore

    from .sync import report_lines

    args = ctx.args
    report = restore(ctx.client(), args.remote, args.at, args.local, state_dir=args.state_dir)
    ctx.result(report.to_dict(), report_lines(report))
    return 0 if report.ok else int(ExitCode.PARTIAL)
