"""Dask over mega://: many files read in parallel by worker processes, results written back.

Run it against your account (after ``megafast login``, or with MEGAFAST_SESSION set):

    python examples/dask_mega.py mega://sales mega://reports --workers 4

or against a local emulator with ``--demo`` (it makes the input files first). On a real
cluster, pass the scheduler's address with ``--scheduler tcp://host:8786``: every worker
then reads and writes MEGA from its own machine (and its own IP address).
"""

from __future__ import annotations

import argparse
from typing import Any


def summarise(source: str, dest: str, storage_options: dict[str, Any]) -> Any:
    """Total and mean ``amount`` per ``region`` over every CSV file under ``source`` (one
    partition per file, read by the workers in parallel); written to ``dest`` as Parquet
    (one file per partition) and as one small CSV. Returns the totals (a pandas frame)."""
    import dask.dataframe as dd

    sales = dd.read_csv(f"{source}/*.csv", storage_options=storage_options, blocksize=None)
    by_region = sales.groupby("region")["amount"].agg(["sum", "mean", "count"])
    totals = by_region.compute().sort_index()
    sales[sales["amount"] > 0].to_parquet(
        f"{dest}/positive", storage_options=storage_options, write_index=False
    )
    totals.to_csv(f"{dest}/totals.csv", storage_options=storage_options)
    return totals


def make_demo_files(root: str, storage_options: dict[str, Any], files: int = 12) -> None:
    """Write ``files`` small CSV files of made-up sales under ``root``."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(root, **storage_options)
    regions = ["north", "south", "east", "west"]
    for i in range(files):
        rows = [f"{regions[(i + j) % 4]},{(i * 7 + j * 3) % 50 - 10}" for j in range(200)]
        fs.pipe_file(f"{path}/part-{i:03d}.csv", ("region,amount\n" + "\n".join(rows)).encode())


def run(
    source: str,
    dest: str,
    storage_options: dict[str, Any],
    *,
    workers: int = 2,
    scheduler: str | None = None,
) -> Any:
    """Start a LocalCluster of ``workers`` processes (or join ``scheduler``) and summarise."""
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler):
            return summarise(source, dest, storage_options)
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        return summarise(source, dest, storage_options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="mega://sales")
    parser.add_argument("dest", nargs="?", default="mega://reports")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler")
    parser.add_argument("--demo", action="store_true", help="run against a local emulator")
    args = parser.parse_args(argv)
    if not args.demo:
        print(run(args.source, args.dest, {}, workers=args.workers, scheduler=args.scheduler))
        return
    from megafast import Mega
    from megafast.testing import MegaEmulator

    with MegaEmulator() as emu:
        emu.create_account("demo@example.com", "demo password")
        session = Mega(api_url=emu.api_url).login("demo@example.com", "demo password")
        options = {"session": session.dump_session(), "api_url": emu.api_url}
        make_demo_files(args.source, options)
        print(run(args.source, args.dest, options, workers=args.workers))


if __name__ == "__main__":
    main()
