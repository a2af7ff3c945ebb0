"""``megafast.Mega``: mega.py 1.0.8's interface over MEGA's current protocol.

A script written for mega.py runs unchanged after ``from megafast import Mega``. Beyond
mega.py: a configurable server (``api_url``), retries with back-off and hashcash, v1/v2/
two-factor/ephemeral logins, saved sessions, a node tree fetched once and indexed, shares,
every public link format, public folders, and parallel verified transfers.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._account import livetree as _livetree
from ._account import nodeops as _nodeops
from ._account import quota as _account
from ._account import shares as _shares
from ._account.session import Credentials, MfaSource, login_ephemeral, login_user
from ._transfer_methods import TransferMethods
from ._tree.nodes import Keyring, NodeTree, NodeType
from ._wire.api import DEFAULT_API_URL, ApiClient
from ._wire.codec import bytes_to_words
from ._wire.redact import redact_url
from .errors import (
    NodeNotFoundError,
    ValidationError,
    error_for_code,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from ._tree.watch import ChangeEvent, Watcher
    from .transfer import TransferConfig

__all__ = ["Mega", "Node", "NodeRef", "NodeType"]

# options handed to the ApiClient as they are
_API_LIMITS = ("min_hashcash_easiness", "max_answer_bytes", "max_listing_bytes")


def _api_limits(options: dict[str, Any]) -> dict[str, Any]:
    """The ApiClient limits given in ``options`` (each one an int)."""
    return {k: int(options[k]) for k in _API_LIMITS if k in options}


#: A node as mega.py returns it from ``find``: ``(handle, node dict)``.
Node = tuple[str, dict[str, Any]]
#: What methods accept as a node: a ``(handle, dict)`` tuple, a node dict or a handle.
NodeRef = Node | Mapping[str, Any] | str


class Mega(TransferMethods):
    """A MEGA client with mega.py's interface.

    ``options`` (mega.py's argument) and the keyword arguments accept: ``api_url`` (the API
    server, default ``$MEGAFAST_API_URL`` or ``{schema}://g.api.{domain}``), ``timeout``
    (seconds per HTTP request), ``retry_time`` (seconds a request may spend retrying
    temporary errors), ``connect_retry_time`` (seconds to keep trying a server that refuses
    connections, default 3), ``transfer`` (a :class:`~megafast.transfer.TransferConfig` used by
    default for downloads and uploads), ``legacy_links`` (build ``#!H!K`` links instead of
    ``/file/H#K``), ``hashcash_threads``, ``min_hashcash_easiness`` (harder 402 challenges
    fail at once, default 128), ``max_answer_bytes``/``max_listing_bytes`` (the longest API
    answer read: 64 MiB, and 2 GiB for listings), ``backoff_base``/``backoff_cap`` (seconds:
    the first and the longest wait between retries), ``cache`` (keep the decrypted node tree
    in an encrypted local cache and start warm from it: ``True`` for
    ``$XDG_CACHE_HOME/megafast``, or a folder; off by default).

    Beyond mega.py: :meth:`refresh`, :meth:`dump_session`/:meth:`save_session`/
    :meth:`resume_session` (also ``login(session=...)``), ``login(..., mfa=...)``,
    :meth:`logout`, :meth:`share`/:meth:`unshare` (folders with other users),
    :meth:`get_public_folder`, :meth:`download_folder_url`, :meth:`watch`, :meth:`clear_cache`,
    :meth:`download_to_fileobj`, :meth:`open`, :meth:`upload_fileobj`, and ``progress``/
    ``config`` keywords on every transfer.
    """

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        *,
        api_url: str | None = None,
        timeout: float | None = None,
        retry_time: float | None = None,
        transfer: TransferConfig | None = None,
        http: requests.Session | None = None,
        cache: bool | str | os.PathLike[str] | None = None,
    ) -> None:
        self.options: dict[str, Any] = dict(options or {})
        if cache is not None:
            self.options["cache"] = cache
        _livetree.cache_folder(self.options.get("cache"))  # ValidationError when malformed
        if api_url is not None:
            self.options["api_url"] = api_url
        if timeout is not None:
            self.options["timeout"] = timeout
        if retry_time is not None:
            self.options["retry_time"] = retry_time
        if transfer is not None:
            self.options["transfer"] = transfer
        self.schema = "https"
        self.domain = "mega.co.nz"
        self.timeout = float(self.options.get("timeout", 60.0))
        self._api = ApiClient(
            self.api_url,
            timeout=self.timeout,
            retry_time=float(self.options.get("retry_time", 120.0)),
            connect_retry_time=float(self.options.get("connect_retry_time", 3.0)),
            backoff_base=float(self.options.get("backoff_base", 0.25)),
            backoff_cap=float(self.options.get("backoff_cap", 16.0)),
            hashcash_threads=self.options.get("hashcash_threads"),
            http=http,
            **_api_limits(self.options),
        )
        self.request_id = secrets.token_urlsafe(8)[:10]
        self._creds: Credentials | None = None
        self._live: _livetree.LiveTree | None = None  # the tree, its keyring and cache

    # ------------------------------------------------------------------------------------
    # configuration and state
    # ------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """The API server (no trailing slash); requests go to ``{api_url}/cs``."""
        explicit = self.options.get("api_url") or os.environ.get("MEGAFAST_API_URL")
        if explicit:
            return str(explicit).rstrip("/")
        schema = getattr(self, "schema", "https")
        domain = getattr(self, "domain", "mega.co.nz")
        if (schema, domain) == ("https", "mega.co.nz"):
            return DEFAULT_API_URL
        return f"{schema}://g.api.{domain}"

    @property
    def http(self) -> requests.Session:
        """The pooled ``requests.Session`` of API calls; each transfer clones it into a
        private session of its own (same headers, proxies and certificates)."""
        return self._api.http

    @property
    def sid(self) -> str | None:
        """The session id (``None`` before logging in)."""
        return self._creds.sid if self._creds else None

    @property
    def sequence_num(self) -> int:
        """The id the next API request will carry (mega.py's name)."""
        return self._api._next_id

    @property
    def master_key(self) -> tuple[int, ...]:
        """The account's master key as 4 words (mega.py's attribute)."""
        return bytes_to_words(self._require_login().master_key)

    @property
    def root_id(self) -> str:
        """Handle of the Cloud Drive root."""
        return self._require_handle(self._load_tree().root_id, "Cloud Drive")

    @property
    def inbox_id(self) -> str:
        """Handle of the Inbox."""
        return self._require_handle(self._load_tree().inbox_id, "Inbox")

    @property
    def trashbin_id(self) -> str:
        """Handle of the Rubbish Bin."""
        return self._require_handle(self._load_tree().trash_id, "Rubbish Bin")

    @property
    def _tree(self) -> NodeTree | None:
        return self._live.tree if self._live is not None else None

    @property
    def _keyring(self) -> Keyring | None:
        return self._live.keyring if self._live is not None else None

    @property
    def _exported(self) -> set[str]:
        """The folders shared with "EXP" (public), kept with the tree."""
        return self._load_tree().store.exported

    @property
    def shared_keys(self) -> dict[str, tuple[int, ...]]:
        """Share keys known to this session (share handle -> 4 words)."""
        self._load_tree()
        assert self._keyring is not None
        return {h: bytes_to_words(k) for h, k in self._keyring.share_keys.items()}

    def __repr__(self) -> str:
        who = "not logged in"
        if self._creds is not None:
            who = "ephemeral" if self._creds.ephemeral else (self._creds.email or "logged in")
        return f"<megafast.Mega {redact_url(self.api_url)} ({who})>"

    def _require_handle(self, handle: str | None, what: str) -> str:
        if handle is None:
            raise NodeNotFoundError(f"the account listing has no {what}")
        return handle

    def _require_login(self) -> Credentials:
        if self._creds is None:
            raise ValidationError("not logged in: call login() first")
        return self._creds

    def _sync(self) -> ApiClient:
        # mega.py users may change schema/domain/timeout on the object after creating it
        self._api.api_url = self.api_url
        if self.timeout != self._api.timeout:
            if not self.timeout > 0:
                raise ValidationError("timeout must be a positive number of seconds")
            self._api.timeout = float(self.timeout)
        return self._api

    def _request(self, command: dict[str, Any], folder: str | None = None) -> Any:
        return self._sync().request(command, folder=folder)

    def _batch(self, commands: list[dict[str, Any]]) -> list[Any]:
        return self._sync().batch(commands)

    # mega.py's private helpers that scripts are known to call
    def _api_request(self, data: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Send a command (or a batch) and return the first result, as mega.py does; a
        negative first result raises its error."""
        commands = data if isinstance(data, list) else [data]
        results = self._batch(commands)
        first = results[0] if results else None
        if isinstance(first, int) and first < 0:
            raise error_for_code(first)
        return first

    @staticmethod
    def _node_data(node: Any) -> Any:
        try:
            return node[1]
        except (IndexError, KeyError, TypeError):
            return node

    def _root_node_id(self) -> str:
        return self.root_id

    # ------------------------------------------------------------------------------------
    # logging in
    # ------------------------------------------------------------------------------------
    def login(
        self,
        email: str | None = None,
        password: str | None = None,
        *,
        mfa: MfaSource = None,
        session: str | dict[str, Any] | os.PathLike[str] | None = None,
    ) -> Mega:
        """Log in and return ``self``.

        Without an email, creates an anonymous (ephemeral) account, as mega.py does.
        ``mfa``: the two-factor code, or a callable returning it (asked only when the
        server wants one); without it a two-factor account raises
        :class:`~megafast.errors.TwoFactorRequiredError`. ``session``: resume a session
        saved with :meth:`dump_session`/:meth:`save_session` instead (no password needed).
        """
        if session is not None:
            return self.resume_session(session)
        if email:
            if password is None:
                raise ValidationError("a password is needed with an email")
            creds = login_user(self._sync(), email, password, mfa=mfa)
            self._set_credentials(creds)
        else:
            self.login_anonymous()
        return self

    def login_anonymous(self) -> Mega:
        """Create an anonymous (ephemeral) account, log in to it and return ``self``."""
        self._sync().sid = None
        creds = login_ephemeral(self._api)
        self._set_credentials(creds)
        return self

    def _set_credentials(self, creds: Credentials, check: bool = False) -> None:
        """Use ``creds`` from now on (a new tree); ask the server for the user handle when
        it is not known, or always with ``check`` (a resumed session may have expired)."""
        self._creds = creds
        self._api.sid = creds.sid
        self._live = None
        if check or creds.user_handle is None:
            user = self._request({"a": "ug"})  # SessionError (-15) when it expired
            if isinstance(user, dict) and isinstance(user.get("u"), str):
                creds.user_handle = user["u"]

    def dump_session(self) -> str:
        """The session as JSON text: resume it with ``login(session=...)`` without the
        password. It holds the session id and the master key: keep it secret."""
        import json

        return json.dumps(self._require_login().to_dict())

    def save_session(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`dump_session` to ``path`` with mode 0600."""
        self._require_login().save(path)

    def resume_session(self, session: str | dict[str, Any] | os.PathLike[str]) -> Mega:
        """Resume a saved session (JSON text, a dict, or a file written by
        :meth:`save_session`); checks it with the server and returns ``self``."""
        self._set_credentials(Credentials.load(session), check=True)
        return self

    def logout(self) -> None:
        """End the session on the server and forget the keys."""
        if self._creds is not None:
            try:
                if self._live is not None and self._live.dirty:
                    _livetree.save_quietly(self, self._live)
                self._request({"a": "sml"})
            finally:
                self._creds = None
                self._api.sid = None
                self._live = None

    # ------------------------------------------------------------------------------------
    # the node tree
    # ------------------------------------------------------------------------------------
    def _make_keyring(self) -> Keyring:
        creds = self._require_login()
        return Keyring(
            master_key=creds.master_key,
            user_handle=creds.user_handle,
            rsa_decrypt=creds.rsa_decrypt if creds.privk else None,
        )

    def _load_tree(self) -> NodeTree:
        if self._live is None:
            self.refresh()
        assert self._live is not None
        return self._live.tree

    def refresh(self) -> None:
        """Bring the node tree up to date (after changes by other clients): the whole
        listing, streamed and decrypted in bulk; with a cache, the cached tree plus the
        changes since it was saved (read from MEGA's change channel, ``/sc``)."""
        live = _livetree.load(self)
        live.tree.on_change = lambda: _livetree.after_change(self)
        self._live = live

    def clear_cache(self) -> None:
        """Remove this account's node cache file (the next login lists everything)."""
        cache = _livetree.node_cache(self)
        if cache is not None:
            cache.clear()

    def watch(self, callback: Callable[[ChangeEvent], None] | None = None) -> Watcher:
        """Follow the account's changes as they happen (MEGA's ``/sc`` channel).

        Returns a :class:`~megafast._tree.watch.Watcher`: iterate it for
        :class:`~megafast._tree.watch.ChangeEvent`s (``kind``, ``handle``, ``path``, ``node``), or,
        with ``callback``, it already runs in a daemon thread calling ``callback(event)``.
        Changes are applied to this client's tree (``find``/``get_files`` see them; with a
        cache it is saved as it goes). ``stop()`` ends it. The watcher's thread changes the
        tree: while it runs, read the tree from the callback (or iterate in your own thread)."""
        self._load_tree()
        assert self._live is not None
        watcher = _livetree.watcher(self, self._live)
        if callback is not None:
            watcher.start(callback)
        return watcher

    def get_files(self, include_undecryptable: bool = False) -> dict[str, dict[str, Any]]:
        """All nodes with readable attributes: ``{handle: node}`` (mega.py's shape).

        The tree is fetched once per session (see :meth:`refresh`).
        ``include_undecryptable``: also list nodes whose key or attributes cannot be
        decrypted (they carry ``a = False`` and ``undecryptable = True``).
        """
        tree = self._load_tree()
        if include_undecryptable:
            return dict(tree.nodes)
        return dict(tree.visible())

    def _node(self, ref: object, what: str = "node") -> dict[str, Any]:
        """Resolve a ``(handle, node)`` tuple, a node dict or a handle to the tree's node."""
        if ref is None:
            raise NodeNotFoundError(f"no {what} given (did find() return None?)")
        return _nodeops.resolve(self._load_tree(), ref, what)

    def find_path_descriptor(self, path: str, files: Any = ()) -> str | None:
        """The handle of the folder at ``path`` (``a/b/c`` from the Cloud Drive), or None."""
        node = self._load_tree().find_path(str(path), folders_only=True)
        return node["h"] if node is not None else None

    def find(
        self,
        filename: str | os.PathLike[str] | None = None,
        handle: str | None = None,
        exclude_deleted: bool = False,
    ) -> Any:
        """Find a node: by ``handle`` (returns the node dict) or by name or ``a/b/c`` path
        (returns ``(handle, node)``); ``None`` when nothing matches. A bare name matches
        anywhere in the account; ``exclude_deleted`` skips the Rubbish Bin."""
        return _nodeops.find(self._load_tree(), filename, handle, exclude_deleted)

    def get_files_in_node(self, target: int | str | NodeRef) -> dict[str, dict[str, Any]]:
        """The readable nodes directly inside ``target`` (a handle, a node, or a node type
        such as 4 for the Rubbish Bin)."""
        tree = self._load_tree()
        if isinstance(target, int) and not isinstance(target, bool):
            found = self.get_node_by_type(target)
            if found is None:
                return {}
            parent = found[0]
        else:
            parent = self._node(target, "folder")["h"]
        return {n["h"]: n for n in tree.child_nodes(parent) if n.get("a")}

    def get_node_by_type(self, type: int) -> Node | None:  # noqa: A002 (mega.py's name)
        """The first node of a type: 0 file, 1 folder, 2 Cloud Drive, 3 Inbox, 4 Rubbish Bin."""
        return _nodeops.node_by_type(self._load_tree(), type)

    def get_id_from_public_handle(self, public_handle: str) -> str | None:
        """The node handle behind one of this account's public handles."""
        return _nodeops.id_from_public_handle(self, public_handle)

    def get_id_from_obj(self, node_data: Mapping[str, Any]) -> str | None:
        """The last non-empty handle in an answer's ``f`` list (mega.py's helper)."""
        node_id = None
        for item in node_data.get("f") or ():
            if isinstance(item, Mapping) and item.get("h"):
                node_id = item["h"]
        return node_id

    # ------------------------------------------------------------------------------------
    # account
    # ------------------------------------------------------------------------------------
    def get_user(self) -> dict[str, Any]:
        """The user record (``u`` handle, ``email``, ``name``, ...)."""
        self._require_login()
        user: dict[str, Any] = self._request({"a": "ug"})
        return user

    def get_quota(self) -> float:
        """Total storage in MiB (mega.py's figure)."""
        return _account.quota_mib(self)

    def get_storage_space(
        self, giga: bool = False, mega: bool = False, kilo: bool = False
    ) -> dict[str, float]:
        """``{'used': ..., 'total': ...}`` in bytes, or in GiB/MiB/KiB with one flag."""
        return _account.storage_space(self, giga, mega, kilo)

    def get_balance(self) -> Any:
        """The account balance (Pro accounts), or None."""
        return _account.balance(self)

    def add_contact(self, email: str) -> Any:
        """Add a user to the contact list."""
        return _account.edit_contact(self, email, True)

    def remove_contact(self, email: str) -> Any:
        """Remove a user from the contact list."""
        return _account.edit_contact(self, email, False)

    # ------------------------------------------------------------------------------------
    # changing the tree (megafast._account.nodeops)
    # ------------------------------------------------------------------------------------
    def create_folder(self, name: str, dest: NodeRef | None = None) -> dict[str, str]:
        """Create ``a/b/c`` like ``mkdir -p`` under ``dest`` (default: the Cloud Drive);
        returns ``{folder name: handle}`` for every part, existing or new."""
        return _nodeops.create_folder(self, name, dest)

    def rename(self, file: NodeRef, new_name: str) -> Any:
        """Rename a file or folder (other attributes such as the fingerprint are kept)."""
        return _nodeops.rename(self, file, new_name)

    def move(self, file_id: NodeRef, target: int | NodeRef) -> Any:
        """Move a node under ``target``: a node type (2 Cloud Drive, 3 Inbox, 4 Rubbish Bin),
        a folder handle or a ``(handle, node)`` tuple."""
        return _nodeops.move(self, file_id, target)

    def delete(self, public_handle: NodeRef) -> Any:
        """Move a node (by handle, as in mega.py) to the Rubbish Bin."""
        return self.move(public_handle, NodeType.RUBBISH)

    def delete_url(self, url: str) -> Any:
        """Move the node behind one of this account's public links to the Rubbish Bin."""
        return self.move(_nodeops.handle_from_link(self, url), NodeType.RUBBISH)

    def destroy(self, file_id: NodeRef) -> Any:
        """Delete a node (and everything in it) for good."""
        return _nodeops.destroy(self, file_id)

    def destroy_url(self, url: str) -> Any:
        """Delete the node behind one of this account's public links for good."""
        return self.destroy(_nodeops.handle_from_link(self, url))

    def empty_trash(self) -> Any:
        """Delete everything in the Rubbish Bin for good; ``None`` when it was empty."""
        return _nodeops.empty_trash(self)

    # ------------------------------------------------------------------------------------
    # shares (megafast._account.shares); links and transfers are in TransferMethods
    # ------------------------------------------------------------------------------------
    def share(self, folder: NodeRef, email: str, access: int = 0) -> Any:
        """Share a folder with another MEGA user: ``access`` 0 read-only, 1 read-write, 2 full.

        The folder's share key (a fresh one unless it is already shared or exported) is
        RSA-encrypted with the user's public key (``uk``) and sent with ``s2``, along with
        every node's key under the share key. :class:`~megafast.errors.NotFoundError` when
        no account with a public key has that email."""
        return _shares.share(self, folder, email, access)

    def unshare(self, folder: NodeRef, email: str) -> Any:
        """Stop sharing a folder with a user (the share key stays for other users and links)."""
        return _shares.unshare(self, folder, email)
