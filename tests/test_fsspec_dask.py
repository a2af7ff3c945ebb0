"""The Dask example (examples/dask_mega.py) on a LocalCluster of two worker processes, and
bulk_copy on Dask's scheduler."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from megafast.fs import MegaFileSystem, bulk_copy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "dask_mega.py"


def load_example():
    spec = importlib.util.spec_from_file_location("dask_mega", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dask_example_runs_on_two_worker_processes(fs_emulator, fs_options):
    example = load_example()
    example.make_demo_files("mega://sales", fs_options, files=12)
    fs = MegaFileSystem(**fs_options)
    expected = pd.concat(
        pd.read_csv(f"mega://{p}", storage_options=fs_options) for p in fs.glob("sales/*.csv")
    )
    fs_emulator.reset_stats()
    totals = example.run("mega://sales", "mega://reports", fs_options, workers=2)
    want = expected.groupby("region")["amount"].agg(["sum", "mean", "count"]).sort_index()
    pd.testing.assert_frame_equal(totals, want, check_index_type=False)
    fs.invalidate_cache()  # the workers wrote through their own sessions' trees
    back = pd.read_csv("mega://reports/totals.csv", storage_options=fs_options, index_col=0)
    pd.testing.assert_frame_equal(back, want, check_index_type=False)
    positive = pd.read_parquet("mega://reports/positive", storage_options=fs_options)
    assert len(positive) == (expected["amount"] > 0).sum()
    commands = fs_emulator.stats()["commands"]
    assert commands.get("us", 0) == 0  # workers resumed the session: no password logins
    assert commands.get("ug", 0) <= 2 + 1  # one resume per worker process (and the client)


def test_bulk_copy_spreads_one_task_per_file(fs_options, tmp_path):
    fs = MegaFileSystem(**fs_options)
    files = {f"bulk/src/f{i}.bin": bytes([i]) * (10_000 + i) for i in range(8)}
    files["bulk/src/deep/x.bin"] = b"deep"
    fs.pipe(files)
    local = tmp_path / "copy"
    done = bulk_copy("mega://bulk/src", str(local), source_options=fs_options)
    assert len(done) == 9
    assert (local / "deep" / "x.bin").read_bytes() == b"deep"
    assert (local / "f7.bin").read_bytes() == bytes([7]) * 10_007
    back = bulk_copy(str(local), "mega://bulk/back", dest_options=fs_options)
    assert sorted(back) == sorted(p.replace("bulk/src", "bulk/back") for p in files)
    assert fs.cat_file("bulk/back/deep/x.bin") == b"deep"
