"""The core under every front end (megafast._account.core.Core) against the emulator: its
session, its live tree, typed nodes, operations that take it, and a TransferManager made for
it (the engine's narrow interface, megafast.transfer.TransferHost)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast._account import nodeops, quota
from megafast._account.core import Core
from megafast._tree.nodes import NodeType
from megafast._tree.typed import TreeNode
from megafast.errors import NodeNotFoundError, ValidationError
from megafast.testing import MegaEmulator
from megafast.transfer import TransferManager


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        e.create_account("core@example.com", "pw")
        yield e


@pytest.fixture
def core(emu: MegaEmulator) -> Core:
    core = Core({"api_url": emu.api_url})
    core.login("core@example.com", "pw")
    return core


def test_the_core_logs_in_and_loads_its_tree(core: Core) -> None:
    assert core.sid and core.credentials is not None
    assert core.loaded_tree is None  # loaded on first use only
    tree = core.tree()
    assert core.loaded_tree is tree and core.keyring is not None
    assert core.root_id == tree.root_id
    root = core.get(core.root_id)
    assert isinstance(root, TreeNode)
    assert (root.handle, root.parent, root.type, root.name) == (
        core.root_id,
        None,
        NodeType.ROOT,
        "Cloud Drive",
    )
    assert root.size == 0 and root.key is None and root.fingerprint is None and root.is_folder


def test_a_core_before_login_says_so(emu: MegaEmulator) -> None:
    core = Core({"api_url": emu.api_url})
    with pytest.raises(ValidationError, match="not logged in"):
        core.tree()
    assert "not logged in" in repr(core)


def test_typed_nodes_match_the_facades_dicts(core: Core, tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_bytes(b"x" * 1234)
    made = nodeops.create_folder(core, "docs/2026", None)
    mega = Mega({"api_url": core.api_url})
    mega.core = core  # the facade over the same core
    mega.upload(str(src), made["2026"])
    handle = core.lookup("docs/2026/notes.txt")
    assert handle is not None
    as_dict = mega.find(handle=handle.handle)
    assert handle.name == as_dict["a"]["n"] == "notes.txt"
    assert handle.size == as_dict["s"] == 1234 and handle.is_file
    assert handle.parent == made["2026"] and handle.mtime == as_dict["ts"]
    assert handle.fingerprint == as_dict["a"]["c"]
    assert handle.key is not None and len(handle.key) == 32
    assert core.path(handle.handle) == "Cloud Drive/docs/2026/notes.txt"
    walked = dict(core.walk(made["docs"]))
    assert set(walked) == {"2026", "2026/notes.txt"}
    assert walked["2026"].is_folder and walked["2026/notes.txt"] == handle
    assert [c.name for c in core.children(made["2026"])] == ["notes.txt"]


def test_a_typed_node_is_small_immutable_and_keeps_its_key_out_of_repr(core: Core) -> None:
    node = core.get(core.root_id)
    assert node is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.name = "x"  # type: ignore[misc]
    assert not hasattr(node, "__dict__")
    folder = core.lookup(next(iter(nodeops.create_folder(core, "keyed", None))))
    assert folder is not None and folder.key is not None
    assert folder.key.hex() not in repr(folder) and str(list(folder.key)) not in repr(folder)


def test_missing_nodes_are_none_or_a_clear_error(core: Core) -> None:
    assert core.get("NoSuchH1") is None and core.lookup("no/such/path") is None
    assert list(core.children("NoSuchH1")) == [] and list(core.walk("NoSuchH1")) == []
    with pytest.raises(NodeNotFoundError):
        core.node("NoSuchH1")
    with pytest.raises(NodeNotFoundError):
        core.node(None)
    with pytest.raises(ValidationError, match="node type 2"):
        core.root(1)


def test_operations_take_the_core(core: Core) -> None:
    assert quota.quota_mib(core) > 0
    made = nodeops.create_folder(core, "ops", None)
    nodeops.rename(core, made["ops"], "ops2")
    assert core.get(made["ops"]).name == "ops2"  # type: ignore[union-attr]
    nodeops.move(core, made["ops"], NodeType.RUBBISH)
    assert core.get(made["ops"]).parent == core.root(NodeType.RUBBISH)  # type: ignore[union-attr]
    assert nodeops.empty_trash(core) is not None and core.get(made["ops"]) is None


def test_a_transfer_manager_is_made_for_a_core(core: Core, tmp_path: Path) -> None:
    src = tmp_path / "up"
    (src / "a").mkdir(parents=True)
    (src / "a" / "one.bin").write_bytes(b"1" * 5000)
    (src / "two.bin").write_bytes(b"2" * 100)
    with TransferManager(core, workers=2) as manager:
        assert manager.host is core and manager.mega is core
        up = manager.upload_tree(src)
        assert up.ok and len(up.succeeded) == 2
        (tmp_path / "down").mkdir()
        down = manager.download_tree(up.folders["."], tmp_path / "down")
        assert down.ok
    assert (tmp_path / "down" / "up" / "a" / "one.bin").read_bytes() == b"1" * 5000


def test_a_facade_hands_its_core_to_the_manager(core: Core) -> None:
    mega = Mega({"api_url": core.api_url})
    mega.core = core
    with TransferManager(mega, workers=1) as manager:
        assert manager.mega is mega and manager.host is core


def test_the_facade_keeps_mega_py_attributes_on_its_core(emu: MegaEmulator) -> None:
    mega = Mega({"api_url": emu.api_url})
    mega.timeout = 5
    mega.request_id = "abcdefghij"
    assert mega.core.timeout == 5 and mega.core.request_id == "abcdefghij"
    mega.login("core@example.com", "pw")
    assert mega._creds is mega.core.credentials and mega._api is mega.core.api_client
    assert mega._load_tree() is mega.core.tree() and mega.root_id == mega.core.root_id
