"""TransferManager and its tree operations, end to end against the emulator (real sockets,
real files): round trips, request counts, per-file failures, name collisions, re-runs,
cancel and the over-quota pause."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast.errors import MegaError, NotFoundError, SourceNotFoundError, TransferError
from megafast.testing import MegaEmulator
from megafast.transfer import (
    BytesProgress,
    TransferConfig,
    TransferFuture,
    TransferManager,
    TransferSubscriber,
)


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


@pytest.fixture
def mega(emu: MegaEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Mega]:
    from support.transfer import fast_client

    emu.clear_faults()
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))
    yield fast_client(emu, "mgr")
    emu.clear_faults()


def make_tree(root: Path, files: int = 30, folders: int = 3, size: int = 3000) -> dict[str, bytes]:
    made: dict[str, bytes] = {}
    for i in range(files):
        rel = f"d{i % folders}/sub/f{i:03d}.bin" if i % 2 else f"d{i % folders}/f{i:03d}.bin"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = secrets.token_bytes(size + i)
        path.write_bytes(data)
        made[rel] = data
    return made


def local_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def test_tree_round_trip_with_few_requests_per_file(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    (src / "d0" / "link").symlink_to(src / "d0" / "f000.bin")
    (src / "dirlink").symlink_to(src / "d1")
    before = local_files(src)
    with TransferManager(mega, workers=8) as mgr:
        up = mgr.upload_tree(src)
    assert up.ok and len(up.succeeded) == len(files)
    assert sorted(rel for rel, _ in up.ignored) == ["d0/link", "dirlink"]
    assert set(up.folders) == {".", "d0", "d1", "d2", "d0/sub", "d1/sub", "d2/sub"}
    # 3 levels of folders + the files' u and p commands, batched (one file at a time: 3 a file)
    assert up.api_requests < len(files)
    assert local_files(src) == before  # the source is untouched

    out = tmp_path / "out"
    out.mkdir()
    with TransferManager(mega, workers=8) as mgr:
        down = mgr.download_tree(up.folders["."], out)
    assert down.ok and len(down.succeeded) == len(files)
    assert local_files(out / "src") == files
    assert down.api_requests < len(files)
    assert not list(out.rglob("*.megafast-part*"))


def test_a_rerun_skips_what_is_complete(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, files=12)
    with TransferManager(mega) as mgr:
        first = mgr.upload_tree(src)
        again = mgr.upload_tree(src)
    assert len(first.succeeded) == 12
    assert not again.succeeded and len(again.skipped) == 12
    assert {o.result for o in again.skipped} == {o.result for o in first.succeeded}

    out = tmp_path / "out"
    out.mkdir()
    with TransferManager(mega) as mgr:
        assert len(mgr.download_tree(first.folders["."], out).succeeded) == 12
        changed = out / "src" / "d0" / "f000.bin"
        changed.write_bytes(b"x" * len(files["d0/f000.bin"]))  # same size, not verified
        rerun = mgr.download_tree(first.folders["."], out)
    assert [o.rel for o in rerun.succeeded] == ["src/d0/f000.bin".removeprefix("src/")]
    assert len(rerun.skipped) == 11
    assert changed.read_bytes() == files["d0/f000.bin"]


def test_remote_name_collision_gets_a_numbered_name(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "top"
    src.mkdir()
    (src / "a.txt").write_bytes(b"new content")
    folder = mega.create_folder("top")["top"]
    mega.upload_fileobj(b"older, other content", "a.txt", folder)
    with TransferManager(mega) as mgr:
        res = mgr.upload_tree(src)
        assert res.renamed == [("a.txt", "a (1).txt")]
        assert mgr.upload_tree(src).skipped[0].reason.startswith("already uploaded")
    names = sorted(
        mega._load_tree().name_of(n) or "" for n in mega._load_tree().child_nodes(folder)
    )
    assert names == ["a (1).txt", "a.txt"]


def test_duplicate_remote_names_download_side_by_side(mega: Mega, tmp_path: Path) -> None:
    folder = mega.create_folder("dups")["dups"]
    mega.upload_fileobj(b"one", "same.txt", folder)
    mega.upload_fileobj(b"two", "same.txt", folder)
    mega.upload_fileobj(b"evil", "..", folder)
    out = tmp_path / "out"
    out.mkdir()
    with TransferManager(mega) as mgr:
        res = mgr.download_tree(folder, out)
    assert res.ok
    got = local_files(out / "dups")
    assert sorted(got.values()) == [b"evil", b"one", b"two"]
    assert set(got) == {"same.txt", "same (1).txt", "_.."}
    assert ("same.txt", "same (1).txt") in res.renamed
    assert ("..", "_..") in res.renamed


class _Meddler(TransferSubscriber):
    """Changes the source files after they are queued, before they run."""

    def __init__(self, src: Path) -> None:
        self.src = src

    def on_queued(self, future: TransferFuture) -> None:
        if future.job.rel == "d0/f000.bin":
            (self.src / future.job.rel).unlink()
        elif future.job.rel == "d0/f002.bin":
            with open(self.src / future.job.rel, "ab") as f:
                f.write(b"more")


def test_a_vanished_or_changed_file_fails_alone(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, files=10, folders=2)
    with TransferManager(mega, subscribers=[_Meddler(src)]) as mgr:
        res = mgr.upload_tree(src)
    failed = {o.rel: o for o in res.failed}
    assert set(failed) == {"d0/f000.bin", "d0/f002.bin"}
    assert "vanished" in failed["d0/f000.bin"].reason
    assert "changed size" in failed["d0/f002.bin"].reason
    assert all(isinstance(o.error, SourceNotFoundError) for o in failed.values())
    assert len(res.succeeded) == 8


def test_a_file_gone_remotely_fails_alone(mega: Mega, emu: MegaEmulator, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, files=8, folders=2)
    with TransferManager(mega) as mgr:
        up = mgr.upload_tree(src)
    gone = next(o for o in up.succeeded if o.rel == "d1/sub/f001.bin")
    other = Mega(api_url=emu.api_url).login(mega._creds.email, "pw")  # type: ignore[union-attr]
    other.destroy(gone.result)  # our tree still lists it
    out = tmp_path / "out"
    out.mkdir()
    with TransferManager(mega) as mgr:
        res = mgr.download_tree(up.folders["."], out)
    assert [o.rel for o in res.failed] == ["d1/sub/f001.bin"]
    assert isinstance(res.failed[0].error, NotFoundError)
    assert len(res.succeeded) == 7


def test_progress_subscribers_see_every_file(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, files=6, size=200_000)
    seen: dict[str, int] = {}
    done: list[str] = []

    class Watch(TransferSubscriber):
        def on_progress(self, future: TransferFuture, n: int, total: int) -> None:
            assert 0 <= n <= total == future.job.size
            seen[future.job.rel] = n

        def on_done(self, future: TransferFuture) -> None:
            done.append(future.state)

    with TransferManager(mega, subscribers=[Watch()]) as mgr:
        mgr.upload_tree(src)
    assert seen == {rel: len(data) for rel, data in files.items()}
    assert done == ["done"] * len(files)


def test_cancel_stops_within_a_second_and_a_rerun_finishes(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    files = make_tree(src, files=40, folders=2, size=1000)
    emu.set_faults(latency=0.1)
    mgr = TransferManager(mega, workers=4)
    holder: dict = {}
    worker = threading.Thread(target=lambda: holder.update(r=mgr.upload_tree(src)))
    worker.start()
    time.sleep(0.8)
    asked = time.monotonic()
    mgr.shutdown(cancel=True)
    worker.join(5)
    assert not worker.is_alive()
    assert time.monotonic() - asked < 1.5
    first = holder["r"]
    assert first.cancelled and not first.failed
    assert len(first.succeeded) + len(first.cancelled) == len(files)
    emu.clear_faults()
    with TransferManager(mega) as mgr2:
        second = mgr2.upload_tree(src)
    assert second.ok
    assert len(second.skipped) == len(first.succeeded)
    assert len(second.succeeded) == len(files) - len(first.succeeded)


@pytest.mark.parametrize("in_g", [False, True], ids=["http-509", "g-answers-tl"])
def test_over_quota_pauses_the_whole_queue(
    mega: Mega, emu: MegaEmulator, tmp_path: Path, in_g: bool
) -> None:
    src = tmp_path / "src"
    files = make_tree(src, files=16, folders=2)
    with TransferManager(mega) as mgr:
        up = mgr.upload_tree(src)
    emu.set_faults(over_quota=True, over_quota_time_left=1, over_quota_in_g=in_g)

    def lift_after_the_first_refusal() -> None:  # however slow the machine, one is seen
        deadline = time.monotonic() + 30
        while not emu.fault_counts.get("over_quota") and time.monotonic() < deadline:
            time.sleep(0.01)
        emu.clear_faults()

    threading.Thread(target=lift_after_the_first_refusal, daemon=True).start()
    out = tmp_path / "out"
    out.mkdir()
    emu.reset_stats()
    started = time.monotonic()
    with TransferManager(mega, workers=4) as mgr:
        res = mgr.download_tree(up.folders["."], out)
    assert res.ok and len(res.succeeded) == len(files)
    assert time.monotonic() - started >= 1.0  # waited the time the server named
    refused = [e for e in emu.request_log if e.get("kind") == "download" and e.get("status") == 509]
    assert len(refused) <= 4  # at most the files in flight, not every file
    assert local_files(out / "src") == files


def test_the_source_of_jobs_is_consumed_lazily(
    mega: Mega, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(300):
        (src / f"f{i:04d}").write_bytes(b"x")
    from megafast._account import treejobs as _tree

    pulled = 0
    real = _tree._upload_jobs

    def counting(*args: object) -> Iterator[object]:
        nonlocal pulled
        for job in real(*args):  # type: ignore[arg-type]
            pulled += 1
            yield job

    peak_ahead = 0

    class Watch(TransferSubscriber):
        def __init__(self) -> None:
            self.finished = 0

        def on_done(self, future: TransferFuture) -> None:
            nonlocal peak_ahead
            self.finished += 1
            peak_ahead = max(peak_ahead, pulled - self.finished)

    monkeypatch.setattr(_tree, "_upload_jobs", counting)
    with TransferManager(mega, workers=4, subscribers=[Watch()]) as mgr:
        res = mgr.upload_tree(src)
    assert len(res.succeeded) == 300
    assert peak_ahead <= 4 * 4 + 4 + 1  # the bounded queue plus the workers' files


def test_bad_arguments(mega: Mega, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        TransferManager(mega, workers=0)
    with TransferManager(mega) as mgr:
        with pytest.raises(SourceNotFoundError):
            mgr.upload_tree(tmp_path / "missing")
        (tmp_path / "file").write_bytes(b"x")
        with pytest.raises(SourceNotFoundError):
            mgr.upload_tree(tmp_path / "file")
    assert os.stat(tmp_path / "file").st_size == 1
    with pytest.raises(MegaError, match="shut down"):
        mgr.upload_tree(tmp_path)


def test_whole_tree_byte_progress_and_raise_for_failures(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, files=8, size=50_000)
    seen: list[tuple[int, int]] = []
    with TransferManager(mega, subscribers=[BytesProgress(lambda d, t: seen.append((d, t)))]) as m:
        res = m.upload_tree(src)
    res.raise_for_failures()  # nothing failed: no error
    total = sum(len(d) for d in files.values())
    assert seen[-1] == (total, total)
    assert all(0 <= d <= t <= total for d, t in seen)

    with TransferManager(mega, subscribers=[_Meddler(src)]) as m:
        res = m.upload_tree(src)  # d0/f000.bin vanishes once queued
    with pytest.raises(TransferError, match="d0/f000.bin"):
        res.raise_for_failures()


def test_public_folder_link_downloads_through_the_manager(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    from megafast._account.sources import public_folder_tree, public_root
    from megafast._wire.links import parse_link

    src = tmp_path / "exported"
    files = make_tree(src, files=6)
    with TransferManager(mega) as mgr:
        up = mgr.upload_tree(src)
    link = parse_link(mega.export(node_id=up.folders["."]))
    anonymous = Mega(api_url=emu.api_url)
    tree = public_folder_tree(anonymous.core, link)
    out = tmp_path / "out"
    out.mkdir()
    with TransferManager(anonymous, folder=link.handle) as mgr:
        res = mgr.download_tree(public_root(tree, link), out, tree=tree)
    assert res.ok and len(res.succeeded) == len(files)
    assert local_files(out / "exported") == files


def test_ctrl_c_stops_every_worker_and_leaves_resumable_state(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    import _thread

    src = tmp_path / "src"
    make_tree(src, files=40, folders=2, size=1000)
    emu.set_faults(latency=0.1)
    timer = threading.Timer(0.8, _thread.interrupt_main)
    mgr = TransferManager(mega, workers=4)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        mgr.upload_tree(src)
    stopped = time.monotonic()
    while any(t.name.startswith("megafast-manager") for t in threading.enumerate()):
        assert time.monotonic() - stopped < 1.0, "a worker outlived Ctrl-C by a second"
        time.sleep(0.02)
    emu.clear_faults()
    with TransferManager(mega) as again:
        res = again.upload_tree(src)
    assert res.ok and len(res.succeeded) + len(res.skipped) == 40 and res.skipped


def test_files_of_a_folder_that_cannot_be_made_are_each_reported(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    files = make_tree(src, files=6)
    dest = mega.create_folder("gone")["gone"]
    other = Mega(api_url=emu.api_url).login(mega._creds.email, "pw")  # type: ignore[union-attr]
    other.destroy(dest)  # our tree still lists it
    with TransferManager(mega) as mgr:
        res = mgr.upload_tree(src, dest)
    assert not res.succeeded
    assert sorted(o.rel for o in res.failed) == sorted(files)
    assert all(o.reason.startswith("folder not created") for o in res.failed)
    assert {rel for rel, _ in res.ignored} >= {".", "d0", "d0/sub"}  # the folders, with why


def test_cancelling_one_future_leaves_the_others(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, files=6)

    class CancelOne(TransferSubscriber):
        def on_queued(self, future: TransferFuture) -> None:
            if future.job.rel == "d1/sub/f001.bin":
                assert future.cancel()

    with TransferManager(mega, subscribers=[CancelOne()]) as mgr:
        res = mgr.upload_tree(src)
    assert [o.rel for o in res.cancelled] == ["d1/sub/f001.bin"]
    assert len(res.succeeded) == len(files) - 1 and not res.failed


class _StopAt(TransferSubscriber):
    """Cancels the whole manager once a file has moved ``limit`` bytes (from another thread,
    as a user's Stop button would)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.fired = False
        self.manager: TransferManager | None = None

    def on_progress(self, future: TransferFuture, done: int, total: int) -> None:
        if done >= self.limit and not self.fired:
            self.fired = True
            threading.Thread(target=self.manager.shutdown, kwargs={"cancel": True}).start()


def test_a_cancelled_big_download_resumes_from_its_part_file(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    size = 6 << 20
    folder = mega.create_folder("big")["big"]
    data = secrets.token_bytes(size)
    mega.upload_fileobj(data, "big.bin", folder)
    out = tmp_path / "out"
    out.mkdir()
    emu.set_faults(bandwidth=1 << 20)  # 1 MiB ranges on 2 connections: about 1 s a range
    stop = _StopAt(3 << 20)
    mgr = stop.manager = TransferManager(
        mega, config=TransferConfig(connections=2), subscribers=[stop]
    )
    first = mgr.download_tree(folder, out)
    assert [o.rel for o in first.cancelled] == ["big.bin"], first
    assert not (out / "big" / "big.bin").exists()
    assert list((out / "big").glob("big.bin.megafast-part*"))
    emu.clear_faults()
    emu.reset_stats()
    with TransferManager(mega) as again:
        second = again.download_tree(folder, out)
    assert second.ok and (out / "big" / "big.bin").read_bytes() == data
    # what the first run kept is not fetched again (the engine may finish the ranges in
    # flight before it stops, so the re-run can have nothing left to fetch)
    assert emu.stats().get("download_bytes", 0) < size


def test_a_tree_uploaded_into_an_exported_folder_is_readable_by_link_holders(
    mega: Mega, emu: MegaEmulator, tmp_path: Path
) -> None:
    folder = mega.create_folder("grows")["grows"]
    link = mega.export("grows")
    src = tmp_path / "late"
    files = make_tree(src, files=6)  # folders get one p each with several nodes: cr for all
    with TransferManager(mega) as mgr:
        assert mgr.upload_tree(src, folder).ok
    nodes = Mega(api_url=emu.api_url).get_public_folder(link)
    assert not [n for n in nodes.values() if n.get("undecryptable")]
    names = {n["a"]["n"] for n in nodes.values()}
    assert names >= {"late", "d0", "d1", "d2", "sub"} | {Path(rel).name for rel in files}


def test_the_tree_ledger_is_private(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, files=2)
    out = tmp_path / "out"
    out.mkdir()
    with TransferManager(mega) as mgr:
        mgr.download_tree(mgr.upload_tree(src).folders["."], out)
    ledgers = list((tmp_path / "state").glob("tree-*.ledger"))
    assert len(ledgers) == 1
    assert ledgers[0].stat().st_mode & 0o777 == 0o600
    assert b"f000" not in ledgers[0].read_bytes()  # digests, not names


def test_a_cancelled_big_upload_resumes(mega: Mega, emu: MegaEmulator, tmp_path: Path) -> None:
    size = 6 << 20
    src = tmp_path / "bigsrc"
    src.mkdir()
    data = secrets.token_bytes(size)
    (src / "big.bin").write_bytes(data)
    emu.set_faults(bandwidth=1 << 20)  # 1 MiB pieces on 2 connections: about 1 s a piece
    stop = _StopAt(3 << 20)
    mgr = stop.manager = TransferManager(
        mega, config=TransferConfig(connections=2), subscribers=[stop]
    )
    first = mgr.upload_tree(src)
    assert [o.rel for o in first.cancelled] == ["big.bin"], first
    emu.clear_faults()
    emu.reset_stats()
    with TransferManager(mega) as again:
        second = again.upload_tree(src)
    assert [o.rel for o in second.succeeded] == ["big.bin"]
    assert 0 < emu.stats()["upload_bytes"] < size  # the pieces sent before were kept
    out = tmp_path / "out"
    out.mkdir()
    handle = second.succeeded[0].result
    assert mega.download((handle, mega._load_tree().nodes[handle]), out).read_bytes() == data


def test_single_files_queued_as_futures(mega: Mega, tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a" * 1000)
    (tmp_path / "b.bin").write_bytes(b"b" * 2000)
    with TransferManager(mega) as mgr:
        fa = mgr.upload(tmp_path / "a.bin")
        fb = mgr.upload(tmp_path / "b.bin")
        assert fa.result(30).status == "done" and fb.result(30).status == "done"
        first = mgr.join()
        assert {o.rel for o in first.succeeded} == {"a.bin", "b.bin"}
        out = tmp_path / "out"
        out.mkdir()
        got = mgr.download(fa.result().result, out)
        assert got.result(30).status == "done"
        assert (out / "a.bin").read_bytes() == b"a" * 1000
        again = mgr.download(fa.result().result, out)  # verified before: skipped
        assert again.result(30).status == "skipped"
        with pytest.raises(SourceNotFoundError):
            mgr.upload(tmp_path / "missing")
        late = mgr.upload(tmp_path / "b.bin")  # shutdown() waits for it
    assert late.done() and late.result().status == "skipped"
