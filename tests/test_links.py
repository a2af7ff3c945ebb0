"""Public link parsing and building: every format in PROTOCOL.md, and bad links."""

from __future__ import annotations

import pytest

from megafast._wire.links import b64decode, file_link, folder_link, parse_link
from megafast.errors import IncompleteLinkError, LinkError

FILE_KEY = "Jdd26GHPF2sfj40IakU46UMNJAvInEPX4QlWT2oWYNQ"
FOLDER_KEY = "M3wmhwZDENMNUJoBsdzFng"


@pytest.mark.parametrize(
    "url",
    [
        f"https://mega.nz/file/3MolSBjA#{FILE_KEY}",
        f"https://mega.co.nz/file/3MolSBjA#{FILE_KEY}",
        f"http://www.mega.nz/file/3MolSBjA#{FILE_KEY}",
        f"mega.nz/file/3MolSBjA#{FILE_KEY}",
        f"https://mega.nz/embed/3MolSBjA#{FILE_KEY}",
        f"https://mega.nz/#!3MolSBjA!{FILE_KEY}",
        f"https://mega.co.nz/#!3MolSBjA!{FILE_KEY}",
        f"  https://mega.nz/file/3MolSBjA#{FILE_KEY}  ",
        f"https://mega.nz/file/3MolSBjA#{FILE_KEY}=",
    ],
)
def test_file_links(url: str) -> None:
    link = parse_link(url)
    assert link.kind == "file" and link.handle == "3MolSBjA"
    assert link.key == b64decode(FILE_KEY) and len(link.key) == 32
    assert link.key_b64 == FILE_KEY
    assert len(link.key_a32()) == 8
    assert link.child is None


@pytest.mark.parametrize(
    ("url", "child", "child_kind"),
    [
        (f"https://mega.nz/folder/WlVl1CbZ#{FOLDER_KEY}", None, None),
        (f"https://mega.nz/#F!WlVl1CbZ!{FOLDER_KEY}", None, None),
        (f"https://mega.co.nz/#F!WlVl1CbZ!{FOLDER_KEY}", None, None),
        (f"https://mega.nz/folder/WlVl1CbZ#{FOLDER_KEY}/file/ABCD_-12", "ABCD_-12", "file"),
        (f"https://mega.nz/folder/WlVl1CbZ#{FOLDER_KEY}/folder/ABCD_-12", "ABCD_-12", "folder"),
        (f"https://mega.nz/#F!WlVl1CbZ!{FOLDER_KEY}!ABCD_-12", "ABCD_-12", None),
        (f"https://mega.nz/#F!WlVl1CbZ!{FOLDER_KEY}?ABCD_-12", "ABCD_-12", None),
    ],
)
def test_folder_links(url: str, child: str | None, child_kind: str | None) -> None:
    link = parse_link(url)
    assert link.kind == "folder" and link.handle == "WlVl1CbZ"
    assert link.key == b64decode(FOLDER_KEY) and len(link.key) == 16
    assert (link.child, link.child_kind) == (child, child_kind)


@pytest.mark.parametrize(
    "url",
    [
        "https://mega.nz/file/3MolSBjA",
        "https://mega.nz/file/3MolSBjA#",
        "https://mega.nz/#!3MolSBjA",
        "https://mega.nz/#!3MolSBjA!",
        "https://mega.nz/folder/WlVl1CbZ",
        "https://mega.nz/#F!WlVl1CbZ",
    ],
)
def test_links_without_key_are_incomplete(url: str) -> None:
    with pytest.raises(IncompleteLinkError) as info:
        parse_link(url)
    assert isinstance(info.value, ValueError)
    assert "key" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://example.com/file/3MolSBjA#" + FILE_KEY,
        "https://mega.nz/",
        "https://mega.nz/file/short#" + FILE_KEY,
        "https://mega.nz/file/3MolSBjA#" + FOLDER_KEY,  # a folder-sized key on a file link
        "https://mega.nz/folder/WlVl1CbZ#" + FILE_KEY,  # a file-sized key on a folder link
        "https://mega.nz/file/3MolSBjA#" + FILE_KEY + "/file/ABCDEFGH",
        "https://mega.nz/file/3MolSBjA#not*base64*at*all",
        "https://mega.nz/#F!WlVl1CbZ!" + FOLDER_KEY + "!toolonghandle",
        "mega.nz/blog/3MolSBjA#" + FILE_KEY,
    ],
)
def test_malformed_links(url: str) -> None:
    with pytest.raises(LinkError):
        parse_link(url)


def test_non_string_link() -> None:
    with pytest.raises(LinkError):
        parse_link(None)  # type: ignore[arg-type]


def test_error_messages_never_show_the_key() -> None:
    for url in (
        "https://mega.nz/file/3MolSBjA#" + FOLDER_KEY,
        "https://mega.nz/folder/WlVl1CbZ#" + FILE_KEY,
        "https://example.com/#!3MolSBjA!" + FILE_KEY,
    ):
        with pytest.raises(LinkError) as info:
            parse_link(url)
        assert FOLDER_KEY not in str(info.value) and FILE_KEY not in str(info.value)


def test_built_links_parse_back() -> None:
    key = b64decode(FILE_KEY)
    fkey = b64decode(FOLDER_KEY)
    for legacy in (False, True):
        f = parse_link(file_link("3MolSBjA", key, legacy=legacy))
        assert (f.kind, f.handle, f.key) == ("file", "3MolSBjA", key)
        d = parse_link(folder_link("WlVl1CbZ", fkey, legacy=legacy))
        assert (d.kind, d.handle, d.key) == ("folder", "WlVl1CbZ", fkey)
    assert file_link("3MolSBjA", key) == f"https://mega.nz/file/3MolSBjA#{FILE_KEY}"
    assert folder_link("WlVl1CbZ", fkey, legacy=True) == f"https://mega.nz/#F!WlVl1CbZ!{FOLDER_KEY}"


def test_real_links_from_the_vectors(external_vectors: dict) -> None:
    links = external_vectors["file_mac_real_links"]["links"]
    for item in links:
        link = parse_link(item["link"])
        assert link.kind == "file" and len(link.key) == 32


def test_password_protected_links_say_so() -> None:
    with pytest.raises(LinkError, match="password-protected"):
        parse_link("https://mega.nz/#P!AgBvXkvN0qKEBeYvGVmw6hEXNINffUO1fB4cpF3kz7Hv")
