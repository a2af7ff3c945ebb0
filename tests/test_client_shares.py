"""Shares and public folders end to end against the emulator: outgoing and incoming shares
(share keys from ``ok`` and from ``sk``, short AES and long RSA), public folder listing and
downloads (whole folder, one file, a sub-folder), wrong keys."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast.errors import (
    LinkError,
    NodeNotFoundError,
    NotFoundError,
    RequestError,
    ValidationError,
    WrongKeyError,
)
from megafast.testing import MegaEmulator
from megafast.testing import _crypto as C


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


def account(emu: MegaEmulator, http: Any = None) -> tuple[str, Mega]:
    email = f"s-{secrets.token_hex(5)}@example.com"
    emu.create_account(email, "pw", version=2)
    return email, Mega(api_url=emu.api_url, http=http).login(email, "pw")


def seed_share(
    emu: MegaEmulator, owner: str, folder: str, to: str, *, rsa: bool, r: int = 0
) -> None:
    """Share ``folder`` of ``owner`` with the account ``to`` the way MEGA's web client does:
    a share key under the owner's master key (``ok``), every node below re-keyed under the
    share key, and the share key for the recipient RSA-encrypted (or, for old shares,
    AES-encrypted under the recipient's master key)."""
    store = emu.store
    owner_row = store.user_by_email(owner)
    to_row = store.user_by_email(to)
    mk = emu.account(owner).master_key
    share_key = secrets.token_bytes(16)
    if rsa:
        n, e = C.decode_mpis(C.b64decode(to_row["pubk"]), 2)
        nbytes = (n.bit_length() + 7) // 8
        m = int.from_bytes(share_key + secrets.token_bytes(nbytes - 2 - 16), "big")
        sk = C.b64encode(C.encode_mpi(pow(m, e, n), nbytes))
    else:
        sk = C.b64encode(C.ecb_encrypt(emu.account(to).master_key, share_key))
    with store.transaction():
        store.execute(
            "INSERT INTO share_keys(h, owner, ok, ha) VALUES(?,?,?,?)",
            folder,
            owner_row["handle"],
            C.b64encode(C.ecb_encrypt(mk, share_key)),
            C.b64encode(C.ecb_encrypt(mk, (folder + folder).encode())),
        )
        for row in store.subtree(folder):
            key = C.ecb_decrypt(mk, C.b64decode(row["k"]))
            store.execute(
                "INSERT OR REPLACE INTO node_keys(h, share, k) VALUES(?,?,?)",
                row["h"],
                folder,
                C.b64encode(C.ecb_encrypt(share_key, key)),
            )
        store.execute(
            "INSERT INTO shares(h, u, r, k, ts) VALUES(?,?,?,?,?)",
            folder,
            to_row["handle"],
            r,
            sk,
            int(time.time()),
        )


@pytest.mark.parametrize("rsa", [True, False])
def test_incoming_and_outgoing_shares(emu: MegaEmulator, tmp_path: Path, rsa: bool) -> None:
    owner, alice = account(emu)
    to, bob = account(emu)
    made = alice.create_folder("Team ✓/inner")
    src = tmp_path / "plan.txt"
    src.write_bytes(b"the plan")
    alice.upload(src, made["inner"])
    seed_share(emu, owner, made["Team ✓"], to, rsa=rsa)

    bob.refresh()
    found = bob.find("Team ✓")
    assert found is not None and found[0] == made["Team ✓"]
    assert found[1]["su"] == emu.account(owner).handle and "sk" in found[1]
    plan = bob.find("Team ✓/inner/plan.txt")
    assert plan is not None and plan[1]["a"]["n"] == "plan.txt"
    assert bob.find("plan.txt")[0] == plan[0]
    assert bob.download(plan, tmp_path, "got.txt").read_bytes() == b"the plan"
    assert made["Team ✓"] in bob.shared_keys
    # read-only: the owner's node cannot be renamed by the recipient
    with pytest.raises(RequestError):
        bob.rename(plan, "mine.txt")

    alice.refresh()
    shared = alice.find("Team ✓")[1]
    assert "shared_folder_key" in shared and len(shared["shared_folder_key"]) == 4
    assert alice.find("Team ✓/inner/plan.txt") is not None


def test_incoming_share_with_unusable_key_is_listed_as_undecryptable(emu: MegaEmulator) -> None:
    owner, alice = account(emu)
    to, bob = account(emu)
    folder = alice.create_folder("broken")["broken"]
    seed_share(emu, owner, folder, to, rsa=False)
    emu.store.execute("UPDATE shares SET k=? WHERE h=?", C.b64encode(b"\0" * 16), folder)
    bob.refresh()
    assert bob.find("broken") is None
    listed = bob.get_files(include_undecryptable=True)
    assert listed[folder]["undecryptable"] is True


@pytest.fixture
def public_folder(emu: MegaEmulator, tmp_path: Path) -> dict[str, object]:
    _, m = account(emu)
    made = m.create_folder("Album 🎵/Disc 1")
    data = {}
    for name, size, parent in (
        ("cover.jpg", 70_000, made["Album 🎵"]),
        ("01 – intro.flac", 300_000, made["Disc 1"]),
        ("02 – outro.flac", 5, made["Disc 1"]),
    ):
        src = tmp_path / "src"
        content = secrets.token_bytes(size)
        src.write_bytes(content)
        answer = m.upload(src, parent, name)
        data[name] = (answer["f"][0]["h"], content)
    link = m.export("Album 🎵")
    return {"link": link, "files": data, "folders": made, "owner": m}


def test_public_folder_listing_and_info(emu: MegaEmulator, public_folder: dict) -> None:
    anon = Mega(api_url=emu.api_url)  # not logged in
    nodes = anon.get_public_folder(public_folder["link"])
    names = sorted(n["a"]["n"] for n in nodes.values())
    assert names == sorted(
        ["Album 🎵", "Disc 1", "cover.jpg", "01 – intro.flac", "02 – outro.flac"]
    )
    assert all(not n.get("undecryptable") for n in nodes.values())
    info = anon.get_public_url_info(public_folder["link"])
    assert info == {"size": 370_005, "name": "Album 🎵", "files": 3, "folders": 2}


def test_public_folder_download_whole(
    emu: MegaEmulator, public_folder: dict, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[int, int]] = []
    root = Mega(api_url=emu.api_url).download_url(
        public_folder["link"], out, progress=lambda d, t: seen.append((d, t))
    )
    assert root == out / "Album 🎵"
    files = public_folder["files"]
    assert (root / "cover.jpg").read_bytes() == files["cover.jpg"][1]
    assert (root / "Disc 1" / "01 – intro.flac").read_bytes() == files["01 – intro.flac"][1]
    assert (root / "Disc 1" / "02 – outro.flac").read_bytes() == files["02 – outro.flac"][1]
    assert seen[-1] == (370_005, 370_005)


def test_public_folder_one_item(emu: MegaEmulator, public_folder: dict, tmp_path: Path) -> None:
    base = public_folder["link"]
    h, content = public_folder["files"]["01 – intro.flac"]
    anon = Mega(api_url=emu.api_url)
    got = anon.download_url(f"{base}/file/{h}", tmp_path)
    assert got == tmp_path / "01 – intro.flac" and got.read_bytes() == content
    ph, key = base.split("/folder/")[1].split("#")
    legacy = f"https://mega.nz/#F!{ph}!{key}!{h}"
    assert anon.download_url(legacy, tmp_path, "legacy.flac").read_bytes() == content
    disc = public_folder["folders"]["Disc 1"]
    sub = anon.download_url(f"{base}/folder/{disc}", tmp_path)
    assert sub == tmp_path / "Disc 1" and (sub / "02 – outro.flac").exists()
    listing = anon.get_public_folder(f"{base}/folder/{disc}")
    assert {n["a"]["n"] for n in listing.values()} == {
        "Disc 1",
        "01 – intro.flac",
        "02 – outro.flac",
    }
    with pytest.raises(NodeNotFoundError):
        anon.download_url(f"{base}/file/zzzzzzzz", tmp_path)


def test_public_folder_wrong_key_and_bad_links(
    emu: MegaEmulator, public_folder: dict, tmp_path: Path
) -> None:
    base = public_folder["link"]
    wrong = base.split("#")[0] + "#" + "A" * 22
    anon = Mega(api_url=emu.api_url)
    with pytest.raises(WrongKeyError):
        anon.get_public_folder(wrong)
    with pytest.raises(WrongKeyError):
        anon.download_url(wrong, tmp_path)
    with pytest.raises(LinkError):
        anon.get_public_folder(base.split("#")[0])
    with pytest.raises(LinkError):
        anon.get_public_folder("https://mega.nz/file/AAAAAAAA#" + "A" * 43)
    with pytest.raises(RequestError):
        anon.get_public_folder("https://mega.nz/folder/zzzzzzzz#" + "A" * 22)


def test_export_folder_twice_gives_the_same_link(public_folder: dict) -> None:
    owner: Mega = public_folder["owner"]
    assert owner.export("Album 🎵") == public_folder["link"]
    owner.refresh()
    assert owner.export("Album 🎵") == public_folder["link"]


def test_stream_a_file_inside_a_public_folder(emu: MegaEmulator, public_folder: dict) -> None:
    import io

    h, content = public_folder["files"]["cover.jpg"]
    buf = io.BytesIO()
    anon = Mega(api_url=emu.api_url)
    assert anon.download_to_fileobj(f"{public_folder['link']}/file/{h}", buf) == len(content)
    assert buf.getvalue() == content
    with pytest.raises(ValueError):
        anon.download_to_fileobj(public_folder["link"], io.BytesIO())  # a folder


def test_export_a_folder_already_shared_with_a_user(emu: MegaEmulator, tmp_path: Path) -> None:
    owner, alice = account(emu)
    to, _ = account(emu)
    made = alice.create_folder("both")
    (tmp_path / "f.txt").write_bytes(b"shared and public")
    alice.upload(tmp_path / "f.txt", made["both"])
    seed_share(emu, owner, made["both"], to, rsa=True)
    alice.refresh()
    share_key = alice.find("both")[1]["shared_folder_key"]
    link = alice.export("both")
    assert link.endswith(C.b64encode(b"".join(w.to_bytes(4, "big") for w in share_key)))
    anon = Mega(api_url=emu.api_url)
    got = anon.download_url(link, tmp_path)
    assert (got / "f.txt").read_bytes() == b"shared and public"


def test_new_nodes_in_an_exported_folder_are_readable_by_link_holders(
    emu: MegaEmulator, tmp_path: Path
) -> None:
    _, m = account(emu)
    folder = m.create_folder("grows")["grows"]
    link = m.export("grows")
    (tmp_path / "late.txt").write_bytes(b"added after export")
    m.upload(tmp_path / "late.txt", folder)
    m.create_folder("grows/late-folder")
    nodes = Mega(api_url=emu.api_url).get_public_folder(link)
    names = {n["a"]["n"] for n in nodes.values() if not n.get("undecryptable")}
    assert names == {"grows", "late.txt", "late-folder"}


def recording_account(emu: MegaEmulator) -> tuple[Mega, list[list[dict]]]:
    """A new account logged in with a client that records every /cs batch it sends."""
    import json

    from megafast._wire.api import new_http_session

    sent: list[list[dict]] = []
    http = new_http_session()
    http.hooks["response"].append(lambda r, *a, **k: sent.append(json.loads(r.request.body)))
    return account(emu, http)[1], sent


def first_sent(sent: list[list[dict]], command: str) -> dict:
    """The first ``command`` (its ``a``) among the recorded batches."""
    return next(c for batch in sent for c in batch if isinstance(c, dict) and c.get("a") == command)


def test_new_nodes_under_a_share_carry_their_key_for_it(emu: MegaEmulator, tmp_path: Path) -> None:
    m, sent = recording_account(emu)
    m.create_folder("top/shared")
    m.export("top/shared")
    share_key = bytes(
        b"".join(w.to_bytes(4, "big") for w in m.find("top/shared")[1]["shared_folder_key"])
    )
    (tmp_path / "n.txt").write_bytes(b"new")
    sent.clear()
    answer = m.upload(tmp_path / "n.txt", m.find("top/shared")[0])
    put = first_sent(sent, "p")
    shares, items, triples = put["cr"]
    assert shares == [m.find("top/shared")[0]] and items == [put["n"][0]["h"]]
    assert triples[:2] == [0, 0]
    node_key = C.ecb_decrypt(share_key, C.b64decode(triples[2]))
    assert node_key == bytes(b"".join(w.to_bytes(4, "big") for w in m.find("n.txt")[1]["key"]))
    assert answer["f"][0]["h"] == m.find("n.txt")[0]
    sent.clear()
    m.create_folder("top/plain")  # not under a share: no cr
    put = first_sent(sent, "p")
    assert "cr" not in put


def test_moving_into_an_exported_folder_shares_the_moved_keys(
    emu: MegaEmulator, tmp_path: Path
) -> None:
    m, sent = recording_account(emu)
    made = m.create_folder("outside/deeper")
    (tmp_path / "x.txt").write_bytes(b"moved in")
    m.upload(tmp_path / "x.txt", made["deeper"])
    pub = m.create_folder("public")["public"]
    link = m.export("public")
    share_key = C.b64decode(link.split("#")[1])
    sent.clear()
    m.move(made["outside"], pub)
    move = first_sent(sent, "m")
    shares, items, triples = move["cr"]
    assert shares == [pub] and set(items) == {made["outside"], made["deeper"], m.find("x.txt")[0]}
    files = m.get_files()
    for i in range(0, len(triples), 3):
        si, ni, enc = triples[i : i + 3]
        assert si == 0
        want = b"".join(w.to_bytes(4, "big") for w in files[items[ni]]["key"])
        assert C.ecb_decrypt(share_key, C.b64decode(enc)) == want
    sent.clear()
    m.move(made["outside"], pub)  # already under that share: no cr
    move = first_sent(sent, "m")
    assert "cr" not in move
    assert m.find("public/outside/deeper/x.txt") is not None


def test_share_a_folder_with_another_user_end_to_end(emu: MegaEmulator, tmp_path: Path) -> None:
    owner, alice = account(emu)
    to, bob = account(emu)
    made = alice.create_folder("Team/inner")
    (tmp_path / "a.txt").write_bytes(b"top file")
    (tmp_path / "b.bin").write_bytes(secrets.token_bytes(300_000))
    alice.upload(tmp_path / "a.txt", made["Team"])
    alice.upload(tmp_path / "b.bin", made["inner"])

    answer = alice.share(made["Team"], to.upper(), access=1)  # emails are case-insensitive
    assert answer == {"r": [0]}
    assert emu.stats()["commands"].get("uk", 0) >= 1
    # the share key went to bob RSA-encrypted (long sk), never as plaintext
    row = emu.store.one(
        "SELECT k FROM shares WHERE h=? AND u=?", made["Team"], bob._creds.user_handle
    )
    assert row is not None and len(C.b64decode(row["k"])) > 64

    bob.refresh()
    team = bob.find("Team")
    assert team is not None and team[1]["su"] == alice._creds.user_handle
    assert bob.shared_keys[made["Team"]] == alice.shared_keys[made["Team"]]
    out = tmp_path / "bob"
    out.mkdir()
    assert bob.download(bob.find("Team/a.txt"), out).read_bytes() == b"top file"
    got = bob.download(bob.find("Team/inner/b.bin"), out)
    assert got.read_bytes() == (tmp_path / "b.bin").read_bytes()

    # read-write: bob's upload into the share is readable by alice (keys under the share)
    (tmp_path / "from-bob.txt").write_bytes(b"hello alice")
    bob.upload(tmp_path / "from-bob.txt", made["inner"])
    alice.refresh()
    back = alice.download(alice.find("Team/inner/from-bob.txt"), out, "seen-by-alice.txt")
    assert back.read_bytes() == b"hello alice"

    # a subtree moved into the share later (m with cr) is readable by bob
    later = alice.create_folder("later")["later"]
    (tmp_path / "late.txt").write_bytes(b"moved in")
    alice.upload(tmp_path / "late.txt", later)
    alice.move(later, made["inner"])
    bob.refresh()
    late = bob.find("Team/inner/later/late.txt")
    assert late is not None and late[1]["a"]["n"] == "late.txt"
    assert bob.download(late, out).read_bytes() == b"moved in"

    # the same share key serves a public link too
    link = alice.export(node_id=made["Team"])
    assert alice.shared_keys[made["Team"]] == bob.shared_keys[made["Team"]]
    public = Mega(api_url=emu.api_url).get_public_folder(link)
    assert {n["a"]["n"] for n in public.values()} >= {"a.txt", "b.bin", "late.txt", "later"}

    alice.unshare(made["Team"], to)
    bob.refresh()
    assert bob.find("Team") is None and bob.find("a.txt") is None


def test_share_errors(emu: MegaEmulator, tmp_path: Path) -> None:
    _, alice = account(emu)
    folder = alice.create_folder("f")["f"]
    (tmp_path / "x").write_bytes(b"x")
    file_h = alice.upload(tmp_path / "x", folder)["f"][0]["h"]
    with pytest.raises(NotFoundError):
        alice.share(folder, "nobody@example.com")
    with pytest.raises(ValidationError):
        alice.share(file_h, emu_email(emu))
    with pytest.raises(ValidationError):
        alice.share(folder, "not-an-email")
    for bad in (3, -1, True, "1"):
        with pytest.raises(ValidationError):
            alice.share(folder, "x@example.com", access=bad)  # type: ignore[arg-type]
    # an ephemeral account has no public key: MEGA's -9
    eph = emu.create_ephemeral_account()
    with pytest.raises(NotFoundError):
        alice.share(folder, f"{eph.handle}@nowhere.example")


def emu_email(emu: MegaEmulator) -> str:
    email, _ = account(emu)
    return email


def test_move_into_an_exported_folder_is_readable_through_the_link(
    emu: MegaEmulator, tmp_path: Path
) -> None:
    _, alice = account(emu)
    shared = alice.create_folder("pub")["pub"]
    link = alice.export(node_id=shared)
    outside = alice.create_folder("outside/deeper")
    (tmp_path / "d.txt").write_bytes(b"deep")
    alice.upload(tmp_path / "d.txt", outside["deeper"])
    alice.move(outside["outside"], shared)
    listed = Mega(api_url=emu.api_url).get_public_folder(link)
    names = {n["a"]["n"]: n for n in listed.values() if isinstance(n.get("a"), dict)}
    assert {"outside", "deeper", "d.txt"} <= set(names)
    out = tmp_path / "o"
    out.mkdir()
    reader = Mega(api_url=emu.api_url)
    got = reader.download_folder_url(link, out)
    assert (Path(got) / "outside" / "deeper" / "d.txt").read_bytes() == b"deep"
