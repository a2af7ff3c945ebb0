"""A small hostile MEGA server: real HTTP on 127.0.0.1, separate from the emulator.

It serves one tree of nodes, either as a public folder (``f`` with ``&n=``, nodes keyed with
the folder key) or as a logged-in account (``f`` with a root, nodes keyed with the master
key), with whatever a hostile listing holds: cycles, dangling parents, same-name siblings,
odd sizes and names, list handles. Files are really stored (encrypted with their own key,
served by ranges at the URL ``g`` gives), so a download of a well-formed file completes and
verifies. Each command's answer can be replaced (``answers``), and the whole ``/cs`` body can
be a hostile one: endless, nested too deeply, or a redirect loop (``body_mode``).
"""

from __future__ import annotations

import json
import secrets
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from megafast._account.session import Credentials
from megafast._wire.codec import b64encode
from megafast.crypto import FileCipher, encrypt_attr, encrypt_key

__all__ = ["HostileServer", "RAW_1E400", "ROOT", "TRASH", "USER"]

USER = "HostUser001"
FOLDER_HANDLE = "PubFoldr"  # the public handle of the folder link
ROOT = "ROOTnode"
TRASH = "TRASHnod"
#: A value that goes out as the JSON number 1e400 (which reads back as infinity)
RAW_1E400 = "<the number 1e400>"


def _words(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{len(data) // 4}I", data)


def _bytes(words: tuple[int, ...]) -> bytes:
    return struct.pack(f">{len(words)}I", *words)


class HostileServer:
    """See the module docstring. ``account=True`` serves a logged-in listing (use
    :meth:`credentials` to resume a session on it), else a public folder (:attr:`link`)."""

    def __init__(self, *, account: bool = False) -> None:
        self.account = account
        self.folder_key = secrets.token_bytes(16)
        self.master_key = secrets.token_bytes(16)
        self.nodes: list[Any] = []
        self.contents: dict[str, bytes] = {}  # handle -> ciphertext
        self.answers: dict[str, Any] = {}  # command name -> answer (replaces the normal one)
        # for /cs: "endless", "nested", "redirect"; "endless_listing": an endless f answer only
        self.body_mode: str | None = None
        self.download_mode: str | None = None  # "redirect": file URLs redirect to themselves
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        if account:
            self.nodes.append({"h": ROOT, "p": "", "u": USER, "t": 2, "a": "", "k": "", "ts": 1})
            self.nodes.append({"h": TRASH, "p": "", "u": USER, "t": 4, "a": "", "k": "", "ts": 1})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- the tree ---------------------------------------------------------------------------
    @property
    def link(self) -> str:
        """The public folder link (its key is the folder key)."""
        return f"https://mega.nz/folder/{FOLDER_HANDLE}#{b64encode(self.folder_key)}"

    def credentials(self) -> dict[str, Any]:
        """A saved session for ``Mega.resume_session`` on the account listing."""
        return Credentials(sid="S" * 58, master_key=self.master_key, user_handle=USER).to_dict()

    def _keyed(self, key: bytes) -> str:
        kek = self.master_key if self.account else self.folder_key
        owner = USER if self.account else FOLDER_HANDLE
        return f"{owner}:{b64encode(_bytes(encrypt_key(_words(key), _words(kek))))}"

    def folder(self, handle: Any, parent: Any, name: Any, **extra: Any) -> dict[str, Any]:
        """Add a folder node (``name`` may be any JSON value: it is encrypted as given)."""
        key = secrets.token_bytes(16)
        node = {
            "h": handle,
            "p": parent,
            "u": USER,
            "t": 1,
            "ts": 1,
            "a": b64encode(encrypt_attr({"n": name}, _words(key))),
            "k": self._keyed(key),
            **extra,
        }
        self.nodes.append(node)
        return node

    def file(
        self, handle: Any, parent: Any, name: Any, data: bytes = b"", **extra: Any
    ) -> dict[str, Any]:
        """Add a file node holding ``data`` (``s`` is its length unless ``extra`` says else)."""
        cipher = FileCipher(secrets.token_bytes(16), secrets.token_bytes(8), size=len(data))
        ciphertext = cipher.encrypt(data)
        packed = _bytes(cipher.packed_key())
        folded = bytes(a ^ b for a, b in zip(packed[:16], packed[16:], strict=True))
        node = {
            "h": handle,
            "p": parent,
            "u": USER,
            "t": 0,
            "ts": 1,
            "s": len(data),
            "a": b64encode(encrypt_attr({"n": name}, _words(folded))),
            "k": self._keyed(packed),
            **extra,
        }
        self.nodes.append(node)
        if isinstance(handle, str):
            self.contents[handle] = ciphertext
        return node

    # -- answers ----------------------------------------------------------------------------
    def _answer(self, cmd: Any) -> Any:
        name = cmd.get("a") if isinstance(cmd, dict) else None
        if name in self.answers:
            return self.answers[name]
        if name == "f":
            return {"f": self.nodes, "ok": [], "s": []}
        if name == "ug":
            return {"u": USER, "email": "hostile@example.com", "k": ""}
        if name == "g":
            handle = cmd.get("n") or cmd.get("p")
            node = next((n for n in self.nodes if n.get("h") == handle), None)
            if node is None or handle not in self.contents:
                return -9
            return {"g": f"{self.url}/dl/{handle}", "s": node.get("s"), "at": node["a"]}
        return 0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(
                self, status: int, data: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = urlsplit(self.path)
                with outer.lock:
                    outer.requests.append({"params": dict(parse_qsl(url.query)), "body": body})
                mode = outer.body_mode
                try:
                    if mode == "endless_listing" and b'"a":"f"' in body.replace(b" ", b""):
                        self._endless(b'[{"f":[', b'{"h":"SameNode","t":9},')
                    elif mode == "endless":
                        self._endless(b"[", b"0,")
                    elif mode == "nested":
                        self._send(200, b"[" * 200_000 + b"]" * 200_000)
                    elif mode == "redirect":
                        self._send(307, b"", {"Location": self.path})
                    else:
                        batch = json.loads(body)
                        out = [outer._answer(c) for c in batch]
                        text = json.dumps(out).replace(f'"{RAW_1E400}"', "1e400")
                        self._send(200, text.encode())
                except OSError:
                    pass  # the client hung up: what a hostile server expects

            def _endless(self, start: bytes, item: bytes) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                piece = start + item * (65536 // len(item))
                chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
                while True:  # until the client hangs up
                    self.wfile.write(chunk)

            def do_GET(self) -> None:  # noqa: N802
                parts = self.path.split("/")
                try:
                    if outer.body_mode == "redirect" or outer.download_mode == "redirect":
                        self._send(302, b"", {"Location": self.path})
                        return
                    if len(parts) < 3 or parts[1] != "dl" or parts[2] not in outer.contents:
                        self._send(404, b"")
                        return
                    data = outer.contents[parts[2]]
                    if len(parts) > 3 and "-" in parts[3]:
                        start, _, end = parts[3].partition("-")
                        data = data[int(start) : int(end) + 1]
                    self._send(200, data, {"Content-Type": "application/octet-stream"})
                except OSError:
                    pass

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
