"""Rounds of random changes on both sides of a two-way pair, each round's sync run in a
child process SIGKILLed at a random point: nothing written is lost, and both sides
converge. The default run does a few rounds; the full 100 are marked slow."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega
from megafast.sync import sync
from support.sync import PASSWORD, new_account, running_emulator, tree_bytes, write

emu = pytest.fixture(scope="module", name="emu")(running_emulator)

_CHILD = textwrap.dedent(
    """
    import sys
    from megafast import Mega
    from megafast.sync import TwoWaySync
    from megafast.sync._transfers import EngineTransfers
    api, email, password, local, state = sys.argv[1:6]
    mega = Mega(api_url=api).login(email, password)
    print("ready", flush=True)
    TwoWaySync(mega, local, "/pair", state_dir=state, max_delete=100,
               transfers=EngineTransfers(mega)).run()
    print("done", flush=True)
    """
)


def _killed_run(emu: Any, email: str, local: Path, state: Path, delay: float) -> bool:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, emu.api_url, email, PASSWORD, str(local), str(state)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    return child.returncode == 0


class _World:
    """The test's own changes on both sides, and the contents that must survive: every
    content written and not since replaced or deleted by the same side."""

    def __init__(self, rng: random.Random, local: Path, other: Any, tmp: Path) -> None:
        self.rng = rng
        self.local = local
        self.other = other
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.alive: set[bytes] = set()
        self.n = 0

    def content(self, side: str) -> bytes:
        self.n += 1
        data = f"{side} #{self.n} ".encode() + self.rng.randbytes(self.rng.choice((20, 20_000)))
        self.alive.add(data)
        return data

    def local_files(self) -> list[Path]:
        return [
            p
            for p in self.local.rglob("*")
            if p.is_file() and ".megafast-trash" not in p.parts and ".megafast-part" not in p.name
        ]

    def change_local(self) -> None:
        rng, files = self.rng, self.local_files()
        op = rng.choice(("new", "new", "edit", "edit", "delete", "rename"))
        if op == "new" or not files:
            folder = self.local / rng.choice(("", "a", "b", "a/deep"))
            write(folder / f"l{self.n}.bin", self.content("local"))
            return
        path = rng.choice(files)
        old = path.read_bytes()
        if op == "edit":
            path.write_bytes(self.content("local"))
            os.utime(path, (time.time() + rng.randint(-5000, 5000),) * 2)  # a skewed clock
        elif op == "delete":
            path.unlink()
        else:
            target = self.local / rng.choice(("", "a", "b")) / f"moved{self.n}-{path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)
            return
        self.alive.discard(old)

    def change_remote(self) -> None:
        rng, other = self.rng, self.other
        other.refresh()
        root = other.find_path_descriptor("pair")
        nodes = [
            n
            for n in other.get_files().values()
            if n.get("t") == 0
            and other._load_tree().store.path_of(n["h"]).startswith("Cloud Drive/pair/")
        ]
        op = rng.choice(("new", "new", "edit", "delete", "rename"))
        if op == "new" or not nodes or root is None:
            src = write(self.tmp / f"up{self.n}" / f"r{self.n}.bin", self.content("remote"))
            other.upload(str(src), root or other.root_id)
            return
        node = rng.choice(nodes)
        old = other.download(node["h"], dest_path=str(self.tmp), dest_filename=f"dl{self.n}")
        old_bytes = Path(old).read_bytes()
        if op == "rename":
            other.rename((node["h"], node), f"renamed{self.n}-{node['a']['n']}")
            return
        other.delete(node["h"])
        self.alive.discard(old_bytes)
        if op == "edit":
            src = write(self.tmp / f"up{self.n}" / node["a"]["n"], self.content("remote"))
            other.upload(str(src), node["p"])


def _rounds(emu: Any, tmp_path: Path, rounds: int, seed: int) -> None:
    email, mega = new_account(emu)
    other = Mega(api_url=emu.api_url).login(email, PASSWORD)
    rng = random.Random(seed)
    local, state = tmp_path / "local", tmp_path / "state"
    world = _World(rng, local, other, tmp_path / "scratch")
    for _ in range(12):
        world.change_local()
    sync(mega, local, "/pair", direction="both", state_dir=state)
    killed = 0
    emu.set_faults(bandwidth=40_000, latency=0.01)
    try:
        for _ in range(rounds):
            for _ in range(rng.randint(1, 3)):
                world.change_local()
            for _ in range(rng.randint(1, 3)):
                world.change_remote()
            killed += not _killed_run(emu, email, local, state, rng.uniform(0.05, 0.6))
    finally:
        emu.clear_faults()
    assert killed >= rounds // 4  # the runs really were cut short
    mega.refresh()
    final = sync(mega, local, "/pair", direction="both", state_dir=state, max_delete=100)
    assert not final.failed, final.to_dict()
    again = sync(mega, local, "/pair", direction="both", state_dir=state, max_delete=100)
    assert again.actions == [], again.to_dict()
    mirror = tmp_path / "mirror"
    sync(mega, mirror, "/pair", direction="down", state_dir=tmp_path / "mirror-state")
    assert tree_bytes(mirror) == tree_bytes(local)  # converged
    have = set(tree_bytes(local).values())
    lost = [c[:20] for c in world.alive if c not in have]
    assert not lost, f"lost: {lost}"
    assert not list(local.rglob("*.megafast-part"))


def test_random_rounds_with_kills_lose_nothing_and_converge(emu, tmp_path):
    _rounds(emu, tmp_path, rounds=6, seed=23)


@pytest.mark.slow
def test_a_hundred_random_rounds_with_kills(emu, tmp_path):
    _rounds(emu, tmp_path, rounds=100, seed=2323)
