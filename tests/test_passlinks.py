"""Password-protected (``#P!``) links: parsing and opening them (bad lengths, unknown
algorithms, wrong passwords), making them, and using them everywhere a link is accepted:
``download_url``, public folders, the CLI's ``get``/``ls``/``cat``/``link`` and fsspec.
Known answers are in tests/test_media_vectors.py."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast._wire.passlinks import decrypt_link, encrypt_link, is_password_link, unlock
from megafast.errors import LinkError, PasswordRequiredError, WrongPasswordError
from megafast.testing import MegaEmulator

FILE_LINK = "https://mega.nz/file/AbCdEfGh#" + base64.urlsafe_b64encode(
    bytes(range(32))
).decode().rstrip("=")
FOLDER_LINK = "https://mega.nz/folder/AbCdEfGh#" + base64.urlsafe_b64encode(
    bytes(16)
).decode().rstrip("=")


def _payload(url: str) -> bytes:
    text = url.split("#P!", 1)[1]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _link(raw: bytes) -> str:
    return "https://mega.nz/#P!" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- the format ---------------------------------------------------------------------------
@pytest.mark.parametrize("plain", [FILE_LINK, FOLDER_LINK])
@pytest.mark.parametrize("alg", [1, 2])
def test_round_trip_for_files_and_folders(plain: str, alg: int) -> None:
    protected = encrypt_link(plain, "hunter2", alg=alg)
    assert is_password_link(protected)
    raw = _payload(protected)
    assert raw[0] == alg and raw[1] == (1 if "/file/" in plain else 0)
    assert len(raw) == 8 + 32 + (32 if "/file/" in plain else 16) + 32
    assert decrypt_link(protected, "hunter2") == plain
    assert unlock(protected, "hunter2") == plain


def test_a_fresh_salt_every_time() -> None:
    assert encrypt_link(FILE_LINK, "pw") != encrypt_link(FILE_LINK, "pw")


def test_wrong_password_raises_without_saying_it(caplog: pytest.LogCaptureFixture) -> None:
    protected = encrypt_link(FILE_LINK, "correct horse")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WrongPasswordError) as info:
        decrypt_link(protected, "battery staple")
    assert isinstance(info.value, LinkError)
    text = str(info.value) + repr(info.value) + caplog.text
    assert "battery" not in text and "correct" not in text


def test_a_damaged_link_is_a_wrong_password() -> None:
    raw = bytearray(_payload(encrypt_link(FILE_LINK, "pw")))
    raw[12] ^= 1  # the salt
    with pytest.raises(WrongPasswordError):
        decrypt_link(_link(bytes(raw)), "pw")


@pytest.mark.parametrize("cut", [1, 16, 31])
def test_wrong_lengths_are_link_errors(cut: int) -> None:
    raw = _payload(encrypt_link(FILE_LINK, "pw"))
    with pytest.raises(LinkError, match="has 104 bytes"):
        decrypt_link(_link(raw[:-cut]), "pw")
    with pytest.raises(LinkError, match="has 104 bytes"):
        decrypt_link(_link(raw + bytes(cut)), "pw")


@pytest.mark.parametrize("raw", [b"", b"\x02", b"\x02\x01"])
def test_too_short_links(raw: bytes) -> None:
    with pytest.raises(LinkError):
        decrypt_link(_link(raw), "pw")


@pytest.mark.parametrize("alg", [0, 3, 255])
def test_unknown_algorithms(alg: int) -> None:
    raw = bytearray(_payload(encrypt_link(FILE_LINK, "pw")))
    raw[0] = alg
    with pytest.raises(LinkError, match=f"algorithm {alg}"):
        decrypt_link(_link(bytes(raw)), "pw")


def test_unknown_type_and_bad_text() -> None:
    raw = bytearray(_payload(encrypt_link(FILE_LINK, "pw")))
    raw[1] = 7
    with pytest.raises(LinkError, match="neither a file nor a folder"):
        decrypt_link(_link(bytes(raw)), "pw")
    for bad in ("https://mega.nz/#P!", "https://mega.nz/#P!***", "https://example.com/#P!AAAA"):
        with pytest.raises(LinkError):
            decrypt_link(bad, "pw")


def test_no_password_and_empty_password() -> None:
    protected = encrypt_link(FOLDER_LINK, "pw")
    with pytest.raises(PasswordRequiredError):
        unlock(protected, None)
    with pytest.raises(LinkError):
        decrypt_link(protected, "")
    assert unlock(FILE_LINK, None) == FILE_LINK  # plain links pass through


def test_making_one_for_a_node_inside_a_folder_is_refused() -> None:
    with pytest.raises(LinkError):
        encrypt_link(FOLDER_LINK + "/file/HhHhHhHh", "pw")


# -- through the client -----------------------------------------------------------------
@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def shared(emu: MegaEmulator, tmp_path: Path) -> tuple[Mega, str, str, bytes]:
    """An account with a folder holding one file; (client, #P! file link, #P! folder link,
    the file's content)."""
    email = f"p-{secrets.token_hex(4)}@example.com"
    emu.create_account(email, "pw", version=2)
    mega = Mega(api_url=emu.api_url).login(email, "pw")
    folder = mega.create_folder("shared")["shared"]
    data = secrets.token_bytes(3000)
    (tmp_path / "a.bin").write_bytes(data)
    mega.upload(tmp_path / "a.bin", folder)
    file_link = mega.get_link(mega.find("shared/a.bin"), password="s3cret")
    folder_link = mega.export("shared", password="s3cret")
    return mega, file_link, folder_link, data


def test_download_url_and_public_folders(
    shared: tuple[Mega, str, str, bytes], emu: MegaEmulator, tmp_path: Path
) -> None:
    _, file_link, folder_link, data = shared
    assert is_password_link(file_link) and is_password_link(folder_link)
    visitor = Mega(api_url=emu.api_url)
    got = visitor.download_url(file_link, tmp_path, "copy.bin", password="s3cret")
    assert Path(got).read_bytes() == data
    assert visitor.get_public_url_info(file_link, password="s3cret")["size"] == 3000
    names = {
        n["a"]["n"] for n in visitor.get_public_folder(folder_link, password="s3cret").values()
    }
    assert names == {"shared", "a.bin"}
    owner = shared[0]
    owner.import_public_url(file_link, password="s3cret")  # a copy in the Cloud Drive
    assert owner.find("a.bin") is not None
    (tmp_path / "d").mkdir()
    out = visitor.download_folder_url(folder_link, tmp_path / "d", password="s3cret")
    assert (Path(out) / "a.bin").read_bytes() == data


def test_wrong_password_before_any_request(
    shared: tuple[Mega, str, str, bytes], emu: MegaEmulator, tmp_path: Path
) -> None:
    _, file_link, folder_link, _ = shared
    visitor = Mega(api_url=emu.api_url)
    before = visitor._api.stats["requests"]
    tmp_path = tmp_path / "downloads"
    tmp_path.mkdir()
    for call in (
        lambda: visitor.download_url(file_link, tmp_path, password="nope"),
        lambda: visitor.get_public_folder(folder_link, password="nope"),
        lambda: visitor.download_folder_url(folder_link, tmp_path, password="nope"),
        lambda: visitor.get_public_url_info(file_link, password="nope"),
    ):
        with pytest.raises(WrongPasswordError):
            call()
    with pytest.raises(PasswordRequiredError):
        visitor.download_url(file_link, tmp_path)
    assert visitor._api.stats["requests"] == before  # nothing was asked, nothing written
    assert list(tmp_path.iterdir()) == []


def test_fsspec_link_with_password(shared: tuple[Mega, str, str, bytes], emu: MegaEmulator) -> None:
    pytest.importorskip("fsspec")
    from megafast.fs import MegaFileSystem

    _, _, folder_link, data = shared
    fs = MegaFileSystem(
        link=folder_link, password="s3cret", api_url=emu.api_url, skip_instance_cache=True
    )
    assert fs.cat_file("a.bin") == data
    assert "password" not in fs.storage_options
    with pytest.raises(WrongPasswordError):
        MegaFileSystem(
            link=folder_link, password="x", api_url=emu.api_url, skip_instance_cache=True
        )


# -- the command line ---------------------------------------------------------------------
def test_cli_link_get_ls_cat_with_password(
    shared: tuple[Mega, str, str, bytes],
    emu: MegaEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from support.cli_inproc import cli_login, run_cli

    mega, _, _, data = shared
    email = mega.get_user()["email"]
    cli_login(capsys, monkeypatch, tmp_path / "home", emu, email, "pw")
    code, out, err = run_cli(capsys, "link", "--password", "cli-pw", "/shared/a.bin")
    assert code == 0, err
    link = out.strip()
    assert "#P!" in link
    code, out, err = run_cli(capsys, "ls", link, "--password", "cli-pw")
    assert code == 0 and "a.bin" in out, err
    dest = tmp_path / "got.bin"
    code, out, err = run_cli(capsys, "get", link, "--password", "cli-pw", "-o", str(dest), "-q")
    assert code == 0, err
    assert dest.read_bytes() == data
    code, out, err = run_cli(capsys, "get", link, "--password", "wrong", "-o", str(tmp_path / "x"))
    assert (
        code != 0 and "wrong password" in err and "wrong" not in err.replace("wrong password", "")
    )
    assert not (tmp_path / "x").exists()
    # no password and no terminal to ask on: a clear error
    code, out, err = run_cli(capsys, "cat", link)
    assert code != 0 and "--password" in err


def test_cli_asks_for_the_password_without_echo(
    shared: tuple[Mega, str, str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse
    import getpass
    import io
    import sys
    from types import SimpleNamespace

    from megafast._cli.media import unlock_link

    _, file_link, _, _ = shared
    asked: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: object = None) -> str:
        asked.append(prompt)
        return "s3cret"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", Terminal())
    ctx = SimpleNamespace(args=argparse.Namespace(password=None))
    plain = unlock_link(ctx, file_link)  # type: ignore[arg-type]
    assert "/file/" in plain and asked == ["Link password: "]
    asked.clear()
    ctx = SimpleNamespace(args=argparse.Namespace(password="s3cret"))
    assert unlock_link(ctx, file_link) == plain and asked == []  # type: ignore[arg-type]


def test_cli_link_password_asked_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    from types import SimpleNamespace

    import megafast._cli.media as media
    from megafast._cli.errors import CommandError

    answers = iter(["one", "one", "one", "two"])
    monkeypatch.setattr(media, "_ask", lambda prompt: next(answers))
    ctx = SimpleNamespace(args=argparse.Namespace(password=""))
    assert media.link_password(ctx) == "one"  # type: ignore[arg-type]
    with pytest.raises(CommandError, match="do not match"):
        media.link_password(ctx)  # type: ignore[arg-type]
    ctx = SimpleNamespace(args=argparse.Namespace(password=None))
    assert media.link_password(ctx) is None  # type: ignore[arg-type]
