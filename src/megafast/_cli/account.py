"""``login``, ``logout``, ``whoami``, ``df`` and resuming the stored session."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Any

from . import session as session_store
from .errors import CommandError, UsageError
from .progress import format_bytes

if TYPE_CHECKING:
    from .commands import Context

__all__ = ["cmd_login", "cmd_logout", "cmd_whoami", "cmd_df", "resume", "new_client"]


def api_url(ctx: Context, stored: dict[str, Any] | None = None) -> str:
    from ..cli import DEFAULT_API_URL

    if ctx.args.api_url:
        return str(ctx.args.api_url).rstrip("/")
    if stored and stored.get("api_url"):
        return str(stored["api_url"])
    return DEFAULT_API_URL


def transfer_config(ctx: Context) -> Any:
    """The TransferConfig from --connections / --limit / --no-resume (defaults otherwise)."""
    from megafast.transfer import TransferConfig

    options: dict[str, Any] = {}
    connections = getattr(ctx.args, "connections", None)
    if connections:
        options["connections"] = connections
    limit = getattr(ctx.args, "limit", None)
    if limit:
        options["speed_limit"] = float(limit)
    if getattr(ctx.args, "no_resume", False):
        options["resume"] = False
    try:
        return TransferConfig(**options)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def new_client(api_url: str, retry_time: float | None = None) -> Any:
    """A client (not logged in) talking to ``api_url``."""
    from megafast.client import Mega

    return Mega(api_url=api_url, retry_time=retry_time)


def resume(ctx: Context) -> Any:
    """The client resumed from the stored session (CommandError when not logged in)."""
    stored = session_store.load_session()
    if stored is None:
        raise CommandError("not logged in (run: megafast login)")
    from megafast.errors import RequestError

    client = new_client(api_url(ctx, stored), ctx.args.retry_time)
    try:
        client.resume_session(stored["session"])
    except RequestError as exc:
        if exc.code == -15:
            raise CommandError("the session expired or was ended (run: megafast login)") from exc
        raise
    return client


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


def cmd_login(ctx: Context) -> int:
    from megafast.errors import TwoFactorRequiredError

    email = ctx.args.email
    if not email:
        if ctx.args.password_stdin:
            raise UsageError("give the EMAIL argument with --password-stdin")
        email = _ask("Email: ", "email")
    email = email.strip().lower()
    password = _read_password(ctx)
    server = api_url(ctx)
    client = new_client(server, ctx.args.retry_time)
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
        client = new_client(api_url(ctx, stored), ctx.args.retry_time)
        client.resume_session(stored["session"])
        client.logout()
    except Exception as exc:  # noqa: BLE001 - the caller drops the local session regardless
        from .errors import describe_error, scrub

        return scrub(describe_error(exc))
    return None


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


def cmd_whoami(ctx: Context) -> int:
    user = ctx.client().get_user()
    if not isinstance(user, dict):
        raise CommandError("unexpected answer from the server")
    data = {"email": user.get("email"), "handle": user.get("u"), "name": user.get("name")}
    data = {key: value for key, value in data.items() if isinstance(value, str)}
    ctx.result(data, data.get("email") or data.get("handle") or "(unknown)")
    return 0


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
