"""Transfer commands of the emulator (``g``, ``u``) and the download/upload URLs they grant:
in memory for the hot path, in SQLite to survive a restart.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _crypto as C
from ._common import (
    EACCESS,
    EARGS,
    ENOENT,
    EOVERQUOTA,
    ApiError,
    Context,
    ServiceBase,
    _get,
    _handle,
)


@dataclass
class DownloadGrant:
    path: Path
    size: int
    expires: float
    epoch: int


# A URL expired longer ago than this is forgotten when the emulator starts (it then gets
# "not found" instead of "expired").
_FORGET_EXPIRED_URLS = 7 * 24 * 3600.0


@dataclass
class Upload:
    owner: str
    size: int
    path: Path
    expires: float
    epoch: int
    raw_token: bool
    ranges: list[list[int]] = field(default_factory=list)
    token: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_range(self, start: int, end: int) -> bool:
        """Record [start, end) as received; True when the whole file is now present."""
        rs = self.ranges
        if end > start:
            rs.append([start, end])
        rs.sort()
        merged: list[list[int]] = []
        for s, e in rs:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.ranges = merged
        if self.size == 0:
            return True
        return len(merged) == 1 and merged[0][0] == 0 and merged[0][1] >= self.size


class TransferCommands(ServiceBase):
    """``g`` and ``u``, and the URLs they hand out."""

    epoch: int
    grants: dict[str, DownloadGrant]
    uploads: dict[str, Upload]
    _sweep_at: int  # the size of ``uploads`` at which expired ones are swept next

    def cmd_g(self, ctx: Context, req: dict) -> Any:
        if "p" in req and ctx.folder is None:
            ph = _get(req, "p", str)
            link = self.store.one("SELECT h FROM links WHERE ph=?", ph)
            node = self.store.node(link["h"]) if link else None
            if node is None or node["t"] != 0:
                raise ApiError(ENOENT)
        else:
            if ctx.folder_error is not None:
                raise ApiError(ctx.folder_error)
            h = _handle(req, "n")
            node, _level = self._access(ctx, h)  # type: ignore[arg-type]
            if node["t"] != 0:
                raise ApiError(EACCESS)
        if not node["blob"]:
            raise ApiError(ENOENT)
        out: dict[str, Any] = {"s": node["s"], "at": node["a"] or "", "msd": 1}
        if node["fa"]:
            out["fa"] = node["fa"]
        f = self.faults.faults
        if f.over_quota and f.over_quota_in_g:
            self.faults.count("over_quota")
            out["e"] = EOVERQUOTA
            out["tl"] = f.over_quota_time_left
            return out
        if req.get("g"):
            out["g"] = self.grant_download(node["blob"], node["s"])
        return out

    def _load_urls(self) -> None:
        """Read the download and upload URLs a previous run handed out (``--data-dir``)."""
        store = self.store
        row = store.one("SELECT value FROM meta WHERE key='url_epoch'")
        self.epoch = int(row[0]) if row else 0
        forget = time.time() - _FORGET_EXPIRED_URLS
        with store.transaction():
            store.execute("DELETE FROM url_grants WHERE expires < ?", forget)
            for r in store.all("SELECT * FROM url_grants"):
                self.grants[r["token"]] = DownloadGrant(
                    store.blob_path(r["blob"]), r["size"], r["expires"], r["epoch"]
                )
            for r in store.all("SELECT * FROM url_uploads"):
                path = store.upload_dir / r["token"]
                done = C.b64decode(r["done"]) if r["done"] else None
                if r["expires"] < forget or (done is None and not path.is_file()):
                    store.execute("DELETE FROM url_uploads WHERE token=?", r["token"])
                    if done is None:
                        path.unlink(missing_ok=True)
                    continue
                try:
                    ranges = [[int(a), int(b)] for a, b in json.loads(r["ranges"] or "[]")]
                except (TypeError, ValueError):
                    ranges = []
                self.uploads[r["token"]] = Upload(
                    r["owner"],
                    r["size"],
                    path,
                    r["expires"],
                    r["epoch"],
                    bool(r["raw_token"]),
                    ranges=ranges,
                    token=done,
                )

    def save_upload(self, upload: Upload) -> None:
        """Record the ranges an upload has received (and its completion token, once done)."""
        self.store.execute(
            "UPDATE url_uploads SET ranges=?, done=? WHERE token=?",
            json.dumps(upload.ranges, separators=(",", ":")),
            C.b64encode(upload.token) if upload.token is not None else None,
            upload.path.name,
        )

    def grant_download(self, blob: str, size: int) -> str:
        token = C.b64encode(secrets.token_bytes(24))
        expires = time.time() + self.faults.faults.url_ttl
        grant = DownloadGrant(self.store.blob_path(blob), size, expires, self.epoch)
        self.store.execute(
            "INSERT INTO url_grants(token, blob, size, expires, epoch) VALUES(?,?,?,?,?)",
            token,
            blob,
            size,
            expires,
            self.epoch,
        )
        pruned = False
        with self._lock:  # never take the store's lock inside this one (cmd_* hold it first)
            self.grants[token] = grant
            if len(self.grants) > 10000:
                now = time.time()
                for key in [k for k, g in self.grants.items() if g.expires < now]:
                    del self.grants[key]
                pruned = True
        if pruned:
            self.store.execute("DELETE FROM url_grants WHERE expires < ?", now)
        return f"{self.transfer_base_url()}/dl/{token}"

    def cmd_u(self, ctx: Context, req: dict) -> Any:
        user = self._need_user(ctx)
        size = _get(req, "s", int)
        if size < 0:
            raise ApiError(EARGS)
        row = self.store.user(user)
        if row is not None and self.store.used_storage(user) + size > row["mstrg"]:
            raise ApiError(EOVERQUOTA)
        # v 2 and 3 (MEGA's SDK asks v 3) get the token as its 36 raw bytes; older clients
        # (no v) as base64url text
        raw = req.get("v") in (2, 3) and not isinstance(req.get("v"), bool)
        return {"p": self.grant_upload(user, size, raw_token=raw)}

    def grant_upload(self, owner: str, size: int, raw_token: bool = False) -> str:
        token = C.b64encode(secrets.token_bytes(24))
        upload = Upload(
            owner,
            size,
            self.store.upload_dir / token,
            time.time() + self.faults.faults.url_ttl,
            self.epoch,
            raw_token,
        )
        with open(upload.path, "wb") as fh:
            fh.truncate(size)  # sparse: takes disk space only as pieces arrive
        self.store.execute(
            "INSERT INTO url_uploads(token, owner, size, expires, epoch, raw_token, ranges)"
            " VALUES(?,?,?,?,?,?,'[]')",
            token,
            owner,
            size,
            upload.expires,
            upload.epoch,
            int(raw_token),
        )
        stale: list[tuple[str, Upload]] = []
        with self._lock:  # never take the store's lock inside this one (cmd_* hold it first)
            self.uploads[token] = upload
            # expired uploads are dropped when the table has doubled since the last sweep
            # (a sweep reads every upload: once per grant, 100,000 uploads took minutes);
            # one not swept yet is still refused, its expiry is checked on every use
            if len(self.uploads) > self._sweep_at:
                now = time.time()
                for key in [k for k, u in self.uploads.items() if u.expires < now]:
                    stale.append((key, self.uploads.pop(key)))
                self._sweep_at = max(1000, 2 * len(self.uploads))
        for key, old in stale:
            self.store.execute("DELETE FROM url_uploads WHERE token=?", key)
            if old.token is None:
                old.path.unlink(missing_ok=True)
        return f"{self.transfer_base_url()}/ul/{token}"

    def expire_urls(self) -> None:
        with self._lock:
            self.epoch += 1
            epoch = self.epoch
        self.store.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES('url_epoch', ?)", str(epoch)
        )

    def finish_upload(self, upload: Upload) -> bytes:
        """Move a complete upload into the blob store; returns the completion token (raw)."""
        blob = secrets.token_hex(16)
        os.replace(upload.path, self.store.blob_path(blob))
        token = secrets.token_bytes(36)
        self.store.execute(
            "INSERT INTO completions(token, owner, blob, size, since) VALUES(?,?,?,?,?)",
            C.b64encode(token),
            upload.owner,
            blob,
            upload.size,
            int(time.time()),
        )
        return token
