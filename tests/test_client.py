"""megafast.Mega end to end against the emulator over real HTTP: logins, sessions, the node
tree, changes, links, account calls and errors. Transfers: test_client_transfers.py;
shares and public folders: test_client_shares.py."""

from __future__ import annotations

import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast.errors import (
    IntegrityError,
    LinkError,
    LoginError,
    NodeNotFoundError,
    NotFoundError,
    RequestError,
    SessionError,
    TwoFactorRequiredError,
    ValidationError,
    WrongKeyError,
)
from megafast.testing import MegaEmulator
from support.scripted_api import ScriptedAPI


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


def new_email() -> str:
    return f"user-{secrets.token_hex(5)}@example.com"


@pytest.fixture
def creds(emu: MegaEmulator) -> tuple[str, str]:
    email, password = new_email(), "correct horse"
    emu.create_account(email, password, version=2)
    return email, password


@pytest.fixture
def mega(emu: MegaEmulator, creds: tuple[str, str]) -> Mega:
    return Mega({"api_url": emu.api_url}).login(*creds)


# -- logging in ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("password", ["secret", "pässwörd ✓ 密码", "🔑emoji🔑", ""])
def test_login_v1_and_v2_with_any_password(emu: MegaEmulator, version: int, password: str) -> None:
    email = new_email()
    acct = emu.create_account(email, password, version=version)
    m = Mega(api_url=emu.api_url)
    assert m.login(email.upper(), password) is m
    assert m.get_user()["email"] == email
    assert m.master_key == tuple(
        int.from_bytes(acct.master_key[i : i + 4], "big") for i in (0, 4, 8, 12)
    )
    assert m.sid and isinstance(m.sid, str)
    assert m.root_id == emu.root_handle(email)


@pytest.mark.parametrize("version", [1, 2])
def test_wrong_password_and_unknown_email(emu: MegaEmulator, version: int) -> None:
    email = new_email()
    emu.create_account(email, "Pa55-right", version=version)
    with pytest.raises(LoginError) as info:
        Mega(api_url=emu.api_url).login(email, "Pa55-typo")
    assert info.value.code == -9
    assert "Pa55" not in str(info.value) and "Pa55" not in repr(info.value)
    with pytest.raises(LoginError):
        Mega(api_url=emu.api_url).login(new_email(), "whatever")


def test_login_input_errors(emu: MegaEmulator) -> None:
    with pytest.raises(ValidationError):
        Mega(api_url=emu.api_url).login("someone@example.com", None)
    with pytest.raises(ValidationError):
        Mega(api_url=emu.api_url).login("someone@example.com", b"bytes")  # type: ignore[arg-type]


def test_two_factor(emu: MegaEmulator) -> None:
    email = new_email()
    acct = emu.create_account(email, "pw", version=2, mfa_secret=True)
    with pytest.raises(TwoFactorRequiredError) as info:
        Mega(api_url=emu.api_url).login(email, "pw")
    assert info.value.code == -26 and "mfa" in str(info.value)
    assert (
        Mega(api_url=emu.api_url).login(email, "pw", mfa=acct.totp()).get_user()["email"] == email
    )
    asked: list[int] = []

    def ask() -> str:
        asked.append(1)
        return acct.totp()

    assert Mega(api_url=emu.api_url).login(email, "pw", mfa=ask).sid
    assert asked == [1]
    wrong = "000000" if acct.totp() != "000000" else "111111"
    with pytest.raises(TwoFactorRequiredError):
        Mega(api_url=emu.api_url).login(email, "pw", mfa=wrong)
    with pytest.raises(ValidationError):
        Mega(api_url=emu.api_url).login(email, "pw", mfa="12ab")


def test_callback_not_called_without_two_factor(emu: MegaEmulator, creds: tuple[str, str]) -> None:
    def never() -> str:
        raise AssertionError("asked for a code the account does not need")

    assert Mega(api_url=emu.api_url).login(*creds, mfa=never).sid


def test_anonymous_login(emu: MegaEmulator) -> None:
    m = Mega(api_url=emu.api_url).login()
    user = m.get_user()
    assert "email" not in user and user["u"]
    files = m.get_files()
    assert sorted(n["a"]["n"] for n in files.values()) == ["Cloud Drive", "Inbox", "Rubbish Bin"]
    other = Mega(api_url=emu.api_url)
    other.login_anonymous()
    assert other.get_user()["u"] != user["u"]
    assert other.master_key != m.master_key


def test_not_logged_in(emu: MegaEmulator) -> None:
    m = Mega(api_url=emu.api_url)
    with pytest.raises(ValidationError, match="log"):
        m.get_files()
    with pytest.raises(ValidationError):
        m.get_quota()


# -- sessions -----------------------------------------------------------------------------


def test_session_dump_and_resume(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    mega.create_folder("kept")
    text = mega.dump_session()
    resumed = Mega(api_url=emu.api_url).login(session=text)
    assert resumed.find("kept") is not None
    assert resumed.sid == mega.sid and resumed.master_key == mega.master_key
    assert Mega(api_url=emu.api_url).resume_session(json.loads(text)).get_user()["u"]

    path = tmp_path / "session.json"
    mega.save_session(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Mega(api_url=emu.api_url).login(session=path).find("kept") is not None
    assert Mega(api_url=emu.api_url).resume_session(str(path)).find("kept") is not None
    assert "sid" not in repr(mega) and mega.sid not in repr(mega)


def test_resume_after_logout_is_a_session_error(emu: MegaEmulator, mega: Mega) -> None:
    text = mega.dump_session()
    mega.logout()
    assert mega.sid is None
    with pytest.raises(SessionError) as info:
        Mega(api_url=emu.api_url).login(session=text)
    assert info.value.code == -15


def test_damaged_sessions(emu: MegaEmulator, tmp_path: Path) -> None:
    m = Mega(api_url=emu.api_url)
    for bad in ("{}", '{"format": "megafast-session-1"}', "{not json", {"format": "other"}):
        with pytest.raises(ValidationError):
            m.resume_session(bad)
    with pytest.raises(ValidationError):
        m.resume_session(tmp_path / "missing.json")


def test_anonymous_session_resumes(emu: MegaEmulator) -> None:
    m = Mega(api_url=emu.api_url).login()
    m.create_folder("anon-folder")
    again = Mega(api_url=emu.api_url).login(session=m.dump_session())
    assert again.find("anon-folder") is not None


# -- configuration ------------------------------------------------------------------------


def test_api_url_sources(emu: MegaEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEGAFAST_API_URL", raising=False)
    m = Mega()
    assert m.api_url == "https://g.api.mega.co.nz"
    assert (m.schema, m.domain) == ("https", "mega.co.nz")
    m.domain = "example.org"
    m.schema = "http"
    assert m.api_url == "http://g.api.example.org"
    assert Mega(options={"api_url": emu.api_url + "/"}).api_url == emu.api_url
    assert Mega(api_url=emu.api_url).api_url == emu.api_url
    monkeypatch.setenv("MEGAFAST_API_URL", emu.api_url)
    email = new_email()
    emu.create_account(email, "pw")
    assert Mega().login(email, "pw").get_user()["email"] == email


# -- the node tree ------------------------------------------------------------------------


@pytest.fixture
def populated(emu: MegaEmulator, creds: tuple[str, str], mega: Mega) -> dict[str, str]:
    email = creds[0]
    h: dict[str, str] = {}
    h["docs"] = emu.add_folder(email, "docs")
    h["sub"] = emu.add_folder(email, "sub", h["docs"])
    h["a.txt"] = emu.add_file(email, b"aaa", "a.txt", h["sub"])[0]
    h["docs/a.txt"] = emu.add_file(email, b"top", "a.txt", h["docs"])[0]
    h["other"] = emu.add_folder(email, "other")
    h["other/sub"] = emu.add_folder(email, "sub", h["other"])
    h["other/sub/b.txt"] = emu.add_file(email, b"b", "b.txt", h["other/sub"])[0]
    h["ünï 🎵.txt"] = emu.add_file(email, b"x", "ünï 🎵.txt")[0]
    mega.refresh()
    return h


def test_get_files_shape(mega: Mega, populated: dict[str, str]) -> None:
    files = mega.get_files()
    assert isinstance(files, dict)
    node = files[populated["docs/a.txt"]]
    assert node["h"] == populated["docs/a.txt"] and node["p"] == populated["docs"]
    assert node["t"] == 0 and node["s"] == 3 and node["a"]["n"] == "a.txt"
    assert len(node["key"]) == 8 and len(node["k"]) == 4
    assert node["iv"][2:] == (0, 0) and len(node["meta_mac"]) == 2
    assert node["k"] == tuple(node["key"][i] ^ node["key"][i + 4] for i in range(4))
    folder = files[populated["docs"]]
    assert folder["t"] == 1 and folder["k"] == folder["key"] and len(folder["k"]) == 4
    types = sorted(n["t"] for n in files.values())
    assert types.count(2) == types.count(3) == types.count(4) == 1
    files.clear()  # a copy: the client's tree is untouched
    assert mega.get_files()


def test_find(mega: Mega, populated: dict[str, str]) -> None:
    assert mega.find("docs") == (populated["docs"], mega.get_files()[populated["docs"]])
    assert mega.find("docs/sub/a.txt")[0] == populated["a.txt"]
    assert mega.find("/docs/sub/a.txt")[0] == populated["a.txt"]
    assert mega.find("docs/a.txt")[0] == populated["docs/a.txt"]
    assert mega.find("other/sub/b.txt")[0] == populated["other/sub/b.txt"]
    assert mega.find("docs/sub/b.txt") is None
    assert mega.find("nothing") is None
    assert mega.find("ünï 🎵.txt")[0] == populated["ünï 🎵.txt"]
    assert mega.find(Path("docs/sub"))[0] == populated["sub"]
    assert mega.find(handle=populated["docs"])["h"] == populated["docs"]
    assert mega.find(handle="zzzzzzzz") is None
    assert mega.find("a.txt")[1]["a"]["n"] == "a.txt"


def test_find_path_descriptor(mega: Mega, populated: dict[str, str]) -> None:
    assert mega.find_path_descriptor("docs/sub") == populated["sub"]
    assert mega.find_path_descriptor("other/sub") == populated["other/sub"]
    assert mega.find_path_descriptor("docs/sub/a.txt") is None  # a file is not a folder
    assert mega.find_path_descriptor("missing/sub") is None


def test_find_exclude_deleted(mega: Mega, populated: dict[str, str]) -> None:
    mega.delete(populated["other"])
    assert mega.find("b.txt")[0] == populated["other/sub/b.txt"]
    assert mega.find("b.txt", exclude_deleted=True) is None
    assert mega.find("Rubbish Bin/other/sub/b.txt")[0] == populated["other/sub/b.txt"]


def test_get_files_in_node_and_by_type(mega: Mega, populated: dict[str, str]) -> None:
    inside = mega.get_files_in_node(populated["docs"])
    assert set(inside) == {populated["sub"], populated["docs/a.txt"]}
    assert set(mega.get_files_in_node(mega.find("docs"))) == set(inside)
    assert mega.get_files_in_node(4) == {}
    assert mega.get_node_by_type(2)[0] == mega.root_id
    assert mega.get_node_by_type(4)[0] == mega.trashbin_id
    assert mega.get_node_by_type(3)[0] == mega.inbox_id
    assert mega.get_node_by_type(0)[1]["t"] == 0
    assert mega.get_node_by_type(99) is None
    with pytest.raises(NodeNotFoundError):
        mega.get_files_in_node("zzzzzzzz")


def test_refresh_sees_changes_by_others(
    emu: MegaEmulator, creds: tuple[str, str], mega: Mega
) -> None:
    mega.get_files()
    emu.add_folder(creds[0], "made-elsewhere")
    assert mega.find("made-elsewhere") is None  # fetched once
    mega.refresh()
    assert mega.find("made-elsewhere") is not None


def test_undecryptable_nodes_are_listed_as_such(
    emu: MegaEmulator, creds: tuple[str, str], mega: Mega
) -> None:
    owner = emu.account(creds[0]).handle
    root = emu.root_handle(creds[0])
    bad_key = emu.store.insert_node(
        owner, root, 1, "AAAAAAAAAAAAAAAAAAAAAA", "QUFBQUFBQUFBQUFBQUFBQQ"
    )
    with emu.store.transaction():
        pass
    good = emu.add_folder(creds[0], "fine")
    mega.refresh()
    assert bad_key not in mega.get_files() and good in mega.get_files()
    everything = mega.get_files(include_undecryptable=True)
    assert everything[bad_key]["undecryptable"] is True and everything[bad_key]["a"] is False
    with pytest.raises(WrongKeyError):
        mega.rename((bad_key, everything[bad_key]), "x")
    assert isinstance(WrongKeyError("x"), (IntegrityError, ValueError))


# -- changing the tree --------------------------------------------------------------------


def test_create_folder_is_mkdir_p(emu: MegaEmulator, creds: tuple[str, str], mega: Mega) -> None:
    made = mega.create_folder("new_folder/sub_folder/subsub_folder")
    assert list(made) == ["new_folder", "sub_folder", "subsub_folder"]
    assert mega.find("new_folder/sub_folder/subsub_folder")[0] == made["subsub_folder"]
    again = mega.create_folder("new_folder/sub_folder/other")
    assert again["new_folder"] == made["new_folder"] and again["sub_folder"] == made["sub_folder"]
    inside = mega.create_folder("x", dest=made["subsub_folder"])
    assert mega.find("new_folder/sub_folder/subsub_folder/x")[0] == inside["x"]
    # the server has them, with the right names
    assert emu.decrypt_attributes(made["subsub_folder"]) == {"n": "subsub_folder"}
    fresh = Mega(api_url=emu.api_url).login(*creds)
    assert fresh.find("new_folder/sub_folder/other")[0] == again["other"]
    with pytest.raises(ValidationError):
        mega.create_folder("///")


def test_create_folder_non_ascii(emu: MegaEmulator, mega: Mega) -> None:
    made = mega.create_folder("Ünïcødé/日本語")
    assert emu.decrypt_attributes(made["日本語"]) == {"n": "日本語"}
    assert mega.find("Ünïcødé/日本語")[0] == made["日本語"]


def test_rename_keeps_other_attributes(
    emu: MegaEmulator, creds: tuple[str, str], mega: Mega, tmp_path: Path
) -> None:
    src = tmp_path / "r.txt"
    src.write_bytes(b"rename me")
    up = mega.upload(src)
    h = up["f"][0]["h"]
    before = emu.decrypt_attributes(h)
    assert "c" in before
    assert mega.rename(mega.find("r.txt"), "renamed ✓.txt") == 0
    assert emu.decrypt_attributes(h) == {**before, "n": "renamed ✓.txt"}
    assert mega.find("r.txt") is None and mega.find("renamed ✓.txt")[0] == h
    assert Mega(api_url=emu.api_url).login(*creds).find("renamed ✓.txt")[0] == h
    with pytest.raises(ValidationError):
        mega.rename(mega.find("renamed ✓.txt"), "a/b")


def test_move_delete_destroy_empty_trash(
    emu: MegaEmulator, creds: tuple[str, str], mega: Mega
) -> None:
    f = mega.create_folder("src/inner")
    dst = mega.create_folder("dst")["dst"]
    assert mega.move(f["inner"], dst) == 0
    assert mega.find("dst/inner")[0] == f["inner"]
    assert emu.node(f["inner"])["parent"] == dst
    mega.move(f["inner"], mega.find("src"))
    assert mega.find("src/inner")[0] == f["inner"]
    mega.move(f["inner"], 2)
    assert mega.get_files()[f["inner"]]["p"] == mega.root_id
    mega.delete(f["inner"])
    assert mega.get_files()[f["inner"]]["p"] == mega.trashbin_id
    assert set(mega.get_files_in_node(4)) == {f["inner"]}
    mega.delete(f["src"])
    assert mega.empty_trash() == 0
    assert mega.get_files_in_node(4) == {}
    assert emu.node(f["inner"]) is None and emu.node(f["src"]) is None
    assert mega.empty_trash() is None
    assert mega.destroy(dst) == 0
    assert emu.node(dst) is None and mega.find("dst") is None
    with pytest.raises(NodeNotFoundError):
        mega.destroy(dst)
    with pytest.raises(NodeNotFoundError):
        mega.move(None, 4)  # type: ignore[arg-type]


def test_move_into_itself_is_a_request_error(mega: Mega) -> None:
    f = mega.create_folder("loop/inner")
    with pytest.raises(RequestError) as info:
        mega.move(f["loop"], f["inner"])
    assert info.value.code == -10


# -- links --------------------------------------------------------------------------------


def test_export_file_and_public_info(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "shared ✓.txt"
    src.write_bytes(b"public content")
    up = mega.upload(src)
    link = mega.export("shared ✓.txt")
    assert link.startswith("https://mega.nz/file/")
    assert mega.export(node_id=up["f"][0]["h"]) == link  # the same public handle
    assert mega.get_link(mega.find("shared ✓.txt")) == link
    assert mega.get_upload_link(up) == link
    anon = Mega(api_url=emu.api_url)
    assert anon.get_public_url_info(link) == {"size": 14, "name": "shared ✓.txt"}
    handle, key = Mega._parse_url(link).split("!")
    assert anon.get_public_file_info(handle, key) == {"size": 14, "name": "shared ✓.txt"}
    assert mega.get_id_from_public_handle(handle) == up["f"][0]["h"]
    assert mega.get_id_from_obj({"f": [{"h": ""}, {"h": "abc"}]}) == "abc"
    legacy = Mega({"api_url": emu.api_url, "legacy_links": True}).login(session=mega.dump_session())
    assert legacy.export("shared ✓.txt").startswith("https://mega.nz/#!")


def test_public_info_with_wrong_key_or_bad_link(
    emu: MegaEmulator, mega: Mega, tmp_path: Path
) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 100)
    mega.upload(src)
    link = mega.export("f.bin")
    handle = link.split("/file/")[1].split("#")[0]
    wrong = f"https://mega.nz/file/{handle}#" + "A" * 43
    with pytest.raises(WrongKeyError) as info:
        Mega(api_url=emu.api_url).get_public_url_info(wrong)
    assert isinstance(info.value, ValueError) and isinstance(info.value, IntegrityError)
    with pytest.raises(LinkError):
        Mega(api_url=emu.api_url).get_public_url_info(f"https://mega.nz/file/{handle}")
    with pytest.raises(LinkError):
        Mega(api_url=emu.api_url).get_public_url_info("https://example.com/nope")
    with pytest.raises(NodeNotFoundError):
        Mega(api_url=emu.api_url).get_public_url_info(link.replace(handle, "zzzzzzzz"))


def test_import_public_url(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "gift.txt"
    src.write_bytes(b"a gift")
    mega.upload(src)
    link = mega.export("gift.txt")
    other = Mega(api_url=emu.api_url).login()
    answer = other.import_public_url(link)
    h = answer["f"][0]["h"]
    assert other.find("gift.txt")[0] == h
    folder = other.create_folder("Documents")["Documents"]
    other.import_public_url(link, dest_node=other.find("Documents")[1], dest_name="renamed.txt")
    assert other.find("Documents/renamed.txt") is not None
    other.import_public_url(link, dest_node=folder, dest_name="again.txt")
    assert other.find("Documents/again.txt") is not None
    assert emu.stored_blob(h) == emu.stored_blob(mega.find("gift.txt")[0])


def test_delete_and_destroy_by_url(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    for name in ("d1.txt", "d2.txt"):
        (tmp_path / name).write_bytes(name.encode())
        mega.upload(tmp_path / name)
    l1, l2 = mega.export("d1.txt"), mega.export("d2.txt")
    h1, h2 = mega.find("d1.txt")[0], mega.find("d2.txt")[0]
    mega.delete_url(l1)
    assert mega.get_files()[h1]["p"] == mega.trashbin_id
    mega.destroy_url(l2)
    assert emu.node(h2) is None
    with pytest.raises(LinkError):
        mega.delete_url("https://mega.nz/file/nokey")


def test_get_folder_link_needs_export(mega: Mega) -> None:
    f = mega.create_folder("not-exported")
    with pytest.raises(ValidationError):
        mega.get_folder_link(mega.find("not-exported"))
    link = mega.export("not-exported")
    assert link.startswith("https://mega.nz/folder/")
    assert mega.get_folder_link(mega.find("not-exported")) == link
    assert mega.get_link((f["not-exported"], mega.find("not-exported")[1])) == link
    with pytest.raises(NodeNotFoundError):
        mega.export("missing/folder")
    with pytest.raises(ValidationError):
        mega.get_upload_link({"no": "f"})


# -- account ------------------------------------------------------------------------------


def test_quota_storage_balance(mega: Mega, tmp_path: Path) -> None:
    assert mega.get_quota() == 20 * 1024
    space = mega.get_storage_space()
    assert space == {"used": 0, "total": 20 * 1024**3}
    (tmp_path / "x").write_bytes(b"x" * 2048)
    mega.upload(tmp_path / "x")
    assert mega.get_storage_space(kilo=True)["used"] == 2
    assert mega.get_storage_space(giga=True)["total"] == 20
    assert mega.get_storage_space(mega=True)["total"] == 20 * 1024
    with pytest.raises(ValueError):
        mega.get_storage_space(kilo=True, mega=True)
    mega.get_balance()  # the emulator has no balance figure: no crash


def test_contacts_validate_email(mega: Mega) -> None:
    with pytest.raises(ValidationError):
        mega.add_contact("not-an-email")
    with pytest.raises(ValidationError):
        mega.remove_contact("")


def test_contacts_are_added_and_removed_on_the_server(emu: MegaEmulator, mega: Mega) -> None:
    friend = new_email()
    handle = emu.create_account(friend, "pw").handle

    def contacts() -> dict[str, int]:
        listing = mega._api_request({"a": "f", "c": 1})
        return {u["u"]: u["c"] for u in listing["u"]}

    assert handle not in contacts()
    assert mega.add_contact(friend) == 0
    assert contacts()[handle] == 1
    assert mega.remove_contact(friend) == 0
    assert handle not in contacts()
    with pytest.raises(NotFoundError):
        mega.add_contact(new_email())  # no such account
    with pytest.raises(RequestError):
        mega.add_contact(mega.get_user()["email"])  # yourself


# -- reliability --------------------------------------------------------------------------


def test_survives_eagain_storm(emu: MegaEmulator) -> None:
    email = new_email()
    emu.create_account(email, "pw", version=1)
    emu.set_faults(api_eagain_rate=0.5, seed=7)
    try:
        fast_backoff = {"backoff_base": 0.02, "backoff_cap": 0.2}
        m = Mega(fast_backoff, api_url=emu.api_url, retry_time=30).login(email, "pw")
        made = m.create_folder("a/b/c")
        m.refresh()
        assert m.find("a/b/c")[0] == made["c"]
        assert emu.fault_counts.get("api_eagain", 0) > 0
        assert m._api.stats["retries"] > 0
    finally:
        emu.clear_faults()
    # nothing was created twice: retries used the same id and body
    assert len([n for n in emu.nodes(email) if n["t"] == 1]) == 3


def test_hashcash_on_first_request() -> None:
    with MegaEmulator(hashcash_easiness=255) as e:
        email = new_email()
        e.create_account(email, "pw")
        m = Mega(api_url=e.api_url).login(email, "pw")
        assert m._api.stats["hashcash"] >= 1
        assert m.get_user()["email"] == email


def test_unreachable_server_gives_a_clear_error() -> None:
    m = Mega(api_url="http://127.0.0.1:9", retry_time=0.3)
    with pytest.raises(RequestError) as info:
        m.login("x@example.com", "pw")
    assert "cannot connect to http://127.0.0.1:9" in str(info.value)
    assert "pw" not in str(info.value)


def test_a_stopped_emulator_fails_fast_not_after_the_retry_time() -> None:
    from megafast.errors import ServerUnreachableError

    with MegaEmulator() as e:
        e.create_account("down@example.com", "pw")
        m = Mega({"connect_retry_time": 0.5}, api_url=e.api_url).login("down@example.com", "pw")
        url = e.api_url
    start = time.monotonic()
    with pytest.raises(ServerUnreachableError) as info:
        m.get_user()  # default retry_time: 120 s
    assert time.monotonic() - start < 20
    assert str(info.value).startswith(f"cannot connect to {url}")
    assert m.sid is not None and m.sid not in str(info.value)


def test_env_is_not_leaking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEGAFAST_API_URL", raising=False)
    assert os.environ.get("MEGAFAST_API_URL") is None


def test_no_secrets_in_logs(emu: MegaEmulator, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    email, password = new_email(), "Zq9-very-secret-pass"
    emu.create_account(email, password, version=1)
    emu.set_faults(api_eagain_rate=0.3, seed=11)
    try:
        with caplog.at_level(logging.DEBUG):
            m = Mega(api_url=emu.api_url).login(email, password)
            m.create_folder("logged")
            m.get_files()
    finally:
        emu.clear_faults()
    # megafast's own records (urllib3 logs request URLs, which carry the sid, at DEBUG)
    ours = [r for r in caplog.records if r.name.startswith("megafast.") and "testing" not in r.name]
    assert any(r.name == "megafast.api" for r in ours)
    text = "\n".join(r.getMessage() for r in ours)
    assert password not in text and m.sid not in text
    assert C_b64(m.master_key) not in text
    # urllib3 logs request URLs at DEBUG: the session id is redacted there too
    others = [r for r in caplog.records if "testing" not in r.name]
    assert any(r.name.startswith("urllib3") and "sid=<redacted>" in r.getMessage() for r in others)
    assert all(m.sid not in r.getMessage() for r in others)


def C_b64(words: tuple[int, ...]) -> str:
    import base64
    import struct

    return base64.urlsafe_b64encode(struct.pack(">4I", *words)).rstrip(b"=").decode()


def test_megapy_private_helpers_scripts_use(mega: Mega) -> None:
    assert mega._api_request({"a": "ug"})["u"]
    assert mega._api_request([{"a": "ug"}, {"a": "uq"}])["u"]
    with pytest.raises(RequestError) as info:
        mega._api_request({"a": "m", "n": "zzzzzzzz", "t": "zzzzzzzz"})
    assert info.value.code == -9
    assert mega._root_node_id() == mega.root_id
    node = mega.find("Cloud Drive")
    assert mega._node_data(node) is node[1] and mega._node_data(node[1]) is node[1]


class FlakyProxy(ScriptedAPI):
    """A ScriptedAPI in front of the emulator's /cs that answers every other request with
    HTTP 500, 503 or 429 (the emulator has no such fault for its API) and forwards the rest;
    ``seen`` holds (request id, body, status) of each request."""

    def __init__(self, target: str) -> None:
        import requests

        super().__init__()
        self.seen: list[tuple[str, bytes, int]] = []
        statuses = [500, 503, 429]
        upstream = requests.Session()

        def answer(record: dict) -> tuple[int, dict, str]:
            n = len(self.seen)
            if n % 2 == 0:
                status, text = statuses[(n // 2) % 3], "busy"
            else:
                r = upstream.post(
                    target + record["path"],
                    params=record["params"],
                    data=record["body"],
                    timeout=30,
                )
                status, text = r.status_code, r.content.decode()
            self.seen.append((record["params"]["id"], record["body"], status))
            return status, {}, text

        self.default = answer


def test_survives_http_5xx_and_429_on_every_other_request(
    emu: MegaEmulator, tmp_path: Path
) -> None:
    email = new_email()
    emu.create_account(email, "pw", version=2)
    proxy = FlakyProxy(emu.api_url)
    try:
        m = Mega(api_url=proxy.url, retry_time=30).login(email, "pw")
        made = m.create_folder("x/y")
        (tmp_path / "f.bin").write_bytes(b"payload" * 1000)
        m.upload(tmp_path / "f.bin", made["y"])
        assert m.download(m.find("x/y/f.bin"), tmp_path, "g.bin").read_bytes() == b"payload" * 1000
    finally:
        proxy.close()
    failed = [(i, b) for i, b, s in proxy.seen if s != 200]
    assert len(failed) >= 5
    # each failed try was sent again with the same id and the same body
    passed = {(i, b) for i, b, s in proxy.seen if s == 200}
    for request_id, body in failed:
        assert (request_id, body) in passed
    assert len([n for n in emu.nodes(email) if n["t"] == 1]) == 2


def test_survives_http_errors_from_the_emulators_api_fault(
    emu: MegaEmulator, tmp_path: Path
) -> None:
    """The same as above with the emulator's own knob, including answers lost after the
    batch ran: the retry (same id) gets the kept answer, so nothing is done twice."""
    email = new_email()
    emu.create_account(email, "pw", version=2)
    fast = {"backoff_base": 0.01, "backoff_cap": 0.05}
    m = Mega(fast, api_url=emu.api_url, retry_time=30).login(email, "pw")
    try:
        for after in (False, True):
            emu.set_faults(api_error_rate=0.5, seed=3, api_error_after_processing=after)
            made = m.create_folder(f"k{int(after)}/a/b")
            src = tmp_path / f"f{int(after)}.bin"
            src.write_bytes(b"data" * 5000)
            m.upload(src, made["b"])
            m.refresh()
            found = m.find(f"k{int(after)}/a/b/{src.name}")
            assert found is not None
            assert m.download(found, tmp_path, f"back{int(after)}.bin").read_bytes() == (
                b"data" * 5000
            )
            assert emu.fault_counts.get("api_error", 0) >= 3
            emu.clear_faults()
    finally:
        emu.clear_faults()
    stats = emu.stats()
    assert stats["api_answers_lost"] >= 1 and stats["api_replayed"] >= 1
    # no folder or file was made twice
    names = [emu.decrypt_attributes(n["h"])["n"] for n in emu.nodes(email) if n["t"] in (0, 1)]
    assert sorted(names) == sorted(["k0", "a", "b", "f0.bin", "k1", "a", "b", "f1.bin"])


def test_hashcash_at_mega_easiness() -> None:
    """Easiness 192 (what MEGA sent in 2025): a few seconds with the native solver."""
    with MegaEmulator(hashcash_easiness=192) as e:
        email = new_email()
        e.create_account(email, "pw")
        m = Mega(api_url=e.api_url).login(email, "pw")
        assert m._api.stats["hashcash"] == 1
        assert e.stats()["api_challenged"] >= 1


@pytest.mark.parametrize("version", [1, 2])
def test_non_ascii_email(emu: MegaEmulator, version: int) -> None:
    email = f"jürgen-{secrets.token_hex(3)}@exämple.com"
    emu.create_account(email, "Pässwort", version=version)
    m = Mega(api_url=emu.api_url).login(email.upper(), "Pässwort")
    assert m.get_user()["email"] == email
