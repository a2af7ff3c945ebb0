"""``put DIR``, ``get DIR`` and folder links through the TransferManager: one tree display,
one ``--json`` object per file, re-runs that skip complete files and resume the rest. Run
for real in subprocesses against the emulator (the ``Cli`` helper of test_cli)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from megafast._cli.progress import TreeProgress
from megafast.testing import MegaEmulator
from test_cli import EMAIL, PASSWORD, Cli, unique


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest.fixture
def cli(tmp_path: Path, emulator: MegaEmulator) -> Iterator[Cli]:
    c = Cli(tmp_path, emulator.api_url)
    c.login()
    yield c
    emulator.clear_faults()


def make_tree(root: Path, files: int) -> dict[str, bytes]:
    made = {}
    for i in range(files):
        rel = f"d{i % 3}/f{i:03d}.bin"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        made[rel] = os.urandom(1000 + i)
        (root / rel).write_bytes(made[rel])
    return made


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def interrupt_when(cli: Cli, args: list[str], ready: Callable[[], bool]) -> None:
    """Run the command line with ``args`` and press Ctrl-C once ``ready()`` (at most 30 s
    on): it must stop with the interrupted exit code."""
    process = subprocess.Popen(
        cli.command(*args), env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None and not ready():
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err.decode()


def test_put_and_get_a_folder_with_one_json_object_per_file(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / unique("tree")
    files = make_tree(src, 12)
    (src / "link").symlink_to(src / "d0")
    folder = "/" + unique("dest")
    cli.ok("mkdir", folder)
    done = cli.run("--json", "put", str(src), folder)
    assert done.returncode == 0, done.stderr.decode()
    rows = __import__("json").loads(done.stdout)
    assert sorted(r["path"] for r in rows) == sorted(f"{folder}/{src.name}/{r}" for r in files)
    assert {r["status"] for r in rows} == {"done"} and all(r["handle"] for r in rows)
    again = cli.json("put", str(src), folder)
    assert {r["status"] for r in again} == {"skipped"}  # already there: same size and c
    assert sorted(r["handle"] for r in again) == sorted(r["handle"] for r in rows)

    out = tmp_path / "out"
    got = cli.json("get", f"{folder}/{src.name}", "-o", f"{out}/")
    assert len(got) == 12 and {r["status"] for r in got} == {"done"}
    assert local_files(out / src.name) == files
    assert {Path(r["path"]) for r in got} == {out / src.name / rel for rel in files}
    again = cli.json("get", f"{folder}/{src.name}", "-o", f"{out}/")
    assert {r["status"] for r in again} == {"skipped"}  # verified before, per the ledger


def test_one_tree_display_with_files_and_in_flight(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / unique("shown")
    make_tree(src, 6)
    done = cli.run("--progress", "always", "put", str(src), "/")
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "6/6 files" in err and "in flight" in err
    assert err.count("uploaded ") == 1  # one status line for the tree, not one per file


def test_an_interrupted_get_of_a_folder_resumes(
    cli: Cli, emulator: MegaEmulator, tmp_path: Path
) -> None:
    src = tmp_path / unique("big")
    files = make_tree(src, 150)
    cli.ok("put", str(src), "/")
    out = tmp_path / "out"
    emulator.set_faults(latency=0.3)
    interrupt_when(
        cli,
        ["get", f"/{src.name}", "-o", f"{out}/"],
        lambda: out.exists() and len(list((out / src.name).rglob("*.bin"))) >= 5,
    )
    emulator.clear_faults()
    got = local_files(out / src.name)
    assert 5 <= len(got) < 150
    rows = cli.json("get", f"/{src.name}", "-o", f"{out}/")
    statuses = [r["status"] for r in rows]
    assert local_files(out / src.name) == files
    assert statuses.count("skipped") >= 5 and set(statuses) <= {"done", "skipped"}


def test_a_folder_link_goes_through_the_manager(
    cli: Cli, emulator: MegaEmulator, tmp_path: Path
) -> None:
    src = tmp_path / unique("pub")
    files = make_tree(src, 7)
    cli.ok("put", str(src), "/")
    url = cli.ok("link", f"/{src.name}").strip()
    anonymous = Cli(tmp_path / "anon", emulator.api_url)
    (tmp_path / "anon").mkdir()
    out = tmp_path / "out"
    rows = anonymous.json("get", url, "-o", str(out))
    assert len(rows) == 7 and {r["status"] for r in rows} == {"done"}
    key = url.rpartition("#")[2]
    assert key and all(key not in r["source"] for r in rows)  # the key never shows
    assert local_files(out / src.name) == files


def test_tree_progress_counts_files_bytes_and_flight() -> None:
    shown = TreeProgress("t", enabled=False)

    def future(size: int) -> SimpleNamespace:
        return SimpleNamespace(job=SimpleNamespace(size=size), state="queued", outcome=None)

    a, b, c = future(100), future(50), future(30)
    for f in (a, b, c):
        shown.on_queued(f)
    shown.on_started(a)
    shown.on_started(b)
    shown.on_progress(a, 40, 100)
    assert (shown.files_total, shown.in_flight, shown.bar.done, shown.bar.total) == (3, 2, 40, 180)
    a.state = "done"
    shown.on_done(a)
    b.state = "failed"
    shown.on_done(b)  # its bytes leave the total
    c.state = "skipped"
    shown.on_done(c)  # never started: nothing in flight to take away
    assert (shown.files_done, shown.in_flight, shown.bar.done, shown.bar.total) == (2, 0, 130, 130)


def test_a_file_that_fails_is_reported_and_the_rest_arrive(
    cli: Cli, emulator: MegaEmulator, tmp_path: Path
) -> None:
    import json

    src = tmp_path / unique("spoilt")
    files = make_tree(src, 6)
    rows = cli.json("put", str(src), "/")
    bad = next(r for r in rows if r["path"].endswith("d1/f001.bin"))
    blob = emulator.store.blob_path(emulator.node(bad["handle"])["blob"])
    spoiled = bytearray(blob.read_bytes())
    spoiled[:16] = bytes(b ^ 0xFF for b in spoiled[:16])
    blob.write_bytes(bytes(spoiled))
    out = tmp_path / "out"
    done = cli.run("--json", "get", f"/{src.name}", "-o", f"{out}/")
    assert done.returncode == 3, done.stderr.decode()  # partial
    got = {Path(r["path"]).name: r for r in json.loads(done.stdout)}
    assert got["f001.bin"]["status"] == "failed" and got["f001.bin"]["reason"]
    assert {r["status"] for name, r in got.items() if name != "f001.bin"} == {"done"}
    del files["d1/f001.bin"]
    assert local_files(out / src.name) == files  # the bad file never replaced anything


def test_an_interrupted_put_of_a_folder_skips_what_arrived(
    cli: Cli, emulator: MegaEmulator, tmp_path: Path
) -> None:
    src = tmp_path / unique("up")
    make_tree(src, 150)
    emulator.set_faults(latency=0.3)  # folders, then five rounds of u, POST and p: about 5 s
    before = len(emulator.nodes(EMAIL))
    # stop once a few files (beyond the 4 folders) exist remotely
    interrupt_when(
        cli, ["put", str(src), "/"], lambda: len(emulator.nodes(EMAIL)) - before >= 4 + 5
    )
    emulator.clear_faults()
    rows = cli.json("put", str(src), "/")
    statuses = [r["status"] for r in rows]
    assert len(rows) == 150 and set(statuses) <= {"done", "skipped"}
    assert 0 < statuses.count("skipped") < 150
    listing = cli.json("ls", "-R", f"/{src.name}")
    names = [e["name"] for e in listing if e["type"] == "file"]
    assert len(names) == 150 and not any("(1)" in n for n in names)  # nothing twice
