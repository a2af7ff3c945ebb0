"""A raw-JSON MEGA client for the emulator tests (the ``emu`` and ``client`` fixtures are in
tests/conftest.py).

It speaks the wire protocol with ``requests`` and does the login crypto with
``megafast.crypto`` only; nothing of megafast's own client is used, so these tests check the
emulator against PROTOCOL.md rather than against our client.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Sequence
from typing import Any

import requests

from megafast import crypto as mc

_ids = itertools.count(secrets.randbelow(1 << 30))


class RawClient:
    """Just enough MEGA client for the tests: commands over /cs, login, a master key."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.http = requests.Session()
        self.sid: str | None = None
        self.master_key: tuple[int, ...] | None = None
        self.user: str | None = None

    def post(
        self,
        commands: Any,
        *,
        sid: str | None = None,
        n: str | None = None,
        rid: str | None = None,
        headers: dict[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> requests.Response:
        params: dict[str, str] = {"id": rid if rid is not None else str(next(_ids))}
        if sid or self.sid:
            params["sid"] = sid or self.sid  # type: ignore[assignment]
        if n:
            params["n"] = n
        body = raw_body if raw_body is not None else json.dumps(commands).encode()
        return self.http.post(
            f"{self.api_url}/cs", params=params, data=body, headers=headers, timeout=30
        )

    def cs(self, commands: Any, **kw: Any) -> Any:
        """Send a batch; returns the decoded answer (list, or a number for the whole batch)."""
        resp = self.post(commands, **kw)
        assert resp.status_code == 200, resp.status_code
        return resp.json()

    def one(self, command: dict, **kw: Any) -> Any:
        answer = self.cs([command], **kw)
        if isinstance(answer, int):
            return answer
        assert isinstance(answer, list) and len(answer) == 1, answer
        return answer[0]

    def login(self, email: str, password: str, mfa: str | None = None) -> Any:
        """Log in as PROTOCOL.md describes; returns the ``us`` answer (or its error number)."""
        email = email.lower()
        pre = self.one({"a": "us0", "user": email})
        if isinstance(pre, int):
            return pre
        if pre["v"] == 2:
            pwkey, uh = mc.derive_v2(password, mc.base64_url_decode(pre["s"]))
            pwkey_a32 = mc.str_to_a32(pwkey)
        else:
            pwkey_a32 = mc.prepare_key(password)
            uh = mc.stringhash(email, pwkey_a32)
        cmd = {"a": "us", "user": email, "uh": uh}
        if mfa is not None:
            cmd["mfa"] = mfa
        res = self.one(cmd)
        if isinstance(res, int):
            return res
        self.master_key = mc.decrypt_key(mc.base64_to_a32(res["k"]), pwkey_a32)
        privk = mc.a32_to_str(mc.decrypt_key(mc.base64_to_a32(res["privk"]), self.master_key))
        self.sid = mc.rsa_decrypt_csid(res["csid"], privk)
        self.user = res.get("u")
        return res

    def login_ephemeral(self) -> str:
        """Create an anonymous account with ``up`` and log in with ``us`` (tsid)."""
        master_key = mc.random_key(4)
        pwkey = mc.random_key(4)
        r = secrets.token_bytes(16)
        ts = r + mc.a32_to_str(mc.encrypt_key(mc.str_to_a32(r), master_key))
        handle = self.one(
            {
                "a": "up",
                "k": mc.a32_to_base64(mc.encrypt_key(master_key, pwkey)),
                "ts": mc.base64_url_encode(ts),
            }
        )
        assert isinstance(handle, str) and len(handle) == 11, handle
        res = self.one({"a": "us", "user": handle})
        self.master_key = mc.decrypt_key(mc.base64_to_a32(res["k"]), pwkey)
        tsid = mc.base64_url_decode(res["tsid"])
        assert mc.a32_to_str(mc.encrypt_key(mc.str_to_a32(tsid[:16]), self.master_key)) == tsid[16:]
        self.sid = res["tsid"]
        self.user = handle
        return handle

    # --- node helpers ------------------------------------------------------------------

    def files(self, **kw: Any) -> dict:
        res = self.one({"a": "f", "c": 1, "r": 1}, **kw)
        assert isinstance(res, dict), res
        return res

    def root(self, t: int = 2) -> str:
        return next(n["h"] for n in self.files()["f"] if n["t"] == t)

    def new_node(
        self, name: str, key: Sequence[int], *, t: int = 1, h: str = "xxxxxxxx"
    ) -> dict[str, Any]:
        """A node for ``p``: its name encrypted with ``key`` (a file key folded to 4 words),
        ``key`` encrypted with our master key; ``h`` is an upload token or a temporary handle."""
        assert self.master_key is not None
        k4 = key if len(key) == 4 else [key[i] ^ key[i + 4] for i in range(4)]
        return {
            "h": h,
            "t": t,
            "a": mc.base64_url_encode(mc.encrypt_attr({"n": name}, k4)),
            "k": mc.a32_to_base64(mc.encrypt_key(key, self.master_key)),
        }

    def mkdir(self, name: str, parent: str | None = None) -> str:
        res = self.one(
            {"a": "p", "t": parent or self.root(), "n": [self.new_node(name, mc.random_key(4))]}
        )
        assert isinstance(res, dict), res
        return res["f"][0]["h"]

    def upload(
        self, data: bytes, name: str, parent: str | None = None, piece: int = 1 << 20
    ) -> tuple[dict, tuple[int, ...], str]:
        """Upload with the crypto core (sequential pieces); returns (node, packed key, token)."""
        assert self.master_key is not None
        url = self.one({"a": "u", "s": len(data)})["p"]
        cipher = mc.FileCipher(mc.random_key(4), mc.random_key(2), size=len(data))
        enc = cipher.encrypt(data)
        token = ""
        if not data:
            token = self.http.post(f"{url}/0", data=b"", timeout=30).text
        for off in range(0, len(data), piece):
            r = self.http.post(f"{url}/{off}", data=enc[off : off + piece], timeout=30)
            assert r.status_code == 200
            if r.text:
                token = r.text
        packed = cipher.packed_key()
        res = self.one(
            {
                "a": "p",
                "t": parent or self.root(),
                "n": [self.new_node(name, packed, t=0, h=token)],
            }
        )
        assert isinstance(res, dict), res
        return res["f"][0], tuple(packed), token

    def node_key(self, node: dict, kek: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """Decrypt a node's key: with our master key (own nodes) or ``kek`` (share key)."""
        parts = dict(p.split(":", 1) for p in node["k"].split("/") if ":" in p)
        if kek is None:
            enc = parts[self.user] if self.user in parts else next(iter(parts.values()))
            kek = self.master_key
        else:
            enc = next(iter(parts.values()))
        assert kek is not None, "log in first"
        return mc.decrypt_key(mc.base64_to_a32(enc), kek)

    def name(self, node: dict, kek: tuple[int, ...] | None = None) -> str:
        key = self.node_key(node, kek)
        k4 = key if len(key) == 4 else tuple(key[i] ^ key[i + 4] for i in range(4))
        attrs = mc.decrypt_attr(mc.base64_url_decode(node["a"]), k4)
        assert isinstance(attrs, dict), "the attributes do not decrypt"
        return str(attrs["n"])
