"""Account commands of the emulator: pre-login, login, registration, quota, contacts."""

from __future__ import annotations

import secrets
import time
from typing import Any

from . import _crypto as C
from ._common import (
    EACCESS,
    EARGS,
    EFAILED,
    EMFAREQUIRED,
    ENOENT,
    ApiError,
    Context,
    ServiceBase,
    _get,
)
from ._packets import packet


class AccountCommands(ServiceBase):
    """``us0``, ``us``, ``up``, ``ug``, ``uq``, ``sml``, ``mfag``, ``ur``, ``uk``."""

    def new_session(self, user: str, hashcash_ok: bool = False) -> str:
        """A session id as MEGA makes them: 43 bytes, 16 random ones, the user handle as its
        11 base64url characters, 16 more random ones (MEGA's SDK checks the handle is there
        after it decrypts ``csid``, CommandLogin::procresult); first byte non-zero."""
        handle = user.encode("ascii")
        if len(handle) != 11:
            raise ValueError("a user handle is 11 base64url characters")
        while True:
            raw = secrets.token_bytes(16) + handle + secrets.token_bytes(16)
            if raw[0]:
                break
        sid = C.b64encode(raw)
        if hashcash_ok:
            self.hashcash_passed_session(sid)
        self.store.execute(
            "INSERT INTO sessions(sid, user, since) VALUES(?,?,?)", sid, user, int(time.time())
        )
        return sid

    def cmd_us0(self, ctx: Context, req: dict) -> Any:
        email = _get(req, "user", str)
        row = self.store.user_by_email(email)
        if row is None:
            raise ApiError(ENOENT)
        if row["version"] == 2:
            return {"v": 2, "s": row["salt"]}
        return {"v": 1}

    def cmd_us(self, ctx: Context, req: dict) -> Any:
        user = _get(req, "user", str)
        uh = _get(req, "uh", str, required=False)
        if uh is None:
            # ephemeral account: the user handle, no password hash
            row = self.store.user(user)
            if row is None or row["email"] is not None or not row["ts"]:
                raise ApiError(ENOENT)
            self.store.execute(
                "INSERT OR IGNORE INTO sessions(sid, user, since) VALUES(?,?,?)",
                row["ts"],
                row["handle"],
                int(time.time()),
            )
            if ctx.hashcash_ok:
                self.hashcash_passed_session(row["ts"])
            return {"k": row["k"], "tsid": row["ts"], "u": row["handle"]}
        row = self.store.user_by_email(user)
        if row is None or not secrets.compare_digest(
            (row["uh"] or "").encode(), uh.encode("utf-8", "surrogatepass")
        ):
            raise ApiError(ENOENT)
        if row["mfa"]:
            code = req.get("mfa")
            if code is None:
                raise ApiError(EMFAREQUIRED)
            if not C.totp_matches(row["mfa"], code):
                raise ApiError(EFAILED)
        sid_text = self.new_session(row["handle"], ctx.hashcash_ok)
        n, e = C.decode_mpis(C.b64decode(row["pubk"]), 2)
        key = _PublicKey(n, e)
        csid = C.make_csid(key, C.b64decode(sid_text))  # type: ignore[arg-type]
        return {"k": row["k"], "privk": row["privk"], "csid": csid, "u": row["handle"], "ach": 1}

    def cmd_up(self, ctx: Context, req: dict) -> Any:
        if ctx.user is not None:
            # a logged-in client updating its account (name and so on): accepted, ignored
            return ctx.user
        k = _get(req, "k", str)
        ts = _get(req, "ts", str)
        try:
            if len(C.b64decode(k)) != 16 or len(C.b64decode(ts)) != 32:
                raise ApiError(EARGS)
        except ValueError:
            raise ApiError(EARGS) from None
        handle = self.store.new_handle("users", "handle", 8)
        self.store.execute(
            "INSERT INTO users(handle, email, name, version, k, ts, mstrg, since)"
            " VALUES(?,?,?,?,?,?,?,?)",
            handle,
            None,
            None,
            0,
            k,
            ts,
            self.storage_quota,
            int(time.time()),
        )
        self.store.create_roots(handle)
        return handle

    def cmd_ug(self, ctx: Context, req: dict) -> Any:
        row = self.store.user(self._need_user(ctx))
        assert row is not None
        out: dict[str, Any] = {
            "u": row["handle"],
            "s": 1,
            "k": row["k"],
            "since": row["since"],
            "c": 0,
            "ts": row["ts"] or "",
            "aav": 1,
        }
        if row["email"]:
            out["email"] = row["email"]
            out["name"] = row["name"] or row["email"].split("@")[0]
            out["privk"] = row["privk"]
            out["pubk"] = row["pubk"]
            out["mfa"] = 1 if row["mfa"] else 0
        out.update(self.attrs_for_ug(row["handle"]))  # type: ignore[attr-defined]
        return out

    def cmd_uq(self, ctx: Context, req: dict) -> Any:
        user = self._need_user(ctx)
        row = self.store.user(user)
        assert row is not None
        used = self.store.used_storage(user)
        return {
            "cstrg": used,
            "mstrg": row["mstrg"],
            "cstrgn": {self.store.root_node(user, t): [0, 0, 0, 0, 0] for t in (2, 3, 4)},
            "caxfer": 0,
            "csxfer": 0,
            "mxfer": 10 * 1024**4,
            "srvratio": 0,
            "utype": 0,
            "balance": [],
            "uslw": 9000,
        }

    def cmd_sml(self, ctx: Context, req: dict) -> Any:
        if ctx.sid is None:
            raise ApiError(EACCESS)
        self.store.execute("DELETE FROM sessions WHERE sid=?", ctx.sid)
        return 0

    def cmd_mfag(self, ctx: Context, req: dict) -> Any:
        row = self.store.user_by_email(_get(req, "e", str))
        if row is None:
            raise ApiError(ENOENT)
        return 1 if row["mfa"] else 0

    def cmd_ur(self, ctx: Context, req: dict) -> Any:
        """Add (``l`` 1) or remove (``l`` 0) a contact by email or user handle."""
        user = self._need_user(ctx)
        who = _get(req, "u", str)
        level = req.get("l")
        if level not in ("0", "1", 0, 1):
            raise ApiError(EARGS)
        row = self.store.user_by_email(who) or self.store.user(who)
        if row is None or row["email"] is None:
            raise ApiError(ENOENT)
        if row["handle"] == user:
            raise ApiError(EARGS)
        if str(level) == "1":
            self.store.execute(
                "INSERT OR IGNORE INTO contacts(user, contact) VALUES(?,?)", user, row["handle"]
            )
        else:
            self.store.execute(
                "DELETE FROM contacts WHERE user=? AND contact=?", user, row["handle"]
            )
        entry = {"u": row["handle"], "c": int(level), "m": row["email"], "ts": int(time.time())}
        self.changes.add({user: packet("c", ctx.i, u=[entry], ou=user)})
        return 0

    def cmd_uk(self, ctx: Context, req: dict) -> Any:
        """A user's public RSA key by email or user handle: ``{"u": handle, "pubk": MPIs n, e}``;
        -9 for unknown users and accounts without a key (ephemeral ones)."""
        who = _get(req, "u", str)
        row = self.store.user_by_email(who) or self.store.user(who)
        if row is None or not row["pubk"]:
            raise ApiError(ENOENT)
        return {"u": row["handle"], "pubk": row["pubk"]}


class _PublicKey:
    """Just enough of an RSA public key for :func:`make_csid`: the server never sees ``d``."""

    def __init__(self, n: int, e: int) -> None:
        self.n, self.e = n, e

    @property
    def nbytes(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def encrypt_int(self, m: int) -> int:
        return pow(m, self.e, self.n)
