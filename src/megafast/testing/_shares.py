"""Share and link commands of the emulator: ``l`` (public links) and ``s2`` (shares)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from ._common import EACCESS, EARGS, ENOENT, ApiError, Context, _get, _handle
from ._packets import Packets, packet


class ShareCommands(Packets):
    """Public links and shares."""

    def _own_node(
        self, ctx: Context, req: dict, types: tuple[int, ...]
    ) -> tuple[str, str, sqlite3.Row]:
        """(user, handle, node) for a request on the asker's own node ``n`` of one of ``types``:
        -9 when there is no such node, -11 when it is someone else's or of another type."""
        user = self._need_user(ctx)
        h = _handle(req, "n")
        node = self.store.node(h)  # type: ignore[arg-type]
        if node is None:
            raise ApiError(ENOENT)
        if node["owner"] != user or node["t"] not in types:
            raise ApiError(EACCESS)
        return user, h, node  # type: ignore[return-value]

    def cmd_l(self, ctx: Context, req: dict) -> Any:
        _user, h, node = self._own_node(ctx, req, (0, 1))
        if req.get("d") == 1:
            row = self.store.one("SELECT ph FROM links WHERE h=?", h)
            if row is not None:
                self.store.execute("DELETE FROM links WHERE h=?", h)
                self.emit_same([h], "ph", ctx.i, h=h, ph=row["ph"], d=1)
            return 0
        if node["t"] == 1 and not self.store.one("SELECT 1 FROM shares WHERE h=? AND u='EXP'", h):
            raise ApiError(EACCESS)
        return self.public_handle(h, ctx.i)

    def public_handle(self, h: str, i: str | None = None) -> str:
        """The node's public handle, made (with its ``ph`` packet) when it has none."""
        row = self.store.one("SELECT ph FROM links WHERE h=?", h)
        if row is not None:
            return row["ph"]
        ph = self.store.new_handle("links", "ph")
        ts = int(time.time())
        self.store.execute("INSERT INTO links(ph, h, ts) VALUES(?,?,?)", ph, h, ts)
        self.emit_same([h], "ph", i, h=h, ph=ph, ts=ts)
        return ph

    def cmd_s2(self, ctx: Context, req: dict) -> Any:
        user, h, _node = self._own_node(ctx, req, (1,))
        targets = _get(req, "s", list)
        ok = _get(req, "ok", str, required=False)
        ha = _get(req, "ha", str, required=False)
        have_key = self.store.one("SELECT 1 FROM share_keys WHERE h=?", h)
        if ok is not None:
            self.store.execute(
                "INSERT OR REPLACE INTO share_keys(h, owner, ok, ha) VALUES(?,?,?,?)",
                h,
                user,
                ok,
                ha,
            )
        self._apply_cr(req.get("cr"), user)  # node keys under the share, before any packet
        results = []
        for target in targets:
            if not isinstance(target, dict) or not isinstance(target.get("u"), str):
                raise ApiError(EARGS)
            who = target["u"]
            if who != "EXP":
                row = self.store.user(who) or self.store.user_by_email(who)
                if row is None:
                    results.append(ENOENT)
                    continue
                who = row["handle"]
            if "r" not in target:
                self.store.execute("DELETE FROM shares WHERE h=? AND u=?", h, who)
                self._emit_share(ctx, user, h, who, None, None, ok)
                results.append(0)
                continue
            r = _get(target, "r", int)
            if r not in (0, 1, 2):
                raise ApiError(EARGS)
            if ok is None and not have_key:
                raise ApiError(EARGS)
            k = target.get("k") if isinstance(target.get("k"), str) else None
            self.store.execute(
                "INSERT OR REPLACE INTO shares(h, u, r, k, ts) VALUES(?,?,?,?,?)",
                h,
                who,
                r,
                k,
                int(time.time()),
            )
            self._emit_share(ctx, user, h, who, r, k, ok)
            results.append(0)
        return {"r": results}

    def _emit_share(
        self,
        ctx: Context,
        owner: str,
        h: str,
        who: str,
        r: int | None,
        k: str | None,
        ok: str | None,
    ) -> None:
        """``s2`` packets for a share made, changed (``r`` set) or removed (``r`` None): the
        owner's carries ``ok``, the sharee's the share key ``k``; a new sharee also gets the
        ``t`` of the shared tree."""
        common: dict[str, Any] = {"n": h, "o": owner, "u": who}
        if r is not None:
            common.update(r=r, ts=int(time.time()))
        mine = dict(common, ok=ok) if ok is not None and r is not None else common
        packets = {owner: packet("s2", ctx.i, **mine, ou=owner)}
        if who != "EXP":
            theirs = dict(common, k=k) if k is not None and r is not None else common
            packets[who] = packet("s2", ctx.i, **theirs, ou=owner)
        self.changes.add(packets)
        if who != "EXP" and r is not None:
            tree = [row["h"] for row in self.store.subtree(h)]
            top = {"su": owner, "sk": k or "", "r": r}  # as f shows an incoming share
            self.emit_nodes(tree, ctx.i, owner, only=[who], top=top)
