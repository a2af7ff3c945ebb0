"""``thumbnail`` (a file's thumbnail or preview), and the ``--password`` of password-protected
(``#P!``) links that ``get``, ``ls``, ``cat`` and ``link`` accept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .context import Context
from .errors import CommandError
from .registry import register
from .remote import RemoteView, display_path

__all__ = ["cmd_thumbnail", "password_option", "unlock_link"]


def password_option(parser: argparse.ArgumentParser) -> None:
    """``--password`` for the commands that open public links."""
    parser.add_argument(
        "--password",
        metavar="PASSWORD",
        help="the password of a #P! link (asked for, without echo, when the link has one "
        "and this is not given)",
    )


def _ask(prompt: str) -> str:
    import getpass

    if not sys.stdin.isatty():
        raise CommandError("this link is password-protected (#P!): give --password")
    return getpass.getpass(prompt)


def unlock_link(ctx: Context, url: str) -> str:
    """``url`` itself, or the plain link behind a ``#P!`` link (opened with ``--password``,
    or a password asked for without echo)."""
    from megafast._wire.passlinks import decrypt_link, is_password_link

    if not is_password_link(url):
        return url
    password = getattr(ctx.args, "password", None)
    if password is None:
        password = _ask("Link password: ")
    return decrypt_link(url.strip(), password)


def link_password(ctx: Context) -> str | None:
    """The password ``link --password`` protects links with: the value given, or (for a
    bare ``--password``) one asked for twice without echo."""
    given = getattr(ctx.args, "password", None)
    if given is None or given != "":
        return given
    first = _ask("Password for the link: ")
    if not first or first != _ask("Again: "):
        raise CommandError("the passwords are empty or do not match")
    return first


def _thumbnail_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="where to save it")
    parser.add_argument(
        "--preview", action="store_true", help="the preview (up to 1000x1000) instead"
    )


@register(
    "thumbnail",
    "save a file's thumbnail (or preview) as a JPEG",
    arguments=_thumbnail_arguments,
)
def cmd_thumbnail(ctx: Context) -> int:
    client = ctx.client()
    view = RemoteView.of_account(client)
    node = view.resolve(ctx.args.path)
    if not node.is_file:
        raise CommandError(f"is a folder: {display_path(ctx.args.path)}")
    get = client.get_preview if ctx.args.preview else client.get_thumbnail
    data = get(node.handle)
    out = Path(ctx.args.output).expanduser()
    out.write_bytes(data)
    ctx.result(
        {"path": display_path(ctx.args.path), "output": str(out), "size": len(data)},
        [f"{out} ({len(data)} bytes)"],
    )
    return 0
