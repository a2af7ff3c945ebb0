"""How the emulator shows nodes (``f``, ``p`` and ``t`` packets) and the action packets it
sends for every change, to every account that can see the node (PROTOCOL Part 2, §3).

A packet caused by a command that carried ``i`` echoes it right after ``a``, as MEGA does, so
the client can tell its own changes from others'.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from ._common import ServiceBase


def packet(a: str, i: str | None, **fields: Any) -> dict[str, Any]:
    """An action packet: ``a`` first, then ``i`` when the change came with one."""
    out: dict[str, Any] = {"a": a}
    if i is not None:
        out["i"] = i
    out.update(fields)
    return out


class Packets(ServiceBase):
    """Node JSON for a viewer, and the packets that tell other sessions about changes."""

    def node_json(
        self,
        row: sqlite3.Row,
        viewer: str | None,
        share: str | None = None,
        node_keys: dict[str, list[tuple[str, str]]] | None = None,
    ) -> dict:
        """A node as ``f``/``p`` return it to ``viewer`` (or to a public folder ``share``).

        ``u`` is the user who made the node; ``k`` holds that user's key (for that user and
        the tree's owner) and the keys under every share the viewer can use. ``node_keys``:
        the ``node_keys`` rows a whole listing needs (handle -> [(share, key)]), read with
        :meth:`_listing_keys` in one query instead of one per node.
        """
        maker = row["creator"] or row["owner"]
        out: dict[str, Any] = {
            "h": row["h"],
            "p": row["parent"] or "",
            "u": maker,
            "t": row["t"],
            "a": row["a"] or "",
            "k": "",
            "ts": row["ts"],
        }
        if row["t"] == 0:
            out["s"] = row["s"]
        if row["fa"]:
            out["fa"] = row["fa"]
        if row["t"] in (0, 1):
            keys = []
            if share is None and viewer in (maker, row["owner"]):
                keys.append(f"{maker}:{row['k']}")
            if node_keys is None:
                node_keys = self._listing_keys(row["h"], viewer, share)
            usable = None if share is None and viewer == row["owner"] else node_keys.get("")
            for sh, k in node_keys.get(row["h"], ()):
                if usable is None or sh in usable:
                    keys.append(f"{sh}:{k}")
            out["k"] = "/".join(keys)
        return out

    def _listing_keys(
        self, h: str | list[str] | None, viewer: str | None, share: str | None
    ) -> dict[str, list[tuple[str, str]]]:
        """``node_keys`` rows for a listing: of node ``h`` (of the nodes ``h`` lists; all
        nodes when None) under the shares ``viewer`` may use: every share for the owner's own
        nodes, the shares made with the viewer for others' nodes, ``share`` alone for a
        public folder. The entry ``""`` holds the shares usable for nodes the viewer does not
        own."""
        if share is not None:
            usable = [share]
        else:
            usable = [
                r["h"] for r in self.store.all("SELECT h FROM shares WHERE u=?", viewer or "")
            ]
        queries: list[tuple[str, list[str]]]
        if isinstance(h, list):
            queries = [
                (f"nk.h IN ({','.join('?' * len(part))})", part)
                for part in (h[i : i + 500] for i in range(0, len(h), 500))
            ]
        elif h is not None:
            queries = [("nk.h=?", [h])]
        elif share is not None:
            queries = [("nk.share=?", [share])]
        else:
            where = "(n.owner=? OR nk.share IN (SELECT h FROM shares WHERE u=?))"
            queries = [(where, [viewer or "", viewer or ""])]
        rows = [
            r
            for where, args in queries
            for r in self.store.all(
                "SELECT nk.h, nk.share, nk.k, n.owner FROM node_keys nk"
                f" JOIN nodes n ON n.h = nk.h WHERE {where} ORDER BY nk.h, nk.share",
                *args,
            )
        ]
        usable_set = set(usable)
        out: dict[str, list[tuple[str, str]]] = {"": usable}  # type: ignore[dict-item]
        for r in rows:
            if (share is None and r["owner"] == viewer) or r["share"] in usable_set:
                out.setdefault(r["h"], []).append((r["share"], r["k"]))
        return out

    # --- who hears about a change --------------------------------------------------------

    def recipients(
        self,
        h: str,
        cache: dict[str, list[str]] | None = None,
        rows: dict[str, sqlite3.Row] | None = None,
        shared: dict[str, list[str]] | None = None,
    ) -> list[str]:
        """The node's owner, every user with a share at or above it, and ``n:<handle>`` for
        each exported folder at or above it (its public visitors). ``cache`` (handle ->
        recipients) spares the walk up for the nodes of one subtree; ``rows`` and ``shared``
        (handle -> the ``u`` of its shares), read beforehand for many nodes, spare a query
        per node for the nodes they hold."""
        cache = {} if cache is None else cache
        rows = {} if rows is None else rows
        shared = {} if shared is None else shared
        chain: list[sqlite3.Row] = []  # from h up to the first node already known
        seen: set[str] = set()
        at: str | None = h
        while at and at not in cache and at not in seen:
            seen.add(at)
            node = rows.get(at) or self.store.node(at)
            if node is None:
                break
            chain.append(node)
            at = node["parent"]
        out = cache.get(at, []) if at else []
        for node in reversed(chain):
            out = out[:] if out else [node["owner"]]
            users = shared.get(node["h"])
            if users is None:
                users = [
                    r["u"] for r in self.store.all("SELECT u FROM shares WHERE h=?", node["h"])
                ]
            for u in users:
                # an exported folder's visitors (n=) hear as "n:<folder handle>"
                who = "n:" + node["h"] if u == "EXP" else u
                if who not in out:
                    out.append(who)
            cache[node["h"]] = out
        return cache.get(h, [])

    def _shares_of(self, handles: list[str]) -> dict[str, list[str]]:
        """Handle -> the ``u`` of its shares (``[]`` for none), for many nodes at once."""
        out: dict[str, list[str]] = {h: [] for h in handles}
        for start in range(0, len(handles), 500):
            part = handles[start : start + 500]
            marks = ",".join("?" * len(part))
            for r in self.store.all(f"SELECT h, u FROM shares WHERE h IN ({marks})", *part):
                out[r["h"]].append(r["u"])
        return out

    def emit_same(self, handles: Iterable[str], a: str, i: str | None, **fields: Any) -> list[str]:
        """Send one packet to everyone who can see any of ``handles`` (read before a delete);
        returns the recipients."""
        users: list[str] = []
        for h in handles:
            users.extend(u for u in self.recipients(h) if u not in users)
        self.changes.add({u: packet(a, i, **fields) for u in users})
        return users

    def emit_nodes(
        self,
        handles: list[str],
        i: str | None,
        actor: str | None,
        only: Iterable[str] = (),
        top: dict[str, Any] | None = None,
        rows: dict[str, sqlite3.Row] | None = None,
    ) -> dict[str, dict]:
        """A ``t`` packet listing ``handles`` (parents first) to each user who can see them,
        each node as that user sees it (its keys); ``only``: limit to these users; ``top``:
        fields added to the first node (``su``/``sk``/``r`` of a new incoming share);
        ``rows``: some of the nodes, read beforehand (handle -> row). Returns the nodes as
        ``actor`` sees them (handle -> node JSON), for a command's answer."""
        limit = set(only)
        cache: dict[str, list[str]] = {}
        per_user: dict[str, list[dict]] = {}
        per_user_v: dict[str, list[dict]] = {}
        seen_by_actor: dict[str, dict] = {}
        # the nodes, their parents, their shares and their keys read in a few queries
        rows = dict(rows or {})
        rows.update(self.store.nodes(h for h in handles if h not in rows))
        rows.update(self.store.nodes({r["parent"] for r in rows.values()} - rows.keys() - {None}))
        listed = list(rows)
        shared = self._shares_of(listed)
        keys: dict[tuple[str | None, str | None], dict[str, list[tuple[str, str]]]] = {}
        for h in handles:
            row = rows.get(h)
            if row is None:
                continue
            parent = rows.get(row["parent"]) if row["parent"] else None
            is_version = parent is not None and parent["t"] == 0
            for user in self.recipients(h, cache, rows, shared):
                if limit and user not in limit:
                    continue
                target = per_user_v if is_version else per_user
                viewer, share = (None, user[2:]) if user.startswith("n:") else (user, None)
                if (viewer, share) not in keys:
                    keys[viewer, share] = self._listing_keys(listed, viewer, share)
                entry = self.node_json(row, viewer, share, keys[viewer, share])
                if top and h == handles[0]:
                    entry.update(top)
                target.setdefault(user, []).append(entry)
                if user == actor:
                    seen_by_actor[h] = entry
        users = list(dict.fromkeys([*per_user, *per_user_v]))
        packets = {}
        for user in users:
            t: dict[str, Any] = {"f": per_user.get(user, [])}
            if user in per_user_v:
                t["f2"] = per_user_v[user]
            fields: dict[str, Any] = {"t": t}
            if actor is not None:
                fields["ou"] = actor
            packets[user] = packet("t", i, **fields)
        self.changes.add(packets)
        return seen_by_actor
