"""AsyncMega: megafast for asyncio programs (bots, web services, crawlers).

One client holds one aiohttp pool (:class:`AsyncApiClient`), one command batcher
(:class:`AsyncBatcher`: concurrent commands of all tasks share ``/cs`` requests), the
session's keys and the account's tree (a :class:`~megafast._tree.nodestore.NodeStore`, listed
by the streamed ``f``). Transfers run on the threaded engine through :mod:`._bridge`; tree
changes and links are in :mod:`._ops`, uploads and downloads in :mod:`._transfers`. Use it
as ``async with AsyncMega() as m:``; leaving the block closes the pool, the batcher and the
worker threads. Timeouts are asyncio's: ``async with asyncio.timeout(10): await m...``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._account.session import Credentials, MfaSource, login_ephemeral, login_user
from .._tree.nodes import Keyring, NodeTree, NodeType
from .._tree.nodestore import NodeStore
from .._tree.treewalk import cycle_error
from .._wire.api import DEFAULT_API_URL, new_http_session
from .._wire.retry import RetryPolicy
from ..errors import MegaError, NodeNotFoundError, ValidationError
from ..transfer import TransferConfig
from . import _ops, _reader, _transfers, _trees
from ._api import AsyncApiClient
from ._batch import AsyncBatcher
from ._bridge import call_from_thread, run_in_thread
from ._core import LoopCore
from ._listing import stream_listing
from ._nodes import Node, NodeRef, handle_of, node_at
from ._watch import AsyncScChannel, AsyncWatcher

__all__ = ["AsyncMega"]

_YIELD_EVERY = 2048
_API_OPTIONS = frozenset(
    {
        "retry_time",
        "connections",
        "hashcash_threads",
        "min_hashcash_easiness",
        "max_answer_bytes",
        "max_listing_bytes",
    }
)  # nodes handed out between two yields to the loop


class AsyncMega:
    """An asyncio MEGA client. Every method that talks to the server is a coroutine.

    ``api_url``: the API server (default MEGA's; ``$MEGAFAST_API_URL`` when set);
    ``workers``: threads for transfers (also the most transfers in flight at once);
    ``config``: the :class:`~megafast.transfer.TransferConfig` of every transfer;
    ``retry``: the API's :class:`~megafast._wire.retry.RetryPolicy`; ``timeout``: seconds for a
    connection or a read; ``options``: the API client's limits (``max_answer_bytes``,
    ``max_listing_bytes``, ``min_hashcash_easiness``, ``hashcash_threads``, ``retry_time``).
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        workers: int = 32,
        config: TransferConfig | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValidationError("workers must be a positive int")
        if config is not None and not isinstance(config, TransferConfig):
            raise ValidationError("config must be a TransferConfig")
        url = api_url or os.environ.get("MEGAFAST_API_URL") or DEFAULT_API_URL
        self.workers = workers
        self.config = config or TransferConfig()
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="megafast-aio")
        opts = dict(options or {})
        unknown = set(opts) - _API_OPTIONS
        if unknown:
            raise ValidationError(f"unknown options: {', '.join(sorted(unknown))}")
        self.api = AsyncApiClient(url, timeout=timeout, retry=retry, executor=self.executor, **opts)
        self.batcher = AsyncBatcher(self.api)
        self.http = new_http_session(max(workers, self.config.connections * 4))
        self.core = LoopCore({"api_url": url}, self.api, self.http)
        self._tree_lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        who = self.creds.user_handle if self.creds else None
        return f"AsyncMega({self.api.api_url!r}, user={who!r})"  # never keys or the session id

    # -- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncMega:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the batcher, the connection pools and the worker threads (safe twice)."""
        if self._closed:
            return
        self._closed = True
        await self.batcher.close()
        await self.api.close()
        self.http.close()
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown)

    @property
    def api_url(self) -> str:
        return self.api.api_url

    @property
    def creds(self) -> Credentials | None:
        """The session's credentials (None before a login)."""
        return self.core.credentials

    @property
    def keyring(self) -> Keyring | None:
        """The keyring of the loaded tree (None before it is listed)."""
        return self.core.keyring

    @property
    def request_id(self) -> str:
        """The ``i`` of this client's changing commands (its own /sc packets carry it)."""
        return self.core.request_id

    # -- logins and sessions -----------------------------------------------------------------
    async def login(self, email: str, password: str, mfa: MfaSource = None) -> AsyncMega:
        """Log in with email and password (v1 or v2 account; ``mfa``: the two-factor code,
        or a callable returning it). The key derivation runs in a worker thread."""
        creds = await self._in_thread(lambda api: login_user(api, email, password, mfa))
        self._start(creds)
        return self

    async def login_anonymous(self) -> AsyncMega:
        """Create an ephemeral account and log in to it."""
        self._start(await self._in_thread(login_ephemeral))
        return self

    async def resume_session(self, session: str | dict[str, Any] | os.PathLike[str]) -> AsyncMega:
        """Resume a session saved by :meth:`dump_session` (a dict, JSON text or a file);
        the server is asked for the account (``ug``) to check it still works."""
        self._start(Credentials.load(session))
        await self.get_user()
        return self

    def dump_session(self) -> dict[str, Any]:
        """The session as a JSON-able dict (it holds secrets: keep it like a password)."""
        return self._require_login().to_dict()

    async def logout(self) -> None:
        """End the session on the server and forget the keys and the tree."""
        if self.creds is not None and not self.creds.ephemeral:
            await self.api.request({"a": "sml"})
        self.core.credentials = self.core.live = None
        self.api.sid = self.core.api_client.sid = None

    async def get_user(self) -> dict[str, Any]:
        """The account's user record (``u`` handle, ``email``...)."""
        self._require_login()
        answer = await self.batcher.call({"a": "ug"})
        if not isinstance(answer, dict):
            from ..errors import UnexpectedAnswerError

            raise UnexpectedAnswerError("the answer to ug is not an object")
        return answer

    def _start(self, creds: Credentials) -> None:
        self.core.credentials = creds
        self.api.sid = self.core.api_client.sid = creds.sid
        self.core.live = None

    def _require_login(self) -> Credentials:
        if self.creds is None:
            raise ValidationError("not logged in: await login() first")
        return self.creds

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop, which the core's worker-thread calls are sent through."""
        loop = asyncio.get_running_loop()
        self.core.loop = loop
        return loop

    async def _in_thread(self, job: Any) -> Any:
        """``job(api)`` in a worker thread, ``api`` a blocking view of this client's API
        (each call runs on the loop through aiohttp); used for logins, whose key
        derivation is CPU work, so the synchronous routines serve both clients."""
        loop = self._bind()
        return await run_in_thread(
            self.executor, lambda cancel: job(_ThreadApi(self, loop, cancel))
        )

    # -- the tree ----------------------------------------------------------------------------
    async def refresh(self) -> None:
        """List the whole account again (the streamed ``f``) into the core's live tree."""
        self._require_login()
        self._bind()
        keyring = self.core.make_keyring()
        store, _ = await stream_listing(self.api, keyring, self.executor)
        self.core.live = None
        self.core.use_store(store, keyring)

    async def _list_all(self) -> NodeStore:
        """A new listing into the live tree, with its keyring (a watcher's reload)."""
        keyring = self.core.keyring or self.core.make_keyring()
        store, _ = await stream_listing(self.api, keyring, self.executor)
        self.core.use_store(store, keyring)
        return store

    async def tree(self) -> NodeTree:
        """The account's tree, listed on first use (one listing however many ask at once)."""
        self._bind()
        if self.core.loaded_tree is None:
            async with self._tree_lock:
                if self.core.loaded_tree is None:
                    await self.refresh()
        tree = self.core.loaded_tree
        assert tree is not None
        return tree

    async def node(self, ref: NodeRef) -> Node:
        """The current :class:`Node` of a node or handle (NodeNotFoundError when gone)."""
        return node_at((await self.tree()).store, handle_of(ref))

    async def root(self, kind: NodeType = NodeType.ROOT) -> Node:
        """The Cloud Drive (or ``NodeType.INBOX`` / ``NodeType.RUBBISH``)."""
        handle = (await self.tree()).store.roots.get(kind)
        if handle is None:
            raise NodeNotFoundError(f"the account has no {kind.name.lower()} node")
        return await self.node(handle)

    async def find(self, path: str, *, folders_only: bool = False) -> Node | None:
        """The node at ``a/b/c`` below the Cloud Drive (or from another root's name, such
        as ``Rubbish Bin/x``); a bare name without ``/`` finds the first node so called."""
        store = (await self.tree()).store
        text = str(path)
        if "/" in text.strip("/") or folders_only:
            handle = store.find_path(text, folders_only=folders_only)
        else:
            handle = store.find_name(text.strip("/")) if text.strip("/") else store.root_id
        return node_at(store, handle) if handle is not None else None

    async def path_of(self, ref: NodeRef) -> str:
        """The node's path (``Cloud Drive/a/b``)."""
        return (await self.tree()).store.path_of(handle_of(ref))

    async def children(self, folder: NodeRef | None = None) -> list[Node]:
        """The nodes directly in ``folder`` (default: the Cloud Drive)."""
        return [n async for n in self.iter_nodes(folder)]

    async def iter_nodes(
        self, folder: NodeRef | None = None, *, recursive: bool = False
    ) -> AsyncIterator[Node]:
        """The nodes in ``folder`` (default: the Cloud Drive) as an async iterator; with
        ``recursive``, everything below it, parents before children. The loop gets a turn
        every few thousand nodes, so a million-node walk does not stall other tasks.
        :class:`~megafast.errors.TreeError` when the walk comes back to ``folder`` (a hostile
        listing that puts it below itself)."""
        tree = await self.tree()
        store = tree.store
        top = handle_of(folder) if folder is not None else store.root_id
        if top is None or top not in store:
            raise NodeNotFoundError("no such folder")
        todo = [top]
        given = 0
        while todo:
            current = todo.pop()
            for h in store.child_handles(current) if current in store else ():
                if h not in store:
                    continue  # removed by a change applied while we yielded
                if h == top:  # each node has one parent: only the top can come round
                    raise cycle_error(tree.nodes, top)
                yield node_at(store, h)
                given += 1
                if recursive and store.types[store.slot_of[h]] != NodeType.FILE:
                    todo.append(h)
                if given % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)

    # -- live updates --------------------------------------------------------------------------
    async def watch(self) -> AsyncWatcher:
        """The account's changes as an async iterator of ChangeEvents, applied to this
        client's tree as they come (``async for event in await m.watch(): ...``)."""
        tree = await self.tree()
        assert self.keyring is not None
        store = tree.store
        return AsyncWatcher(
            store,
            self.keyring,
            AsyncScChannel(self.api, store.sn or ""),
            self._list_all,
            self_id=self.request_id,
            on_store=self._use_store,
        )

    def _use_store(self, store: NodeStore) -> None:
        tree = self.core.loaded_tree
        if tree is not None:
            tree.store = store

    # -- the rest of the interface: tree changes and links (_ops), transfers (_transfers) --
    create_folder = _ops.create_folder
    rename = _ops.rename
    move = _ops.move
    delete = _ops.delete
    destroy = _ops.destroy
    get_link = _ops.get_link
    get_links = _ops.get_links
    export = _ops.export
    public_info = _ops.public_info
    public_folder = _ops.public_folder
    import_public_file = _ops.import_public_file
    upload = _transfers.upload
    upload_bytes = _transfers.upload_bytes
    upload_stream = _transfers.upload_stream
    upload_tree = _trees.upload_tree
    download = _transfers.download
    download_to = _transfers.download_to
    download_bytes = _transfers.download_bytes
    download_tree = _trees.download_tree
    open = _reader.open


class _ThreadApi:
    """What the synchronous login routines need of an ApiClient (``request``, ``batch``),
    answered by the async client on its loop while a worker thread waits."""

    def __init__(
        self, client: AsyncMega, loop: asyncio.AbstractEventLoop, cancel: threading.Event
    ) -> None:
        self._api = client.api
        self._loop = loop
        self._cancel = cancel

    def _check(self) -> None:
        if self._cancel.is_set():
            raise MegaError("cancelled")

    def request(self, command: dict[str, Any], *, folder: str | None = None) -> Any:
        self._check()
        return call_from_thread(self._loop, self._api.request(command, folder=folder))

    def batch(self, commands: list[dict[str, Any]], *, folder: str | None = None) -> list[Any]:
        self._check()
        return call_from_thread(self._loop, self._api.batch(commands, folder=folder))
