"""Node commands of the emulator: the ``f`` listing, ``p`` (new nodes, copies, versions),
``a``, ``m``, ``d`` and ``dv`` (PROTOCOL Part 2, §4-§5), each sending its action packets."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from . import _crypto as C
from ._changes import encode_sn
from ._common import EACCESS, EARGS, ECIRCULAR, ENOENT, ApiError, Context, _get, _handle
from ._encoded import (
    OWNER_ROWS,
    PUBLIC_CHILDREN,
    PUBLIC_ROW,
    PUBLIC_ROWS,
    Encoded,
    left_out,
    listing_order,
)
from ._packets import Packets

# A public folder of more folders than this is listed from one pass over its owner's nodes.
_FOLDER_QUERIES = 64

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _plain_b64(text: str) -> bool:
    """Whether ``text`` is non-empty plain base64url that decodes (what clients send)."""
    return len(text) % 4 != 1 and _BASE64URL.fullmatch(text) is not None


class NodeCommands(Packets):
    """Listing and changing nodes."""

    # --- node listing ------------------------------------------------------------------

    def cmd_f(self, ctx: Context, req: dict) -> Any:
        if ctx.folder_error is not None:
            raise ApiError(ctx.folder_error)
        if "p" in req and ctx.user is not None:
            # look a public handle up among the asker's own nodes
            ph = _get(req, "p", str)
            link = self.store.one("SELECT h FROM links WHERE ph=?", ph)
            node = self.store.node(link["h"]) if link else None
            if node is None or node["owner"] != ctx.user:
                raise ApiError(ENOENT)
            return {"f": [self.node_json(node, ctx.user)]}
        if ctx.folder is not None:
            return {"f": self._public_listing(ctx.folder), "sn": self._sn()}
        user = self._need_user(ctx)
        rows = self.store.tuples(OWNER_ROWS, user)
        roots = [self.store.root_node(user, t) for t in (2, 3, 4)]
        order = listing_order(rows, roots)
        versions, detached = left_out(rows, order)
        out = self._encoded(rows, order + detached, user, None)
        # incoming shares
        incoming = self.store.all("SELECT * FROM shares WHERE u=?", user)
        keys = self._listing_keys(None, user, None) if incoming else {}
        contacts: dict[str, dict] = {}
        for share in incoming:
            for i, row in enumerate(self.store.subtree(share["h"])):
                entry = self.node_json(row, user, None, keys)
                if i == 0:
                    entry["su"] = row["owner"]
                    entry["sk"] = share["k"] or ""
                    entry["r"] = share["r"]
                out.append_value(entry)
            top = self.store.node(share["h"])
            owner = self.store.user(top["owner"]) if top is not None else None
            if owner is not None:
                contacts[owner["handle"]] = {
                    "u": owner["handle"],
                    "c": 1,
                    "m": owner["email"] or "",
                }
        for c in self.store.all(
            "SELECT users.handle, users.email FROM contacts JOIN users"
            " ON users.handle = contacts.contact WHERE contacts.user=?",
            user,
        ):
            contacts.setdefault(c["handle"], {"u": c["handle"], "c": 1, "m": c["email"] or ""})
        me = self.store.user(user)
        contacts[user] = {"u": user, "c": 2, "m": (me["email"] if me else "") or ""}
        ok = [
            {"h": r["h"], "ha": r["ha"] or "", "k": r["ok"]}
            for r in self.store.all("SELECT * FROM share_keys WHERE owner=?", user)
        ]
        s = [
            {"h": r["h"], "u": r["u"], "r": r["r"], "ts": r["ts"]}
            for r in self.store.all(
                # from the (few) shares to their nodes, not through every node of the owner
                "SELECT shares.* FROM shares CROSS JOIN nodes ON nodes.h = shares.h"
                " WHERE nodes.owner=? ORDER BY nodes.seq, shares.u",
                user,
            )
        ]
        answer = {"f": out, "ok": ok, "s": s, "u": list(contacts.values()), "sn": self._sn()}
        if versions:
            answer["f2"] = self._encoded(rows, versions, user, None)
        return answer

    def _public_listing(self, folder: str) -> Encoded:
        """An exported folder's subtree as its visitors see it: folder by folder while that
        takes few queries, else from one pass over the owner's nodes."""
        rows = self.store.tuples(PUBLIC_ROW, folder, folder)
        at = 0
        queries = 0
        while at < len(rows):
            if rows[at][2] != 0:
                queries += 1
                if queries > _FOLDER_QUERIES:
                    top = self.store.node(folder)
                    owner = top["owner"] if top is not None else ""
                    rows = self.store.tuples(PUBLIC_ROWS, folder, owner)
                    return self._encoded(rows, listing_order(rows, [folder]), None, folder)
                rows += self.store.tuples(PUBLIC_CHILDREN, folder, rows[at][0])
            at += 1
        return self._encoded(rows, list(range(len(rows))), None, folder)

    def _encoded(
        self, rows: list[tuple[Any, ...]], order: list[int], viewer: str | None, share: str | None
    ) -> Encoded:
        """The rows in ``order`` as the listing shows them: their stored JSON, or (for the
        few nodes SQLite cannot encode, see _encoded.py) :meth:`node_json` encoded here."""
        items = [rows[i][3] for i in order]
        out = Encoded(items)
        if None in items:
            keys = self._listing_keys(None, viewer, share)
            for n, i in enumerate(order):
                if items[n] is None:
                    row = self.store.node(rows[i][0])
                    entry = self.node_json(row, viewer, share, keys)  # type: ignore[arg-type]
                    items[n] = json.dumps(entry, separators=(",", ":")).encode()
        return out

    def _sn(self) -> str:
        return encode_sn(self.changes.current())

    def _versions_of(self, user: str) -> list[sqlite3.Row]:
        """The account's old file versions (files whose parent is a file), oldest last."""
        return self.store.all(
            "SELECT n.* FROM nodes n JOIN nodes p ON p.h = n.parent"
            " WHERE n.owner=? AND n.t=0 AND p.t=0 ORDER BY n.seq DESC",
            user,
        )

    # --- node changes ------------------------------------------------------------------

    def cmd_p(self, ctx: Context, req: dict) -> Any:
        user = self._need_user(ctx)
        target = _handle(req, "t")
        nodes = _get(req, "n", list)
        if not nodes:
            raise ApiError(EARGS)
        parent = self._writable_folder(ctx, target)  # type: ignore[arg-type]
        owner = parent["owner"]
        temp_to_real: dict[str, str] = {}
        item_to_real: dict[str, str] = {}  # what cr calls the new nodes: their h (or ph)
        created: list[str] = []
        replaced: list[str] = []  # old versions dropped by vb:0
        may_hold: list[str] = []  # new files that an old version was put under
        # the nodes copied here (h naming a node), read in a few queries
        sources = self.store.nodes(
            n["h"]
            for n in nodes
            if isinstance(n, dict)
            and isinstance(n.get("h"), str)
            and len(n["h"]) == 8
            and n.get("t") == 0
            and "ph" not in n
        )
        for item in nodes:
            if not isinstance(item, dict):
                raise ApiError(EARGS)
            t = _get(item, "t", int)
            a = _get(item, "a", str)
            k = _get(item, "k", str)
            if not (_plain_b64(k) and _plain_b64(a)):  # else the full check (+, /, =, ...)
                try:
                    if not C.b64decode(k) or not C.b64decode(a):
                        raise ApiError(EARGS)
                except ValueError:
                    raise ApiError(EARGS) from None
            node_parent = target
            if "p" in item:
                p = _get(item, "p", str)
                if p not in temp_to_real:
                    raise ApiError(EARGS)
                node_parent = temp_to_real[p]
            if t == 1:
                temp = _get(item, "h", str, required=False)
                h = self.store.insert_node(owner, node_parent, 1, a, k, creator=user)
                if temp:
                    temp_to_real[temp] = h
            elif t == 0:
                src = self._file_source(ctx, item, sources)
                h = self.store.insert_node(
                    owner,
                    node_parent,
                    0,
                    a,
                    k,
                    s=src["s"],
                    blob=src["blob"],
                    ts=src["ts"] or _get(item, "ts", int, required=False),
                    fa=self.new_node_fa(item),  # type: ignore[attr-defined]
                    creator=user,
                )
                if "ov" in item:
                    replaced += self._new_version(ctx, item, h, node_parent)  # type: ignore[arg-type]
                    may_hold.append(h)
            else:
                raise ApiError(EARGS)
            created.append(h)
            name = item.get("h") if isinstance(item.get("h"), str) else item.get("ph")
            if isinstance(name, str):
                item_to_real.setdefault(name, h)
        # cr names the new nodes as the request did (upload token or temporary handle), the
        # way MEGA's SDK sends it; the server maps them to the handles it just made
        self._apply_cr(req.get("cr"), owner, item_to_real)
        for old in replaced:
            self._delete(ctx, old, keep_versions=False)
        # what hangs under the new nodes: the old versions an ``ov`` kept (a new folder's
        # nodes are all among those made here; a new file without ``ov`` has nothing)
        made = set(created)
        versions = [r["h"] for h in may_hold for r in self.store.subtree(h, versions=True)[1:]]
        rows = self.store.nodes(created)
        seen = self.emit_nodes(
            created + [v for v in versions if v not in made], ctx.i, user, rows=rows
        )
        if any(h not in seen for h in created):  # the asker does not hear of them all
            keys = self._listing_keys(created, user, None)
            seen = {h: self.node_json(rows[h], user, None, keys) for h in created}
        return {"f": [seen[h] for h in created]}

    def _file_source(
        self, ctx: Context, item: dict, rows: dict[str, sqlite3.Row] | None = None
    ) -> dict[str, Any]:
        """Size, blob and time of a new file node: an upload's completion token (``h``), a
        public file link (``ph``), or a server-side copy of a file the asker can read (``h``
        naming an existing node, maybe among ``rows`` read beforehand; no bytes move)."""
        if "ph" in item:
            ph = _get(item, "ph", str)
            link = self.store.one("SELECT h FROM links WHERE ph=?", ph)
            node = self.store.node(link["h"]) if link else None
            if node is None or node["t"] != 0:
                raise ApiError(ENOENT)
            return {"s": node["s"], "blob": node["blob"], "ts": node["ts"]}
        token = _get(item, "h", str)
        if len(token) == 8:
            node, _level = self._access(ctx, token, rows)
            if node["t"] != 0 or not node["blob"]:
                raise ApiError(EACCESS)
            return {"s": node["s"], "blob": node["blob"], "ts": node["ts"]}
        done = self.store.one("SELECT * FROM completions WHERE token=?", token)
        if done is None:
            raise ApiError(EARGS)
        if done["owner"] != ctx.user:
            raise ApiError(EACCESS)
        self.store.execute("DELETE FROM completions WHERE token=?", token)
        return {"s": done["size"], "blob": done["blob"], "ts": None}

    def _new_version(self, ctx: Context, item: dict, h: str, parent: str) -> list[str]:
        """``ov``: the new file ``h`` replaces file ``ov`` in ``parent``. With versions on
        (``vb`` 1, or omitted: the emulator's accounts keep versions) the old file and its
        versions hang under the new one; ``vb`` 0 returns the old file for deletion."""
        ov = _handle(item, "ov")
        old, level = self._access(ctx, ov)  # type: ignore[arg-type]
        if old["t"] != 0 or old["parent"] != parent or level < 2:
            raise ApiError(EACCESS)
        vb = item.get("vb", 1)
        if vb not in (0, 1):
            raise ApiError(EARGS)
        if vb == 0:
            return [ov]  # type: ignore[list-item]
        self.store.execute("UPDATE nodes SET parent=? WHERE h=?", h, ov)
        return []

    def cmd_a(self, ctx: Context, req: dict) -> Any:
        h = _handle(req, "n")
        # "at" as MEGA's SDK, web client and megajs send it; "attr" as mega.py does
        attr = _get(req, "at" if "at" in req else "attr", str)
        key = _get(req, "key", str, required=False)
        node, level = self._access(ctx, h)  # type: ignore[arg-type]
        if level < 2 or node["t"] not in (0, 1):
            raise ApiError(EACCESS)
        self.store.execute("UPDATE nodes SET a=? WHERE h=?", attr, h)
        if key is not None and node["owner"] == ctx.user:
            self.store.execute("UPDATE nodes SET k=? WHERE h=?", key, h)
        self.emit_same([h], "u", ctx.i, n=h, u=node["owner"], at=attr, ts=node["ts"])  # type: ignore[list-item]
        return 0

    def cmd_m(self, ctx: Context, req: dict) -> Any:
        h = _handle(req, "n")
        t = _handle(req, "t")
        node, level = self._access(ctx, h)  # type: ignore[arg-type]
        if node["t"] not in (0, 1) or level < 2:
            raise ApiError(EACCESS)
        target = self._writable_folder(ctx, t)  # type: ignore[arg-type]
        if target["owner"] != node["owner"]:
            raise ApiError(EACCESS)
        if t == h or h in self.store.ancestors(t):  # type: ignore[arg-type]
            raise ApiError(ECIRCULAR)
        # a move is "d" (m:1) then "t" of the whole moved subtree (PROTOCOL Part 2, §3)
        self.emit_same([h], "d", ctx.i, n=h, m=1, ou=ctx.user)  # type: ignore[list-item]
        self.store.execute("UPDATE nodes SET parent=? WHERE h=?", t, h)
        # keys of the moved nodes under the shares above their new place (as p does)
        self._apply_cr(req.get("cr"), node["owner"])
        moved = [r["h"] for r in self.store.subtree(h, versions=True)]  # type: ignore[arg-type]
        self.emit_nodes(moved, ctx.i, ctx.user)
        return 0

    def cmd_d(self, ctx: Context, req: dict) -> Any:
        """``d``: the node, its subtree and its older versions; with ``v`` 1 the older
        versions stay (the next one takes the node's place)."""
        h = _handle(req, "n")
        node, level = self._access(ctx, h)  # type: ignore[arg-type]
        if node["t"] not in (0, 1) or level < 2:
            raise ApiError(EACCESS)
        keep = req.get("v") == 1
        if keep and node["t"] == 0:
            newer = self.store.one(
                "SELECT h FROM nodes WHERE parent=? AND t=0 ORDER BY seq DESC LIMIT 1", h
            )
            if newer is not None:
                self.store.execute(
                    "UPDATE nodes SET parent=? WHERE h=?", node["parent"], newer["h"]
                )
                self._delete(ctx, h, keep_versions=True)  # type: ignore[arg-type]
                self.emit_nodes([newer["h"]], ctx.i, ctx.user)
                return 0
        self._delete(ctx, h, keep_versions=False)  # type: ignore[arg-type]
        return 0

    def _delete(self, ctx: Context, h: str, keep_versions: bool) -> None:
        self.emit_same([h], "d", ctx.i, n=h, ou=ctx.user)
        self.store.delete_subtree(h, versions=not keep_versions)

    def cmd_dv(self, ctx: Context, req: dict) -> Any:
        """``dv``: delete every old version in the account."""
        user = self._need_user(ctx)
        for row in self._versions_of(user):
            if self.store.node(row["h"]) is not None:
                self._delete(ctx, row["h"], keep_versions=False)
        return 0
