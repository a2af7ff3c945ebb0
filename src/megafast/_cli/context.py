"""The context every command runs in: parsed arguments, output helpers and the client."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from . import session as session_store
from .errors import CommandError, UsageError
from .progress import TransferProgress, format_bytes, format_rate, progress_enabled
from .text import printable, printable_lines

__all__ = ["Context"]

_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(data, ensure_ascii=False)'s text
_BATCH = 4096  # lines or JSON values written at a time by Context.stream


class Context:
    """The parsed arguments plus output helpers and clients shared by every command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(args.json)
        self.quiet: bool = bool(args.quiet)
        self.progress: bool = progress_enabled(args)
        self._client: Any = None

    # -- output -------------------------------------------------------------------------
    def result(self, data: Any, text: str | list[str] | None = None) -> None:
        """Print a command's result: JSON with --json (exact), else the text lines (if any),
        each one line with its control characters escaped."""
        if self.json:
            print(json.dumps(data, ensure_ascii=False))
        elif text is not None:
            lines = [text] if isinstance(text, str) else text
            for line in lines:
                print(printable(line))
        sys.stdout.flush()

    def stream(self, rows: Iterable[tuple[Any, str | None]]) -> None:
        """Print many results as they are made (a million of them never held in a list):
        with --json the text :meth:`result` gives for the list of the data, else each
        text line (``None``: none) made printable. Written a few thousand at a time."""
        write = sys.stdout.write
        pending: list[str] = []
        if self.json:
            encode = _JSON.encode
            write("[")
            sep = ""
            for data, _ in rows:
                pending.append(encode(data))
                if len(pending) >= _BATCH:
                    write(sep + ", ".join(pending))
                    sep, pending = ", ", []
            write((sep + ", ".join(pending) if pending else "") + "]\n")
        else:
            for _, line in rows:
                if line is not None:
                    pending.append(line)
                    if len(pending) >= _BATCH:
                        write(printable_lines(pending))
                        pending = []
            write(printable_lines(pending))
        sys.stdout.flush()

    def status(self, message: str) -> None:
        """A human status line on stderr (not with --quiet or --json)."""
        if not self.quiet and not self.json:
            print(printable(message), file=sys.stderr)

    def report_transfer(self, verb: str, label: str, size: int, progress: TransferProgress) -> None:
        """A status line with the size, time and speed of a finished transfer."""
        seconds = progress.elapsed
        self.status(
            f"{verb} {label} ({format_bytes(size)}) in {seconds:.1f} s, "
            f"{format_rate(size, seconds)}"
        )

    # -- the server and the clients -------------------------------------------------------
    def api_url(self, stored: dict[str, Any] | None = None) -> str:
        """--api-url (or $MEGAFAST_API_URL), else the stored session's server, else MEGA's."""
        from .._wire.api import DEFAULT_API_URL

        if self.args.api_url:
            return str(self.args.api_url).rstrip("/")
        if stored and stored.get("api_url"):
            return str(stored["api_url"])
        return DEFAULT_API_URL

    def new_client(self, stored: dict[str, Any] | None = None) -> Any:
        """A client (not logged in) on :meth:`api_url`."""
        from megafast.client import Mega

        return Mega(
            {"thumbnails": False} if getattr(self.args, "no_thumbnails", False) else None,
            api_url=self.api_url(stored),
            retry_time=self.args.retry_time,
            cache=None if self.args.no_cache else True,
        )

    def client(self) -> Any:
        """The logged-in client, resumed from the stored session (once per command)."""
        if self._client is None:
            stored = session_store.load_session()
            if stored is None:
                raise CommandError("not logged in (run: megafast login)")
            from megafast.errors import RequestError

            client = self.new_client(stored)
            try:
                client.resume_session(stored["session"])
            except RequestError as exc:
                if exc.code == -15:
                    raise CommandError(
                        "the session expired or was ended (run: megafast login)"
                    ) from exc
                raise
            self._client = client
        return self._client

    def public_client(self) -> Any:
        """A client for public links: not logged in, on the chosen API server."""
        return self.new_client(session_store.load_session())

    def transfer_config(self) -> Any:
        """The TransferConfig from --connections / --limit / --no-resume (defaults otherwise)."""
        from megafast.transfer import TransferConfig

        options: dict[str, Any] = {}
        connections = getattr(self.args, "connections", None)
        if connections:
            options["connections"] = connections
        limit = getattr(self.args, "limit", None)
        if limit:
            options["speed_limit"] = float(limit)
        if getattr(self.args, "no_resume", False):
            options["resume"] = False
        try:
            return TransferConfig(**options)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
