"""``login``, ``logout``, ``whoami`` and ``df``."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Any

from . import session as session_store
from .errors import CommandError, UsageError, describe_error, scrub
from .progress import format_bytes
from .registry import register

if TYPE_CHECKING:
    import argparse

    from .context import Context

__all__ = ["cmd_login", "cmd_logout", "cmd_whoami", "cmd_df"]


def _read_password(ctx: Context) -> str:
    if ctx.args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UsageError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password (use --password-stdin)")
    return getpass.getpass("Password: ")


def _ask(prompt: str, what: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError(f"no terminal to ask for the {what}")
    print(prompt, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not answer:
        raise UsageError(f"no {what} given")
    return answer.strip()


def _login_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("email", nargs="?", help="account email (asked when missing)")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of asking",
    )
    parser.add_argument("--mfa", metavar="CODE", help="two-factor code (asked when needed)")


@register(
    "login",
    "log in and keep the session",
    description="Log in and store the session (never the password) in the config directory, "
    "mode 0600.",
    arguments=_login_arguments,
)
def cmd_login(ctx: Context) -> int:
    from megafast.errors import TwoFactorRequiredError

    email = ctx.args.email
    if not email:
        if ctx.args.password_stdin:
            raise UsageError("give the EMAIL argument with --password-stdin")
        email = _ask("Email: ", "email")
    email = email.strip().lower()
    password = _read_password(ctx)
    server = ctx.api_url()
    client = ctx.new_client()
    mfa: Any = ctx.args.mfa
    if mfa is None and sys.stdin.isatty() and not ctx.args.password_stdin:
        # asked only when the server says the account needs it
        mfa = lambda: _ask("Two-factor code: ", "two-factor code")  # noqa: E731
    try:
        client.login(email, password, mfa=mfa)
    except TwoFactorRequiredError as exc:
        if ctx.args.mfa:
            raise CommandError("the two-factor code was not accepted") from exc
        raise CommandError(
            "this account uses two-factor authentication: give the code with --mfa CODE"
        ) from exc
    finally:
        del password
    previous = session_store.load_session()
    path = session_store.save_session(server, email, client.dump_session())
    if previous is not None:
        # the new session replaces the stored one: end the old one on its server too
        warning = _end_server_session(ctx, previous)
        if warning:
            ctx.status(f"megafast: warning: the previous session was not logged out: {warning}")
    ctx.result(
        {"email": email, "api_url": server, "session_file": str(path)},
        f"logged in as {email}",
    )
    return 0


def _end_server_session(ctx: Context, stored: dict[str, Any]) -> str | None:
    """Log a stored session out on its server; returns a warning when that failed."""
    try:
        client = ctx.new_client(stored)
        client.resume_session(stored["session"])
        client.logout()
    except Exception as exc:  # noqa: BLE001 - the caller drops the local session regardless
        return scrub(describe_error(exc))
    return None


@register("logout", "end the session and forget it")
def cmd_logout(ctx: Context) -> int:
    stored = session_store.load_session()
    if stored is None:
        session_store.delete_session()  # a damaged file goes too
        ctx.result({"logged_out": False}, "not logged in")
        return 0
    try:
        warning = _end_server_session(ctx, stored)
    finally:
        session_store.delete_session()
    if warning:
        ctx.status(f"megafast: warning: the server did not confirm the logout: {warning}")
    ctx.result({"logged_out": True, "email": stored.get("email")}, "logged out")
    return 0


@register("whoami", "show the logged-in account")
def cmd_whoami(ctx: Context) -> int:
    user = ctx.client().get_user()
    if not isinstance(user, dict):
        raise CommandError("unexpected answer from the server")
    data = {"email": user.get("email"), "handle": user.get("u"), "name": user.get("name")}
    data = {key: value for key, value in data.items() if isinstance(value, str)}
    ctx.result(data, data.get("email") or data.get("handle") or "(unknown)")
    return 0


@register("df", "show storage used and available")
def cmd_df(ctx: Context) -> int:
    space = ctx.client().get_storage_space()
    used = int(space.get("used", 0))
    total = int(space.get("total", 0))
    free = max(total - used, 0)
    percent = 100.0 * used / total if total else 0.0
    ctx.result(
        {"used": used, "total": total, "free": free},
        f"used {format_bytes(used)} of {format_bytes(total)} ({percent:.1f}%), "
        f"{format_bytes(free)} free",
    )
    return 0
