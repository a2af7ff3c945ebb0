"""Secrets never show in repr() or in errors, whatever form the caller wrote them in."""

from __future__ import annotations

import secrets

import pytest

from megafast import Mega
from megafast._tree.nodes import Keyring
from megafast._wire.codec import b64encode
from megafast._wire.links import parse_link
from megafast._wire.redact import MARK, redact, redact_link, redact_url
from megafast.errors import LinkError

FILE_KEY = b64encode(secrets.token_bytes(32))
FOLDER_KEY = b64encode(secrets.token_bytes(16))


def test_keyring_repr_hides_every_key() -> None:
    master, share, default = (secrets.token_bytes(16) for _ in range(3))
    ring = Keyring(
        master_key=master,
        user_handle="UserHandle1",
        share_keys={"SHARE001": share},
        default_key=default,
    )
    text = repr(ring)
    assert "UserHandle1" in text and "master_key" in text
    for key in (master, share, default):
        assert repr(key) not in text and b64encode(key) not in text and key.hex() not in text
    assert "SHARE001" not in text  # which folders are shared is the account's business too


def test_public_link_repr_hides_its_key() -> None:
    link = parse_link(f"https://mega.nz/file/AbCdEfGh#{FILE_KEY}")
    assert "AbCdEfGh" in repr(link)
    assert FILE_KEY not in repr(link) and repr(link.key) not in repr(link)
    assert link.key_b64 == FILE_KEY  # the key is still there for whoever asks for it


def test_mega_repr_hides_user_and_password_in_api_url() -> None:
    client = Mega({"api_url": "https://alice:hunter2@api.example.test:8443/x"})
    text = repr(client)
    assert "hunter2" not in text and "alice" not in text
    assert "api.example.test:8443" in text


@pytest.mark.parametrize(
    "link",
    [
        f"https://mega.nz/file/AbCdEfGh%23{FILE_KEY}",
        f"https://mega.nz/file/AbCdEfGh%2523{FILE_KEY}",
        f"https://mega.nz/folder/AbCdEfGh%23{FOLDER_KEY}",
        f"https://mega.nz/%23F%21AbCdEfGh%21{FOLDER_KEY}",
        f"https://mega.nz/%23%21AbCdEfGh%21{FILE_KEY}",
    ],
    # fixed ids: the keys are random per process, and xdist workers must collect the same names
    ids=["file", "file-double-encoded", "folder", "legacy-folder", "legacy-file"],
)
def test_percent_encoded_link_key_never_echoed(link: str) -> None:
    secret = FILE_KEY if FILE_KEY in link else FOLDER_KEY
    with pytest.raises(LinkError) as info:
        parse_link(link)
    assert secret not in str(info.value)
    assert secret not in redact_link(link)
    assert secret not in redact(f"could not open {link} today")
    assert MARK in redact(f"could not open {link} today")


def test_redact_keeps_handles_and_plain_text() -> None:
    text = f"see https://mega.nz/file/AbCdEfGh%23{FILE_KEY} and 100%23 of it"
    out = redact(text)
    assert "AbCdEfGh" in out and "100%23 of it" in out and FILE_KEY not in out


def test_redact_url() -> None:
    assert redact_url("https://u:p@h.test/cs") == f"https://{MARK}@h.test/cs"
    assert redact_url("https://h.test/cs?sid=SECRET") == f"https://h.test/cs?sid={MARK}"
    assert redact_url("http://[::1") == MARK


def test_redact_hides_a_url_token() -> None:
    line = '"GET /a.bin?x=1&token=SECRET&y=2 HTTP/1.1" 200; /b?Token=SECRET2'
    out = redact(line)
    assert "SECRET" not in out and "x=1" in out and "y=2" in out and out.count(MARK) == 2
