"""Big accounts: the streaming listing into the compact NodeStore against the whole-body path.

    PYTHONPATH=src python benchmarks/bench_bigaccount.py --nodes 100000    # quick
    PYTHONPATH=src python benchmarks/bench_bigaccount.py --nodes 1000000

A synthetic ``f`` answer (folders of 100 files, each with a name and a ``c`` attribute,
encrypted with the emulator's independent crypto) is written to a file once (kept in the
temporary folder for later runs) and served by ``python -m http.server`` in another process,
so the client reads a real HTTP response over loopback. Each measurement runs in its own
child process and reports its peak RSS (``ru_maxrss``):

- ``store``: stream the answer into ListingParser (1 MiB reads), 1,000 ``find_path``, write
  the encrypted cache; then make 1,000 action packets (400 new files, 300 renames, 300
  deletions, with the keys, as the server would send them) for the next step, untimed;
- ``warm``: load that cache, apply the 1,000 packets, find again;
- ``nodetree``: the whole body, ``json.loads``, ``NodeTree.from_answer`` (parsed dicts into
  the same store; ``Mega`` itself streams since issue 12),
  ``visible()`` (what ``get_files`` returns), 1,000 ``find_path``.

"client" time is the time spent in megafast code on answer bytes (feed/close), without the
wait for the network; "end to end" adds the transfer from the other process. On a loaded
machine the wall-clock figures include waiting for a CPU, so the CPU time of the same work
(``time.process_time``) is reported beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from synthetic_listing import Account, big_answer_chunks, handle  # noqa: E402

PER_FOLDER = 100


def _answer_file(nodes: int) -> tuple[Path, dict[str, str]]:
    folder = Path(tempfile.gettempdir()) / f"megafast-bigaccount-{nodes}"
    folder.mkdir(exist_ok=True)
    path, meta_path = folder / "answer.json", folder / "meta.json"
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    acct = Account()
    started = time.perf_counter()
    with open(path.with_suffix(".part"), "wb") as out:
        for chunk in big_answer_chunks(acct, max(1, nodes // (PER_FOLDER + 1)), PER_FOLDER):
            out.write(chunk)
    os.replace(path.with_suffix(".part"), path)
    meta = {"user": acct.user, "master": acct.master.hex()}
    meta_path.write_text(json.dumps(meta))
    print(
        f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return path, meta


def _paths(folders: int, count: int = 1000) -> list[str]:
    rng = random.Random(7)
    return [
        f"folder{rng.randrange(folders)}/file{rng.randrange(PER_FOLDER)}.bin" for _ in range(count)
    ]


def _time_finds(find: Any, folders: int) -> tuple[int, float, float]:
    """(paths found, seconds for 1,000 finds the first time, seconds for the same again)."""
    paths = _paths(folders)
    f0 = time.perf_counter()
    found = sum(find(p) is not None for p in paths)
    first = time.perf_counter() - f0
    f0 = time.perf_counter()
    sum(find(p) is not None for p in paths)
    return found, first, time.perf_counter() - f0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- children ------------------------------------------------------------------------------
def child_store(url: str, meta: dict[str, str], folders: int, cache_dir: str) -> dict[str, Any]:
    import requests

    from megafast._tree.cache import NodeCache
    from megafast._tree.listing import ListingParser
    from megafast._tree.nodes import Keyring

    master = bytes.fromhex(meta["master"])
    base = _peak_mb()
    t0 = time.perf_counter()
    parser = ListingParser(Keyring(master, meta["user"]))
    client = cpu = 0.0
    with requests.get(url, stream=True, timeout=600) as response:
        for chunk in response.iter_content(1 << 20):
            c0, p0 = time.perf_counter(), time.process_time()
            parser.feed(chunk)
            client += time.perf_counter() - c0
            cpu += time.process_time() - p0
    c0, p0 = time.perf_counter(), time.process_time()
    store = parser.close()
    client += time.perf_counter() - c0
    cpu += time.process_time() - p0
    total = time.perf_counter() - t0
    found, finds_first, finds = _time_finds(store.find_path, folders)
    peak_listing = _peak_mb()
    cache = NodeCache(cache_dir, master, meta["user"])
    s0 = time.perf_counter()
    cache.save(store)
    save = time.perf_counter() - s0
    peak_cache = _peak_mb()
    packets = _packets(store, meta, folders)
    Path(cache_dir, "packets.json").write_text(json.dumps(packets))
    return {
        "nodes": len(store),
        "end_to_end": total,
        "client": client,
        "client_cpu": cpu,
        "finds_first": finds_first,
        "finds": finds,
        "found": found,
        "cache_write": save,
        "peak_mb": peak_listing,
        "peak_after_cache_mb": peak_cache,
        "import_mb": base,
        "cache_mb": cache.path.stat().st_size / 1e6,
    }


def _packets(probe: Any, meta: dict[str, str], folders: int) -> list[dict[str, Any]]:
    """1,000 action packets against the listed tree, made as the server would send them."""
    from megafast.testing import _crypto as C

    acct = Account(meta["user"], bytes.fromhex(meta["master"]))
    rng = random.Random(3)
    packets: list[dict[str, Any]] = []
    for i in range(400):
        parent = probe.find_path(f"folder{rng.randrange(folders)}")
        packets.append({"a": "t", "t": {"f": [acct.file(handle(10**9 + i), parent, f"n{i}")]}})
    victims = rng.sample(range(folders * PER_FOLDER), 600)
    for j, v in enumerate(victims[:300]):
        h = probe.find_path(f"folder{v // PER_FOLDER}/file{v % PER_FOLDER}.bin")
        key = probe.key_of(h)
        k = bytes(a ^ b for a, b in zip(key[:16], key[16:], strict=True))
        packets.append({"a": "u", "n": h, "at": C.encrypt_attr({"n": f"r{j}"}, k), "ts": 5})
    for v in victims[300:]:
        packets.append(
            {"a": "d", "n": probe.find_path(f"folder{v // PER_FOLDER}/file{v % PER_FOLDER}.bin")}
        )
    return packets


def child_warm(meta: dict[str, str], folders: int, cache_dir: str) -> dict[str, Any]:
    from megafast._tree.cache import NodeCache
    from megafast._tree.nodes import Keyring
    from megafast._tree.watch import apply_packet

    master = bytes.fromhex(meta["master"])
    keyring = Keyring(master, meta["user"])
    cache = NodeCache(cache_dir, master, meta["user"])
    packets = json.loads(Path(cache_dir, "packets.json").read_text())
    t0, p0 = time.perf_counter(), time.process_time()
    store = cache.load()
    load = time.perf_counter() - t0
    assert store is not None
    for packet in packets:
        apply_packet(store, keyring, packet)
    warm = time.perf_counter() - t0
    warm_cpu = time.process_time() - p0
    f0 = time.perf_counter()
    found = sum(store.find_path(p) is not None for p in _paths(folders))
    return {
        "cache_load": load,
        "warm": warm,
        "warm_cpu": warm_cpu,
        "finds_first": time.perf_counter() - f0,
        "found": found,
        "nodes": len(store),
        "peak_mb": _peak_mb(),
    }


def child_nodetree(url: str, meta: dict[str, str], folders: int) -> dict[str, Any]:
    import requests

    from megafast._tree.nodes import Keyring, NodeTree

    master = bytes.fromhex(meta["master"])
    t0 = time.perf_counter()
    body = requests.get(url, timeout=600).content
    c0, p0 = time.perf_counter(), time.process_time()
    answer = json.loads(body)[0]
    del body
    tree = NodeTree.from_answer(answer, Keyring(master, meta["user"]))
    visible = tree.visible()
    client = time.perf_counter() - c0
    cpu = time.process_time() - p0
    total = time.perf_counter() - t0
    found, finds_first, finds = _time_finds(tree.find_path, folders)
    return {
        "nodes": len(visible),
        "end_to_end": total,
        "client": client,
        "client_cpu": cpu,
        "finds_first": finds_first,
        "finds": finds,
        "found": found,
        "peak_mb": _peak_mb(),
    }


def _run_child(*args: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args(argv)
    if args.child:
        mode, *rest = args.child
        meta = json.loads(rest[1])
        folders = int(rest[2])
        if mode == "store":
            result = child_store(rest[0], meta, folders, rest[3])
        elif mode == "warm":
            result = child_warm(meta, folders, rest[3])
        else:
            result = child_nodetree(rest[0], meta, folders)
        print(json.dumps(result))
        return
    path, meta = _answer_file(args.nodes)
    folders = max(1, args.nodes // (PER_FOLDER + 1))
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(path.parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        port = int(line.split(" port ")[1].split()[0])
        url = f"http://127.0.0.1:{port}/{path.name}"
        with tempfile.TemporaryDirectory() as cache_dir:
            common = [url, json.dumps(meta), str(folders), cache_dir]
            store = _run_child("store", *common)
            warm = _run_child("warm", *common)
            tree = _run_child("nodetree", *common)
    finally:
        server.terminate()
        server.wait()
    print(
        f"\n{store['nodes']:,} nodes ({folders:,} folders of {PER_FOLDER} files), answer "
        f"{path.stat().st_size / 1e6:.0f} MB; load {os.getloadavg()[0]:.1f}"
    )
    rows = [
        ("end to end: request to usable tree (s)", store["end_to_end"], tree["end_to_end"]),
        ("client time on answer bytes (s)", store["client"], tree["client"]),
        ("  the same, CPU time (s)", store["client_cpu"], tree["client_cpu"]),
        ("peak RSS of the client process (MB)", store["peak_mb"], tree["peak_mb"]),
        ("peak RSS including the cache write (MB)", store["peak_after_cache_mb"], None),
        (
            "1,000 find by path, first time (ms)",
            store["finds_first"] * 1e3,
            tree["finds_first"] * 1e3,
        ),
        ("1,000 find by path, again (ms)", store["finds"] * 1e3, tree["finds"] * 1e3),
        ("cache write (s)", store["cache_write"], None),
        ("cache load (s)", warm["cache_load"], None),
        ("warm start: cache load + 1,000 packets (s)", warm["warm"], None),
        ("  the same, CPU time (s)", warm["warm_cpu"], None),
        ("peak RSS, warm start (MB)", warm["peak_mb"], None),
    ]
    print(f"| {'work':<44} | NodeStore | whole body + NodeTree |")
    print(f"|{'-' * 46}|-----------|-----------------------|")
    for label, ours, theirs in rows:
        other = f"{theirs:.2f}" if theirs is not None else "-"
        print(f"| {label:<44} | {ours:9.2f} | {other:>21} |")
    print(
        f"cache file {store['cache_mb']:.0f} MB; finds found {store['found']}/1000 "
        f"(NodeTree {tree['found']}/1000); after the packets {warm['nodes']:,} nodes"
    )


if __name__ == "__main__":
    main()
