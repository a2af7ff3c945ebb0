"""mega.py 1.0.8, a client written against the live service (not by us), against the emulator.

Only mega.py's API URL is changed: a shim in front of its ``requests`` module rewrites
``https://g.api.mega.co.nz/cs`` to the emulator; everything else (its crypto, its transfers
to the URLs the emulator hands out) is mega.py's own.

mega.py computes a wrong MAC when a file's last MAC chunk is 1 to 16 bytes long, and crashes
on empty files, so the sizes here avoid both (every size below ends in a chunk > 16 bytes).
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytest.importorskip("tenacity")
mega_mod = pytest.importorskip("mega.mega")

from megafast import crypto as mc  # noqa: E402
from megafast.testing import MegaEmulator  # noqa: E402
from support.raw_client import RawClient  # noqa: E402

LIVE_API = "https://g.api.mega.co.nz/cs"


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        e.create_account("v1@example.com", "old password", version=1)
        e.create_account("v2@example.com", "new pässword", version=2)
        e.create_account("other@example.com", "pw", version=2)
        yield e


@pytest.fixture(autouse=True)
def point_megapy_at(emu: MegaEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    def post(url: str, *args, **kwargs):
        if url == LIVE_API:
            url = emu.api_url + "/cs"
        return requests.post(url, *args, **kwargs)

    shim = types.SimpleNamespace(post=post, get=requests.get)
    monkeypatch.setattr(mega_mod, "requests", shim)


def _login(email: str, password: str):
    return mega_mod.Mega().login(email, password)


ACCOUNTS = [("v1@example.com", "old password"), ("v2@example.com", "new pässword")]


@pytest.mark.parametrize(("email", "password"), ACCOUNTS)
def test_login_user_and_quota(email: str, password: str) -> None:
    m = _login(email, password)
    assert m.get_user()["email"] == email
    assert m.get_quota() == 20 * 1024  # MB
    space = m.get_storage_space()
    assert space["total"] == 20 * 1024**3 and space["used"] >= 0
    assert m.root_id and m.inbox_id and m.trashbin_id


def test_wrong_password_is_refused() -> None:
    with pytest.raises(mega_mod.RequestError):
        _login("v2@example.com", "wrong")


def test_anonymous_login() -> None:
    m = mega_mod.Mega().login()
    assert m.sid and m.get_user()["u"]


@pytest.mark.parametrize(("email", "password"), ACCOUNTS)
def test_listing_of_seeded_nodes(emu: MegaEmulator, email: str, password: str) -> None:
    folder = emu.add_folder(email, f"seeded-{email}")
    h, _ = emu.add_file(email, os.urandom(5000), "seeded.txt", folder)
    m = _login(email, password)
    files = m.get_files()
    assert files[folder]["a"]["n"] == f"seeded-{email}" and files[folder]["t"] == 1
    assert files[h]["a"]["n"] == "seeded.txt" and files[h]["p"] == folder and files[h]["s"] == 5000
    assert m.find(f"seeded-{email}/seeded.txt")[0] == h


@pytest.mark.parametrize("size", [1000, 131_072 + 100, 1_000_000])
def test_upload_and_download_with_the_mac_check(
    emu: MegaEmulator, tmp_path: Path, size: int
) -> None:
    m = _login("v2@example.com", "new pässword")
    data = os.urandom(size)
    src = tmp_path / f"up-{size}.bin"
    src.write_bytes(data)
    res = m.upload(str(src))
    handle = res["f"][0]["h"]
    # the emulator stored exactly what mega.py sent: its key decrypts the stored bytes
    packed = mc.str_to_a32(emu.node_key(handle))
    cipher = mc.FileCipher(packed, size=size)
    assert cipher.decrypt(emu.stored_blob(handle)) == data
    cipher.verify()
    out = m.download(m.find(src.name), str(tmp_path), f"down-{size}.bin")
    assert Path(out).read_bytes() == data


def test_download_of_a_file_seeded_by_the_emulator(emu: MegaEmulator, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 777)
    h, _ = emu.add_file("v1@example.com", data, "seeded.bin")
    m = _login("v1@example.com", "old password")
    out = m.download((h, m.get_files()[h]), str(tmp_path))  # mega.py checks the MAC
    assert Path(out).read_bytes() == data and Path(out).name == "seeded.bin"


def test_folders_rename_move_delete(tmp_path: Path) -> None:
    m = _login("v1@example.com", "old password")
    made = m.create_folder("projects/2024")
    assert set(made) == {"projects", "2024"}
    src = tmp_path / "notes.txt"
    src.write_bytes(b"n" * 3000)
    up = m.upload(str(src), made["2024"])
    h = up["f"][0]["h"]
    m.rename(m.find("notes.txt"), "renamed.txt")
    assert m.get_files()[h]["a"]["n"] == "renamed.txt"
    m.move(h, made["projects"])
    assert m.get_files()[h]["p"] == made["projects"]
    m.delete(h)  # to the Rubbish Bin
    assert m.get_files()[h]["p"] == m.trashbin_id
    assert h in m.get_files_in_node(4)
    m.destroy(h)
    assert h not in m.get_files()


def test_export_and_public_download(emu: MegaEmulator, tmp_path: Path) -> None:
    m = _login("v2@example.com", "new pässword")
    data = os.urandom(300_000)
    src = tmp_path / "public.bin"
    src.write_bytes(data)
    up = m.upload(str(src))
    link = m.get_upload_link(up)
    assert link.startswith("https://mega.co.nz/#!")
    assert m.export("public.bin") == link  # the same public handle again
    info = mega_mod.Mega().get_public_url_info(link)
    assert info == {"size": 300_000, "name": "public.bin"}
    out = mega_mod.Mega().download_url(link, str(tmp_path), "fetched.bin")
    assert Path(out).read_bytes() == data
    # another account imports it
    other = _login("other@example.com", "pw")
    other.import_public_url(link, dest_name="imported.bin")
    found = other.find("imported.bin")
    assert found[1]["s"] == 300_000
    assert Path(other.download(found, str(tmp_path))).read_bytes() == data


def test_export_of_a_folder_is_a_working_public_folder(emu: MegaEmulator) -> None:
    email = "v1@example.com"
    folder = emu.add_folder(email, "shared-by-megapy")
    h, packed = emu.add_file(email, b"inside" * 100, "inside.txt", folder)
    m = _login(email, "old password")
    link = m.export(node_id=folder)
    assert link.startswith("https://mega.co.nz/#F!")
    ph, key_b64 = link.split("#F!")[1].split("!")
    share_key = mc.base64_to_a32(key_b64)
    # a visitor with only the link sees the folder (mega.py shared only the folder's own key,
    # as its export does; the visitor can read the folder's name with the link key)
    visitor = RawClient(emu.api_url)
    nodes = {n["h"]: n for n in visitor.one({"a": "f", "c": 1, "r": 1, "ca": 1}, n=ph)["f"]}
    assert set(nodes) == {folder, h}
    assert visitor.name(nodes[folder], share_key) == "shared-by-megapy"
    assert m.export(node_id=folder) == link  # exporting again finds the same link
