"""``megafast.Mega``: mega.py 1.0.8's interface over MEGA's current protocol.

A script written for mega.py runs unchanged after ``from megafast import Mega``. Beyond
mega.py: a configurable server (``api_url``), retries with back-off and hashcash, v1/v2/
two-factor/ephemeral logins, saved sessions, a node tree fetched once and indexed, shares,
every public link format, public folders, and parallel verified transfers.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _nodeops, _shares, _sources, _transfers
from ._api import DEFAULT_API_URL, ApiClient
from ._codec import bytes_to_words
from ._links import is_handle, parse_link
from ._nodes import Keyring, NodeTree, NodeType
from ._session import Credentials, MfaSource, login_ephemeral, login_user
from .errors import (
    LinkError,
    NodeNotFoundError,
    UnexpectedAnswerError,
    ValidationError,
    error_for_code,
)

if TYPE_CHECKING:
    import requests

    from .transfer import TransferConfig

__all__ = ["Mega", "Node", "NodeRef", "NodeType"]

#: A node as mega.py returns it from ``find``: ``(handle, node dict)``.
Node = tuple[str, dict[str, Any]]
#: What methods accept as a node: a ``(handle, dict)`` tuple, a node dict or a handle.
NodeRef = Node | Mapping[str, Any] | str
ProgressCallback = Callable[[int, int], None]


def _number(answer: Any, field: str) -> float:
    """A number from an API answer; UnexpectedAnswerError (never KeyError) when it is missing."""
    value = answer.get(field) if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnexpectedAnswerError(f"the answer has no number {field!r}")
    return value


class Mega:
    """A MEGA client with mega.py's interface.

    ``options`` (mega.py's argument) and the keyword arguments accept: ``api_url`` (the API
    server, default ``$MEGAFAST_API_URL`` or ``{schema}://g.api.{domain}``), ``timeout``
    (seconds per HTTP request), ``retry_time`` (seconds a request may spend retrying
    temporary errors), ``connect_retry_time`` (seconds to keep trying a server that refuses
    connections, default 3), ``transfer`` (a :class:`~megafast.transfer.TransferConfig` used by
    default for downloads and uploads), ``legacy_links`` (build ``#!H!K`` links instead of
    ``/file/H#K``), ``hashcash_threads``, ``backoff_base``/``backoff_cap`` (seconds: the
    first and the longest wait between retries).

    Beyond mega.py: :meth:`refresh`, :meth:`dump_session`/:meth:`save_session`/
    :meth:`resume_session` (also ``login(session=...)``), ``login(..., mfa=...)``,
    :meth:`logout`, :meth:`share`/:meth:`unshare` (folders with other users),
    :meth:`get_public_folder`, :meth:`download_folder_url`,
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
    ) -> None:
        self.options: dict[str, Any] = dict(options or {})
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
        )
        self.request_id = secrets.token_urlsafe(8)[:10]
        self._creds: Credentials | None = None
        self._tree: NodeTree | None = None
        self._keyring: Keyring | None = None
        self._exported: set[Any] = set()  # folders shared with "EXP" (public)

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
    def shared_keys(self) -> dict[str, tuple[int, ...]]:
        """Share keys known to this session (share handle -> 4 words)."""
        self._load_tree()
        assert self._keyring is not None
        return {h: bytes_to_words(k) for h, k in self._keyring.share_keys.items()}

    def __repr__(self) -> str:
        who = "not logged in"
        if self._creds is not None:
            who = "ephemeral" if self._creds.ephemeral else (self._creds.email or "logged in")
        return f"<megafast.Mega {self.api_url} ({who})>"

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

    def _set_credentials(self, creds: Credentials) -> None:
        self._creds = creds
        self._api.sid = creds.sid
        self._tree = None
        self._keyring = None
        if creds.user_handle is None:
            user = self._request({"a": "ug"})
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
        if isinstance(session, os.PathLike) or (
            isinstance(session, str) and not session.lstrip().startswith("{")
        ):
            try:
                session = Path(session).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValidationError(f"cannot read the session file: {exc.strerror}") from None
        creds = Credentials.from_saved(session)
        self._creds = creds
        self._api.sid = creds.sid
        self._tree = None
        self._keyring = None
        user = self._request({"a": "ug"})  # SessionError (-15) when it expired
        if isinstance(user, dict) and isinstance(user.get("u"), str):
            creds.user_handle = user["u"]
        return self

    def logout(self) -> None:
        """End the session on the server and forget the keys."""
        if self._creds is not None:
            try:
                self._request({"a": "sml"})
            finally:
                self._creds = None
                self._api.sid = None
                self._tree = None
                self._keyring = None

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
        if self._tree is None:
            self.refresh()
        assert self._tree is not None
        return self._tree

    def refresh(self) -> None:
        """Fetch and decrypt the whole node tree again (after changes by other clients)."""
        keyring = self._make_keyring()
        answer = self._request({"a": "f", "c": 1, "r": 1})
        if not isinstance(answer, dict):
            raise UnexpectedAnswerError("the answer to f is not an object")
        self._tree = NodeTree.from_answer(answer, keyring)
        self._keyring = keyring
        shares = answer.get("s")
        self._exported = {
            item.get("h")
            for item in (shares if isinstance(shares, list) else ())
            if isinstance(item, dict) and item.get("u") == "EXP"
        }

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
        tree = self._load_tree()
        handle: Any
        if isinstance(ref, str):
            handle = ref
        elif isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[1], Mapping):
            handle = ref[1].get("h", ref[0])
        elif isinstance(ref, Mapping):
            handle = ref.get("h")
        else:
            raise ValidationError(
                f"not a node: expected (handle, node), a node or a handle, got {type(ref).__name__}"
            )
        node = tree.nodes.get(handle) if isinstance(handle, str) else None
        if node is None:
            raise NodeNotFoundError(f"no {what} with handle {handle!r}")
        return node

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
        tree = self._load_tree()
        if handle:
            return tree.nodes.get(handle)
        if filename is None:
            return None
        text = os.fspath(filename)
        if "/" in text.strip("/"):
            node = tree.find_path(text, exclude_deleted=exclude_deleted)
        else:
            node = tree.find_by_name(text.strip("/"), exclude_deleted=exclude_deleted)
        return (node["h"], node) if node is not None else None

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
        tree = self._load_tree()
        special = {
            int(NodeType.ROOT): tree.root_id,
            int(NodeType.INBOX): tree.inbox_id,
            int(NodeType.RUBBISH): tree.trash_id,
        }.get(type)
        if special is not None:
            return special, tree.nodes[special]
        for h, node in tree.visible().items():
            if node.get("t") == type:
                return h, node
        return None

    def get_id_from_public_handle(self, public_handle: str) -> str | None:
        """The node handle behind one of this account's public handles."""
        if not is_handle(public_handle):
            raise LinkError("a public handle is 8 characters of base64url")
        tree = self._load_tree()
        for h, node in tree.nodes.items():
            if node.get("ph") == public_handle:
                return h
        node_data = self._request({"a": "f", "f": 1, "p": public_handle})
        return self.get_id_from_obj(node_data)

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
        return self._request({"a": "ug"})

    def get_quota(self) -> float:
        """Total storage in MiB (mega.py's figure)."""
        self._require_login()
        answer = self._request({"a": "uq", "xfer": 1, "strg": 1, "v": 1})
        return _number(answer, "mstrg") / 1048576

    def get_storage_space(
        self, giga: bool = False, mega: bool = False, kilo: bool = False
    ) -> dict[str, float]:
        """``{'used': ..., 'total': ...}`` in bytes, or in GiB/MiB/KiB with one flag."""
        if sum(1 for x in (giga, mega, kilo) if x) > 1:
            raise ValidationError("Only one unit prefix can be specified")
        unit = 1073741824 if giga else 1048576 if mega else 1024 if kilo else 1
        self._require_login()
        answer = self._request({"a": "uq", "xfer": 1, "strg": 1})
        return {"used": _number(answer, "cstrg") / unit, "total": _number(answer, "mstrg") / unit}

    def get_balance(self) -> Any:
        """The account balance (Pro accounts), or None."""
        self._require_login()
        answer = self._request({"a": "uq", "pro": 1})
        return answer.get("balance") if isinstance(answer, dict) else None

    def add_contact(self, email: str) -> Any:
        """Add a user to the contact list."""
        return self._edit_contact(email, True)

    def remove_contact(self, email: str) -> Any:
        """Remove a user from the contact list."""
        return self._edit_contact(email, False)

    def _edit_contact(self, email: str, add: bool) -> Any:
        if not isinstance(add, bool):
            raise ValidationError("add parameter must be of type bool")
        if not isinstance(email, str) or not _shares.EMAIL_RE.match(email):
            raise ValidationError("add_contact requires a valid email address")
        self._require_login()
        return self._request(
            {"a": "ur", "u": email, "l": "1" if add else "0", "i": self.request_id}
        )

    # ------------------------------------------------------------------------------------
    # changing the tree (megafast._nodeops)
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
    # links (megafast._nodeops) and shares (megafast._shares)
    # ------------------------------------------------------------------------------------
    def get_link(self, file: NodeRef) -> str:
        """The public link of a file (creates it if needed)."""
        return _nodeops.get_link(self, file)

    def get_upload_link(self, file: Mapping[str, Any]) -> str:
        """The public link of a file just uploaded (``file`` is :meth:`upload`'s answer)."""
        return _nodeops.get_upload_link(self, file)

    def get_folder_link(self, file: NodeRef) -> str:
        """The public link of a folder that is already exported (see :meth:`export`)."""
        return _nodeops.get_folder_link(self, file)

    def export(self, path: str | None = None, node_id: str | None = None) -> str:
        """Create (or return) the public link of the file or folder at ``path`` or
        ``node_id``. Folders are shared with a fresh key first."""
        return _nodeops.export(self, path, node_id)

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

    # ------------------------------------------------------------------------------------
    # public files and folders (megafast._sources)
    # ------------------------------------------------------------------------------------
    @staticmethod
    def _parse_url(url: str) -> str:
        """``handle!key`` of a public link (mega.py's helper)."""
        link = parse_link(url)
        return f"{link.handle}!{link.key_b64}"

    def get_public_url_info(self, url: str) -> dict[str, Any]:
        """``{'size': bytes, 'name': str}`` of a public file link; for a folder link also
        the counts of ``files`` and ``folders`` (size is the total of its files)."""
        return _sources.public_url_info(self, url)

    def get_public_file_info(self, file_handle: str, file_key: str | bytes) -> dict[str, Any]:
        """``{'size': bytes, 'name': str}`` of a public file; a wrong key raises
        :class:`~megafast.errors.WrongKeyError`."""
        return _sources.public_file_info(self, file_handle, file_key)

    def import_public_url(
        self, url: str, dest_node: NodeRef | None = None, dest_name: str | None = None
    ) -> Any:
        """Copy a public file into the account (default: the Cloud Drive)."""
        link = parse_link(url)
        if link.kind != "file":
            raise LinkError("only file links can be imported")
        return self.import_public_file(link.handle, link.key_b64, dest_node, dest_name)

    def import_public_file(
        self,
        file_handle: str,
        file_key: str | bytes,
        dest_node: NodeRef | None = None,
        dest_name: str | None = None,
    ) -> Any:
        """Copy a public file (handle and key) into the account; returns the ``p`` answer."""
        return _nodeops.import_public_file(self, file_handle, file_key, dest_node, dest_name)

    def get_public_folder(self, url: str) -> dict[str, dict[str, Any]]:
        """All nodes of a public folder link: ``{handle: node}`` like :meth:`get_files`
        (undecryptable nodes included, marked ``undecryptable``). A link to a node inside
        the folder lists that node and what is below it."""
        return _sources.public_folder(self, url)

    # ------------------------------------------------------------------------------------
    # transfers (megafast._transfers)
    # ------------------------------------------------------------------------------------
    def download(
        self,
        file: NodeRef | None,
        dest_path: str | os.PathLike[str] | None = None,
        dest_filename: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
    ) -> Path:
        """Download a file (a ``(handle, node)`` from :meth:`find`) into ``dest_path``
        (default: the current directory) and return the file's path. A folder is
        downloaded recursively and its local path returned. The content is verified (MAC)."""
        return _transfers.download(self, file, dest_path, dest_filename, progress, config)

    def download_url(
        self,
        url: str,
        dest_path: str | os.PathLike[str] | None = None,
        dest_filename: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
    ) -> Path:
        """Download a public link: a file, a file or folder inside a folder link, or a
        whole folder (recursively). Returns the local path."""
        return _transfers.download_url(self, url, dest_path, dest_filename, progress, config)

    def download_folder_url(
        self,
        url: str,
        dest_path: str | os.PathLike[str] | None = None,
        dest_filename: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
    ) -> Path:
        """Download a public folder link (or the node inside it the link names)."""
        return _transfers.download_folder_url(self, url, dest_path, dest_filename, progress, config)

    def download_to_fileobj(
        self,
        file: NodeRef | str,
        fileobj: Any,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
    ) -> int:
        """Write a file's verified content, in order, to a writable binary ``fileobj``;
        ``file`` is a node, a handle or a public link. Returns the size in bytes. The MAC
        is checked at the end: on :class:`~megafast.errors.IntegrityError` discard what
        was written."""
        return _transfers.download_to_fileobj(self, file, fileobj, progress, config)

    def open(self, file: NodeRef | str, *, config: TransferConfig | None = None) -> Any:
        """A seekable, read-only binary file object over a remote file (a node, a handle
        or a public link); whole MAC chunks are verified as they are read."""
        return _transfers.open_remote(self, file, config)

    def upload(
        self,
        filename: str | os.PathLike[str],
        dest: NodeRef | None = None,
        dest_filename: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        resume: bool = True,
    ) -> dict[str, Any]:
        """Upload a local file into ``dest`` (a folder handle or node; default: the Cloud
        Drive) and return the API's answer (``{'f': [new node]}``), as mega.py does.

        ``resume``: an interrupted upload of the same (unchanged) file to the same folder,
        name, account and server continues where it stopped while its upload URL is valid
        (a sidecar holds the URL and key; the data sent before is checked against the file
        before anything new is sent). ``resume=False`` (or ``config.resume=False``) starts over.
        """
        return _transfers.upload(self, filename, dest, dest_filename, progress, config, resume)

    def upload_folder(
        self,
        directory: str | os.PathLike[str],
        dest: NodeRef | None = None,
        *,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        resume: bool = True,
    ) -> dict[str, str]:
        """Upload a local folder tree into ``dest`` (default: the Cloud Drive), like
        ``cp -r``: the folder itself is created (or reused) there, with every sub-folder
        and regular file below it (symlinks and special files are skipped).

        Returns ``{relative path: handle}`` with ``"."`` for the top folder and POSIX
        paths (``"sub/file.txt"``) below it. ``progress(done, total)`` covers the bytes of
        the whole tree. Each file resumes like :meth:`upload`.
        """
        return _transfers.upload_folder(self, directory, dest, progress, config, resume)

    def upload_fileobj(
        self,
        fileobj: Any,
        name: str,
        dest: NodeRef | None = None,
        *,
        size: int | None = None,
        mtime: float | None = None,
        progress: ProgressCallback | None = None,
        config: TransferConfig | None = None,
        resume: bool = True,
    ) -> dict[str, Any]:
        """Upload a binary file object (or bytes, or an iterable of bytes) as ``name`` into
        ``dest``; ``size`` in bytes is needed when it cannot be found by seeking. Returns the
        API's answer like :meth:`upload`. A seekable source read from its start also gets a
        fingerprint (``mtime``: seconds, default now). ``resume``: as for :meth:`upload`, for
        bytes and seekable sources (a stream cannot be read again, so it always starts over).
        """
        return _transfers.upload_fileobj(
            self, fileobj, name, dest, size, mtime, progress, config, resume
        )
