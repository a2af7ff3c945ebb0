"""The node tree on its own (pure logic): decryption, indexes, and any answer the server may
send, garbage included, listed without a crash."""

from __future__ import annotations

import secrets
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from megafast._tree.nodes import Keyring, NodeTree
from megafast._wire.links import b64encode
from megafast.crypto import encrypt_attr, encrypt_key

MASTER = secrets.token_bytes(16)
USER = "UserHandle1"


def words(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{len(data) // 4}I", data)


def folder(
    h: str, parent: str, name: str, kek: bytes = MASTER, owner: str = USER, key_handle: str = USER
) -> dict[str, Any]:
    key = secrets.token_bytes(16)
    return {
        "h": h,
        "p": parent,
        "u": owner,
        "t": 1,
        "a": b64encode(encrypt_attr({"n": name}, words(key))),
        "k": f"{key_handle}:"
        + b64encode(
            bytes(b"".join(w.to_bytes(4, "big") for w in encrypt_key(words(key), words(kek))))
        ),
        "ts": 1,
    }


def file(h: str, parent: str, name: str, kek: bytes = MASTER) -> dict[str, Any]:
    packed = secrets.token_bytes(32)
    k = bytes(a ^ b for a, b in zip(packed[:16], packed[16:], strict=True))
    enc = encrypt_key(words(packed), words(kek))
    return {
        "h": h,
        "p": parent,
        "u": USER,
        "t": 0,
        "s": 5,
        "a": b64encode(encrypt_attr({"n": name, "c": "x"}, words(k))),
        "k": f"{USER}:" + b64encode(b"".join(w.to_bytes(4, "big") for w in enc)),
        "ts": 1,
    }


def roots() -> list[dict[str, Any]]:
    return [
        {"h": "ROOT0000", "p": "", "u": USER, "t": 2, "a": "", "k": "", "ts": 1},
        {"h": "INBOX000", "p": "", "u": USER, "t": 3, "a": "", "k": "", "ts": 1},
        {"h": "TRASH000", "p": "", "u": USER, "t": 4, "a": "", "k": "", "ts": 1},
    ]


def keyring() -> Keyring:
    return Keyring(master_key=MASTER, user_handle=USER)


def test_tree_decrypts_and_indexes() -> None:
    nodes = roots() + [
        folder("FOLDER01", "ROOT0000", "docs"),
        folder("FOLDER02", "FOLDER01", "sub"),
        file("FILE0001", "FOLDER02", "a.txt"),
        file("FILE0002", "FOLDER01", "a.txt"),
        file("FILE0003", "TRASH000", "gone.txt"),
    ]
    tree = NodeTree.from_answer({"f": nodes}, keyring())
    assert (tree.root_id, tree.inbox_id, tree.trash_id) == ("ROOT0000", "INBOX000", "TRASH000")
    assert tree.find_path("docs/sub/a.txt")["h"] == "FILE0001"
    assert tree.find_path("docs/a.txt")["h"] == "FILE0002"
    assert tree.find_by_name("a.txt")["h"] == "FILE0001"  # listing order
    assert tree.find_by_name("gone.txt", exclude_deleted=True) is None
    assert tree.in_trash("FILE0003") and not tree.in_trash("FILE0001")
    assert tree.path_of("FILE0001") == "Cloud Drive/docs/sub/a.txt"
    assert [n["h"] for n in tree.descendants("FOLDER01")] == ["FOLDER02", "FILE0001", "FILE0002"]
    tree.move("FILE0001", "ROOT0000")
    assert tree.find_path("a.txt")["h"] == "FILE0001" and tree.find_path("docs/sub/a.txt") is None
    tree.set_attributes("FILE0001", {"n": "b.txt"})
    assert tree.find_by_name("b.txt")["h"] == "FILE0001" and tree.find_path("a.txt") is None
    tree.remove("FOLDER01")
    assert "FILE0002" not in tree.nodes and tree.find_by_name("a.txt") is None
    assert tree.find_path("docs") is None


def test_name_indexes_built_late_match_the_ones_kept_up_to_date() -> None:
    """The by-name indexes are built on the first lookup by name; changes made before and
    after that must give the same answers as a tree that had them all along."""

    def build() -> NodeTree:
        nodes = roots() + [
            folder("FOLDER01", "ROOT0000", "docs"),
            file("FILE0001", "FOLDER01", "a.txt"),
            file("FILE0002", "ROOT0000", "a.txt"),
        ]
        return NodeTree.from_answer({"f": nodes}, keyring())

    def change(tree: NodeTree) -> None:
        tree.move("FILE0002", "FOLDER01")
        tree.set_attributes("FILE0001", {"n": "b.txt"})
        tree.add_nodes([file("FILE0003", "FOLDER01", "c.txt")], keyring())
        tree.remove("FILE0002")

    eager, late = build(), build()
    assert eager.find_by_name("a.txt")["h"] == "FILE0001"  # builds eager's indexes now
    # a listing alone builds no hash dict (a folder listed as one run of slots is only marked)
    assert not [i for i in late.store._name_index.values() if type(i) is dict]
    change(eager)
    change(late)
    for tree in (eager, late):
        assert tree.find_by_name("b.txt")["h"] == "FILE0001"
        assert tree.find_by_name("a.txt") is None
        assert tree.find_path("docs/c.txt")["h"] == "FILE0003"
        assert tree.find_path("docs/b.txt")["h"] == "FILE0001"
    assert {h: eager.path_of(h) for h in eager.nodes} == {h: late.path_of(h) for h in late.nodes}


def test_share_keys_from_ok_and_default_key() -> None:
    share_key = secrets.token_bytes(16)
    enc_share = b"".join(w.to_bytes(4, "big") for w in encrypt_key(words(share_key), words(MASTER)))
    nodes = roots() + [
        folder(
            "SHARED01", "OTHERUSR", "from ok", kek=share_key, owner="Other", key_handle="SHARED01"
        )
    ]
    tree = NodeTree.from_answer(
        {"f": nodes, "ok": [{"h": "SHARED01", "ha": "", "k": b64encode(enc_share)}]}, keyring()
    )
    assert tree.nodes["SHARED01"]["a"] == {"n": "from ok"}
    assert tree.nodes["SHARED01"]["shared_folder_key"] == words(share_key)
    public = NodeTree.from_answer(
        {"f": [folder("PUBROOT1", "", "public", kek=share_key, key_handle="PUBROOT1")]},
        Keyring(default_key=share_key),
    )
    assert public.nodes["PUBROOT1"]["a"] == {"n": "public"}


def test_wrong_keys_are_marked_not_raised() -> None:
    other = secrets.token_bytes(16)
    nodes = roots() + [
        folder("BADKEY01", "ROOT0000", "x", kek=other),
        file("BADKEY02", "ROOT0000", "y", kek=other),
    ]
    tree = NodeTree.from_answer({"f": nodes}, keyring())
    for h in ("BADKEY01", "BADKEY02"):
        assert tree.nodes[h]["undecryptable"] is True and tree.nodes[h]["a"] is False
    assert set(tree.visible()) == {"ROOT0000", "INBOX000", "TRASH000"}


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=30))
json_values = st.recursive(
    json_scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.text(max_size=3), c, max_size=4)
    ),
    max_leaves=10,
)
node_like = st.fixed_dictionaries(
    {},
    optional={
        "h": st.one_of(st.text(max_size=10), json_scalars),
        "p": json_values,
        "t": st.one_of(st.integers(-2, 6), json_scalars),
        "k": st.one_of(st.text(alphabet="AB:/_-xyz=", max_size=120), json_values),
        "a": st.one_of(st.text(alphabet="ABCDEFGHabc_-", max_size=64), json_values),
        "u": json_scalars,
        "sk": st.one_of(st.text(alphabet="ABCabc_-", max_size=60), json_values),
        "su": json_scalars,
    },
)


@settings(max_examples=300)
@given(
    f=st.lists(st.one_of(node_like, json_values), max_size=12),
    ok=st.one_of(
        st.lists(
            st.one_of(
                json_values,
                st.fixed_dictionaries({"h": st.text(max_size=9), "k": st.text(max_size=30)}),
            ),
            max_size=3,
        ),
        json_scalars,
    ),
)
def test_any_listing_is_listed_without_a_crash(f: list[Any], ok: Any) -> None:
    ring = keyring()
    ring.share_keys["AB"] = secrets.token_bytes(16)
    ring.rsa_decrypt = lambda data: bytes(data[:40]) if len(data) % 2 else None
    tree = NodeTree.from_answer({"f": f + [folder("GOODNODE", "ROOT0000", "fine")], "ok": ok}, ring)
    assert tree.nodes["GOODNODE"]["a"] == {"n": "fine"}
    tree.visible()
    tree.find_path("fine")
    tree.find_by_name("fine")


def test_rsa_encrypted_node_keys() -> None:
    from Crypto.PublicKey import RSA

    from megafast._account.session import Credentials
    from megafast.crypto import encode_mpi

    rsa = RSA.generate(1024)
    p, q = rsa.p, rsa.q
    privk = b"".join(encode_mpi(x) for x in (p, q, rsa.d, pow(p, -1, q)))
    creds = Credentials(sid="x", master_key=MASTER, user_handle=USER, privk=privk)
    nbytes = (rsa.n.bit_length() + 7) // 8

    def rsa_wrap(key: bytes) -> str:
        m = int.from_bytes(key + secrets.token_bytes(nbytes - 2 - len(key)), "big")
        c = pow(m, rsa.e, rsa.n)
        return b64encode((nbytes * 8).to_bytes(2, "big") + c.to_bytes(nbytes, "big"))

    fkey = secrets.token_bytes(16)
    packed = secrets.token_bytes(32)
    k = bytes(a ^ b for a, b in zip(packed[:16], packed[16:], strict=True))
    zero_mpi = b64encode(bytes([4, 0]) + bytes(128))  # a ciphertext of 0: out of range
    nodes = roots() + [
        {
            "h": "RSAFOLD1",
            "p": "INBOX000",
            "u": "Sender",
            "t": 1,
            "ts": 1,
            "a": b64encode(encrypt_attr({"n": "sent folder"}, words(fkey))),
            "k": f"{USER}:{rsa_wrap(fkey)}",
        },
        {
            "h": "RSAFILE1",
            "p": "RSAFOLD1",
            "u": "Sender",
            "t": 0,
            "ts": 1,
            "s": 1,
            "a": b64encode(encrypt_attr({"n": "sent.txt"}, words(k))),
            "k": f"{USER}:{rsa_wrap(packed)}",
        },
        {
            "h": "RSABAD01",
            "p": "INBOX000",
            "u": "Sender",
            "t": 1,
            "ts": 1,
            "a": b64encode(encrypt_attr({"n": "x"}, words(fkey))),
            "k": f"{USER}:{zero_mpi}",
        },
    ]
    tree = NodeTree.from_answer({"f": nodes}, Keyring(MASTER, USER, rsa_decrypt=creds.rsa_decrypt))
    assert tree.nodes["RSAFOLD1"]["a"] == {"n": "sent folder"}
    assert tree.nodes["RSAFILE1"]["a"]["n"] == "sent.txt" and tree.nodes["RSAFILE1"][
        "key"
    ] == words(packed)
    assert tree.nodes["RSABAD01"]["undecryptable"] is True
    # without the private key they are listed as undecryptable
    plain = NodeTree.from_answer({"f": [dict(n) for n in nodes]}, keyring())
    assert plain.nodes["RSAFOLD1"]["undecryptable"] is True
