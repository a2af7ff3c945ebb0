"""File attributes (thumbnails, previews) in the emulator, as MEGA's SDK expects them.

- ``{"a":"ufa","s":<bytes>[,"h":<node>]}`` -> ``{"p": <base>/fa/put/<token>}``; a POST of
  exactly ``s`` bytes (a multiple of 16, at most 16 MiB) there answers the attribute's 8-byte
  handle; a wrong size answers ``-2``, an unknown or used token ``-9`` (text, HTTP 200, like
  the upload servers).
- ``{"a":"ufa","fah":<handle>}`` -> ``{"p": <base>/fa/get/<cluster>}``: the fetch URL of the
  handle's cluster (``-2`` when ``fah`` is not an 8-byte handle, ``-9`` when unknown). A POST
  of concatenated 8-byte handles answers ``[handle][u32 LE length][data]`` for each handle of
  that cluster it holds; the others are left out (the SDK then reports those as failed), and
  a body that is not whole handles answers ``-2``.
- ``{"a":"pfa","n":<file>,"fa":"<type>*<handle>"}`` sets (or replaces) attributes of a file
  the asker may write, answers the node's new ``fa`` and sends ``{"a":"fa","n","fa"}`` to
  everyone who sees the node. A new file's ``p`` may carry ``"fa":"0*<h>/1*<h>"``.
- A node's ``fa`` is ``<cluster>:<type>*<handle>`` joined by ``/``. Attributes go to two
  clusters (by their handle), so a client must group its fetches by cluster.
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

from . import _crypto as C
from ._common import EACCESS, EARGS, ENOENT, ApiError, Context, _get, _handle
from ._packets import Packets

__all__ = ["FileAttrCommands", "MAX_FILE_ATTRIBUTE"]

MAX_FILE_ATTRIBUTE = 16 * 1024 * 1024
_CLUSTERS = (811, 812)
_ITEM_RE = re.compile(r"^(\d+)\*([A-Za-z0-9_-]{11})$")
_TABLE = "CREATE TABLE IF NOT EXISTS file_attrs(h TEXT PRIMARY KEY, cluster INTEGER, data BLOB)"


def _cluster_of(handle: bytes) -> int:
    return _CLUSTERS[handle[0] % len(_CLUSTERS)]


class FileAttrCommands(Packets):
    """``ufa``, ``pfa`` and the attribute servers (``/fa/put/``, ``/fa/get/``)."""

    _fa_lock = threading.Lock()
    _fa_puts: dict[str, tuple[str, int]]  # token -> (user, size)

    def _fa_setup(self) -> None:
        """The attribute table in this store, and the pending uploads (made once)."""
        with self._fa_lock:
            if getattr(self, "_fa_store", None) is not self.store:
                self.store.execute(_TABLE)
                self._fa_store = self.store
                self._fa_puts = {}

    # --- commands ----------------------------------------------------------------------

    def cmd_ufa(self, ctx: Context, req: dict) -> Any:
        self._fa_setup()
        if "fah" in req:
            handle = self._attr_handle(_get(req, "fah", str))
            row = self.store.one("SELECT cluster FROM file_attrs WHERE h=?", C.b64encode(handle))
            if row is None:
                raise ApiError(ENOENT)
            return {"p": f"{self.base_url()}/fa/get/{row['cluster']}"}
        user = self._need_user(ctx)
        size = _get(req, "s", int)
        if not 0 < size <= MAX_FILE_ATTRIBUTE or size % 16:
            raise ApiError(EARGS)
        node = _handle(req, "h", required=False)
        if node is not None:
            self._access(ctx, node)
        token = secrets.token_urlsafe(24)
        with self._fa_lock:
            self._fa_puts[token] = (user, size)
        return {"p": f"{self.base_url()}/fa/put/{token}"}

    def cmd_pfa(self, ctx: Context, req: dict) -> Any:
        self._fa_setup()
        self._need_user(ctx)
        h = _handle(req, "n")
        node, level = self._access(ctx, h)  # type: ignore[arg-type]
        if node["t"] != 0:
            raise ApiError(EARGS)
        if level < 1:
            raise ApiError(EACCESS)
        new = self._attr_items(_get(req, "fa", str))
        kept = [item for item in (node["fa"] or "").split("/") if item]
        types = {item.split(":")[-1].split("*")[0] for item in new}
        kept = [item for item in kept if item.split(":")[-1].split("*")[0] not in types]
        fa = "/".join(kept + new)
        self.store.execute("UPDATE nodes SET fa=? WHERE h=?", fa, h)
        self.emit_same([h], "fa", ctx.i, n=h, fa=fa)  # type: ignore[list-item]
        return fa

    def new_node_fa(self, item: dict) -> str | None:
        """The ``fa`` a new file's ``p`` item asks for, with the clusters added (``-2`` when
        it names attributes that were never stored)."""
        if "fa" not in item:
            return None
        self._fa_setup()
        return "/".join(self._attr_items(_get(item, "fa", str))) or None

    def _attr_handle(self, text: str) -> bytes:
        try:
            handle = C.b64decode(text)
        except ValueError:
            raise ApiError(EARGS) from None
        if len(handle) != 8:
            raise ApiError(EARGS)
        return handle

    def _attr_items(self, fa: str) -> list[str]:
        """``<type>*<handle>`` items as ``<cluster>:<type>*<handle>``; each must be stored."""
        out = []
        for item in fa.split("/"):
            m = _ITEM_RE.match(item)
            if not m or int(m.group(1)) > 255:
                raise ApiError(EARGS)
            row = self.store.one("SELECT cluster FROM file_attrs WHERE h=?", m.group(2))
            if row is None:
                raise ApiError(ENOENT)
            out.append(f"{row['cluster']}:{m.group(1)}*{m.group(2)}")
        return out

    # --- the attribute servers ---------------------------------------------------------

    def serve_fa(self, rest: str, body: bytes) -> bytes:
        """The answer to ``POST /fa/<rest>``: ``put/<token>`` stores, ``get/<cluster>`` reads."""
        self._fa_setup()
        kind, _, arg = rest.partition("/")
        arg = arg.split("/")[0]  # megajs appends /<type> to the upload URL
        if kind == "put":
            with self._fa_lock:
                pending = self._fa_puts.pop(arg, None)
            if pending is None:
                return b"-9"
            if len(body) != pending[1]:
                return b"-2"
            while True:
                handle = secrets.token_bytes(8)
                h = C.b64encode(handle)
                if self.store.one("SELECT 1 FROM file_attrs WHERE h=?", h) is None:
                    break
            self.store.execute(
                "INSERT INTO file_attrs(h, cluster, data) VALUES(?,?,?)",
                h,
                _cluster_of(handle),
                body,
            )
            self.stats.count("file_attrs_stored")
            return handle
        if kind == "get" and arg.isdigit():
            if len(body) % 8:
                return b"-2"
            self.stats.count("file_attr_fetches")
            out = bytearray()
            for at in range(0, len(body), 8):
                handle = body[at : at + 8]
                row = self.store.one(
                    "SELECT data FROM file_attrs WHERE h=? AND cluster=?",
                    C.b64encode(handle),
                    int(arg),
                )
                if row is not None:
                    data = bytes(row["data"])
                    out += handle + len(data).to_bytes(4, "little") + data
            return bytes(out)
        return b"-2"
