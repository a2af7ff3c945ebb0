"""Every Python block in the README and in docs/ runs against the emulator, with only the
server and the placeholders changed, so no example can rot.

``EXAMPLES`` names the test that runs each block, by (file, heading, index of the block under
that heading); ``test_every_python_block_is_run`` fails when a block is added, moved or renamed
without a test here."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from megafast import Mega

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks() -> dict[tuple[str, str, int], str]:
    """(file relative to the root, nearest heading above, index under it) -> block text."""
    found: dict[tuple[str, str, int], str] = {}
    for doc in DOCS:
        heading, index = "", 0
        for part in re.split(
            r"(^#{1,6} [^\n]*$|```python\n.*?```)", doc.read_text(), flags=re.M | re.S
        ):
            if re.match(r"#{1,6} ", part):
                heading, index = part.lstrip("#").strip(), 0
            elif part.startswith("```python\n"):
                found[(doc.relative_to(ROOT).as_posix(), heading, index)] = part[10:-3]
                index += 1
    return found


BLOCKS = python_blocks()
EXAMPLES: dict[tuple[str, str, int], str] = {}


def example(doc: str, heading: str, index: int = 0) -> Callable[[Callable[..., Any]], Any]:
    """Registers the decorated test as the one that runs that block."""

    def register(test: Callable[..., Any]) -> Callable[..., Any]:
        EXAMPLES[(doc, heading, index)] = test.__name__
        return test

    return register


def block(doc: str, heading: str, index: int = 0) -> str:
    return BLOCKS[(doc, heading, index)]


def run(
    code: str, namespace: dict[str, Any] | None = None, name: str = "example"
) -> dict[str, Any]:
    namespace = {} if namespace is None else namespace
    exec(compile(code, name, "exec"), namespace)
    return namespace


def test_every_python_block_is_run():
    assert set(BLOCKS) == set(EXAMPLES), (
        f"blocks without a test: {sorted(set(BLOCKS) - set(EXAMPLES))}; "
        f"tests without a block: {sorted(set(EXAMPLES) - set(BLOCKS))}"
    )


@example("README.md", "Quickstart")
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
    code = block("README.md", "Quickstart")
    code = code.replace("Mega()", f"Mega(api_url={emu.api_url!r})")
    code = code.replace('"https://mega.nz/folder/<H>#<K>"', repr(folder_link))
    namespace = run(code, name="README.md")

    assert Path("restore/big.iso").read_bytes() == content
    assert Path("big.iso").read_bytes() == content  # the source is untouched
    assert Path("restore/holiday/beach.jpg").read_bytes() == b"photo bytes" * 1000
    assert namespace["m2"].find("backups/2026/big.iso") is not None
    assert namespace["m2"].find("backups/2026/photos/2026/a.jpg") is not None


@example("docs/MEGAPY.md", "Moving from mega.py")
def test_moving_from_megapy_imports_exist():
    namespace = run(block("docs/MEGAPY.md", "Moving from mega.py"))
    assert namespace["Mega"] is Mega
    assert hasattr(namespace["crypto"], "prepare_key")


@example("docs/EMULATOR.md", "The MEGA emulator: testing your own code against MEGA")
def test_emulator_example_runs():
    code = block("docs/EMULATOR.md", "The MEGA emulator: testing your own code against MEGA")
    # one more line inside the `with` block, while the emulator runs
    code += '    found = client.find("hello.txt")\n'
    namespace = run(code, {"Mega": Mega})
    handle, node = namespace["found"]
    assert node["a"]["n"] == "hello.txt"


@example("docs/TRANSFERS.md", "Many files at once: the transfer manager")
def test_transfer_manager_example_runs(emu, tmp_path, monkeypatch):
    email, password = "you@example.com", "your password"
    emu.create_account(email, password)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))
    Path("photos/2026").mkdir(parents=True)
    Path("photos/2026/a.jpg").write_bytes(b"jpeg" * 100)
    Path("photos/b.jpg").write_bytes(b"more")
    Path("notes.txt").write_bytes(b"notes")
    Path("todo.txt").write_bytes(b"todo")
    Path("restore").mkdir()
    code = block("docs/TRANSFERS.md", "Many files at once: the transfer manager")
    code = code.replace("Mega()", f"Mega(api_url={emu.api_url!r})")
    namespace = run(code)
    assert len(namespace["result"].succeeded) == 2
    assert len(namespace["queued"].succeeded) == 2
    assert namespace["tree"].ok and len(namespace["tree"].succeeded) == 2
    assert Path("restore/photos/2026/a.jpg").read_bytes() == b"jpeg" * 100
    assert namespace["m"].find("notes.txt") is not None


@example("docs/BIG_ACCOUNTS.md", "Big accounts: a local cache and live updates")
def test_cache_and_watch_example_runs(emu, tmp_path, monkeypatch):
    email, password = "you@example.com", "your password"
    emu.create_account(email, password)
    emu.configure_sc(wait_timeout=1.0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = block("docs/BIG_ACCOUNTS.md", "Big accounts: a local cache and live updates")
    code = code.replace("Mega(cache=True)", f"Mega(api_url={emu.api_url!r}, cache=True)")
    # another session's change, made once the example follows the change channel
    code = code.replace("watcher = m.watch()", "watcher = m.watch(); change_elsewhere()")
    namespace = run(code, {"change_elsewhere": lambda: emu.add_folder(email, "made elsewhere")})
    assert namespace["event"].path == "Cloud Drive/made elsewhere"
    assert namespace["m"].find("made elsewhere") is not None
    assert list((tmp_path / "megafast").glob("*.mfcache"))


@example("docs/FSSPEC.md", "`mega://` for pandas, Dask and pyarrow (fsspec)")
def test_fsspec_example_runs_against_the_emulator(emu, tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    code = block("docs/FSSPEC.md", "`mega://` for pandas, Dask and pyarrow (fsspec)")
    emu.create_account("you@example.com", "your password")
    owner = "publisher@example.com"
    emu.create_account(owner, "pw")
    shared = emu.add_folder(owner, "open data")
    emu.add_file(owner, b"1,2\n", "numbers.csv", shared)
    code = code.replace(
        'fsspec.filesystem("mega", ', f'fsspec.filesystem("mega", api_url={emu.api_url!r}, '
    )
    code = code.replace('"https://mega.nz/folder/<H>#<K>"', repr(emu.export(shared)))
    monkeypatch.chdir(tmp_path)
    namespace = run(code)
    assert namespace["df"]["city"].tolist() == ["Oslo", "Lima"]
    assert (tmp_path / "local-copy" / "2026" / "cities.parquet").is_file()
    assert namespace["public"].ls("", detail=False) == ["numbers.csv"]
    assert "password" not in namespace["options"]


@example("docs/SYNC.md", "From Python")
def test_sync_example_runs_against_the_emulator(emu, tmp_path, monkeypatch):
    emu.create_account("you@example.com", "your password")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))
    photos = tmp_path / "photos"
    (photos / "2026").mkdir(parents=True)
    (photos / "2026" / "a.jpg").write_bytes(b"jpeg" * 100)
    (photos / "b.tmp").write_bytes(b"scratch")
    code = block("docs/SYNC.md", "From Python")
    code = code.replace(
        "Mega().login(...)",
        f"Mega(api_url={emu.api_url!r}).login('you@example.com', 'your password')",
    )
    namespace = run(code)
    m = namespace["m"]
    assert m.find("backup/photos/2026/a.jpg") is not None
    assert m.find("backup/photos/b.tmp") is not None  # the first sync had no exclusions
    plan = json.loads(namespace["job"].run(dry_run=True).to_json())
    # nothing to do: a.jpg is there, b.tmp is excluded (neither uploaded nor deleted)
    assert plan["dry_run"] and plan["actions"] == [] and plan["files_unchanged"] == 1
    assert (photos / "2026" / "a.jpg").read_bytes() == b"jpeg" * 100


@example("docs/MEDIA.md", "Thumbnails and previews")
@example("docs/MEDIA.md", "Reading them")
@example("docs/MEDIA.md", "Password-protected links")
def test_media_examples_run_against_the_emulator(emu, tmp_path, monkeypatch):
    image = pytest.importorskip("PIL.Image")
    emu.create_account("you@example.com", "your password")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))
    image.new("RGB", (1200, 900), (10, 120, 200)).save("photo.jpg")
    image.new("RGBA", (300, 300), (0, 0, 0, 0)).save("scan.png")
    Path("downloads").mkdir()
    namespace: dict[str, Any] = {}
    for heading in ("Thumbnails and previews", "Reading them", "Password-protected links"):
        code = block("docs/MEDIA.md", heading).replace("Mega()", f"Mega(api_url={emu.api_url!r})")
        code = code.replace(
            'Mega({"thumbnails": False})', f'Mega({{"thumbnails": False}}, api_url={emu.api_url!r})'
        )
        run(code, namespace, name="docs/MEDIA.md")
    assert namespace["many"] == {namespace["node"][0]: namespace["jpeg"]}
    assert namespace["jpeg"].startswith(b"\xff\xd8") and namespace["preview"].startswith(
        b"\xff\xd8"
    )
    assert "#P!" in namespace["link"] and namespace["info"]["name"] == "photo.jpg"
    assert Path("downloads/photo.jpg").read_bytes() == Path("photo.jpg").read_bytes()
    assert namespace["mega"].get_thumbnail(namespace["mega"].find("scan.png"))  # attached later


@example("docs/SYNC.md", "Two-way, backups and restore from Python")
def test_two_way_and_backup_example_runs_against_the_emulator(emu, tmp_path, monkeypatch):
    emu.create_account("you@example.com", "your password")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("buy milk")
    code = block("docs/SYNC.md", "Two-way, backups and restore from Python")
    code = code.replace(
        "Mega().login(...)",
        f"Mega(api_url={emu.api_url!r}).login('you@example.com', 'your password')",
    )
    namespace = run(code)
    m = namespace["m"]
    assert namespace["report"].direction == "both" and m.find("notes/todo.txt") is not None
    assert len(namespace["snap"].uploaded) == 1
    assert (tmp_path / "notes-restored" / "todo.txt").read_text() == "buy milk"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc):
    """Every relative link in the README and docs/ names a file of the checkout."""
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_readme_is_a_front_door():
    """The README stays short; every topic page is linked from it."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, f"README does not link docs/{page.name}"


import test_aio_docs  # noqa: E402,F401 (registers docs/ASYNC.md's examples)
