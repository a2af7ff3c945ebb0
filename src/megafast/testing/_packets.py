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
        self, h: str | None, viewer: str | None, share: str | None
    ) -> dict[str, list[tuple[str, str]]]:
        """``node_keys`` rows for a listing: of node ``h`` (all nodes when None) under the
        shares ``viewer`` may use: every share for the owner's own nodes, the shares made
        with the viewer for others' nodes, ``share`` alone for a public folder. The entry
        ``""`` holds the shares usable for nodes the viewer does not own."""
        if share is not None:
            usable = [share]
        else:
            usable = [
                r["h"] for r in self.store.all("SELECT h FROM shares WHERE u=?", viewer or "")
            ]
        if h is not None:
            where, args = "nk.h=?", [h]
        elif share is not None:
            where, args = "nk.share=?", [share]
        else:
            where = "(n.owner=? OR nk.share IN (SELECT h FROM shares WHERE u=?))"
            args = [viewer or "", viewer or ""]
        rows = self.store.all(
            "SELECT nk.h, nk.share, nk.k, n.owner FROM node_keys nk JOIN nodes n ON n.h = nk.h"
            f" WHERE {where} ORDER BY nk.h, nk.share",
            *args,
        )
        usable_set = set(usable)
        out: dict[str, list[tuple[str, str]]] = {"": usable}  # type: ignore[dict-item]
        for r in rows:
            if (share is None and r["owner"] == viewer) or r["share"] in usable_set:
                out.setdefault(r["h"], []).append((r["share"], r["k"]))
        return out

    # --- who hears about a change --------------------------------------------------------

    def recipients(self, h: str, cache: dict[str, list[str]] | None = None) -> list[str]:
        """The node's owner, every user with a share at or above it, and ``n:<handle>`` for
        each exported folder at or above it (its public visitors). ``cache`` (handle ->
        recipients) spares the walk up for the nodes of one subtree."""
        cache = {} if cache is None else cache
        chain: list[sqlite3.Row] = []  # from h up to the first node already known
        seen: set[str] = set()
        at: str | None = h
        while at and at not in cache and at not in seen:
            seen.add(at)
            node = self.store.node(at)
            if node is None:
                break
            chain.append(node)
            at = node["parent"]
        out = cache.get(at, []) if at else []
        for node in reversed(chain):
            out = out[:] if out else [node["owner"]]
            for r in self.store.all("SELECT u FROM shares WHERE h=?", node["h"]):
                # an exported folder's visitors (n=) hear as "n:<folder handle>"
                who = "n:" + node["h"] if r["u"] == "EXP" else r["u"]
                if who not in out:
                    out.append(who)
            cache[node["h"]] = out
        return cache.get(h, [])

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
    ) -> None:
        """A ``t`` packet listing ``handles`` (parents first) to each user who can see them,
        each node as that user sees it (its keys); ``only``: limit to these users; ``top``:
        fields added to the first node (``su``/``sk``/``r`` of a new incoming share)."""
        limit = set(only)
        cache: dict[str, list[str]] = {}
        per_user: dict[str, list[dict]] = {}
        per_user_v: dict[str, list[dict]] = {}
        for h in handles:
            row = self.store.node(h)
            if row is None:
                continue
            parent = self.store.node(row["parent"]) if row["parent"] else None
            is_version = parent is not None and parent["t"] == 0
            for user in self.recipients(h, cache):
                if limit and user not in limit:
                    continue
                target = per_user_v if is_version else per_user
                entry = (
                    self.node_json(row, None, user[2:])
                    if user.startswith("n:")
                    else self.node_json(row, user)
                )
                if top and h == handles[0]:
                    entry.update(top)
                target.setdefault(user, []).append(entry)
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
