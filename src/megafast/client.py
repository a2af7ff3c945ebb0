"""``megafast.Mega``: mega.py 1.0.8's interface over MEGA's current protocol.

A script written for mega.py runs unchanged after ``from megafast import Mega``. Beyond
mega.py: a configurable server (``api_url``), retries with back-off and hashcash, v1/v2/
two-factor/ephemeral logins, saved sessions, a node tree fetched once and indexed, shares,
every public link format, public folders, and parallel verified transfers.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._api import DEFAULT_API_URL, ApiClient
from ._links import PublicLink, b64encode, file_link, folder_link, is_handle, parse_link
from ._nodes import Keyring, NodeTree, b64_bytes, bytes_to_words, words_to_bytes
from ._session import Credentials, MfaSource, login_ephemeral, login_user, rsa_encrypt_key
from .errors import (
    DestinationError,
    LinkError,
    NodeNotFoundError,
    NotFoundError,
    OverQuotaError,
    RequestError,
    SourceNotFoundError,
    ValidationError,
    WrongKeyError,
    error_for_code,
)

if TYPE_CHECKING:
    import requests

    from .transfer import TransferConfig

__all__ = ["Mega", "Node", "NodeRef"]

#: A node as mega.py returns it from ``find``: ``(handle, node dict)``.
Node = tuple[str, dict[str, Any]]
#: What methods accept as a node: a ``(handle, dict)`` tuple, a node dict or a handle.
NodeRef = Node | Mapping[str, Any] | str
ProgressCallback = Callable[[int, int], None]

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f]")


def _number(answer: Any, field: str) -> float:
    """A number from an API answer; RequestError (never KeyError) when it is missing."""
    value = answer.get(field) if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError("EUNKNOWN", f"the answer has no number {field!r}")
    return value


def _new_handle(answer: Any) -> str:
    """The handle of the node a ``p`` answer created."""
    try:
        handle = answer["f"][0]["h"]
    except (TypeError, KeyError, IndexError):
        handle = None
    if not isinstance(handle, str):
        raise RequestError("EUNKNOWN", "the answer to p has no new node")
    return handle


def _file_identity(path: Path, st: os.stat_result) -> str:
    """A local file as it is now: a changed file (size, mtime, inode) is another upload."""
    return f"path:{path}:{st.st_size}:{st.st_mtime_ns}:{st.st_dev}:{st.st_ino}"


def _fileobj_identity(fileobj: Any, base: int, size: int | None) -> str:
    """A seekable file object from ``base``: its file when it has one, else its sampled
    fingerprint (a resume re-checks the data sent before, so a collision only costs time)."""
    fileno = getattr(fileobj, "fileno", None)
    if callable(fileno):
        try:
            st = os.fstat(fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        else:
            if stat.S_ISREG(st.st_mode):
                name = getattr(fileobj, "name", "")
                return f"{_file_identity(Path(str(name)), st)}:{base}:{size}"
    from .crypto import fingerprint

    sample = fingerprint(fileobj, 0)  # mtime 0: the same data gives the same id every time
    end = fileobj.seek(0, os.SEEK_END)
    fileobj.seek(base)
    return f"fileobj:{sample}:{base}:{size}:{end}"


def _check_share_results(answer: Any) -> None:
    """``s2`` answers ``{"r": [result per target]}``: raise the first negative one."""
    results = answer.get("r") if isinstance(answer, dict) else None
    for code in results if isinstance(results, list) else ():
        if isinstance(code, int) and code < 0:
            raise error_for_code(code)


def _safe_name(name: str) -> str:
    """A node name as a single local path component (no separators, not '.' or '..')."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip()
    if cleaned in ("", ".", ".."):
        cleaned = "_" + cleaned
    return cleaned


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
        """The pooled ``requests.Session`` shared by API calls and transfers."""
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
            raise RequestError("EUNKNOWN", "unexpected answer to f")
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

    def _node(self, ref: NodeRef | None, what: str = "node") -> dict[str, Any]:
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
        special = {2: tree.root_id, 3: tree.inbox_id, 4: tree.trash_id}.get(type)
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
        if not isinstance(email, str) or not _EMAIL_RE.match(email):
            raise ValidationError("add_contact requires a valid email address")
        self._require_login()
        return self._request(
            {"a": "ur", "u": email, "l": "1" if add else "0", "i": self.request_id}
        )

    # ------------------------------------------------------------------------------------
    # changing the tree
    # ------------------------------------------------------------------------------------
    def _encrypt_attrs(self, attrs: Mapping[str, Any], key4: tuple[int, ...]) -> str:
        from .crypto import encrypt_attr

        return b64encode(encrypt_attr(dict(attrs), key4))

    def _wrap_key(self, key: tuple[int, ...]) -> str:
        from .crypto import encrypt_key

        return b64encode(words_to_bytes(encrypt_key(key, self.master_key)))

    def _add_answer_nodes(self, answer: Any) -> None:
        if self._tree is not None and self._keyring is not None and isinstance(answer, dict):
            # copies: the caller gets the API's answer untouched (mega.py's upload() result)
            raw = [dict(n) for n in answer.get("f") or () if isinstance(n, dict)]
            self._tree.add_nodes(raw, self._keyring)

    def _folder_handle(self, dest: Any) -> str:
        if dest is None:
            return self.root_id
        if isinstance(dest, int) and not isinstance(dest, bool):
            found = self.get_node_by_type(dest)
            if found is None:
                raise NodeNotFoundError(f"no node of type {dest}")
            return found[0]
        node = self._node(dest, "destination folder")
        if node.get("t") == 0:
            raise ValidationError("the destination is a file, not a folder")
        return node["h"]

    def _mkdir(self, name: str, parent_node_id: str) -> dict[str, Any]:
        from .crypto import random_key

        key = tuple(random_key(4))
        return self._put_node(
            parent_node_id,
            {"h": "xxxxxxxx", "t": 1, "a": self._encrypt_attrs({"n": name}, key)},
            key,
        )

    def _put_node(self, parent: str, item: dict[str, Any], key: tuple[int, ...]) -> Any:
        """Create one node (``p``) under ``parent``: ``item`` without its ``k``, ``key`` the
        node's key (wrapped with the master key here, and with the key of every share above
        ``parent`` in ``cr``, so that the people it is shared with can read it)."""
        command: dict[str, Any] = {
            "a": "p",
            "t": parent,
            "n": [{**item, "k": self._wrap_key(key)}],
            "i": self.request_id,
        }
        cr = self._share_keys_for(parent, key, item.get("h") or item.get("ph") or "")
        if cr is not None:
            command["cr"] = cr
        answer = self._request(command)
        self._add_answer_nodes(answer)
        return answer

    def _share_keys_for(self, parent: str, key: tuple[int, ...], item: str) -> list[Any] | None:
        """``cr`` for a new node under ``parent``: [[share handles], [item], [s, 0, key]...]
        (the item is the upload token or temporary handle, as MEGA's SDK sends it)."""
        from .crypto import encrypt_key

        if self._keyring is None:
            return None
        shares = self._share_handles_above(parent)
        triples: list[Any] = []
        for si, share in enumerate(shares):
            share_words = bytes_to_words(self._keyring.share_keys[share])
            triples += [si, 0, b64encode(words_to_bytes(encrypt_key(key, share_words)))]
        return [shares, [item], triples] if shares else None

    def create_folder(self, name: str, dest: NodeRef | None = None) -> dict[str, str]:
        """Create ``a/b/c`` like ``mkdir -p`` under ``dest`` (default: the Cloud Drive);
        returns ``{folder name: handle}`` for every part, existing or new."""
        parts = tuple(p for p in str(name).split("/") if p)
        if not parts:
            raise ValidationError("a folder name is needed")
        tree = self._load_tree()
        parent = self._folder_handle(dest)
        made: dict[str, str] = {}
        for part in parts:
            existing = next((c for c in tree.children_named(parent, part) if c.get("t") == 1), None)
            if existing is not None:
                parent = existing["h"]
            else:
                answer = self._mkdir(part, parent)
                parent = _new_handle(answer)
            made[part] = parent
        return made

    def rename(self, file: NodeRef, new_name: str) -> Any:
        """Rename a file or folder (other attributes such as the fingerprint are kept)."""
        if not isinstance(new_name, str) or not new_name or "/" in new_name:
            raise ValidationError("a new name is a non-empty string without '/'")
        node = self._node(file)
        if node.get("undecryptable") or "key" not in node:
            raise WrongKeyError("this node cannot be decrypted, so it cannot be renamed")
        attrs = dict(node["a"]) if isinstance(node.get("a"), dict) else {}
        attrs["n"] = new_name
        result = self._request(
            {
                "a": "a",
                "attr": self._encrypt_attrs(attrs, node["k"]),
                "key": self._wrap_key(node["key"]),
                "n": node["h"],
                "i": self.request_id,
            }
        )
        self._load_tree().set_attributes(node["h"], attrs)
        return result

    def move(self, file_id: NodeRef, target: int | NodeRef) -> Any:
        """Move a node under ``target``: a node type (2 Cloud Drive, 3 Inbox, 4 Rubbish Bin),
        a folder handle or a ``(handle, node)`` tuple."""
        node = self._node(file_id)
        target_id = self._folder_handle(target)
        command: dict[str, Any] = {"a": "m", "n": node["h"], "t": target_id, "i": self.request_id}
        cr = self._keys_for_new_shares(node, target_id)
        if cr is not None:
            command["cr"] = cr
        result = self._request(command)
        self._load_tree().move(node["h"], target_id)
        return result

    def _share_handles_above(self, handle: str | None) -> list[str]:
        """Handles of the shares (with a known key) at or above ``handle``."""
        tree, keyring = self._tree, self._keyring
        found: list[str] = []
        guard = 0
        while handle and tree is not None and keyring is not None and guard < 10_000:
            if handle in keyring.share_keys:
                found.append(handle)
            parent = tree.nodes.get(handle)
            handle = parent.get("p") if parent is not None else None
            guard += 1
        return found

    def _keys_for_new_shares(self, node: dict[str, Any], target: str) -> list[Any] | None:
        """``cr`` for a subtree moved under shares it was not in yet: every node's key
        under each new share key, so that the people it is shared with can read them."""
        from .crypto import encrypt_key

        assert self._tree is not None and self._keyring is not None
        old = set(self._share_handles_above(node.get("p")))
        new = [h for h in self._share_handles_above(target) if h not in old]
        if not new:
            return None
        items = [node, *self._tree.descendants(node["h"])]
        items = [n for n in items if "key" in n]
        triples: list[Any] = []
        for si, share in enumerate(new):
            share_words = bytes_to_words(self._keyring.share_keys[share])
            for ni, item in enumerate(items):
                triples += [
                    si,
                    ni,
                    b64encode(words_to_bytes(encrypt_key(item["key"], share_words))),
                ]
        return [new, [n["h"] for n in items], triples]

    def delete(self, public_handle: NodeRef) -> Any:
        """Move a node (by handle, as in mega.py) to the Rubbish Bin."""
        return self.move(public_handle, 4)

    def delete_url(self, url: str) -> Any:
        """Move the node behind one of this account's public links to the Rubbish Bin."""
        return self.move(self._handle_from_link(url), 4)

    def destroy(self, file_id: NodeRef) -> Any:
        """Delete a node (and everything in it) for good."""
        node = self._node(file_id)
        result = self._request({"a": "d", "n": node["h"], "i": self.request_id})
        self._load_tree().remove(node["h"])
        return result

    def destroy_url(self, url: str) -> Any:
        """Delete the node behind one of this account's public links for good."""
        return self.destroy(self._handle_from_link(url))

    def _handle_from_link(self, url: str) -> str:
        link = parse_link(url)
        handle = self.get_id_from_public_handle(link.handle)
        if handle is None:
            raise NodeNotFoundError("no node of this account has that public link")
        return handle

    def empty_trash(self) -> Any:
        """Delete everything in the Rubbish Bin for good; ``None`` when it was empty."""
        files = self.get_files_in_node(4)
        if not files:
            return None
        handles = list(files)
        results: list[Any] = []
        for start in range(0, len(handles), 500):  # keep each request a sane size
            part = handles[start : start + 500]
            results += self._batch([{"a": "d", "n": h, "i": self.request_id} for h in part])
        tree = self._load_tree()
        for h, result in zip(handles, results, strict=True):
            if result in (0, None) or isinstance(result, dict):
                tree.remove(h)
        for result in results:
            if isinstance(result, int) and result < 0:
                raise error_for_code(result)
        return results[0]

    # ------------------------------------------------------------------------------------
    # links
    # ------------------------------------------------------------------------------------
    def _link_base(self) -> str:
        if (self.schema, self.domain) == ("https", "mega.co.nz"):
            return "https://mega.nz"
        return f"{self.schema}://{self.domain}"

    def _legacy(self) -> bool:
        return bool(self.options.get("legacy_links", False))

    def _public_handle(self, handle: str) -> str:
        answer = self._request({"a": "l", "n": handle, "i": self.request_id})
        if not isinstance(answer, str):
            raise RequestError("EUNKNOWN", "unexpected answer to l")
        node = self._tree.nodes.get(handle) if self._tree is not None else None
        if node is not None:
            node["ph"] = answer
        return answer

    def get_link(self, file: NodeRef) -> str:
        """The public link of a file (creates it if needed)."""
        node = self._node(file, "file")
        if node.get("t") != 0:
            if node.get("t") == 1:
                return self.get_folder_link(file)
            raise ValidationError("only files and folders have links")
        if "key" not in node:
            raise WrongKeyError("this file cannot be decrypted, so it has no usable link")
        ph = self._public_handle(node["h"])
        return file_link(ph, words_to_bytes(node["key"]), self._link_base(), self._legacy())

    def get_upload_link(self, file: Mapping[str, Any]) -> str:
        """The public link of a file just uploaded (``file`` is :meth:`upload`'s answer)."""
        if not isinstance(file, Mapping) or "f" not in file:
            raise ValidationError("upload() response required as input, use get_link() for nodes")
        raw = file["f"][0] if isinstance(file["f"], list) and file["f"] else None
        if not isinstance(raw, Mapping) or not isinstance(raw.get("k"), str) or "h" not in raw:
            raise ValidationError("upload() response required as input: it has no node")
        from .crypto import decrypt_key

        enc = b64_bytes(str(raw["k"]).split("/")[0].partition(":")[2])
        if enc is None or len(enc) != 32:
            raise WrongKeyError("the uploaded node's key cannot be read")
        key = decrypt_key(bytes_to_words(enc), self.master_key)
        ph = self._public_handle(raw["h"])
        return file_link(ph, words_to_bytes(key), self._link_base(), self._legacy())

    def get_folder_link(self, file: NodeRef) -> str:
        """The public link of a folder that is already exported (see :meth:`export`)."""
        node = self._node(file, "folder")
        share_key = node.get("shared_folder_key")
        if share_key is None:
            raise ValidationError("this folder is not exported yet: use export()")
        ph = self._public_handle(node["h"])
        return folder_link(ph, words_to_bytes(share_key), self._link_base(), self._legacy())

    def export(self, path: str | None = None, node_id: str | None = None) -> str:
        """Create (or return) the public link of the file or folder at ``path`` or
        ``node_id``. Folders are shared with a fresh key first."""
        tree = self._load_tree()
        if node_id:
            node = tree.nodes.get(node_id)
        elif path:
            found = self.find(path)
            node = found[1] if found else None
        else:
            raise ValidationError("export() needs a path or a node_id")
        if node is None:
            raise NodeNotFoundError(f"nothing to export at {path or node_id!r}")
        if node.get("t") == 0:
            return self.get_link((node["h"], node))
        if node.get("t") != 1:
            raise ValidationError("only files and folders can be exported")
        if node.get("shared_folder_key") is None or node["h"] not in self._exported:
            # a folder shared with users only keeps its share key, and gets EXP too
            self._share_folder(node)
        return self.get_folder_link((node["h"], node))

    def share(self, folder: NodeRef, email: str, access: int = 0) -> Any:
        """Share a folder with another MEGA user: ``access`` 0 read-only, 1 read-write, 2 full.

        The folder's share key (a fresh one unless it is already shared or exported) is
        RSA-encrypted with the user's public key (``uk``) and sent with ``s2``, along with
        every node's key under the share key. :class:`~megafast.errors.NotFoundError` when
        no account with a public key has that email."""
        from .crypto import decode_mpis

        if isinstance(access, bool) or access not in (0, 1, 2):
            raise ValidationError("access must be 0 (read-only), 1 (read-write) or 2 (full)")
        if not isinstance(email, str) or not _EMAIL_RE.match(email):
            raise ValidationError("share() needs the email address of a MEGA user")
        node = self._node(folder, "folder")
        if node.get("t") != 1:
            raise ValidationError("only folders can be shared")
        answer = self._request({"a": "uk", "u": email.lower()})
        raw = b64_bytes(answer.get("pubk")) if isinstance(answer, dict) else None
        try:
            if not isinstance(raw, bytes):
                raise ValueError("no key")
            modulus, exponent = decode_mpis(raw, 2)
        except (ValueError, TypeError):
            raise RequestError("EUNKNOWN", "the server sent no usable public key") from None
        if modulus.bit_length() < 512 or exponent < 3:
            raise RequestError("EUNKNOWN", "the server sent no usable public key")
        return self._share_folder(
            node, {"u": email.lower(), "r": access}, public_key=(modulus, exponent)
        )

    def unshare(self, folder: NodeRef, email: str) -> Any:
        """Stop sharing a folder with a user (the share key stays for other users and links)."""
        if not isinstance(email, str) or not _EMAIL_RE.match(email):
            raise ValidationError("unshare() needs the email address of a MEGA user")
        node = self._node(folder, "folder")
        if node.get("t") != 1:
            raise ValidationError("only folders can be shared")
        answer = self._request(
            {"a": "s2", "n": node["h"], "s": [{"u": email.lower()}], "i": self.request_id}
        )
        _check_share_results(answer)
        return answer

    def _share_folder(
        self,
        node: dict[str, Any],
        target: dict[str, Any] | None = None,
        public_key: tuple[int, int] | None = None,
    ) -> Any:
        """``s2`` for ``node`` with ``target`` (default: the public, ``EXP``); the share key
        goes to a user RSA-encrypted with ``public_key`` (n, e)."""
        from .crypto import encrypt_key

        if "key" not in node:
            raise WrongKeyError("this folder cannot be decrypted, so it cannot be shared")
        tree = self._load_tree()
        master = self.master_key
        existing = node.get("shared_folder_key")
        share_key = words_to_bytes(existing) if existing is not None else secrets.token_bytes(16)
        share_words = bytes_to_words(share_key)
        h = node["h"]
        handles = [h]
        # every node below gets its key under the share key, so link holders can read it
        cr_keys: list[Any] = [
            0,
            0,
            b64encode(words_to_bytes(encrypt_key(node["key"], share_words))),
        ]
        for child in tree.descendants(h):
            if "key" not in child:
                continue
            handles.append(child["h"])
            cr_keys.extend(
                [
                    0,
                    len(handles) - 1,
                    b64encode(words_to_bytes(encrypt_key(child["key"], share_words))),
                ]
            )
        ha = b64encode(words_to_bytes(encrypt_key(bytes_to_words((h + h).encode("ascii")), master)))
        target = dict(target) if target is not None else {"u": "EXP", "r": 0}
        if public_key is not None:
            target["k"] = b64encode(rsa_encrypt_key(share_key, *public_key))
        answer = self._request(
            {
                "a": "s2",
                "n": h,
                "s": [target],
                "i": self.request_id,
                "ok": b64encode(words_to_bytes(encrypt_key(share_words, master))),
                "ha": ha,
                "cr": [[h], handles, cr_keys],
            }
        )
        _check_share_results(answer)
        assert self._keyring is not None
        self._keyring.share_keys[h] = share_key
        node["shared_folder_key"] = share_words
        if target["u"] == "EXP":
            self._exported.add(h)
        return answer

    # ------------------------------------------------------------------------------------
    # public files and folders
    # ------------------------------------------------------------------------------------
    @staticmethod
    def _parse_url(url: str) -> str:
        """``handle!key`` of a public link (mega.py's helper)."""
        link = parse_link(url)
        return f"{link.handle}!{link.key_b64}"

    def get_public_url_info(self, url: str) -> dict[str, Any]:
        """``{'size': bytes, 'name': str}`` of a public file link; for a folder link also
        the counts of ``files`` and ``folders`` (size is the total of its files)."""
        link = parse_link(url)
        if link.kind == "file":
            return self.get_public_file_info(link.handle, link.key_b64)
        nodes = self._public_folder_tree(link)
        root = self._public_root(nodes, link)
        inside = [root, *nodes.descendants(root["h"])]
        files = [n for n in inside if n.get("t") == 0]
        return {
            "size": sum(int(n.get("s") or 0) for n in files),
            "name": nodes.name_of(root),
            "files": len(files),
            "folders": len(inside) - len(files),
        }

    def get_public_file_info(self, file_handle: str, file_key: str | bytes) -> dict[str, Any]:
        """``{'size': bytes, 'name': str}`` of a public file; a wrong key raises
        :class:`~megafast.errors.WrongKeyError`."""
        key = self._file_key(file_key)
        if not is_handle(file_handle):
            raise LinkError("a public handle is 8 characters of base64url")
        try:
            data = self._request({"a": "g", "p": file_handle, "ssm": 1})
        except NotFoundError:
            raise NodeNotFoundError("no public file behind this link (removed?)") from None
        if not isinstance(data, dict) or "at" not in data or "s" not in data:
            raise RequestError("EUNKNOWN", "unexpected answer to g")
        attrs = self._decrypt_at(data["at"], key)
        return {"size": data["s"], "name": attrs.get("n")}

    @staticmethod
    def _file_key(file_key: str | bytes | tuple[int, ...]) -> tuple[int, ...]:
        if isinstance(file_key, tuple):
            raw = words_to_bytes(file_key)
        elif isinstance(file_key, bytes):
            raw = file_key
        else:
            raw = b64_bytes(str(file_key)) or b""
        if len(raw) != 32:
            raise LinkError("a file key is 32 bytes (43 characters of base64url)")
        return bytes_to_words(raw)

    @staticmethod
    def _decrypt_at(at: str, key: tuple[int, ...]) -> dict[str, Any]:
        from .crypto import decrypt_attr

        k = key if len(key) == 4 else tuple(key[i] ^ key[i + 4] for i in range(4))
        raw = b64_bytes(at) if isinstance(at, str) else None
        attrs = decrypt_attr(raw, k) if raw else False
        if not isinstance(attrs, dict):
            raise WrongKeyError("the key does not decrypt this file's attributes (wrong key?)")
        return attrs

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
        key = self._file_key(file_key)
        parent = self._folder_handle(dest_node)
        if dest_name is None:
            dest_name = self.get_public_file_info(file_handle, file_key)["name"]
        k = tuple(key[i] ^ key[i + 4] for i in range(4))
        return self._put_node(
            parent,
            {"ph": file_handle, "t": 0, "a": self._encrypt_attrs({"n": dest_name}, k)},
            key,
        )

    def _public_folder_tree(self, link: PublicLink) -> NodeTree:
        answer = self._request({"a": "f", "c": 1, "r": 1, "ca": 1}, folder=link.handle)
        if not isinstance(answer, dict):
            raise RequestError("EUNKNOWN", "unexpected answer to f")
        keyring = Keyring(default_key=link.key)
        tree = NodeTree.from_answer(answer, keyring)
        if tree.nodes and all(n.get("undecryptable") for n in tree.nodes.values()):
            raise WrongKeyError("the key does not decrypt this folder (wrong key?)")
        return tree

    @staticmethod
    def _public_root(tree: NodeTree, link: PublicLink) -> dict[str, Any]:
        if link.child:
            node = tree.nodes.get(link.child)
            if node is None:
                raise NodeNotFoundError("the link names a node that is not in the folder")
            return node
        for node in tree.nodes.values():
            if node.get("p") not in tree.nodes:
                return node
        raise NodeNotFoundError("the public folder is empty")

    def get_public_folder(self, url: str) -> dict[str, dict[str, Any]]:
        """All nodes of a public folder link: ``{handle: node}`` like :meth:`get_files`
        (undecryptable nodes included, marked ``undecryptable``). A link to a node inside
        the folder lists that node and what is below it."""
        link = parse_link(url)
        if link.kind != "folder":
            raise LinkError("not a folder link")
        tree = self._public_folder_tree(link)
        root = self._public_root(tree, link)
        return {root["h"]: root, **{n["h"]: n for n in tree.descendants(root["h"])}}

    # ------------------------------------------------------------------------------------
    # transfers
    # ------------------------------------------------------------------------------------
    def _transfer_config(self, config: TransferConfig | None) -> TransferConfig | None:
        return config if config is not None else self.options.get("transfer")

    @staticmethod
    def _dest_dir(dest_path: str | os.PathLike[str] | None) -> Path:
        directory = Path(dest_path) if dest_path not in (None, "") else Path.cwd()
        if directory.exists() and not directory.is_dir():
            raise DestinationError(f"the destination is not a directory: {directory}")
        if not directory.exists():
            raise DestinationError(f"the destination directory does not exist: {directory}")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise DestinationError(f"the destination directory is not writable: {directory}")
        return directory

    def _get_url_fn(
        self, command: dict[str, Any], folder: str | None, first: dict[str, Any]
    ) -> Callable[[bool], str]:
        state = {"answer": first}

        def get_url(refresh: bool = False) -> str:
            if refresh:
                state["answer"] = self._g(command, folder)
            return state["answer"]["g"]

        return get_url

    def _g(self, command: dict[str, Any], folder: str | None) -> dict[str, Any]:
        cmd = dict(command)
        if self.api_url.startswith("https:"):
            cmd["ssl"] = 2
        data = self._request(cmd, folder=folder)
        if not isinstance(data, dict):
            raise RequestError("EUNKNOWN", "unexpected answer to g")
        if "tl" in data and not data.get("g"):
            try:
                left: float | None = float(data["tl"])
            except (TypeError, ValueError):
                left = None
            raise OverQuotaError(-17, "transfer quota exceeded", time_left=left)
        if isinstance(data.get("e"), int) and data["e"] < 0:
            raise error_for_code(data["e"])
        if not isinstance(data.get("g"), str) or not data["g"]:
            raise RequestError("EUNKNOWN", "the file is not accessible (no download URL)")
        return data

    def _download_one(
        self,
        command: dict[str, Any],
        folder: str | None,
        key: tuple[int, ...],
        target: Path,
        *,
        name_from_at: bool,
        progress: ProgressCallback | None,
        config: TransferConfig | None,
        resume_id: str,
    ) -> Path:
        from .transfer import download_file

        data = self._g(command, folder)
        if name_from_at:
            attrs = self._decrypt_at(data.get("at", ""), key)
            name = attrs.get("n")
            if not isinstance(name, str):
                raise WrongKeyError("the file has no name attribute")
            target = target / _safe_name(name)
        size = int(data.get("s") or 0)
        return download_file(
            self.http,
            self._get_url_fn(command, folder, data),
            size,
            key,
            target,
            config=self._transfer_config(config),
            progress=progress,
            resume_id=resume_id,
        )

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
        node = self._node(file, "file")
        directory = self._dest_dir(dest_path)
        if node.get("undecryptable") or "key" not in node:
            raise WrongKeyError("this node cannot be decrypted, so it cannot be downloaded")
        name = dest_filename or self._load_tree().name_of(node) or node["h"]
        if node.get("t") == 1:
            return self._download_tree(
                self._load_tree(), node, directory / _safe_name(name), None, progress, config
            )
        if node.get("t") != 0:
            raise ValidationError("only files and folders can be downloaded")
        return self._download_node(node, None, directory / _safe_name(name), progress, config)

    def _download_node(
        self,
        node: dict[str, Any],
        folder: str | None,
        target: Path,
        progress: ProgressCallback | None,
        config: TransferConfig | None,
    ) -> Path:
        """Download a decryptable file node (of the public folder ``folder``, or None) to
        ``target``; an interrupted download resumes by the node's handle."""
        return self._download_one(
            {"a": "g", "g": 1, "n": node["h"]},
            folder,
            tuple(node["key"]),
            target,
            name_from_at=False,
            progress=progress,
            config=config,
            resume_id=node["h"],
        )

    def _download_tree(
        self,
        tree: NodeTree,
        root: dict[str, Any],
        target: Path,
        folder: str | None,
        progress: ProgressCallback | None,
        config: TransferConfig | None,
    ) -> Path:
        files = [n for n in tree.descendants(root["h"]) if n.get("t") == 0]
        total = sum(int(n.get("s") or 0) for n in files)
        done = 0

        def step(n: int, _t: int) -> None:
            if progress is not None:
                progress(done + n, total)

        try:
            target.mkdir(exist_ok=True)
        except OSError as exc:
            raise DestinationError(f"cannot create {target}: {exc.strerror}") from None
        for local in self._local_folders(tree, root, target):
            try:
                local.mkdir(exist_ok=True)
            except OSError as exc:
                raise DestinationError(f"cannot create {local}: {exc.strerror}") from None
        for node in files:
            if node.get("undecryptable") or "key" not in node:
                raise WrongKeyError(f"{tree.path_of(node['h'])} cannot be decrypted")
            self._download_node(
                node, folder, self._local_path(tree, root, node, target), step, config
            )
            done += int(node.get("s") or 0)
        return target

    def _local_folders(self, tree: NodeTree, root: dict[str, Any], target: Path) -> Iterator[Path]:
        for node in tree.descendants(root["h"]):
            if node.get("t") == 1:
                yield self._local_path(tree, root, node, target)

    @staticmethod
    def _local_path(
        tree: NodeTree, root: dict[str, Any], node: dict[str, Any], target: Path
    ) -> Path:
        parts: list[str] = []
        h: str | None = node["h"]
        while h is not None and h != root["h"]:
            n = tree.nodes[h]
            parts.append(_safe_name(tree.name_of(n) or h))
            h = n.get("p")
        return target.joinpath(*reversed(parts))

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
        link = parse_link(url)
        directory = self._dest_dir(dest_path)
        if link.kind == "file":
            key = link.key_a32()
            # without dest_filename the name comes from the file's own attributes
            return self._download_one(
                {"a": "g", "g": 1, "p": link.handle},
                None,
                key,
                directory / _safe_name(dest_filename) if dest_filename else directory,
                name_from_at=not dest_filename,
                progress=progress,
                config=config,
                resume_id=link.handle,
            )
        return self.download_folder_url(
            url, dest_path=directory, dest_filename=dest_filename, progress=progress, config=config
        )

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
        link = parse_link(url)
        if link.kind != "folder":
            raise LinkError("not a folder link")
        directory = self._dest_dir(dest_path)
        tree = self._public_folder_tree(link)
        root = self._public_root(tree, link)
        name = dest_filename or tree.name_of(root) or root["h"]
        if root.get("undecryptable") or "key" not in root:
            raise WrongKeyError("the key does not decrypt this folder (wrong key?)")
        if root.get("t") == 0:
            return self._download_node(
                root, link.handle, directory / _safe_name(name), progress, config
            )
        return self._download_tree(
            tree, root, directory / _safe_name(name), link.handle, progress, config
        )

    def _file_source(
        self, file: NodeRef | str
    ) -> tuple[dict[str, Any], str | None, tuple[int, ...]]:
        """(``g`` command, public folder handle or None, packed key) of a file given as a
        node, a handle, a public file link or a link to a file inside a public folder."""
        if isinstance(file, str) and ("#" in file or "!" in file):
            link = parse_link(file)
            if link.kind == "file":
                return {"a": "g", "g": 1, "p": link.handle}, None, link.key_a32()
            tree = self._public_folder_tree(link)
            node = self._public_root(tree, link)
            folder: str | None = link.handle
        else:
            node = self._node(file, "file")
            folder = None
        if node.get("t") != 0:
            raise ValidationError("this is a folder, not a file")
        if node.get("undecryptable") or "key" not in node:
            raise WrongKeyError("this file cannot be decrypted")
        return {"a": "g", "g": 1, "n": node["h"]}, folder, tuple(node["key"])

    def _readable_source(
        self, file: NodeRef | str
    ) -> tuple[dict[str, Any], str | None, tuple[int, ...], dict[str, Any]]:
        """:meth:`_file_source` plus the ``g`` answer for it."""
        command, folder, key = self._file_source(file)
        data = self._g(command, folder)
        if "p" in command:
            self._decrypt_at(data.get("at", ""), key)  # a wrong link key fails here, clearly
        return command, folder, key, data

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
        from .transfer import download_to_fileobj

        command, folder, key, data = self._readable_source(file)
        size = int(data.get("s") or 0)
        download_to_fileobj(
            self.http,
            self._get_url_fn(command, folder, data),
            size,
            key,
            fileobj,
            config=self._transfer_config(config),
            progress=progress,
        )
        return size

    def open(self, file: NodeRef | str, *, config: TransferConfig | None = None) -> Any:
        """A seekable, read-only binary file object over a remote file (a node, a handle
        or a public link); whole MAC chunks are verified as they are read."""
        from .transfer import open_reader

        command, folder, key, data = self._readable_source(file)
        return open_reader(
            self.http,
            self._get_url_fn(command, folder, data),
            int(data.get("s") or 0),
            key,
            config=self._transfer_config(config),
        )

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
        from .crypto import fingerprint

        path = Path(filename)
        if not path.is_file():
            raise SourceNotFoundError(f"no such file to upload: {path}")
        self._require_login()
        parent = self._folder_handle(dest)
        try:
            st = path.stat()
        except OSError as exc:
            raise SourceNotFoundError(f"cannot read {path}: {exc.strerror}") from None

        name = dest_filename or path.name
        attrs = {"n": name, "c": fingerprint(path, int(st.st_mtime))}
        resume_id = self._upload_resume_id(parent, name, _file_identity(path.resolve(), st))
        return self._upload_source(
            path, st.st_size, parent, attrs, progress, config, resume_id if resume else None
        )

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
        top = Path(directory)
        if not top.is_dir():
            raise SourceNotFoundError(f"no such folder to upload: {top}")
        self._require_login()
        files: list[tuple[Path, str]] = []
        folders: list[str] = ["."]
        for here, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel_dir = Path(here).relative_to(top)
            folders.extend((rel_dir / d).as_posix() for d in dirnames)
            for name in sorted(filenames):
                path = Path(here) / name
                if path.is_file() and not path.is_symlink():
                    files.append((path, (rel_dir / name).as_posix()))
        sizes = [p.stat().st_size for p, _ in files]
        total = sum(sizes)
        tree = self._load_tree()
        handles: dict[str, str] = {}
        top_name = top.resolve().name
        for rel in folders:
            if rel == ".":
                parent, name = self._folder_handle(dest), top_name
            else:
                head, _, name = rel.rpartition("/")
                parent = handles[head or "."]
            existing = next((c for c in tree.children_named(parent, name) if c.get("t") == 1), None)
            handles[rel] = existing["h"] if existing else _new_handle(self._mkdir(name, parent))
        done_before = 0
        for (path, rel), size in zip(files, sizes, strict=True):
            head, _, _ = rel.rpartition("/")
            step = None
            if progress is not None:
                base = done_before

                def step(done: int, _total: int, base: int = base) -> None:
                    progress(base + done, total)

            answer = self.upload(
                path, handles[head or "."], progress=step, config=config, resume=resume
            )
            handles[rel] = _new_handle(answer)
            done_before += size
        if progress is not None and not files:
            progress(0, 0)
        return handles

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
        import hashlib
        import time

        from .crypto import fingerprint

        if not isinstance(name, str) or not name or "/" in name:
            raise ValidationError("name must be a non-empty string without '/'")
        self._require_login()
        parent = self._folder_handle(dest)
        attrs: dict[str, Any] = {"n": name}
        stamp = int(time.time() if mtime is None else mtime)
        if isinstance(fileobj, (bytes, bytearray, memoryview)):
            data = bytes(fileobj)
            attrs["c"] = fingerprint(io.BytesIO(data), stamp)
            digest = f"bytes:{len(data)}:{hashlib.sha256(data).hexdigest()}"
            resume_id = self._upload_resume_id(parent, name, digest) if resume else None
            return self._upload_source(data, len(data), parent, attrs, progress, config, resume_id)
        identity: str | None = None
        seekable = getattr(fileobj, "seekable", None)
        if callable(seekable) and seekable():
            base = fileobj.tell()
            if base == 0:
                attrs["c"] = fingerprint(fileobj, stamp)  # seeks around, then back to the start
                fileobj.seek(0)
            identity = _fileobj_identity(fileobj, base, size)
        resume_id = self._upload_resume_id(parent, name, identity) if resume and identity else None
        return self._upload_source(fileobj, size, parent, attrs, progress, config, resume_id)

    def _upload_resume_id(self, parent: str, name: str, identity: str) -> str:
        """What makes two uploads "the same" for resuming: server, account, destination and
        the source's identity (the transfer engine keeps only a digest of it)."""
        creds = self._require_login()
        who = creds.user_handle or creds.email or ""
        return "\0".join(("megafast-upload", self.api_url, who, parent, name, identity))

    def _upload_source(
        self,
        source: Any,
        size: int | None,
        parent: str,
        attrs: dict[str, Any],
        progress: ProgressCallback | None,
        config: TransferConfig | None,
        resume_id: str | None = None,
    ) -> dict[str, Any]:
        import dataclasses

        from .transfer import TransferConfig, upload_file

        cfg = self._transfer_config(config)
        if resume_id is None:
            # no stable id: no sidecar either (the engine would key one by the path alone)
            cfg = dataclasses.replace(cfg if cfg is not None else TransferConfig(), resume=False)

        def get_upload_url(size: int) -> str:
            answer = self._request({"a": "u", "s": size})
            if not isinstance(answer, dict) or not isinstance(answer.get("p"), str):
                raise RequestError("EUNKNOWN", "unexpected answer to u")
            return answer["p"]

        result = upload_file(
            self.http,
            get_upload_url,
            source,
            size,
            config=cfg,
            progress=progress,
            resume_id=resume_id,
        )
        key = tuple(result.key)
        k = tuple(key[i] ^ key[i + 4] for i in range(4))
        return self._put_node(
            parent, {"h": result.token, "t": 0, "a": self._encrypt_attrs(attrs, k)}, key
        )
