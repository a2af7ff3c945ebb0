"""The account's tree kept current: the streaming ``f``, the node cache and ``/sc`` (issue 12).

:func:`load` gives ``Mega`` its :class:`~megafast._tree.nodes.NodeTree`: with a cache, the cached
store brought up to date through ``/sc`` (a warm start), else the whole listing streamed into
a NodeStore. :func:`after_change` keeps the cache current after the client's own changes, and
:func:`watcher` follows the account's changes live.

The cache is written only right after catching up through ``/sc``, so the saved store always
matches its ``sn``: a change this client made but has not seen come back is never saved with
an older ``sn`` (replaying it on the next warm start would then meet nodes already gone).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._tree.cache import NodeCache
from .._tree.listing import load_listing
from .._tree.nodes import Keyring, NodeTree
from .._tree.nodestore import NodeStore
from .._tree.watch import ChangeEvent, ScChannel, Watcher, open_tree
from .._wire.api import new_http_session
from ..errors import MegaError, ValidationError

if TYPE_CHECKING:
    import requests

    from .core import Core

__all__ = ["LiveTree", "cache_folder", "load", "after_change", "persist", "save_quietly", "watcher"]

log = logging.getLogger("megafast.cache")
SAVE_INTERVAL = 30.0  # seconds between cache writes after the client's own changes


def cache_folder(option: Any) -> Path | None:
    """The cache folder an option names: None/False none, True the user's cache directory
    (``$XDG_CACHE_HOME/megafast``, else ``~/.cache/megafast``), else the path given."""
    if option is None or option is False:
        return None
    if option is True:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "megafast"
    if isinstance(option, (str, os.PathLike)) and os.fspath(option):
        return Path(os.fspath(option))
    raise ValidationError("cache must be None, True or a folder path")


@dataclass
class LiveTree:
    """What the client keeps beside its tree: the keyring, the cache and when it was saved."""

    tree: NodeTree
    keyring: Keyring
    cache: NodeCache | None
    events: list[ChangeEvent] = field(default_factory=list)  # applied on a warm start
    saved_at: float = field(default_factory=time.monotonic)
    dirty: bool = False


def node_cache(core: Core) -> NodeCache | None:
    folder = cache_folder(core.options.get("cache"))
    creds = core.credentials
    if folder is None or creds is None or not creds.user_handle:
        return None
    return NodeCache(folder, creds.master_key, creds.user_handle, core.api_url)


def list_all(core: Core, keyring: Keyring) -> NodeStore:
    """The whole tree: ``f`` streamed into a NodeStore (its ``sn``, share keys and exported
    folders set)."""
    store, meta = load_listing(core.api().stream({"a": "f", "c": 1, "r": 1}), keyring)
    store.share_keys = keyring.share_keys
    shares = meta.get("s")
    store.exported = {
        item["h"]
        for item in (shares if isinstance(shares, list) else ())
        if isinstance(item, dict) and item.get("u") == "EXP" and isinstance(item.get("h"), str)
    }
    return store


def _channel(core: Core, sn: str, http: requests.Session | None = None) -> ScChannel:
    sid = core.sid
    if sid is None:
        raise ValidationError("not logged in: call login() first")
    return ScChannel(core.api_url, sid, sn, http=http or core.http)


def load(core: Core) -> LiveTree:
    """The account's tree, warm from the cache when there is one (see the module doc)."""
    keyring = core.make_keyring()
    cache = node_cache(core)
    store, events = open_tree(
        keyring, lambda: list_all(core, keyring), lambda sn: _channel(core, sn), cache
    )
    tree = NodeTree(store, keyring)
    tree.own_clock = core.api_client.own_seqtags.latest
    return LiveTree(tree, keyring, cache, events)


def _reload(core: Core, live: LiveTree) -> NodeStore:
    store = list_all(core, live.keyring)
    live.tree.store = store
    return store


def persist(core: Core, live: LiveTree) -> None:
    """Catch up through ``/sc`` (our own changes come back as packets) and save the cache."""
    if live.cache is None or live.tree.store.sn is None:
        return
    catch_up = Watcher(
        live.tree.store,
        live.keyring,
        _channel(core, live.tree.store.sn),
        lambda: _reload(core, live),
        self_id=core.request_id,
        own_tags=core.api_client.own_seqtags,
    )
    catch_up.catch_up()
    live.tree.store = catch_up.store
    live.cache.save(live.tree.store)
    live.saved_at = time.monotonic()
    live.dirty = False


def after_change(core: Core) -> None:
    """The client changed its tree: save the cache when the last save is old enough."""
    live = core.live
    if live is None or live.cache is None:
        return
    live.dirty = True
    if time.monotonic() - live.saved_at >= SAVE_INTERVAL:
        save_quietly(core, live)


def save_quietly(core: Core, live: LiveTree) -> None:
    """:func:`persist`, a failure only logged: the change itself is done (the cache keeps
    its older, consistent state and the next start catches up)."""
    try:
        persist(core, live)
    except MegaError as exc:
        log.warning("node cache not saved: %s", exc)


def watcher(core: Core, live: LiveTree) -> Watcher:
    """A Watcher on the client's own store (its finds see the changes), with a session of
    its own for the long poll."""
    store = live.tree.store
    return Watcher(
        store,
        live.keyring,
        _channel(core, store.sn or "", http=new_http_session(2)),
        lambda: _reload(core, live),
        cache=live.cache,
        self_id=core.request_id,
        own_tags=core.api_client.own_seqtags,
    )
