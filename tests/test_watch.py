"""The /sc client against a small scripted server on 127.0.0.1 that speaks MEGA's channel
(packets, ``ir``, the ``w`` wait URL long poll, ``-6``), and action packets applied to the
store: new, renamed, moved, deleted, shared and linked nodes; unknown nodes and cycles reload."""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from megafast._tree.cache import NodeCache
from megafast._tree.listing import load_listing
from megafast._tree.nodes import Keyring
from megafast._tree.nodestore import NodeStore
from megafast._tree.watch import (
    ChangeEvent,
    ScChannel,
    SnTooOld,
    Watcher,
    apply_packet,
    open_tree,
)
from megafast.errors import SessionError
from megafast.testing import _crypto as C
from synthetic_listing import Account


class ScServer:
    """Answers ``/sc`` from a queue of scripted answers; when the queue is empty it hands out
    a wait URL whose long poll returns as soon as an answer is queued (or after ``hold`` s)."""

    def __init__(self, hold: float = 5.0) -> None:
        self.answers: queue.Queue[Any] = queue.Queue()
        self.wake = threading.Event()
        self.hold = hold
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                outer.requests.append((url.path, parse_qs(url.query)))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if url.path == "/sc":
                    try:
                        body = json.dumps(outer.answers.get_nowait())
                    except queue.Empty:
                        body = json.dumps({"w": f"{outer.url}/wait/{secrets.token_hex(4)}"})
                elif url.path.startswith("/wait/"):
                    outer.wake.wait(outer.hold)
                    outer.wake.clear()
                    body = "0"
                else:
                    body = "-2"
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def push(self, answer: Any) -> None:
        self.answers.put(answer)
        self.wake.set()

    def close(self) -> None:
        self.wake.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server() -> Iterator[ScServer]:
    srv = ScServer()
    yield srv
    srv.close()


@pytest.fixture()
def acct() -> Account:
    return Account()


def listing(acct: Account) -> tuple[NodeStore, Keyring]:
    nodes = acct.roots() + [
        acct.folder("A0000000", acct.root, "a"),
        acct.folder("B0000000", "A0000000", "b"),
        acct.file("F0000000", "B0000000", "f.txt"),
    ]
    keyring = Keyring(acct.master, acct.user)
    store, _ = load_listing([json.dumps([{"f": nodes, "sn": "SN000000001"}]).encode()], keyring)
    return store, keyring


def renamed(store: NodeStore, h: str, name: str) -> str:
    key = store.key_of(h)
    assert key is not None
    k = key if len(key) == 16 else bytes(a ^ b for a, b in zip(key[:16], key[16:], strict=True))
    return C.encrypt_attr({"n": name, "extra": 1}, k)


def test_packets_apply_to_the_store(acct: Account) -> None:
    store, keyring = listing(acct)
    new = acct.file("G0000000", "A0000000", "g.txt", size=77)
    events = apply_packet(store, keyring, {"a": "t", "t": {"f": [new]}, "ou": acct.user})
    assert [(e.kind, e.path) for e in events] == [("new", "Cloud Drive/a/g.txt")]
    assert events[0].node is not None and events[0].node["s"] == 77
    assert "key" not in repr(events[0])
    events = apply_packet(
        store,
        keyring,
        {
            "a": "u",
            "n": "F0000000",
            "at": renamed(store, "F0000000", "renamed.txt"),
            "ts": 99,
            "u": acct.user,
        },
    )
    assert store.find_path("a/b/renamed.txt") == "F0000000" and events[0].kind == "update"
    assert store.node("F0000000")["a"] == {"n": "renamed.txt", "extra": 1}
    # a move: d (m:1) then t with the subtree
    moved = dict(acct.folder("B0000000", acct.root, "b"))
    moved_file = acct.file("F0000000", "B0000000", "renamed.txt")
    apply_packet(store, keyring, {"a": "d", "n": "B0000000", "m": 1})
    assert store.find_path("a/b") is None and "F0000000" not in store
    events = apply_packet(store, keyring, {"a": "t", "t": {"f": [moved, moved_file]}})
    assert store.find_path("b/renamed.txt") == "F0000000"
    # re-parenting a known node inside t
    again = acct.folder("B0000000", "A0000000", "b")
    events = apply_packet(store, keyring, {"a": "t", "t": {"f": [again]}})
    assert events[0].kind == "move" and store.find_path("a/b/renamed.txt") == "F0000000"
    events = apply_packet(store, keyring, {"a": "ph", "h": "F0000000", "ph": "PUBLIC01"})
    assert events[0].kind == "link" and store.node("F0000000")["ph"] == "PUBLIC01"
    apply_packet(store, keyring, {"a": "ph", "h": "F0000000", "d": 1, "ph": "PUBLIC01"})
    assert "ph" not in store.node("F0000000")
    share_key = secrets.token_bytes(16)
    events = apply_packet(
        store,
        keyring,
        {
            "a": "s2",
            "n": "NEWSHARE",
            "o": "Other000000",
            "k": C.b64encode(C.ecb_encrypt(acct.master, share_key)),
            "r": 0,
        },
    )
    assert events[0].kind == "share" and keyring.share_keys["NEWSHARE"] == share_key
    assert apply_packet(store, keyring, {"a": "k", "sr": [], "h": "A0000000"})[0].kind == "keys"
    events = apply_packet(store, keyring, {"a": "d", "n": "A0000000"})
    assert events[0].path == "Cloud Drive/a" and store.find_path("a") is None
    assert apply_packet(store, keyring, {"a": "ua", "u": acct.user}) == []


@pytest.mark.parametrize(
    "packet",
    [
        {"a": "d", "n": "UNKNOWN0"},
        {"a": "u", "n": "UNKNOWN0", "at": "xx"},
        {"a": "ph", "h": "UNKNOWN0", "ph": "x"},
        {"a": "s2", "n": "UNKNOWN0", "u": "x", "r": 0},
        {"a": "t", "t": {"f": [{"h": "N0000000", "p": "UNKNOWN0", "t": 1, "a": "", "k": ""}]}},
        {"a": "t", "t": {"f": [{"h": "A0000000", "p": "B0000000", "t": 1, "a": "", "k": ""}]}},
        {"a": "t", "t": "not nodes"},
        {
            "a": "t",
            "t": {
                "f": [
                    {"h": "X0000000", "p": "Y0000000", "t": 1, "a": "", "k": ""},
                    {"h": "Y0000000", "p": "X0000000", "t": 1, "a": "", "k": ""},
                ]
            },
        },
    ],
)
def test_unknown_nodes_and_cycles_trigger_a_reload(
    server: ScServer, acct: Account, packet: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store, keyring = listing(acct)
    fresh, _ = listing(acct)
    fresh.sn = "SN000000099"
    reloads: list[int] = []

    def reload() -> NodeStore:
        reloads.append(1)
        return fresh

    server.push({"a": [packet], "sn": "SN000000002"})
    watcher = Watcher(store, keyring, ScChannel(server.url, "SID", "SN000000001"), reload)
    with caplog.at_level(logging.WARNING, logger="megafast.watch"):
        events = watcher.catch_up()
    assert [e.kind for e in events] == ["reload"] and reloads == [1]
    assert watcher.store is fresh and "reloading" in caplog.text
    assert store.find_path("a/b/f.txt") == "F0000000"  # the reloaded tree answers


def test_too_old_sn_reloads_and_catch_up_follows_ir(server: ScServer, acct: Account) -> None:
    store, keyring = listing(acct)
    fresh, _ = listing(acct)
    fresh.sn = "SN000000050"
    server.push(-6)
    watcher = Watcher(store, keyring, ScChannel(server.url, "SID", "SN000000001"), lambda: fresh)
    assert [e.kind for e in watcher.catch_up()] == ["reload"]
    server.push(
        {
            "a": [{"a": "t", "t": {"f": [acct.folder("C0000000", acct.root, "c")]}}],
            "ir": 1,
            "sn": "SN000000051",
        }
    )
    server.push({"a": [{"a": "d", "n": "C0000000"}], "sn": "SN000000052"})
    server.push(
        {
            "a": [{"a": "t", "t": {"f": [acct.folder("D0000000", acct.root, "d")]}}],
            "sn": "SN000000053",
        }
    )
    events = watcher.catch_up()
    assert [e.kind for e in events] == ["new", "delete"]
    assert watcher.store.sn == "SN000000052"
    sns = [q["sn"][0] for path, q in server.requests if path == "/sc"]
    assert sns[-2:] == ["SN000000050", "SN000000051"]
    assert all(q["sid"] == ["SID"] for path, q in server.requests if path == "/sc")


def test_watch_sees_a_change_through_the_wait_url_within_a_second(
    server: ScServer, acct: Account, tmp_path: Path
) -> None:
    store, keyring = listing(acct)
    cache = NodeCache(tmp_path, acct.master, acct.user)
    watcher = Watcher(
        store,
        keyring,
        ScChannel(server.url, "SID", "SN000000001"),
        lambda: store,
        cache=cache,
        save_interval=0,
    )
    seen: queue.Queue[tuple[ChangeEvent, float]] = queue.Queue()
    thread = watcher.start(lambda e: seen.put((e, time.monotonic())))
    time.sleep(0.3)  # the watcher now waits on the wait URL
    assert any(path.startswith("/wait/") for path, _ in server.requests)
    sent = time.monotonic()
    server.push(
        {
            "a": [{"a": "t", "t": {"f": [acct.folder("W0000000", "A0000000", "w")]}}],
            "sn": "SN000000002",
        }
    )
    event, at = seen.get(timeout=5)
    assert event.kind == "new" and event.path == "Cloud Drive/a/w"
    assert at - sent < 1.0
    watcher.stop()
    server.wake.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    cached = cache.load()
    assert cached is not None and cached.sn == "SN000000002" and cached.find_path("a/w")


def test_channel_errors_and_no_secret_in_repr(server: ScServer) -> None:
    channel = ScChannel(server.url, "VERYSECRETSID", "SN1", retry_delay=0.01)
    assert "VERYSECRETSID" not in repr(channel)
    server.push(-15)
    with pytest.raises(SessionError):
        channel.poll()
    server.push(-6)
    with pytest.raises(SnTooOld):
        channel.poll()
    server.push(-3)
    server.push({"a": [{"a": "d", "n": "x"}, "junk"], "sn": "SN2"})
    assert channel.poll() == ([{"a": "d", "n": "x"}], True) and channel.sn == "SN2"
    server.push({"w": "file:///etc/passwd"})
    with pytest.raises(Exception, match="HTTP URL"):
        channel.poll()


def test_open_tree_cold_then_warm_then_too_old(
    server: ScServer, acct: Account, tmp_path: Path
) -> None:
    cache = NodeCache(tmp_path, acct.master, acct.user)
    listed: list[int] = []

    def list_all() -> NodeStore:
        listed.append(1)
        return listing(acct)[0]

    def channel_for(sn: str) -> ScChannel:
        return ScChannel(server.url, "SID", sn)

    store, events = open_tree(Keyring(acct.master, acct.user), list_all, channel_for, cache)
    assert listed == [1] and events == [] and cache.load() is not None
    server.push(
        {
            "a": [{"a": "t", "t": {"f": [acct.folder("C0000000", acct.root, "c")]}}],
            "sn": "SN000000007",
        }
    )
    store, events = open_tree(Keyring(acct.master, acct.user), list_all, channel_for, cache)
    assert listed == [1] and [e.kind for e in events] == ["new"]
    assert store.find_path("c") == "C0000000" and store.sn == "SN000000007"
    cached = cache.load()
    assert cached is not None and cached.sn == "SN000000007" and cached.find_path("c")
    server.push(-6)
    store, events = open_tree(Keyring(acct.master, acct.user), list_all, channel_for, cache)
    assert listed == [1, 1] and [e.kind for e in events] == ["reload"]
    assert store.find_path("c") is None


def test_own_deletion_is_recognised_by_its_sequence_tag(acct: Account) -> None:
    """A ``d`` for a node we already removed is ours when its v3 tag ``st`` is one our
    commands were answered with (MEGA's SDK matches its own changes this way); another
    tag for an unknown node is a store that went wrong (StoreError: reload)."""
    from megafast._tree.nodestore import StoreError
    from megafast._wire.seqtag import OwnTags

    store, keyring = listing(acct)
    own = OwnTags()
    own.add("41")
    packet = {"a": "d", "st": "41", "n": "GONE0000"}
    assert apply_packet(store, keyring, packet, own_tags=own) == []
    with pytest.raises(StoreError):
        apply_packet(store, keyring, {**packet, "st": "42"}, own_tags=own)
