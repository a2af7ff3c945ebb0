"""The core every front end stands on: one account's session, keyring and live tree.

:class:`Core` owns the credentials, the :class:`~megafast._wire.api.ApiClient` (requests and
batches), the keyring and the live tree (loaded on first use, kept current by the account's
own changes, cached when the ``cache`` option asks for it), and hands out typed nodes
(:class:`~megafast._tree.typed.TreeNode`). The operation modules beside it (nodeops, shares,
sources, transfers, quota, livetree, treejobs) take a Core and call its public methods; the
front ends (``Mega``, the CLI, sync, fsspec) hold one. mega.py's dict shapes are made above.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._tree import typed
from .._tree.nodes import Keyring, NodeTree
from .._tree.typed import TreeNode
from .._wire.api import DEFAULT_API_URL, ApiClient
from .._wire.codec import bytes_to_words
from ..errors import NodeNotFoundError, ValidationError
from . import livetree as _livetree
from .session import Credentials, MfaSource, login_ephemeral, login_user

if TYPE_CHECKING:
    import requests

    from ..transfer import TransferConfig
    from .jobs import AccountTreeJobs

__all__ = ["Core"]

# options handed to the ApiClient as they are
_API_LIMITS = ("min_hashcash_easiness", "max_answer_bytes", "max_listing_bytes")


class Core:
    """One MEGA session: ``options`` as :class:`~megafast.Mega` documents them (the dict is
    shared with the front end that made it; changes to it are seen), ``http`` an optional
    ``requests.Session`` for API calls. ``schema``, ``domain`` and ``timeout`` (seconds) may be
    changed after creation (mega.py's scripts do); they take effect at the next request."""

    def __init__(self, options: dict[str, Any], *, http: requests.Session | None = None) -> None:
        self.options = options
        _livetree.cache_folder(options.get("cache"))  # ValidationError when malformed
        self.schema = "https"
        self.domain = "mega.co.nz"
        self.timeout = float(options.get("timeout", 60.0))
        limits: dict[str, Any] = {k: int(options[k]) for k in _API_LIMITS if k in options}
        self.api_client = ApiClient(
            self.api_url,
            timeout=self.timeout,
            retry_time=float(options.get("retry_time", 120.0)),
            connect_retry_time=float(options.get("connect_retry_time", 3.0)),
            backoff_base=float(options.get("backoff_base", 0.25)),
            backoff_cap=float(options.get("backoff_cap", 16.0)),
            hashcash_threads=options.get("hashcash_threads"),
            http=http,
            **limits,
        )
        #: the ``i`` of changing commands (the /sc packets carrying it are this client's own)
        self.request_id = secrets.token_urlsafe(8)[:10]
        self.credentials: Credentials | None = None
        self.live: _livetree.LiveTree | None = None  # the tree, its keyring and cache

    # -- the wire ---------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """The API server (no trailing slash); requests go to ``{api_url}/cs``."""
        explicit = self.options.get("api_url") or os.environ.get("MEGAFAST_API_URL")
        if explicit:
            return str(explicit).rstrip("/")
        if (self.schema, self.domain) == ("https", "mega.co.nz"):
            return DEFAULT_API_URL
        return f"{self.schema}://g.api.{self.domain}"

    @property
    def http(self) -> requests.Session:
        """The pooled session of API calls (transfers clone it)."""
        return self.api_client.http

    @property
    def transfer_config(self) -> TransferConfig | None:
        """The ``transfer`` option: the default :class:`~megafast.transfer.TransferConfig`."""
        config: TransferConfig | None = self.options.get("transfer")
        return config

    def api(self) -> ApiClient:
        """The API client, brought up to date with ``schema``/``domain``/``timeout``."""
        self.api_client.api_url = self.api_url
        if self.timeout != self.api_client.timeout:
            if not self.timeout > 0:
                raise ValidationError("timeout must be a positive number of seconds")
            self.api_client.timeout = float(self.timeout)
        return self.api_client

    def request(self, command: dict[str, Any], folder: str | None = None) -> Any:
        """Send one command (``folder``: a public folder's handle) and return its answer."""
        return self.api().request(command, folder=folder)

    def batch(self, commands: list[dict[str, Any]]) -> list[Any]:
        """Send commands in one request; one answer (or error code) each."""
        return self.api().batch(commands)

    # -- the session ------------------------------------------------------------------------
    @property
    def sid(self) -> str | None:
        """The session id (``None`` before logging in)."""
        return self.credentials.sid if self.credentials else None

    @property
    def master_key(self) -> tuple[int, ...]:
        """The account's master key as 4 words."""
        return bytes_to_words(self.require_login().master_key)

    def require_login(self) -> Credentials:
        """The credentials; :class:`~megafast.errors.ValidationError` before a login."""
        if self.credentials is None:
            raise ValidationError("not logged in: call login() first")
        return self.credentials

    def login(self, email: str, password: str, mfa: MfaSource = None) -> None:
        """Log in with a password (``mfa``: the two-factor code or a callable giving it)."""
        self.set_credentials(login_user(self.api(), email, password, mfa=mfa))

    def login_anonymous(self) -> None:
        """Create an ephemeral account and log in to it."""
        self.api().sid = None
        self.set_credentials(login_ephemeral(self.api_client))

    def resume(self, session: str | dict[str, Any] | os.PathLike[str]) -> None:
        """Resume a saved session and check it with the server."""
        self.set_credentials(Credentials.load(session), check=True)

    def set_credentials(self, creds: Credentials, check: bool = False) -> None:
        """Use ``creds`` from now on (a new tree); ask the server for the user handle when
        it is not known, or always with ``check`` (a resumed session may have expired)."""
        self.credentials = creds
        self.api_client.sid = creds.sid
        self.live = None
        if check or creds.user_handle is None:
            user = self.request({"a": "ug"})  # SessionError (-15) when it expired
            if isinstance(user, dict) and isinstance(user.get("u"), str):
                creds.user_handle = user["u"]

    def logout(self) -> None:
        """End the session on the server (saving a changed cache first) and forget the keys."""
        if self.credentials is not None:
            try:
                if self.live is not None and self.live.dirty:
                    _livetree.save_quietly(self, self.live)
                self.request({"a": "sml"})
            finally:
                self.credentials = None
                self.api_client.sid = None
                self.live = None

    # -- the keyring and the live tree ------------------------------------------------------
    def make_keyring(self) -> Keyring:
        """A fresh keyring from the credentials (master key, user handle, RSA key)."""
        creds = self.require_login()
        return Keyring(
            master_key=creds.master_key,
            user_handle=creds.user_handle,
            rsa_decrypt=creds.rsa_decrypt if creds.privk else None,
        )

    def tree(self) -> NodeTree:
        """The live tree, loaded (streamed, or from the cache) on first use."""
        if self.live is None:
            self.refresh()
        assert self.live is not None
        return self.live.tree

    @property
    def loaded_tree(self) -> NodeTree | None:
        """The tree when it is loaded, else ``None`` (never loads it)."""
        return self.live.tree if self.live is not None else None

    @property
    def keyring(self) -> Keyring | None:
        """The keyring of the loaded tree, else ``None``."""
        return self.live.keyring if self.live is not None else None

    @property
    def exported(self) -> set[str]:
        """The folders shared with "EXP" (public), kept with the tree."""
        return self.tree().store.exported

    def refresh(self) -> None:
        """Load the tree again: the whole listing, or the cache plus the changes since."""
        live = _livetree.load(self)
        live.tree.on_change = lambda: _livetree.after_change(self)
        self.live = live

    def root(self, node_type: int = 2) -> str:
        """The handle of a root: 2 Cloud Drive, 3 Inbox, 4 Rubbish Bin."""
        tree = self.tree()
        roots = {
            2: (tree.root_id, "Cloud Drive"),
            3: (tree.inbox_id, "Inbox"),
            4: (tree.trash_id, "Rubbish Bin"),
        }
        if node_type not in roots:
            raise ValidationError(
                "a root is node type 2 (Cloud Drive), 3 (Inbox) or 4 (Rubbish Bin)"
            )
        handle, what = roots[node_type]
        if handle is None:
            raise NodeNotFoundError(f"the account listing has no {what}")
        return handle

    @property
    def root_id(self) -> str:
        """The Cloud Drive's handle."""
        return self.root(2)

    # -- nodes ------------------------------------------------------------------------------
    def node(self, ref: object, what: str = "node") -> dict[str, Any]:
        """The tree's node (its compatibility dict) for a handle, a ``(handle, node)`` tuple
        or a node dict; :class:`~megafast.errors.NodeNotFoundError` when there is none."""
        from .nodeops import resolve

        if ref is None:
            raise NodeNotFoundError(f"no {what} given (did find() return None?)")
        return resolve(self.tree(), ref, what)

    def get(self, handle: str) -> TreeNode | None:
        """The typed node with ``handle``, or ``None``."""
        return typed.node(self.tree().store, handle)

    def children(self, handle: str, order: typed.Order | None = None) -> Iterator[TreeNode]:
        """The typed nodes directly inside ``handle`` (sorted by the key ``order``, if given)."""
        return typed.children(self.tree().store, handle, order)

    def walk(self, handle: str, order: typed.Order | None = None) -> Iterator[tuple[str, TreeNode]]:
        """Every typed node below ``handle`` with its path relative to it (depth first; each
        folder's children sorted by the key ``order``, if given)."""
        return typed.walk(self.tree().store, handle, order)

    def totals(self, handle: str, depth: int = 0) -> dict[str, typed.Totals]:
        """Size (bytes), files and folders below ``handle``, and below each folder down to
        ``depth`` levels: handle -> :class:`~megafast._tree.typed.Totals`."""
        return typed.totals(self.tree().store, handle, depth)

    def path(self, handle: str) -> str:
        """``Cloud Drive/a/b``: the node's path from its root."""
        return typed.path(self.tree().store, handle)

    def lookup(self, path: str, folders_only: bool = False) -> TreeNode | None:
        """The typed node at ``a/b/c`` from the Cloud Drive (``None`` when absent)."""
        handle = self.tree().store.find_path(path, folders_only=folders_only)
        return None if handle is None else self.get(handle)

    # -- the transfer engine's host (megafast.transfer.TransferHost) ------------------------
    @property
    def tree_jobs(self) -> AccountTreeJobs:
        """The jobs that put files and folders into (and read them out of) this account's
        tree, handed to a :class:`~megafast.transfer.TransferManager`."""
        from .jobs import AccountTreeJobs

        return AccountTreeJobs(self)

    def __repr__(self) -> str:
        who = "not logged in"
        if self.credentials is not None:
            creds = self.credentials
            who = "ephemeral" if creds.ephemeral else (creds.email or "logged in")
        from .._wire.redact import redact_url

        return f"<megafast Core {redact_url(self.api_url)} ({who})>"
