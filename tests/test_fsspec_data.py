"""pandas and pyarrow over mega:// (read_csv, read_parquet with a column subset, pyarrow's
PyFileSystem(FSSpecHandler(fs)))."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow.fs import FSSpecHandler, PyFileSystem

from megafast.fs import MegaFileSystem


@pytest.fixture
def base(fs_options) -> str:
    path = f"data-{uuid.uuid4().hex[:8]}"
    MegaFileSystem(**fs_options).makedirs(path)
    return path


def frame(rows: int, columns: int) -> pd.DataFrame:
    rng = np.random.default_rng(13)
    return pd.DataFrame({f"c{i:02d}": rng.random(rows) for i in range(columns)})


def test_pandas_read_and_write_csv(fs_options, base):
    df = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "t": [3.5, 19.25, 31.0]})
    df.to_csv(f"mega://{base}/cities.csv", index=False, storage_options=fs_options)
    back = pd.read_csv(f"mega://{base}/cities.csv", storage_options=fs_options)
    pd.testing.assert_frame_equal(back, df)


def test_read_parquet_of_two_columns_transfers_a_fraction(fs_emulator, fs_options, base):
    df = frame(100_000, 20)  # 16 MB of float64 in 20 column chunks
    path = f"mega://{base}/wide.parquet"
    df.to_parquet(path, storage_options=fs_options, compression=None, row_group_size=100_000)
    size = MegaFileSystem(**fs_options).size(path)
    fs_emulator.reset_stats()
    got = pd.read_parquet(path, columns=["c03", "c17"], storage_options=fs_options)
    pd.testing.assert_frame_equal(got, df[["c03", "c17"]])
    moved = fs_emulator.stats().get("download_bytes", 0)
    # 2/20 of the data plus whole MAC chunks around each column and the footer
    assert moved <= 0.30 * size, (moved, size)


def test_pyarrow_through_fsspec_handler(fs_options, base):
    pafs = PyFileSystem(FSSpecHandler(MegaFileSystem(**fs_options)))
    table = pa.table({"k": list(range(1000)), "v": [str(i) for i in range(1000)]})
    pq.write_table(table, f"{base}/t.parquet", filesystem=pafs)
    assert pafs.get_file_info(f"{base}/t.parquet").size > 0
    assert pq.read_table(f"{base}/t.parquet", filesystem=pafs, columns=["v"]).equals(
        table.select(["v"])
    )
    with pafs.open_input_file(f"{base}/t.parquet") as f:
        assert f.read(4) == b"PAR1"
        f.seek(-4, 2)
        assert f.read() == b"PAR1"
    infos = pafs.get_file_info(pa.fs.FileSelector(base, recursive=True))
    assert [i.path for i in infos] == [f"{base}/t.parquet"]
