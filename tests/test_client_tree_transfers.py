"""Mega's folder methods on top of the TransferManager (upload_folder, download of a folder,
download_folder_url, Mega.transfers): per-file failures, the result out-parameter, re-runs
after an interruption and the request counts, end to end against the emulator."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast.errors import DestinationError, NotFoundError, TransferError
from megafast.testing import MegaEmulator
from megafast.transfer import TransferManager, TransferResult, TransferSubscriber


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


@pytest.fixture
def mega(emu: MegaEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Mega]:
    """A client with millisecond back-off and its own state folder (as in test_manager)."""
    from support.transfer import fast_client

    emu.clear_faults()
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))
    yield fast_client(emu, "wire")
    emu.clear_faults()


def make_tree(root: Path, files: int = 20, size: int = 2000) -> dict[str, bytes]:
    made = {}
    for i in range(files):
        rel = f"d{i % 3}/f{i:03d}.bin"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        made[rel] = secrets.token_bytes(size + i)
        (root / rel).write_bytes(made[rel])
    return made


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_upload_folder_then_download_round_trip_with_few_requests(
    mega: Mega, tmp_path: Path
) -> None:
    src = tmp_path / "tree"
    files = make_tree(src, files=30)
    up = TransferResult()
    handles = mega.upload_folder(src, result=up)
    assert up.ok and len(up.succeeded) == 30 and set(files) <= set(handles)
    # batched u and p: far fewer API requests than files (the old path needed ~3 per file)
    assert up.api_requests < 30
    down = TransferResult()
    out = tmp_path / "out"
    out.mkdir()
    path = mega.download((handles["."], mega._node(handles["."], "folder")), out, result=down)
    assert path == out / "tree" and local_files(path) == files
    assert down.ok and len(down.succeeded) == 30 and down.api_requests < 30


def test_one_failed_file_does_not_stop_the_others(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    src = tmp_path / "tree"
    files = make_tree(src, files=9)
    handles = mega.upload_folder(src)
    other = Mega(api_url=emu.api_url).login(mega._creds.email, "pw")  # type: ignore[union-attr]
    other.destroy(handles["d1/f001.bin"])  # our client's tree still lists it
    out = tmp_path / "out"
    out.mkdir()
    result = TransferResult()
    with pytest.raises(TransferError, match="d1/f001.bin") as raised:
        mega.download(handles["."], out, result=result)
    assert isinstance(raised.value.__cause__, NotFoundError)
    assert [o.rel for o in result.failed] == ["d1/f001.bin"]
    assert len(result.succeeded) == 8
    del files["d1/f001.bin"]
    got = local_files(out / "tree")
    assert {k: v for k, v in got.items() if ".megafast-" not in k} == files  # all verified


def test_an_interrupted_tree_download_resumes_through_mega(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    import _thread

    src = tmp_path / "tree"
    files = make_tree(src, files=150, size=1000)
    handles = mega.upload_folder(src)
    out = tmp_path / "out"
    out.mkdir()
    emu.set_faults(latency=0.3)  # 150 files over 32 workers: five rounds at least
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mega.download(handles["."], out)
    finally:
        timer.cancel()
    emu.clear_faults()
    stopped = time.monotonic()
    while any(t.name.startswith("megafast-manager") for t in threading.enumerate()):
        assert time.monotonic() - stopped < 1.0, "a worker outlived Ctrl-C by a second"
        time.sleep(0.02)
    got_before = local_files(out / "tree")
    assert len([k for k in got_before if ".megafast-" not in k]) < 150
    result = TransferResult()
    mega.download(handles["."], out, result=result)
    assert local_files(out / "tree") == files
    assert result.ok and result.skipped  # the files verified before the stop are not fetched
    assert len(result.skipped) + len(result.succeeded) == 150


def test_an_interrupted_upload_folder_resumes(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    import _thread

    src = tmp_path / "tree"
    make_tree(src, files=150, size=1000)
    emu.set_faults(latency=0.3)  # folders, then five rounds of u, POST and p: about 5 s
    timer = threading.Timer(2.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mega.upload_folder(src)
    finally:
        timer.cancel()
    emu.clear_faults()
    result = TransferResult()
    handles = mega.upload_folder(src, result=result)
    assert result.ok and result.skipped and len(result.skipped) + len(result.succeeded) == 150
    mega.refresh()
    names = {n["a"]["n"] for n in mega.get_files().values() if n.get("t") == 0}
    assert len(names) == 150 and not any("(1)" in n for n in names)  # nothing uploaded twice
    assert len({handles[f"d{i % 3}/f{i:03d}.bin"] for i in range(150)}) == 150


def test_download_folder_url_goes_through_the_manager(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    src = tmp_path / "exported"
    files = make_tree(src, files=12)
    handles = mega.upload_folder(src)
    url = mega.export(node_id=handles["."])
    anonymous = Mega(api_url=emu.api_url)
    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[int, int]] = []
    result = TransferResult()
    path = anonymous.download_folder_url(
        url, out, progress=lambda d, t: seen.append((d, t)), result=result
    )
    assert local_files(path) == files
    assert result.ok and len(result.succeeded) == 12 and result.api_requests < 12
    total = sum(len(d) for d in files.values())
    assert seen[-1] == (total, total)
    again = TransferResult()
    anonymous.download_url(url, out, result=again)
    assert len(again.skipped) == 12 and not again.succeeded


def test_mega_transfers_is_a_manager_bound_to_the_client(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "one.txt"
    src.write_bytes(b"hello")

    class Count(TransferSubscriber):
        done = 0

        def on_done(self, future: object) -> None:
            Count.done += 1

    with mega.transfers(workers=4, subscribers=[Count()]) as mgr:
        assert isinstance(mgr, TransferManager) and mgr.mega is mega and mgr.workers == 4
        future = mgr.upload(src)
        outcome = future.result(timeout=30)
    assert outcome.status == "done" and Count.done == 1
    assert mega.find("one.txt")[0] == outcome.result


def test_a_partial_big_file_of_a_tree_resumes_from_its_part_file(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    import _thread
    import json

    from megafast.transfer import TransferConfig

    src = tmp_path / "tree"
    files = make_tree(src, files=4)
    big = secrets.token_bytes(3 << 20)
    (src / "big.bin").write_bytes(big)
    files["big.bin"] = big
    handles = mega.upload_folder(src)
    out = tmp_path / "out"
    out.mkdir()
    sidecar = out / "tree" / "big.bin.megafast-part.json"
    emu.set_faults(bandwidth=256 * 1024)  # about 12 s for the big file on one connection
    config = TransferConfig(connections=1, retry=mega.options["transfer"].retry)

    def interrupt_once_saved() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if json.loads(sidecar.read_text())["done"]:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        _thread.interrupt_main()

    watcher = threading.Thread(target=interrupt_once_saved)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        mega.download(handles["."], out, config=config)
    watcher.join()
    emu.clear_faults()
    # spoil the server's copy inside a range the first run has: only a real resume passes
    start, _end = json.loads(sidecar.read_text())["done"][0]
    blob = emu.store.blob_path(emu.node(handles["big.bin"])["blob"])
    original = blob.read_bytes()
    spoiled = bytearray(original)
    spoiled[start : start + 16] = bytes(b ^ 0xFF for b in spoiled[start : start + 16])
    blob.write_bytes(bytes(spoiled))
    try:
        result = TransferResult()
        mega.download(handles["."], out, config=config, result=result)
    finally:
        blob.write_bytes(original)
    assert result.ok and local_files(out / "tree") == files
    assert "big.bin" in {o.rel for o in result.succeeded}


def test_a_directory_symlink_where_a_folder_goes_is_not_followed(
    mega: Mega, tmp_path: Path
) -> None:
    """Another local user plants a symlink at the name a downloaded folder will take: nothing
    is written through it, and the error names it."""
    src = tmp_path / "tree"
    make_tree(src, files=6)
    handles = mega.upload_folder(src)
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out"
    (out / "tree").mkdir(parents=True)
    (out / "tree" / "d1").symlink_to(victim)
    result = TransferResult()
    with pytest.raises(TransferError, match="d1"):
        mega.download(handles["."], out, result=result)
    assert list(victim.iterdir()) == []
    assert any(rel == "d1" and "not a folder" in why for rel, why in result.ignored)
    assert {o.rel for o in result.failed} == {"d1/f001.bin", "d1/f004.bin"}
    assert len(result.succeeded) == 4
    # the same link where the whole folder goes: refused before anything is written
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / "tree").symlink_to(victim)
    with pytest.raises(DestinationError, match="tree"):
        mega.download(handles["."], out2)
    assert list(victim.iterdir()) == []
