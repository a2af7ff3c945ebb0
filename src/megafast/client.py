"""``megafast.Mega``: mega.py 1.0.8's interface over MEGA's current protocol.

A script written for mega.py runs unchanged after ``from megafast import Mega``. Beyond
mega.py: a configurable server (``api_url``), retries with back-off and hashcash, v1/v2/
two-factor/ephemeral logins, saved sessions, a node tree fetched once and indexed, shares,
every public link format, public folders, and parallel verified transfers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._account import livetree as _livetree
from ._account import nodeops as _nodeops
from ._account import quota as _account
from ._account import shares as _shares
from ._account.core import Core
from ._account.livetree import LiveTree
from ._account.nodeops import Node, NodeRef
from ._account.session import Credentials, MfaSource
from ._transfer_methods import TransferMethods
from ._tree.nodes import Keyring, NodeTree, NodeType
from ._wire.api import ApiClient
from ._wire.codec import bytes_to_words
from ._wire.redact import redact_url
from .errors import (
    ValidationError,
    error_for_code,
)
from .media._methods import MediaMethods

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from ._tree.watch import ChangeEvent, Watcher
    from .transfer import TransferConfig

__all__ = ["Mega", "Node", "NodeRef", "NodeType"]


class Mega(TransferMethods, MediaMethods):
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
    ``$XDG_CACHE_HOME/megafast``, or a folder; off by default), ``thumbnails`` (uploads of
    images, and of videos when ffmpeg is installed, get a thumbnail and a preview as MEGA's
    apps make them: on by default when Pillow is installed, ``False`` turns it off).

    Beyond mega.py: :meth:`refresh`, :meth:`dump_session`/:meth:`save_session`/
    :meth:`resume_session` (also ``login(session=...)``), ``login(..., mfa=...)``,
    :meth:`logout`, :meth:`share`/:meth:`unshare` (folders with other users),
    :meth:`get_public_folder`, :meth:`download_folder_url`, :meth:`watch`, :meth:`clear_cache`,
    :meth:`download_to_fileobj`, :meth:`open`, :meth:`upload_fileobj`, ``progress``/
    ``config`` keywords on every transfer, thumbnails and previews (:meth:`get_thumbnail`,
    :meth:`get_thumbnails`...), and password-protected ``#P!`` links (``password=``).
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
        opts: dict[str, Any] = dict(options or {})
        for name, value in (
            ("cache", cache),
            ("api_url", api_url),
            ("timeout", timeout),
            ("retry_time", retry_time),
            ("transfer", transfer),
        ):
            if value is not None:
                opts[name] = value
        #: the core this facade stands on (the session, the keyring, the live tree)
        self.core = Core(opts, http=http)

    # ------------------------------------------------------------------------------------
    # configuration and state (held by the core; mega.py's attribute names)
    # ------------------------------------------------------------------------------------
    @property
    def options(self) -> dict[str, Any]:
        """The options given at creation (mega.py's attribute)."""
        return self.core.options

    @options.setter
    def options(self, value: dict[str, Any]) -> None:
        self.core.options = value

    @property
    def schema(self) -> str:
        return self.core.schema

    @schema.setter
    def schema(self, value: str) -> None:
        self.core.schema = value

    @property
    def domain(self) -> str:
        return self.core.domain

    @domain.setter
    def domain(self, value: str) -> None:
        self.core.domain = value

    @property
    def timeout(self) -> float:
        """Seconds per HTTP request."""
        return self.core.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.core.timeout = value

    @property
    def request_id(self) -> str:
        return self.core.request_id

    @request_id.setter
    def request_id(self, value: str) -> None:
        self.core.request_id = value

    @property
    def api_url(self) -> str:
        """The API server (no trailing slash); requests go to ``{api_url}/cs``."""
        return self.core.api_url

    @property
    def http(self) -> requests.Session:
        """The pooled ``requests.Session`` of API calls; each transfer clones it into a
        private session of its own (same headers, proxies and certificates)."""
        return self.core.http

    @property
    def sid(self) -> str | None:
        """The session id (``None`` before logging in)."""
        return self.core.sid

    @property
    def sequence_num(self) -> int:
        """The id the next API request will carry (mega.py's name)."""
        return self.core.api_client._next_id

    @property
    def master_key(self) -> tuple[int, ...]:
        """The account's master key as 4 words (mega.py's attribute)."""
        return self.core.master_key

    @property
    def root_id(self) -> str:
        """Handle of the Cloud Drive root."""
        return self.core.root(NodeType.ROOT)

    @property
    def inbox_id(self) -> str:
        """Handle of the Inbox."""
        return self.core.root(NodeType.INBOX)

    @property
    def trashbin_id(self) -> str:
        """Handle of the Rubbish Bin."""
        return self.core.root(NodeType.RUBBISH)

    @property
    def shared_keys(self) -> dict[str, tuple[int, ...]]:
        """Share keys known to this session (share handle -> 4 words)."""
        self.core.tree()
        assert self.core.keyring is not None
        return {h: bytes_to_words(k) for h, k in self.core.keyring.share_keys.items()}

    def __repr__(self) -> str:
        who = "not logged in"
        creds = self.core.credentials
        if creds is not None:
            who = "ephemeral" if creds.ephemeral else (creds.email or "logged in")
        return f"<megafast.Mega {redact_url(self.api_url)} ({who})>"

    # the stable internal hooks (tests and older scripts use them): each is the core's
    @property
    def _api(self) -> ApiClient:
        return self.core.api_client

    @property
    def _creds(self) -> Credentials | None:
        return self.core.credentials

    @property
    def _live(self) -> LiveTree | None:
        return self.core.live

    @property
    def _tree(self) -> NodeTree | None:
        return self.core.loaded_tree

    @property
    def _keyring(self) -> Keyring | None:
        return self.core.keyring

    def _require_login(self) -> Credentials:
        return self.core.require_login()

    def _sync(self) -> ApiClient:
        return self.core.api()

    def _request(self, command: dict[str, Any], folder: str | None = None) -> Any:
        return self.core.request(command, folder=folder)

    def _batch(self, commands: list[dict[str, Any]]) -> list[Any]:
        return self.core.batch(commands)

    def _load_tree(self) -> NodeTree:
        return self.core.tree()

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
            self.core.login(email, password, mfa=mfa)
        else:
            self.login_anonymous()
        return self

    def login_anonymous(self) -> Mega:
        """Create an anonymous (ephemeral) account, log in to it and return ``self``."""
        self.core.login_anonymous()
        return self

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
        self.core.resume(session)
        return self

    def logout(self) -> None:
        """End the session on the server and forget the keys."""
        self.core.logout()

    # ------------------------------------------------------------------------------------
    # the node tree
    # ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the node tree up to date (after changes by other clients): the whole
        listing, streamed and decrypted in bulk; with a cache, the cached tree plus the
        changes since it was saved (read from MEGA's change channel, ``/sc``)."""
        self.core.refresh()

    def clear_cache(self) -> None:
        """Remove this account's node cache file (the next login lists everything)."""
        cache = _livetree.node_cache(self.core)
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
        self.core.tree()
        assert self.core.live is not None
        watcher = _livetree.watcher(self.core, self.core.live)
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
        return self.core.node(ref, what)

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
        return _nodeops.find(self.core.tree(), filename, handle, exclude_deleted)

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
        return _nodeops.node_by_type(self.core.tree(), type)

    def get_id_from_public_handle(self, public_handle: str) -> str | None:
        """The node handle behind one of this account's public handles."""
        return _nodeops.id_from_public_handle(self.core, public_handle)

    def get_id_from_obj(self, node_data: Mapping[str, Any]) -> str | None:
        """The last non-empty handle in an answer's ``f`` list (mega.py's helper)."""
        return _nodeops.last_handle(node_data)

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
        return _account.quota_mib(self.core)

    def get_storage_space(
        self, giga: bool = False, mega: bool = False, kilo: bool = False
    ) -> dict[str, float]:
        """``{'used': ..., 'total': ...}`` in bytes, or in GiB/MiB/KiB with one flag."""
        return _account.storage_space(self.core, giga, mega, kilo)

    def get_balance(self) -> Any:
        """The account balance (Pro accounts), or None."""
        return _account.balance(self.core)

    def add_contact(self, email: str) -> Any:
        """Add a user to the contact list."""
        return _account.edit_contact(self.core, email, True)

    def remove_contact(self, email: str) -> Any:
        """Remove a user from the contact list."""
        return _account.edit_contact(self.core, email, False)

    # ------------------------------------------------------------------------------------
    # changing the tree (megafast._account.nodeops)
    # ------------------------------------------------------------------------------------
    def create_folder(self, name: str, dest: NodeRef | None = None) -> dict[str, str]:
        """Create ``a/b/c`` like ``mkdir -p`` under ``dest`` (default: the Cloud Drive);
        returns ``{folder name: handle}`` for every part, existing or new."""
        return _nodeops.create_folder(self.core, name, dest)

    def rename(self, file: NodeRef, new_name: str) -> Any:
        """Rename a file or folder (other attributes such as the fingerprint are kept)."""
        return _nodeops.rename(self.core, file, new_name)

    def move(self, file_id: NodeRef, target: int | NodeRef) -> Any:
        """Move a node under ``target``: a node type (2 Cloud Drive, 3 Inbox, 4 Rubbish Bin),
        a folder handle or a ``(handle, node)`` tuple."""
        return _nodeops.move(self.core, file_id, target)

    def delete(self, public_handle: NodeRef) -> Any:
        """Move a node (by handle, as in mega.py) to the Rubbish Bin."""
        return self.move(public_handle, NodeType.RUBBISH)

    def delete_url(self, url: str) -> Any:
        """Move the node behind one of this account's public links to the Rubbish Bin."""
        return self.move(_nodeops.handle_from_link(self.core, url), NodeType.RUBBISH)

    def destroy(self, file_id: NodeRef) -> Any:
        """Delete a node (and everything in it) for good."""
        return _nodeops.destroy(self.core, file_id)

    def destroy_url(self, url: str) -> Any:
        """Delete the node behind one of this account's public links for good."""
        return self.destroy(_nodeops.handle_from_link(self.core, url))

    def empty_trash(self) -> Any:
        """Delete everything in the Rubbish Bin for good; ``None`` when it was empty."""
        return _nodeops.empty_trash(self.core)

    # ------------------------------------------------------------------------------------
    # shares (megafast._account.shares); links and transfers are in TransferMethods
    # ------------------------------------------------------------------------------------
    def share(self, folder: NodeRef, email: str, access: int = 0) -> Any:
        """Share a folder with another MEGA user: ``access`` 0 read-only, 1 read-write, 2 full.

        The folder's share key (a fresh one unless it is already shared or exported) is
        RSA-encrypted with the user's public key (``uk``) and sent with ``s2``, along with
        every node's key under the share key. :class:`~megafast.errors.NotFoundError` when
        no account with a public key has that email."""
        return _shares.share(self.core, folder, email, access)

    def unshare(self, folder: NodeRef, email: str) -> Any:
        """Stop sharing a folder with a user (the share key stays for other users and links)."""
        return _shares.unshare(self.core, folder, email)
