"""File versions and server-side copies in the emulator (PROTOCOL Part 2, §4-§5), over raw
HTTP: ``p`` with ``ov``/``vb``, ``f2``, ``d`` with and without ``v:1``, ``dv``, and ``p``
entries naming an existing node (no upload)."""

from __future__ import annotations

from megafast import crypto as mc
from megafast.testing import MegaEmulator
from test_emulator_support import RawClient, logged_in


def put_version(c: RawClient, data: bytes, name: str, parent: str, ov: str, **extra: int) -> dict:
    """Upload ``data`` as a new version of ``ov``."""
    url = c.one({"a": "u", "s": len(data)})["p"]
    cipher = mc.FileCipher(mc.random_key(4), mc.random_key(2), size=len(data))
    token = c.http.post(f"{url}/0", data=cipher.encrypt(data), timeout=30).text
    node = c.new_node(name, cipher.packed_key(), t=0, h=token)
    res = c.one({"a": "p", "t": parent, "n": [{**node, "ov": ov, **extra}]})
    assert isinstance(res, dict), res
    return res["f"][0]


def test_versions_are_listed_in_f2_under_the_newer_file(emu: MegaEmulator) -> None:
    c = logged_in(emu, "v@example.com")
    folder = c.mkdir("docs")
    v1, _, _ = c.upload(b"one", "a.txt", folder)
    v2 = put_version(c, b"two!", "a.txt", folder, v1["h"])
    v3 = put_version(c, b"three", "a.txt", folder, v2["h"])
    listing = c.files()
    current = {n["h"]: n for n in listing["f"]}
    old = {n["h"]: n for n in listing["f2"]}
    assert v3["h"] in current and v1["h"] not in current and v2["h"] not in current
    assert old[v2["h"]]["p"] == v3["h"] and old[v1["h"]]["p"] == v2["h"]
    assert current[v3["h"]]["p"] == folder
    # the newest version can be removed alone: the next one takes its place
    assert c.one({"a": "d", "n": v3["h"], "v": 1}) == 0
    listing = c.files()
    current = {n["h"]: n for n in listing["f"]}
    assert current[v2["h"]]["p"] == folder
    assert [n["h"] for n in listing["f2"]] == [v1["h"]]
    # d without v removes the file and every older version
    assert c.one({"a": "d", "n": v2["h"]}) == 0
    listing = c.files()
    assert "f2" not in listing and v1["h"] not in {n["h"] for n in listing["f"]}
    assert c.one({"a": "g", "n": v1["h"], "g": 1}) == -9


def test_vb_0_replaces_and_dv_removes_every_old_version(emu: MegaEmulator) -> None:
    c = logged_in(emu, "vb@example.com")
    root = c.root()
    a1, _, _ = c.upload(b"a1", "a", root)
    b1, _, _ = c.upload(b"b1", "b", root)
    a2 = put_version(c, b"a2", "a", root, a1["h"], vb=0)
    b2 = put_version(c, b"b2", "b", root, b1["h"])
    listing = c.files()
    handles = {n["h"] for n in listing["f"]}
    assert a2["h"] in handles and a1["h"] not in handles
    assert [n["h"] for n in listing["f2"]] == [b1["h"]]
    assert c.one({"a": "dv"}) == 0
    listing = c.files()
    assert "f2" not in listing and {a2["h"], b2["h"]} <= {n["h"] for n in listing["f"]}


def test_ov_must_name_a_file_in_the_same_folder(emu: MegaEmulator) -> None:
    c = logged_in(emu, "ov@example.com")
    folder = c.mkdir("x")
    old, _, _ = c.upload(b"old", "a", folder)
    url = c.one({"a": "u", "s": 3})["p"]
    token = c.http.post(f"{url}/0", data=b"new", timeout=30).text
    node = c.new_node("a", mc.random_key(8), t=0, h=token)
    assert c.one({"a": "p", "t": c.root(), "n": [{**node, "ov": old["h"]}]}) == -11
    assert c.one({"a": "p", "t": folder, "n": [{**node, "ov": folder}]}) == -11
    assert c.one({"a": "p", "t": folder, "n": [{**node, "ov": old["h"], "vb": 7}]}) == -2


def test_version_packets(emu: MegaEmulator) -> None:
    c = logged_in(emu, "vp@example.com")
    v1, _, _ = c.upload(b"one", "a", c.root())
    sn = c.files()["sn"]
    v2 = put_version(c, b"two", "a", c.root(), v1["h"])
    got = c.http.post(f"{emu.api_url}/sc", params={"sn": sn, "sid": c.sid}, timeout=30).json()
    t = got["a"][0]["t"]
    assert [n["h"] for n in t["f"]] == [v2["h"]]
    assert [(n["h"], n["p"]) for n in t["f2"]] == [(v1["h"], v2["h"])]


def test_server_side_copy_of_a_tree_moves_no_bytes(emu: MegaEmulator) -> None:
    c = logged_in(emu, "copy@example.com")
    src = c.mkdir("src")
    sub = c.mkdir("sub", src)
    f, packed, _ = c.upload(b"payload" * 100, "f.bin", sub)
    dest = c.mkdir("dest")
    emu.reset_stats()
    # the SDK's shape: the root entry has no p, the others name their source parent
    entries = [
        {**c.new_node("src", mc.random_key(4)), "h": src},
        {**c.new_node("sub", mc.random_key(4)), "h": sub, "p": src},
        {**c.new_node("f.bin", packed, t=0, h=f["h"]), "p": sub},
    ]
    res = c.one({"a": "p", "t": dest, "n": entries})
    assert isinstance(res, dict), res
    new = res["f"]
    assert len(new) == 3 and not {n["h"] for n in new} & {src, sub, f["h"]}
    assert new[0]["p"] == dest and new[1]["p"] == new[0]["h"] and new[2]["p"] == new[1]["h"]
    assert new[2]["s"] == 700 and c.name(new[2]) == "f.bin"
    stats = emu.stats()
    assert stats.get("upload_requests", 0) == 0 and stats["commands"] == {"p": 1}
    # same content, fetched through the copy
    url = c.one({"a": "g", "n": new[2]["h"], "g": 1})["g"]
    assert c.http.get(url, timeout=30).content == emu.stored_blob(f["h"])
    # deleting the source keeps the copy's blob
    assert c.one({"a": "d", "n": src}) == 0
    assert c.http.get(c.one({"a": "g", "n": new[2]["h"], "g": 1})["g"]).status_code == 200


def test_copy_needs_read_access_to_the_source(emu: MegaEmulator) -> None:
    c = logged_in(emu, "thief@example.com")
    emu.create_account("victim@example.com", "pw")
    h, packed = emu.add_file("victim@example.com", b"secret", "s")
    node = c.new_node("s", packed, t=0, h=h)
    assert c.one({"a": "p", "t": c.root(), "n": [node]}) == -9
    folder = c.mkdir("d")
    node = c.new_node("s", packed, t=0, h=folder)  # a folder is no file source
    assert c.one({"a": "p", "t": c.root(), "n": [node]}) == -11
