"""Sync over many files, with the emulator in another process:

- the second run over N unchanged files (the client's node tree already loaded: warm),
- 10 files changed among N (only those move),
- a 1 GiB file renamed locally (moved on the server, 0 bytes uploaded).

    PYTHONPATH=src python benchmarks/bench_sync.py                # N = 10,000
    PYTHONPATH=src python benchmarks/bench_sync.py --files 100000
    PYTHONPATH=src python benchmarks/bench_sync.py --files 100000 --account-nodes 1000000

``--account-nodes N``: the account holds N nodes in all (the synced folder plus filler
folders of 1,000 files elsewhere), so the re-run is measured in a big account (issue 19's
target: <= 15 s and <= 600 MB peak RSS of the client process, which never makes mega.py
dicts for the whole account: sync reads the node store).

The remote side is seeded straight into the emulator's store (nodes carrying the local
files' fingerprints, as an earlier sync would have left them), so setting up 100,000 files
takes seconds instead of 100,000 uploads; the first run then finds every file already there
(it reads each file's fingerprint once and writes the state). Bytes moved are the
emulator's own counters.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EMAIL = "bench-sync@example.com"
PASSWORD = "bench sync password"
PER_FOLDER = 100
BIG = 1 << 30
MTIME = 1_700_000_000


def _serve(conn: Any) -> None:
    """The emulator's process: seed the account from the manifest, then answer
    "stats" until "stop"."""
    from megafast.testing import MegaEmulator
    from megafast.testing import _crypto as C

    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD, version=1)
        manifest, filler = conn.recv()  # [(folder or "", name, size, c)], node count
        store = emu.store
        owner = store.user_by_email(EMAIL)["handle"]
        mk = emu.account(EMAIL).master_key
        sync_root = emu.add_folder(EMAIL, "bench")
        folders: dict[str, str] = {"": sync_root}
        rows: list[tuple[Any, ...]] = []
        seq = store.next_seq()
        for folder, name, size, c in manifest:
            if folder not in folders:
                key = secrets.token_bytes(16)
                folders[folder] = C.b64encode(secrets.token_bytes(6))
                seq += 1
                rows.append(
                    (
                        folders[folder],
                        owner,
                        sync_root,
                        1,
                        C.encrypt_attr({"n": folder}, key),
                        C.b64encode(C.ecb_encrypt(mk, key)),
                        None,
                        MTIME,
                        None,
                        None,
                        seq,
                    )
                )
            packed = secrets.token_bytes(32)
            k = bytes(a ^ b for a, b in zip(packed[:16], packed[16:], strict=True))
            seq += 1
            rows.append(
                (
                    C.b64encode(secrets.token_bytes(6)),
                    owner,
                    folders[folder],
                    0,
                    C.encrypt_attr({"n": name, "c": c}, k),
                    C.b64encode(C.ecb_encrypt(mk, packed)),
                    size,
                    MTIME,
                    None,
                    None,
                    seq,
                )
            )
        seq = _filler(rows, filler - len(rows), owner, mk, emu.add_folder(EMAIL, "filler"), seq)
        with store.transaction():
            store.db.executemany(
                "INSERT INTO nodes(h, owner, parent, t, a, k, s, ts, blob, fa, seq)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            store._seq = seq
            store.db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES('seq', ?)", (str(seq),)
            )
        conn.send(emu.api_url)
        while True:
            message = conn.recv()
            if message == "stop":
                return
            conn.send(emu.stats())


def _filler(
    rows: list[tuple[Any, ...]], count: int, owner: str, mk: bytes, parent: str, seq: int
) -> int:
    """``count`` nodes outside the synced folder: folders of 1,000 files (attributes and
    keys from a pool of 1,000, so seeding a million takes seconds); returns the last seq."""
    from megafast.testing import _crypto as C

    pool = []
    for i in range(1000):
        packed = secrets.token_bytes(32)
        k = bytes(a ^ b for a, b in zip(packed[:16], packed[16:], strict=True))
        c = C.b64encode(secrets.token_bytes(16) + bytes([4]) + MTIME.to_bytes(4, "little"))
        attrs = C.encrypt_attr({"n": f"filler{i:04d}.dat", "c": c}, k)
        pool.append((attrs, C.b64encode(C.ecb_encrypt(mk, packed)), 1000 + i))
    folder_key = secrets.token_bytes(16)
    folder_attrs = C.encrypt_attr({"n": "part"}, folder_key)
    folder_k = C.b64encode(C.ecb_encrypt(mk, folder_key))
    folder = parent
    for i in range(max(0, count)):
        if i % 1001 == 0:
            folder = C.b64encode(secrets.token_bytes(6))
            seq += 1
            rows.append(
                (folder, owner, parent, 1, folder_attrs, folder_k, None, MTIME, None, None, seq)
            )
            continue
        attrs, k, size = pool[i % 1001 - 1]
        seq += 1
        rows.append(
            (
                C.b64encode(secrets.token_bytes(6)),
                owner,
                folder,
                0,
                attrs,
                k,
                size,
                MTIME,
                None,
                None,
                seq,
            )
        )
    return seq


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _make_local(root: Path, files: int) -> list[tuple[str, str, int, str]]:
    from megafast.crypto import fingerprint

    manifest: list[tuple[str, str, int, str]] = []
    for i in range(files):
        folder = f"dir{i // PER_FOLDER:05d}"
        path = root / folder / f"file{i:07d}.bin"
        if i % PER_FOLDER == 0:
            path.parent.mkdir(parents=True)
        data = secrets.token_bytes(64 + i % 200)
        path.write_bytes(data)
        os.utime(path, (MTIME, MTIME))
        manifest.append((folder, path.name, len(data), fingerprint(path, MTIME)))
    big = root / "big.iso"
    with open(big, "wb") as f:  # sparse: 1 GiB with a random head, fingerprinted by samples
        f.write(secrets.token_bytes(1 << 20))
        f.truncate(BIG)
    os.utime(big, (MTIME, MTIME))
    manifest.append(("", "big.iso", BIG, fingerprint(big, MTIME)))
    return manifest


def run(files: int, account_nodes: int = 0) -> list[tuple[str, str, str, str]]:
    from megafast import Mega
    from megafast.sync import Sync

    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        local = work / "local"
        local.mkdir()
        started = time.perf_counter()
        manifest = _make_local(local, files)
        parent, child = mp.Pipe()
        server = mp.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
        server.start()
        parent.send((manifest, account_nodes))
        api_url = parent.recv()
        setup = time.perf_counter() - started

        def uploaded() -> int:
            parent.send("stats")
            return int(parent.recv().get("upload_bytes", 0))

        mega = Mega(api_url=api_url).login(EMAIL, PASSWORD)
        t0 = time.perf_counter()
        mega.find_path_descriptor("bench")  # the node tree loaded (no mega.py dicts)
        fetch = time.perf_counter() - t0
        nodes = len(mega._load_tree().store)
        job = Sync(mega, local, "/bench", state_dir=work / "state", delete=True)
        rows: list[tuple[str, str, str, str]] = []

        def timed(label: str, target: str) -> Any:
            before = uploaded()
            t = time.perf_counter()
            report = job.run()
            seconds = time.perf_counter() - t
            assert report.ok, report.to_dict()
            moved = uploaded() - before
            kinds = (
                ", ".join(
                    f"{report.count(k)} {k}"
                    for k in ("upload", "version", "move")
                    if report.count(k)
                )
                or "nothing"
            )
            rows.append(
                (
                    label,
                    f"{seconds:.2f} s",
                    f"{moved:,} B up ({kinds}); peak {_peak_mb():.0f} MB",
                    target,
                )
            )
            return report

        timed(f"first run, {files + 1:,} files already on MEGA (reads every fingerprint)", "-")
        timed(
            f"second run, {files + 1:,} unchanged files (node tree warm)",
            "<= 10 s (<= 15 s at 1M nodes), 0 B, <= 600 MB",
        )
        for i in range(0, files, max(1, files // 10))[:10]:
            path = local / f"dir{i // PER_FOLDER:05d}" / f"file{i:07d}.bin"
            path.write_bytes(secrets.token_bytes(path.stat().st_size))
        timed(f"10 files changed among {files + 1:,}", "only 10 move; <= 12 s")
        job.run()  # re-reads the node tree the last run changed (not timed)
        os.rename(local / "big.iso", local / "dir00000" / "big renamed.iso")
        report = timed("a 1 GiB file renamed locally", "moved on the server, 0 B up")
        assert [a.kind for a in report.actions] == ["move"], report.to_dict()
        parent.send("stop")
        server.join(30)
        rows.insert(
            0,
            (
                f"setup: {files:,} local files + 1 GiB sparse, seeding; account {nodes:,} nodes",
                f"{setup:.1f} s",
                f"client tree load {fetch:.2f} s",
                "-",
            ),
        )
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--account-nodes", type=int, default=0, help="nodes in the account")
    args = parser.parse_args(argv)
    rows = run(args.files, args.account_nodes)
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    print("| work | time | bytes moved | target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def test_bench_sync_small() -> None:
    """The benchmark's flow at a small size (collected only when benchmarks are run)."""
    rows = run(300, account_nodes=3000)
    assert len(rows) == 5


if __name__ == "__main__":
    sys.exit(main())
