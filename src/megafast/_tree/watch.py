"""Live updates: read MEGA's server-to-client channel and apply its action packets.

:class:`ScChannel` polls ``POST <api>/sc?sn=<sn>&sid=<sid>``: an answer ``{"a":[...],"sn"}``
carries packets (``ir:1``: more follow at once), ``{"w":url}`` means "nothing yet": the client
then long-polls ``<w>`` (the server answers when something changed, or with a keep-alive) and
polls ``/sc`` again. ``-6`` (ETOOMANY) means the ``sn`` is too old: reload everything.

:func:`apply_packet` applies one packet to a :class:`NodeStore` (``t`` new or moved nodes,
``u`` attributes, ``d`` deletions, ``s``/``s2`` shares, ``ph`` public links, ``k`` keys,
``fa`` file attributes) and returns :class:`ChangeEvent`s; a packet naming nodes the store
does not know, or moving a folder below itself, raises StoreError.

:class:`Watcher` ties them together: iterate it (or ``run(callback)``) to receive events;
on ``-6`` or a packet the store cannot apply it logs why, reloads the whole tree through the
``reload`` callable it was given, and reports a ``reload`` event. A channel that fails
``max_failures`` polls in a row raises :class:`ScDisconnected` (a bounded catch-up); a
watcher then reports a ``disconnected`` event (``retry_in`` seconds), waits, and keeps
going, and reports ``reconnected`` once a poll gets through again. Example::

    for event in mega.watch():          # see Watcher
        print(event.kind, event.handle, event.path)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from .._wire.retry import RetryPolicy
from .._wire.seqtag import NO_TAG, OwnTags, TagKey
from .cache import NodeCache
from .listing import add_raw_nodes
from .nodes import Keyring, b64_bytes
from .nodestore import NodeStore, StoreError, attrs_columns
from .scanswer import ScDisconnected, ScFailures, SnTooOld, read_sc_answer

__all__ = [
    "ChangeEvent",
    "ScChannel",
    "ScDisconnected",
    "SnTooOld",
    "Watcher",
    "apply_packet",
    "open_tree",
]

log = logging.getLogger("megafast.watch")
POLL_TIMEOUT = 45.0  # MEGA answers a poll within 40 s (a keep-alive at worst)


@dataclass(frozen=True)
class ChangeEvent:
    """One change: ``kind`` is ``new``, ``move``, ``update``, ``delete``, ``share``, ``link``,
    ``keys`` or ``reload`` (the whole tree was listed again) -- or the state of the channel:
    ``disconnected`` (``/sc`` cannot be reached; ``packet`` says why, ``retry_in`` in how many
    seconds the watcher tries again) and ``reconnected``; ``handle`` the node concerned;
    ``path`` its path after the change (before it, for ``delete``); ``node`` the mega.py-shaped
    dict after the change (None for ``delete``/``reload``; left out of repr: it holds keys);
    ``packet`` the action packet's type letter(s)."""

    kind: str
    handle: str | None = None
    path: str | None = None
    packet: str = ""
    node: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    retry_in: float | None = None


class ScChannel:
    """Polls ``/sc`` for one session; ``poll()`` returns the next packets (blocking).

    A failed poll (network error, HTTP error, ``-3``/``-4``) is tried again after
    ``retry.backoff(n)`` seconds (default: ``retry_delay`` doubling up to 30 s, jittered);
    after ``max_failures`` in a row :class:`ScDisconnected` is raised."""

    def __init__(
        self,
        api_url: str,
        sid: str,
        sn: str,
        *,
        http: requests.Session | None = None,
        timeout: float = POLL_TIMEOUT,
        retry_delay: float = 1.0,
        retry: RetryPolicy | None = None,
        max_failures: int = 6,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._sid = sid
        self.sn = sn
        self.http = http or requests.Session()
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.retry = retry or RetryPolicy(base=retry_delay, cap=max(retry_delay, 30.0))
        self._failures = ScFailures(self.retry, max_failures)
        self.stop_event = threading.Event()

    def __repr__(self) -> str:
        return f"ScChannel({self.api_url!r}, sn={self.sn!r})"  # never the session id

    @property
    def failures(self) -> int:
        """Failed polls in a row."""
        return self._failures.count

    def poll(self, wait: bool = True) -> tuple[list[dict[str, Any]], bool]:
        """(packets, caught_up). Without ``wait``, returns ([], True) instead of long-polling
        when nothing is pending. Raises SnTooOld on ``-6``, SessionError on ``-15``."""
        while not self.stop_event.is_set():
            reason = ""
            try:
                response = self.http.post(
                    f"{self.api_url}/sc",
                    params={"sn": self.sn, "sid": self._sid},
                    data=b"",
                    timeout=self.timeout,
                )
                answer = response.json() if response.status_code == 200 else None
                reason = f"HTTP {response.status_code}"
            except (requests.RequestException, ValueError) as exc:
                answer, reason = None, type(exc).__name__  # its text may hold the URL
            step = read_sc_answer(answer, wait)
            if step.retry:
                self._failed(reason if answer is None else f"the server answered {answer}")
                continue
            self._failures.succeeded()
            if step.sn is not None:
                self.sn = step.sn
            if step.packets is not None:
                return step.packets, step.caught_up
            assert step.wait_url is not None
            self._wait(step.wait_url)
        return [], True

    def _failed(self, reason: str) -> None:
        """Count a failed poll and wait before the next; raises ScDisconnected after
        ``max_failures`` in a row."""
        self.stop_event.wait(self._failures.failed(reason))

    def _wait(self, url: str) -> None:
        try:
            self.http.post(url, data=b"", timeout=self.timeout)
        except requests.RequestException as exc:  # counted: a dead link fails both
            self._failed(f"the wait URL: {type(exc).__name__}")

    def close(self) -> None:
        self.stop_event.set()


# -- applying packets -------------------------------------------------------------------------
def apply_packet(
    store: NodeStore,
    keyring: Keyring,
    packet: dict[str, Any],
    self_id: str | None = None,
    own_tags: Container[Any] = (),
) -> list[ChangeEvent]:
    """Apply one action packet; StoreError when it names unknown nodes or forms a cycle.
    A packet is our own change when its ``i`` is ``self_id`` or its v3 sequence tag ``st``
    is in ``own_tags`` (the tags our commands were answered with).

    Our own changes are in the tree already (the client applies each command's answer).
    With ``own_tags`` an :class:`~megafast._wire.seqtag.OwnTags`, an own packet leaves
    alone every node a later own command changed here (``store.own_marks``, by sequence
    tag): the echo of an upload moved, renamed or deleted since never undoes that. And our
    own move's ``d`` (``m``: 1) leaves the node where it is: the ``t`` after it places it
    (the node never vanishes in between)."""
    kind = packet.get("a")
    order = own_tags.order(packet.get("st")) if isinstance(own_tags, OwnTags) else None
    own = (self_id is not None and packet.get("i") == self_id) or packet.get("st") in own_tags
    # the node a u, d, fa or ph packet changes (a t lists its nodes: see _apply_t)
    target = (
        packet.get("n") if kind in ("u", "d", "fa") else packet.get("h") if kind == "ph" else None
    )
    if order is not None:
        store.forget_own_marks_up_to(order)
        if isinstance(target, str):
            if store.own_marks.get(target, NO_TAG) > order:
                return []  # changed here again since: this echo is older than the tree
            store.own_marks.pop(target, None)
    if kind == "t":
        return _apply_t(store, keyring, packet, order)
    if kind == "u":
        return _apply_u(store, packet)
    if kind == "d":
        h = packet.get("n")
        if own and h not in store:
            return []  # our own deletion, already applied
        if not isinstance(h, str) or h not in store:
            raise StoreError(f"d names an unknown node {h!r}")
        if own and packet.get("m") == 1:
            return []  # our own move, already applied: its t follows
        path = store.path_of(h)
        store.remove(h)
        return [ChangeEvent("delete", h, path, "d")]
    if kind in ("s", "s2"):
        return _apply_share(store, keyring, packet, kind)
    if kind == "ph":
        h = packet.get("h")
        if not isinstance(h, str) or h not in store:
            raise StoreError(f"ph names an unknown node {h!r}")
        ph = packet.get("ph")
        store.set_extra(h, "ph", None if packet.get("d") or not isinstance(ph, str) else ph)
        return [_event(store, "link", h, "ph")]
    if kind == "k":
        return [
            ChangeEvent(
                "keys", packet.get("h") if isinstance(packet.get("h"), str) else None, packet="k"
            )
        ]
    if kind == "fa":
        h = packet.get("n")
        if isinstance(h, str) and h in store and isinstance(packet.get("fa"), str):
            store.set_extra(h, "fa", packet["fa"])
            return [_event(store, "update", h, "fa")]
        return []
    return []  # contacts, user attributes, alerts...: not part of the tree


def _event(store: NodeStore, kind: str, h: str, packet: str) -> ChangeEvent:
    return ChangeEvent(kind, h, store.path_of(h), packet, store.node(h))


def _apply_t(
    store: NodeStore, keyring: Keyring, packet: dict[str, Any], order: TagKey | None
) -> list[ChangeEvent]:
    """A ``t`` packet; ``order``: where its tag stands when it is our own (then the nodes a
    later own command changed here are left as they are, see :func:`apply_packet`)."""
    body = packet.get("t")
    if not isinstance(body, dict):
        raise StoreError("t packet without nodes")
    nodes = [n for key in ("f", "f2") for n in (body.get(key) or ()) if isinstance(n, dict)]
    if order is not None:
        marks = store.own_marks
        kept: list[dict[str, Any]] = []
        skipped: set[str] = set()
        for n in nodes:  # parents come first: what hangs under a node skipped and gone goes too
            handle = str(n.get("h"))
            if marks.get(handle, NO_TAG) > order or (
                n.get("p") in skipped and n.get("p") not in store
            ):
                skipped.add(handle)
            else:
                kept.append(n)
                marks.pop(handle, None)  # its echo has come
        nodes = kept
    listed = {n.get("h") for n in nodes}
    before: dict[str, str | None] = {}
    for node in nodes:
        h, p = node.get("h"), node.get("p")
        if not isinstance(h, str) or not h:
            raise StoreError("t packet with a node without a handle")
        if isinstance(node.get("sk"), str):
            key = keyring.decrypt_share_key(node["sk"])
            if key is not None:
                keyring.share_keys[h] = key
        if p and p not in store and p not in listed and "su" not in node:
            raise StoreError(f"t packet puts {h!r} under an unknown node {p!r}")
        if h in store:
            before[h] = store.parent_of(h)
            if (
                isinstance(p, str)
                and p in store
                and store.is_below(store.slot_of[p], store.slot_of[h])
            ):
                raise StoreError(f"t packet moves {h!r} below itself")
    add_raw_nodes(store, nodes, keyring, final=True)
    store.adopt_orphans()
    for node in nodes:
        if node["h"] in store and store.in_cycle(node["h"]):
            raise StoreError(f"t packet puts {node['h']!r} in a cycle")
    events = []
    for node in nodes:
        h = node["h"]
        if h not in store:
            continue
        kind = "new" if h not in before else ("move" if before[h] != node.get("p") else "update")
        events.append(_event(store, kind, h, "t"))
    return events


def _apply_u(store: NodeStore, packet: dict[str, Any]) -> list[ChangeEvent]:
    from ..crypto import decrypt_attr

    h = packet.get("n")
    if not isinstance(h, str) or h not in store:
        raise StoreError(f"u names an unknown node {h!r}")
    at = packet.get("at")
    key = store.key_of(h)
    if isinstance(at, str) and key is not None:
        w = [int.from_bytes(key[i : i + 4], "big") for i in range(0, len(key), 4)]
        k = w if len(w) == 4 else [w[i] ^ w[i + 4] for i in range(4)]
        raw = b64_bytes(at)
        attrs = decrypt_attr(raw, k) if raw else False
        if isinstance(attrs, dict):
            store.set_attributes(h, *attrs_columns(attrs))
        else:
            log.warning("u packet for %s carries attributes that do not decrypt", h)
    if isinstance(packet.get("ts"), int):
        store.times[store.slot_of[h]] = packet["ts"]
    return [_event(store, "update", h, "u")]


def _apply_share(
    store: NodeStore, keyring: Keyring, packet: dict[str, Any], kind: str
) -> list[ChangeEvent]:
    h = packet.get("n")
    if not isinstance(h, str):
        raise StoreError(f"{kind} packet without a node")
    key_text = packet.get("k")
    if isinstance(key_text, str):
        key = keyring.decrypt_share_key(key_text)
        if key is not None:
            keyring.share_keys[h] = key
    if h not in store:
        if isinstance(key_text, str):
            return [ChangeEvent("share", h, None, kind)]  # a new incoming share: t follows
        raise StoreError(f"{kind} names an unknown node {h!r}")
    if "r" not in packet and store.owners[store.slot_of[h]] != keyring.user_handle:
        path = store.path_of(h)
        store.remove(h)  # an incoming share was taken away
        return [ChangeEvent("delete", h, path, kind)]
    return [_event(store, "share", h, kind)]


# -- the watcher ------------------------------------------------------------------------------
class LinkState:
    """The channel's state as a watcher reports it: :meth:`lost` gives the ``disconnected``
    event for a :class:`ScDisconnected`, :meth:`polled` the ``reconnected`` event for the
    first poll that gets through after it (None otherwise); both log at WARNING."""

    def __init__(self) -> None:
        self.down = False

    def lost(self, exc: ScDisconnected) -> ChangeEvent:
        log.warning("watch: disconnected (%s), retrying in %.3g s", exc.reason, exc.retry_in)
        self.down = True
        return ChangeEvent("disconnected", packet=exc.reason, retry_in=exc.retry_in)

    def polled(self) -> ChangeEvent | None:
        if not self.down:
            return None
        self.down = False
        log.warning("watch: reconnected")
        return ChangeEvent("reconnected")


class Watcher:
    """Follows the account's changes; iterate it for :class:`ChangeEvent`s.

    ``reload()`` lists the whole tree again and returns the new store (its ``sn`` set); the
    watcher then works on that store (read it from ``watcher.store``). With a ``cache``, the
    store is saved at most every ``save_interval`` seconds and when the watcher stops."""

    def __init__(
        self,
        store: NodeStore,
        keyring: Keyring,
        channel: ScChannel,
        reload: Callable[[], NodeStore],
        *,
        cache: NodeCache | None = None,
        save_interval: float = 30.0,
        self_id: str | None = None,
        own_tags: Container[Any] = (),
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.channel = channel
        self._reload = reload
        self.cache = cache
        self.save_interval = save_interval
        self.self_id = self_id
        self.own_tags = own_tags
        self._dirty = False
        self._saved_at = time.monotonic()

    def catch_up(self) -> list[ChangeEvent]:
        """Apply everything the server has since ``store.sn`` without waiting (warm start)."""
        events: list[ChangeEvent] = []
        while True:
            batch, caught_up = self._poll(wait=False)
            events.extend(batch)
            if caught_up:
                self._save_if_due(force=True)
                return events

    def __iter__(self) -> Iterator[ChangeEvent]:
        stop = self.channel.stop_event
        link = LinkState()
        try:
            while not stop.is_set():
                try:
                    events, _ = self._poll(wait=True)
                except ScDisconnected as exc:
                    yield link.lost(exc)
                    stop.wait(exc.retry_in)
                    continue
                back = link.polled()
                if back is not None:
                    yield back
                yield from events
                self._save_if_due()
        finally:
            self._save_if_due(force=True)

    def run(self, callback: Callable[[ChangeEvent], None]) -> None:
        """Call ``callback`` for each event until :meth:`stop`."""
        for event in self:
            callback(event)

    def start(self, callback: Callable[[ChangeEvent], None]) -> threading.Thread:
        """:meth:`run` in a daemon thread."""
        thread = threading.Thread(
            target=self.run, args=(callback,), daemon=True, name="megafast-watch"
        )
        thread.start()
        return thread

    def stop(self) -> None:
        self.channel.close()

    def _poll(self, wait: bool) -> tuple[list[ChangeEvent], bool]:
        self.channel.sn = self.store.sn or self.channel.sn
        try:
            packets, caught_up = self.channel.poll(wait=wait)
            events: list[ChangeEvent] = []
            for packet in packets:
                events.extend(
                    apply_packet(self.store, self.keyring, packet, self.self_id, self.own_tags)
                )
        except SnTooOld:
            log.warning("the server's change log no longer reaches sn %s: reloading", self.store.sn)
            return self._full_reload(), True
        except StoreError as exc:
            log.warning("action packet not applicable (%s): reloading the whole tree", exc)
            return self._full_reload(), True
        self.store.sn = self.channel.sn
        self._dirty = self._dirty or bool(packets)
        return events, caught_up

    def _full_reload(self) -> list[ChangeEvent]:
        self.store = self._reload()
        if self.store.sn:
            self.channel.sn = self.store.sn
        self._dirty = True
        self._save_if_due(force=True)
        return [ChangeEvent("reload")]

    def _save_if_due(self, force: bool = False) -> None:
        if self.cache is None or not self._dirty:
            return
        if force or time.monotonic() - self._saved_at >= self.save_interval:
            self.cache.save(self.store)
            self._dirty = False
            self._saved_at = time.monotonic()


def open_tree(
    keyring: Keyring,
    list_all: Callable[[], NodeStore],
    channel_for: Callable[[str], ScChannel],
    cache: NodeCache | None = None,
) -> tuple[NodeStore, list[ChangeEvent]]:
    """The account's tree, warm when possible: the cached store brought up to date through
    ``/sc`` from its ``sn`` (a full listing instead when the server says the ``sn`` is too
    old, or a packet does not apply); cold: ``list_all()``, then saved to the cache.

    ``list_all`` lists everything (the streaming ``f``) and returns a store with its ``sn``;
    ``channel_for(sn)`` opens an :class:`ScChannel` from ``sn``. Returns the store and the
    changes applied since the cache was written."""
    store = cache.load() if cache is not None else None
    if store is not None:  # the keys saved with the tree, shared with the keyring from now on
        keyring.share_keys.update(store.share_keys)
        store.share_keys = keyring.share_keys
    if store is None or not store.sn:
        store = list_all()
        if cache is not None:
            cache.save(store)
        return store, []
    watcher = Watcher(store, keyring, channel_for(store.sn), list_all, cache=cache)
    events = watcher.catch_up()
    return watcher.store, events
