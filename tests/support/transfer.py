"""Helpers shared by the transfer tests (test_transfer_*.py).

The emulator runs for real on 127.0.0.1; ``g``/``u``/``p`` go over its HTTP API with a
session the emulator issued.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from megafast import crypto as mc
from megafast._wire.retry import RetryPolicy
from megafast.errors import error_for_code
from megafast.testing import MegaEmulator
from megafast.transfer import TransferConfig

EMAIL = "transfer@example.com"


#: Waits of milliseconds, so that fault tests run in well under a second.
FAST_RETRY = RetryPolicy.fast()


def fast_client(emu: MegaEmulator, prefix: str) -> Any:
    """A new account on ``emu`` and a ``Mega`` logged in to it with millisecond back-off
    (API and transfers); the caller points ``MEGAFAST_STATE_DIR`` at its own folder."""
    from megafast import Mega

    email = f"{prefix}-{os.urandom(4).hex()}@example.com"
    emu.create_account(email, "pw")
    m = Mega(api_url=emu.api_url, options={"transfer": fast_config()})
    m._api.retry = FAST_RETRY
    return m.login(email, "pw")


def fast_config(**changes: Any) -> TransferConfig:
    """A TransferConfig with the fast retry policy (and ``changes``)."""
    changes.setdefault("retry", FAST_RETRY)
    return TransferConfig(**changes)


class RawApi:
    """Just enough of the API envelope for these tests (``g``, ``u``, ``p``): the client's
    own transport has its own tests; -3 is retried with the same request id."""

    def __init__(self, api_url: str, sid: str) -> None:
        self.api_url = api_url
        self.sid = sid
        self.rid = int.from_bytes(os.urandom(3), "big")
        self.http = requests.Session()

    def request(self, command: dict) -> Any:
        for _ in range(200):
            answer = self.http.post(
                f"{self.api_url}/cs",
                params={"id": str(self.rid), "sid": self.sid},
                data=json.dumps([command]),
                timeout=30,
            ).json()
            result = answer[0] if isinstance(answer, list) else answer
            if result == -3:
                time.sleep(0.005)
                continue
            self.rid += 1
            if isinstance(result, int) and result < 0:
                raise error_for_code(result)
            return result
        raise AssertionError("the API kept answering -3")


@dataclass
class Remote:
    """An account on the emulator, as a client logged in to it sees it."""

    emu: MegaEmulator
    email: str = EMAIL
    api: RawApi = field(init=False)
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.api = RawApi(self.emu.api_url, self.emu.create_session(self.email))
        self.master_key = mc.str_to_a32(self.emu.account(self.email).master_key)

    def add_file(self, data: bytes, name: str = "file.bin") -> tuple[str, tuple[int, ...]]:
        return self.emu.add_file(self.email, data, name)

    def url_getter(self, handle: str) -> UrlGetter:
        return UrlGetter(lambda: self.api.request({"a": "g", "g": 1, "n": handle})["g"])

    def upload_url_getter(self, *, raw_token: bool = False) -> UploadUrlGetter:
        def get(size: int) -> str:
            if raw_token:
                return self.emu.upload_url(self.email, size, raw_token=True)
            return self.api.request({"a": "u", "s": size})["p"]

        return UploadUrlGetter(get)

    def create_node(self, token: str, key: tuple[int, ...], name: str = "up.bin") -> str:
        """The ``p`` call the client makes after an upload; returns the new handle."""
        attr_key = [key[i] ^ key[i + 4] for i in range(4)]
        node = {
            "h": token,
            "t": 0,
            "a": mc.base64_url_encode(mc.encrypt_attr({"n": name}, attr_key)),
            "k": mc.a32_to_base64(mc.encrypt_key(key, self.master_key)),
        }
        answer = self.api.request({"a": "p", "t": self.emu.root_handle(self.email), "n": [node]})
        return answer["f"][0]["h"]

    def stored_plaintext(self, handle: str, key: tuple[int, ...]) -> bytes:
        """Decrypt what the emulator stored and check its meta-MAC against ``key``."""
        blob = self.emu.stored_blob(handle)
        cipher = mc.FileCipher(key, size=len(blob))
        plain = cipher.decrypt(blob)
        cipher.verify()
        return plain


class UrlGetter:
    """``get_url(refresh)`` for download_file that counts its calls."""

    def __init__(self, fetch: Callable[[], str]) -> None:
        self._fetch = fetch
        self.calls = 0
        self.refreshes = 0
        self._lock = threading.Lock()

    def __call__(self, refresh: bool) -> str:
        with self._lock:
            self.calls += 1
            self.refreshes += bool(refresh)
        return self._fetch()


class UploadUrlGetter:
    def __init__(self, fetch: Callable[[int], str]) -> None:
        self._fetch = fetch
        self.calls = 0

    def __call__(self, size: int) -> str:
        self.calls += 1
        return self._fetch(size)


def content(size: int) -> bytes:
    """Random content of ``size`` bytes (shifted ranges cannot match by accident)."""
    return os.urandom(size)
