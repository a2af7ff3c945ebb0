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


def _api_url(ctx: Context, stored: dict[str, Any] | None = None) -> str:
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


def new_client(api_url: str) -> Any:
    """A client (not logged in) talking to ``api_url``."""
    from megafast.client import Mega

    return Mega(api_url=api_url)


def resume(ctx: Context) -> Any:
    """The client resumed from the stored session (CommandError when not logged in)."""
    stored = session_store.load_session()
    if stored is None:
        raise CommandError("not logged in (run: megafast login)")
    client = new_client(_api_url(ctx, stored))
    client.resume_session(stored["session"])
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
    password = _read_password(ctx)
    api_url = _api_url(ctx)
    client = new_client(api_url)
    mfa = ctx.args.mfa
    try:
        client.login(email, password, mfa=mfa)
    except TwoFactorRequiredError:
        if mfa:
            raise
        mfa = _ask("Two-factor code: ", "two-factor code")
        client.login(email, password, mfa=mfa)
    del password
    path = session_store.save_session(api_url, email.strip().lower(), client.dump_session())
    ctx.result(
        {"email": email.strip().lower(), "api_url": api_url, "session_file": str(path)},
        f"logged in as {email.strip().lower()}",
    )
    return 0


def cmd_logout(ctx: Context) -> int:
    stored = session_store.load_session()
    if stored is None:
        session_store.delete_session()  # a damaged file goes too
        ctx.result({"logged_out": False}, "not logged in")
        return 0
    warning = None
    try:
        client = new_client(_api_url(ctx, stored))
        client.resume_session(stored["session"])
        client.logout()
    except Exception as exc:  # noqa: BLE001 - the local session goes regardless
        from .errors import describe_error, scrub

        warning = scrub(describe_error(exc))
    finally:
        session_store.delete_session()
    if warning:
        ctx.status(f"megafast: warning: the server did not confirm the logout: {warning}")
    ctx.result({"logged_out": True, "email": stored.get("email")}, "logged out")
    return 0


def cmd_whoami(ctx: Context) -> int:
    user = ctx.client().get_user()
    email = user.get("email") if isinstance(user, dict) else None
    data = {
        "email": email,
        "handle": user.get("u") if isinstance(user, dict) else None,
        "name": user.get("name") if isinstance(user, dict) else None,
        "api_url": ctx.client_api_url if hasattr(ctx, "client_api_url") else None,
    }
    data = {key: value for key, value in data.items() if value is not None}
    ctx.result(data, email or data.get("handle") or "(unknown)")
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
