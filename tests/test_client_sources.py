"""The one resolved file source (megafast._account.sources) that every download path reads from."""

from __future__ import annotations

import secrets

import pytest

from megafast._account.sources import (
    FileSource,
    link_source,
    node_source,
    parse_file_key,
)
from megafast._wire.codec import b64encode, bytes_to_words
from megafast._wire.links import parse_link
from megafast.errors import LinkError, ValidationError, WrongKeyError


def test_a_file_link_resolves_to_g_by_public_handle() -> None:
    key = secrets.token_bytes(32)
    source = link_source(parse_link(f"https://mega.nz/file/AbCdEfGh#{b64encode(key)}"))
    assert source.command == {"a": "g", "g": 1, "p": "AbCdEfGh"}
    assert source.folder is None and source.by_link
    assert source.key == bytes_to_words(key) and source.resume_id == "AbCdEfGh"
    assert source.size == 0  # no answer yet


def test_a_node_resolves_to_g_by_handle_through_its_folder() -> None:
    key = bytes_to_words(secrets.token_bytes(32))
    node = {"h": "FILE0001", "t": 0, "key": key, "a": {"n": "x"}}
    source = node_source(node, "FOLDER01")
    assert source == FileSource({"a": "g", "g": 1, "n": "FILE0001"}, "FOLDER01", key, "FILE0001")
    assert not source.by_link
    source.answer = {"s": 12, "g": "http://x"}
    assert source.size == 12


def test_folders_and_undecryptable_nodes_are_no_file_source() -> None:
    with pytest.raises(ValidationError):
        node_source({"h": "FOLDER01", "t": 1, "key": (1, 2, 3, 4)})
    with pytest.raises(WrongKeyError):
        node_source({"h": "FILE0001", "t": 0, "a": False, "undecryptable": True})


def test_file_keys_in_every_form() -> None:
    raw = secrets.token_bytes(32)
    words = bytes_to_words(raw)
    assert parse_file_key(raw) == parse_file_key(b64encode(raw)) == parse_file_key(words) == words
    with pytest.raises(LinkError):
        parse_file_key(raw[:16])
