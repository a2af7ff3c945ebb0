"""Every Mega method, given odd answers by a scripted server over real HTTP, raises a
megafast error (never KeyError, TypeError, IndexError ...)."""

from __future__ import annotations

import contextlib
import json
import secrets
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast._account.session import Credentials
from megafast._wire.links import b64encode
from megafast.crypto import encrypt_attr, encrypt_key
from megafast.errors import MegaError
from support.scripted_api import ScriptedAPI
from support.servers import scripted_per_module  # noqa: F401 (a fixture)

MASTER = secrets.token_bytes(16)
USER = "UserHandle1"
ODD = [{}, [], "text", None, -1234, {"f": [None, 5]}, {"g": 5, "s": "x"}]


def words(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{len(data) // 4}I", data)


def tree_answer() -> dict[str, Any]:
    key = secrets.token_bytes(16)
    packed = secrets.token_bytes(32)
    k = bytes(a ^ b for a, b in zip(packed[:16], packed[16:], strict=True))
    enc = b"".join(w.to_bytes(4, "big") for w in encrypt_key(words(key), words(MASTER)))
    fenc = b"".join(w.to_bytes(4, "big") for w in encrypt_key(words(packed), words(MASTER)))
    return {
        "f": [
            {"h": "ROOT0000", "p": "", "u": USER, "t": 2, "a": "", "k": "", "ts": 1},
            {"h": "TRASH000", "p": "", "u": USER, "t": 4, "a": "", "k": "", "ts": 1},
            {
                "h": "FOLDER01",
                "p": "ROOT0000",
                "u": USER,
                "t": 1,
                "ts": 1,
                "a": b64encode(encrypt_attr({"n": "docs"}, words(key))),
                "k": f"{USER}:{b64encode(enc)}",
            },
            {
                "h": "FILE0001",
                "p": "FOLDER01",
                "u": USER,
                "t": 0,
                "ts": 1,
                "s": 10,
                "a": b64encode(encrypt_attr({"n": "a.txt"}, words(k))),
                "k": f"{USER}:{b64encode(fenc)}",
            },
        ],
        "ok": [],
        "s": [],
    }


def client_with(scripted: ScriptedAPI, odd_for: str, odd: Any) -> Mega:
    tree = tree_answer()

    def answer(record: dict[str, Any]) -> Any:
        batch = json.loads(record["body"])
        out = []
        for cmd in batch:
            name = cmd.get("a")
            if name == odd_for:
                out.append(odd)
            elif name == "ug":
                out.append({"u": USER, "email": "x@example.com"})
            elif name == "f":
                out.append(tree)
            else:
                out.append(0)
        return (200, {}, json.dumps(out))

    scripted.default = answer
    m = Mega(api_url=scripted.url, retry_time=0.2, timeout=5)
    creds = Credentials(sid="S" * 58, master_key=MASTER, user_handle=USER)
    m.resume_session(creds.to_dict())
    return m


LINK = "https://mega.nz/file/AAAAAAAA#" + b64encode(bytes(32))
FOLDER_LINK = "https://mega.nz/folder/AAAAAAAA#" + b64encode(bytes(16))

CALLS: list[tuple[str, Callable[[Mega, Path], Any]]] = [
    ("f", lambda m, d: m.get_files()),
    ("f", lambda m, d: m.find("docs")),
    ("uq", lambda m, d: m.get_quota()),
    ("uq", lambda m, d: m.get_storage_space()),
    ("uq", lambda m, d: m.get_balance()),
    ("p", lambda m, d: m.create_folder("new")),
    ("a", lambda m, d: m.rename(m.find("docs"), "x")),
    ("m", lambda m, d: m.move("FILE0001", 4)),
    ("d", lambda m, d: m.destroy("FILE0001")),
    ("l", lambda m, d: m.export("docs/a.txt")),
    ("s2", lambda m, d: m.export("docs")),
    ("g", lambda m, d: m.get_public_url_info(LINK)),
    ("g", lambda m, d: m.download(m.find("docs/a.txt"), d)),
    ("g", lambda m, d: m.download_url(LINK, d)),
    ("f", lambda m, d: m.get_public_folder(FOLDER_LINK)),
    ("f", lambda m, d: m.download_url(FOLDER_LINK, d)),
    ("f", lambda m, d: m.get_id_from_public_handle("AAAAAAAA")),
    ("p", lambda m, d: m.import_public_url(LINK, dest_name="n")),
    ("u", lambda m, d: m.upload(d / "src.bin")),
    ("ur", lambda m, d: m.add_contact("a@example.com")),
]


@pytest.mark.parametrize(
    ("command", "call"), CALLS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CALLS)]
)
@pytest.mark.parametrize("odd", ODD, ids=[json.dumps(o)[:12] for o in ODD])
def test_odd_answers_raise_megafast_errors(
    scripted: ScriptedAPI, tmp_path: Path, command: str, call: Callable[[Mega, Path], Any], odd: Any
) -> None:
    (tmp_path / "src.bin").write_bytes(b"0123456789")
    m = client_with(scripted, command, odd)
    with contextlib.suppress(MegaError):
        call(m, tmp_path)


def test_contacts_send_ur(scripted: ScriptedAPI) -> None:
    m = client_with(scripted, "none", None)
    scripted.requests.clear()
    assert m.add_contact("friend@example.com") == 0
    assert m.remove_contact("friend@example.com") == 0
    sent = [json.loads(r["body"])[0] for r in scripted.requests]
    assert [(c["a"], c["u"], c["l"]) for c in sent] == [
        ("ur", "friend@example.com", "1"),
        ("ur", "friend@example.com", "0"),
    ]
