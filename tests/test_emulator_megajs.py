"""An independent client watching the emulator's ``/sc`` channel: megajs (the npm package),
run with Node, logs in, lists the account and follows changes made by another session.

Skipped with the reason when ``node``/``npm`` are missing or megajs cannot be installed from
the npm registry (no network); set ``MEGAFAST_MEGAJS_DIR`` to a folder whose
``node_modules`` already holds megajs to run it offline.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from megafast import crypto as mc
from megafast.testing import MegaEmulator
from test_emulator_support import RawClient

MEGAJS_VERSION = "1.3.10"

_WATCH_JS = r"""
const { Storage } = require('megajs')
const [gateway, email, password] = process.argv.slice(2)
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const storage = new Storage({ email, password, gateway, keepalive: true })
storage.on('error', (e) => say({ event: 'error', message: String(e) }))
storage.ready.then(() => {
  say({ event: 'ready', names: Object.values(storage.files).map((f) => f.name).filter(Boolean) })
  for (const kind of ['add', 'update', 'delete']) {
    storage.on(kind, (f) => say({ event: kind, name: f.name, parent: f.parent && f.parent.name }))
  }
  storage.on('move', (f, old) => say({ event: 'move', name: f.name, from: old.name,
                                       parent: f.parent.name }))
}).catch((e) => { say({ event: 'error', message: String(e) }); process.exit(1) })
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
"""


@pytest.fixture(scope="module")
def megajs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        pytest.skip("node is not installed")
    given = os.environ.get("MEGAFAST_MEGAJS_DIR")
    if given:
        return Path(given)
    if npm is None:
        pytest.skip("npm is not installed")
    where = tmp_path_factory.mktemp("megajs")
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", "--fetch-retries=0",
             "--fetch-timeout=30000", f"megajs@{MEGAJS_VERSION}"],
            cwd=where, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"megajs could not be installed from the npm registry: {exc}")
    return where


@pytest.fixture
def watcher(megajs_dir: Path, emu: MegaEmulator) -> Iterator[tuple[Any, queue.Queue]]:
    emu.create_account("js@example.com", "pw")
    emu.add_folder("js@example.com", "before")
    script = megajs_dir / "watch.js"
    script.write_text(_WATCH_JS)
    proc = subprocess.Popen(
        ["node", str(script), emu.api_url + "/", "js@example.com", "pw"],
        cwd=megajs_dir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        yield proc, lines
    finally:
        proc.kill()
        proc.wait(10)


def next_event(lines: queue.Queue, proc: Any) -> dict:
    try:
        return json.loads(lines.get(timeout=30))
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"megajs said nothing; stderr: {proc.stderr.read()[-2000:]}") from None


def test_megajs_follows_changes_made_by_another_session(
    emu: MegaEmulator, watcher: tuple[Any, queue.Queue]
) -> None:
    proc, lines = watcher
    ready = next_event(lines, proc)
    assert ready["event"] == "ready" and "before" in ready["names"], ready
    other = RawClient(emu.api_url)
    other.login("js@example.com", "pw")
    folder = other.mkdir("docs")
    assert next_event(lines, proc) == {"event": "add", "name": "docs", "parent": "Cloud Drive"}
    node, packed, _ = other.upload(b"hello megajs", "a.txt", folder)
    assert next_event(lines, proc) == {"event": "add", "name": "a.txt", "parent": "docs"}
    k4 = [packed[i] ^ packed[i + 4] for i in range(4)]
    attr = mc.base64_url_encode(mc.encrypt_attr({"n": "b.txt"}, k4))
    assert other.one({"a": "a", "n": node["h"], "attr": attr}) == 0
    assert next_event(lines, proc) == {"event": "update", "name": "b.txt", "parent": "docs"}
    before = next(n["h"] for n in other.files()["f"] if n["t"] == 1 and other.name(n) == "before")
    assert other.one({"a": "m", "n": node["h"], "t": before}) == 0
    moved = next_event(lines, proc)
    assert moved == {"event": "move", "name": "b.txt", "from": "docs", "parent": "before"}
    assert other.one({"a": "d", "n": folder}) == 0
    assert next_event(lines, proc) == {"event": "delete", "name": "docs", "parent": "Cloud Drive"}
    emu.add_file("js@example.com", b"seeded", "seeded.bin")
    assert next_event(lines, proc)["name"] == "seeded.bin"
    assert lines.empty()
