"""The README's Python examples run against the emulator, with only the server changed."""

from __future__ import annotations

import re
from pathlib import Path

from megafast import Mega

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def python_block(heading: str) -> str:
    section = README.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return block


def test_quickstart_runs_against_the_emulator(emu, tmp_path, monkeypatch):
    email, password = "you@example.com", "your password"
    emu.create_account(email, password, version=1)
    owner = "friend@example.com"
    emu.create_account(owner, "pw")
    shared = emu.add_folder(owner, "holiday")
    emu.add_file(owner, b"photo bytes" * 1000, "beach.jpg", shared)
    folder_link = emu.export(shared)

    monkeypatch.chdir(tmp_path)
    content = bytes(range(256)) * 20_000 + b"tail"
    Path("big.iso").write_bytes(content)
    Path("photos/2026").mkdir(parents=True)
    Path("photos/2026/a.jpg").write_bytes(b"jpeg")
    code = python_block("Quickstart with a real MEGA account")
    code = code.replace("Mega()", f"Mega(api_url={emu.api_url!r})")
    code = code.replace('"https://mega.nz/folder/<H>#<K>"', repr(folder_link))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)

    assert Path("restore/big.iso").read_bytes() == content
    assert Path("big.iso").read_bytes() == content  # the source is untouched
    assert Path("restore/holiday/beach.jpg").read_bytes() == b"photo bytes" * 1000
    assert namespace["m2"].find("backups/2026/big.iso") is not None
    assert namespace["m2"].find("backups/2026/photos/2026/a.jpg") is not None


def test_moving_from_megapy_imports_exist():
    exec(python_block("Moving from mega.py"), {})


def test_emulator_example_runs():
    code = python_block("Testing your own code against MEGA: the emulator")
    # one more line inside the `with` block, while the emulator runs
    code += '    found = client.find("hello.txt")\n'
    namespace: dict = {"Mega": Mega}
    exec(compile(code, "README.md", "exec"), namespace)
    handle, node = namespace["found"]
    assert node["a"]["n"] == "hello.txt"


def test_cache_and_watch_example_runs(emu, tmp_path, monkeypatch):
    email, password = "you@example.com", "your password"
    emu.create_account(email, password)
    emu.configure_sc(wait_timeout=1.0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = python_block("Big accounts: a local cache and live updates")
    code = code.replace("Mega(cache=True)", f"Mega(api_url={emu.api_url!r}, cache=True)")
    # another session's change, made once the example follows the change channel
    code = code.replace("watcher = m.watch()", "watcher = m.watch(); change_elsewhere()")
    namespace: dict = {"change_elsewhere": lambda: emu.add_folder(email, "made elsewhere")}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["event"].path == "Cloud Drive/made elsewhere"
    assert namespace["m"].find("made elsewhere") is not None
    assert list((tmp_path / "megafast").glob("*.mfcache"))
