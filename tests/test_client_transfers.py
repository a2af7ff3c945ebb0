"""Mega.upload / download / download_url end to end against the emulator (through
megafast.transfer): sizes at the MAC edges, non-ASCII names, progress and config, faults,
integrity, quota and bad destinations."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megafast import Mega
from megafast.errors import (
    DestinationError,
    IntegrityError,
    NodeNotFoundError,
    OverQuotaError,
    SourceNotFoundError,
    ValidationError,
    WrongKeyError,
)
from megafast.testing import MegaEmulator
from megafast.transfer import TransferConfig

MiB = 1 << 20


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Upload sidecars of each test in its own directory (not the user's state dir)."""
    path = tmp_path / "state"
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(path))
    return path


def account(emu: MegaEmulator) -> tuple[str, Mega]:
    """A new (v2) account and a client logged in to it."""
    email = f"t-{secrets.token_hex(5)}@example.com"
    emu.create_account(email, "pw", version=2)
    return email, Mega(api_url=emu.api_url).login(email, "pw")


@pytest.fixture
def mega(emu: MegaEmulator) -> Mega:
    return account(emu)[1]


def write(path: Path, size: int) -> bytes:
    data = secrets.token_bytes(size)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 128 * 1024, 128 * 1024 + 1, 3 * MiB + 5])
def test_upload_download_round_trip(
    emu: MegaEmulator, mega: Mega, tmp_path: Path, size: int
) -> None:
    src = tmp_path / "in.bin"
    data = write(src, size)
    answer = mega.upload(src)
    assert set(answer) >= {"f"} and answer["f"][0]["t"] == 0
    h = answer["f"][0]["h"]
    assert emu.decrypt_attributes(h)["n"] == "in.bin"
    assert emu.node(h)["s"] == size
    out = tmp_path / "out"
    out.mkdir()
    path = mega.download(mega.find("in.bin"), out)
    assert path == out / "in.bin" and isinstance(path, Path)
    assert path.read_bytes() == data
    link = mega.get_upload_link(answer)
    again = Mega(api_url=emu.api_url).download_url(link, out, "via-link.bin")
    assert again.read_bytes() == data


def test_names_destinations_and_defaults(
    emu: MegaEmulator, mega: Mega, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "plain.txt"
    data = write(src, 1000)
    folder = mega.create_folder("Dossier/Ünïcødé")["Ünïcødé"]
    mega.upload(src, folder, "résumé 📄.txt")
    assert mega.find("Dossier/Ünïcødé/résumé 📄.txt") is not None
    mega.upload(src, mega.find("Dossier"), dest_filename="second.txt")
    assert mega.find("Dossier/second.txt") is not None
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    got = mega.download(mega.find("résumé 📄.txt"))
    assert got.name == "résumé 📄.txt" and got.parent.resolve() == work.resolve()
    assert got.read_bytes() == data
    named = mega.download(mega.find("second.txt"), str(work), "renamed.bin")
    assert named == work / "renamed.bin" and named.read_bytes() == data
    link = mega.export("Dossier/second.txt")
    via = Mega(api_url=emu.api_url).download_url(link, work / "")
    assert via.name == "second.txt"


def test_download_a_folder_recursively(mega: Mega, tmp_path: Path) -> None:
    made = mega.create_folder("tree/a/b")
    (tmp_path / "one").write_bytes(b"1" * 10)
    (tmp_path / "two").write_bytes(b"2" * 20)
    mega.upload(tmp_path / "one", made["a"])
    mega.upload(tmp_path / "two", made["b"])
    mega.create_folder("tree/empty")
    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[int, int]] = []
    root = mega.download(mega.find("tree"), out, progress=lambda d, t: seen.append((d, t)))
    assert root == out / "tree"
    assert (root / "a" / "one").read_bytes() == b"1" * 10
    assert (root / "a" / "b" / "two").read_bytes() == b"2" * 20
    assert (root / "empty").is_dir()
    assert seen and seen[-1] == (30, 30)


def test_progress_and_config(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = write(src, 5 * MiB + 3)
    cfg = TransferConfig(connections=3, piece_size=MiB)
    ups: list[tuple[int, int]] = []
    mega.upload(src, progress=lambda d, t: ups.append((d, t)), config=cfg)
    assert ups and ups[-1] == (len(data), len(data))
    downs: list[tuple[int, int]] = []
    out = mega.download(
        mega.find("big.bin"),
        tmp_path,
        "copy.bin",
        progress=lambda d, t: downs.append((d, t)),
        config=cfg,
    )
    assert out.read_bytes() == data
    assert downs[-1] == (len(data), len(data))


def test_default_transfer_config_from_options(emu: MegaEmulator, tmp_path: Path) -> None:
    email = f"t-{secrets.token_hex(5)}@example.com"
    emu.create_account(email, "pw")
    m = Mega({"api_url": emu.api_url, "transfer": TransferConfig(connections=1)}).login(email, "pw")
    src = tmp_path / "x.bin"
    data = write(src, 2 * MiB)
    m.upload(src)
    assert m.download(m.find("x.bin"), tmp_path, "y.bin").read_bytes() == data


def test_transfers_survive_server_errors(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "flaky.bin"
    data = write(src, 3 * MiB)
    cfg = TransferConfig(connections=2, piece_size=MiB, max_retries=20)
    emu.set_faults(transfer_error_rate=0.3, api_eagain_rate=0.3, seed=3)
    try:
        mega.upload(src, config=cfg)
        got = mega.download(mega.find("flaky.bin"), tmp_path, "back.bin", config=cfg)
    finally:
        counts = emu.fault_counts
        emu.clear_faults()
    assert got.read_bytes() == data
    assert counts.get("transfer_error", 0) > 0


def test_corrupt_download_raises_integrity_error(
    emu: MegaEmulator, mega: Mega, tmp_path: Path
) -> None:
    src = tmp_path / "c.bin"
    write(src, 300_000)
    mega.upload(src)
    target = tmp_path / "dl"
    target.mkdir()
    emu.set_faults(corrupt_rate=1.0)
    try:
        with pytest.raises(IntegrityError) as info:
            mega.download(mega.find("c.bin"), target, config=TransferConfig(max_retries=1))
    finally:
        emu.clear_faults()
    assert isinstance(info.value, ValueError)
    assert not (target / "c.bin").exists()


def test_download_with_a_wrong_link_key(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "k.bin"
    write(src, 1000)
    mega.upload(src)
    link = mega.export("k.bin")
    bad = link.split("#")[0] + "#" + "B" * 43
    with pytest.raises(WrongKeyError):
        Mega(api_url=emu.api_url).download_url(bad, tmp_path)


def test_download_over_quota_says_when(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "q.bin"
    write(src, 1000)
    mega.upload(src)
    emu.set_faults(over_quota=True, over_quota_in_g=True, over_quota_time_left=42)
    try:
        with pytest.raises(OverQuotaError) as info:
            mega.download(mega.find("q.bin"), tmp_path)
    finally:
        emu.clear_faults()
    assert info.value.time_left == 42
    assert "42" in str(info.value)


def test_bad_sources_and_destinations(mega: Mega, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        mega.upload(tmp_path / "missing.bin")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValidationError)
    with pytest.raises(SourceNotFoundError):
        mega.upload(tmp_path)  # a directory is not a file
    src = tmp_path / "s.bin"
    write(src, 10)
    mega.upload(src)
    node = mega.find("s.bin")
    with pytest.raises(DestinationError):
        mega.download(node, tmp_path / "no" / "such" / "dir")
    with pytest.raises(DestinationError):
        mega.download(node, src)  # a file, not a directory
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(DestinationError):
            mega.download(node, ro)
    with pytest.raises(NodeNotFoundError):
        mega.download(mega.find("not-there.bin"), tmp_path)
    with pytest.raises(NodeNotFoundError):
        mega.upload(src, "zzzzzzzz")
    with pytest.raises(ValidationError):
        mega.upload(src, node)  # a file is not a folder


def test_hostile_names_stay_inside_the_destination(
    emu: MegaEmulator, mega: Mega, tmp_path: Path
) -> None:
    src = tmp_path / "h.bin"
    data = write(src, 50)
    answer = mega.upload(src, dest_filename="../../escape.txt")
    out = tmp_path / "out"
    out.mkdir()
    got = mega.download(answer["f"][0]["h"], out)  # a handle works as well as a node
    assert got.parent == out and got.read_bytes() == data
    assert not (tmp_path.parent / "escape.txt").exists()


def test_large_file_digest(mega: Mega, tmp_path: Path) -> None:
    src = tmp_path / "l.bin"
    data = write(src, 9 * MiB + 123)
    mega.upload(src)
    got = mega.download(mega.find("l.bin"), tmp_path, "l2.bin")
    assert hashlib.sha256(got.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_stream_to_fileobj_and_open(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    import io

    src = tmp_path / "stream.bin"
    data = write(src, 2 * MiB + 77)
    answer = mega.upload(src)
    buf = io.BytesIO()
    assert mega.download_to_fileobj(mega.find("stream.bin"), buf) == len(data)
    assert buf.getvalue() == data
    link = mega.get_upload_link(answer)
    buf = io.BytesIO()
    anon = Mega(api_url=emu.api_url)
    assert anon.download_to_fileobj(link, buf) == len(data)
    assert buf.getvalue() == data
    with mega.open(answer["f"][0]["h"]) as reader:
        reader.seek(MiB + 5)
        assert reader.read(100) == data[MiB + 5 : MiB + 105]
    with anon.open(link) as reader:
        assert reader.read() == data
    bad = link.split("#")[0] + "#" + "C" * 43
    with pytest.raises(WrongKeyError):
        anon.download_to_fileobj(bad, io.BytesIO())
    mega.create_folder("folder-not-file")
    with pytest.raises(ValidationError):
        mega.download_to_fileobj(mega.find("folder-not-file"), io.BytesIO())


def test_interoperates_with_megapy(emu: MegaEmulator, tmp_path: Path) -> None:
    """mega.py (only its API URL redirected to the emulator) and megafast read each
    other's uploads, folders and links on the same account."""
    import types

    import requests

    megapy = pytest.importorskip("mega.mega")

    def post(url: str, *args: object, **kwargs: object) -> requests.Response:
        return requests.post(url.replace("https://g.api.mega.co.nz", emu.api_url), *args, **kwargs)

    saved = megapy.requests
    megapy.requests = types.SimpleNamespace(post=post, get=requests.get)
    try:
        email = f"i-{secrets.token_hex(5)}@example.com"
        emu.create_account(email, "pässword", version=2)
        old = megapy.Mega().login(email, "pässword")
        new = Mega(api_url=emu.api_url).login(email, "pässword")
        a = tmp_path / "from-megapy.bin"
        data_a = write(a, 300_000)  # mega.py's MAC is right when the last chunk is > 16 bytes
        old.create_folder("shared/inner")
        old.upload(str(a), old.find("shared/inner")[0])
        new.refresh()
        got = new.download(new.find("shared/inner/from-megapy.bin"), tmp_path / "", "a2.bin")
        assert got.read_bytes() == data_a
        b = tmp_path / "from-megafast.bin"
        data_b = write(b, 200_000)
        new.upload(b, new.find("shared/inner"))
        out = tmp_path / "megapy-out"
        out.mkdir()
        path = old.download(old.find("from-megafast.bin"), str(out))
        assert Path(path).read_bytes() == data_b
        link = old.export("from-megapy.bin")
        assert (
            Mega(api_url=emu.api_url).download_url(link, out, "via-link.bin").read_bytes() == data_a
        )
        folder_link = new.export("shared")
        nodes = Mega(api_url=emu.api_url).get_public_folder(folder_link)
        assert {n["a"]["n"] for n in nodes.values()} == {
            "shared",
            "inner",
            "from-megapy.bin",
            "from-megafast.bin",
        }
    finally:
        megapy.requests = saved


def test_upload_fileobj_bytes_and_iterables(emu: MegaEmulator, mega: Mega, tmp_path: Path) -> None:
    import io

    data = secrets.token_bytes(1_500_000)
    a = mega.upload_fileobj(io.BytesIO(data), "from-fileobj.bin", mtime=1_700_000_000)
    assert "c" in emu.decrypt_attributes(a["f"][0]["h"])
    mega.upload_fileobj(data[:1000], "from-bytes.bin", mega.create_folder("objs")["objs"])
    pieces = (data[i : i + 300_000] for i in range(0, len(data), 300_000))
    c = mega.upload_fileobj(pieces, "from-iterable.bin", size=len(data))
    assert "c" not in emu.decrypt_attributes(c["f"][0]["h"])
    out = io.BytesIO()
    mega.download_to_fileobj(a["f"][0]["h"], out)
    assert out.getvalue() == data
    assert mega.download(mega.find("objs/from-bytes.bin"), tmp_path).read_bytes() == data[:1000]
    assert mega.download(c["f"][0]["h"], tmp_path).read_bytes() == data
    with pytest.raises(ValidationError):
        mega.upload_fileobj(b"x", "a/b")


def test_expired_download_url_is_renewed_mid_transfer(
    emu: MegaEmulator, mega: Mega, tmp_path: Path
) -> None:
    src = tmp_path / "long.bin"
    data = write(src, 4 * MiB)
    cfg = TransferConfig(connections=1, piece_size=MiB, resume=False)
    expired: list[int] = []

    def expire_once(done: int, total: int) -> None:
        if done and not expired:
            expired.append(done)
            emu.expire_urls()

    mega.upload(src, config=cfg)
    g_before = emu.stats()["commands"].get("g", 0)
    emu.set_faults(bandwidth=8 * MiB)  # slow enough for progress to be reported on the way
    try:
        got = mega.download(
            mega.find("long.bin"), tmp_path, "back.bin", progress=expire_once, config=cfg
        )
    finally:
        emu.clear_faults()
    assert got.read_bytes() == data
    assert expired and emu.stats()["commands"].get("g", 0) - g_before >= 2  # a fresh download URL


_UPLOADER = """
import sys
from megafast import Mega
from megafast.transfer import TransferConfig
api, email, path, folder = sys.argv[1:5]
mega = Mega(api_url=api).login(email, "pw")
mega.upload(path, folder, config=TransferConfig(connections=2, piece_size=1 << 20))
print("finished", flush=True)
"""


def _sidecar_progress(state: Path) -> int:
    """Bytes the upload sidecars in ``state`` record as sent (0 when there are none)."""
    total = 0
    for f in state.glob("upload-*.json"):
        try:
            done = json.loads(f.read_text()).get("done") or []
        except (OSError, ValueError):
            continue
        total += sum(end - begin for begin, end in done)
    return total


def _interrupted_upload(emu: MegaEmulator, email: str, src: Path, folder: str, state: Path) -> None:
    """Start uploading ``src`` in a child process and SIGKILL it midway (after its sidecar
    records some pieces, before the upload completes)."""
    emu.set_faults(bandwidth=1 * MiB)  # per connection: the 6 MiB take about 3 s
    env = {**os.environ, "MEGAFAST_STATE_DIR": str(state)}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), *sys.path])
    child = subprocess.Popen(
        [sys.executable, "-c", _UPLOADER, emu.api_url, email, str(src), folder],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _sidecar_progress(state) < 2 * MiB:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never recorded progress"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        emu.clear_faults()
    emu.wait_idle()  # the killed child's requests are counted when the server sees them end
    assert child.returncode == -signal.SIGKILL


def test_an_interrupted_upload_resumes(emu: MegaEmulator, tmp_path: Path, state_dir: Path) -> None:
    email, mega = account(emu)
    folder = mega.create_folder("resumed")["resumed"]
    src = tmp_path / "big.bin"
    data = write(src, 6 * MiB)
    _interrupted_upload(emu, email, src, folder, state_dir)
    assert not mega.find("resumed/big.bin")  # no node yet
    first_tokens = {e["token"] for e in emu.request_log if e.get("kind") == "upload"}

    emu.reset_stats()
    answer = mega.upload(src, folder)
    stats = emu.stats()
    assert 0 < stats["upload_bytes"] <= len(data) - 2 * MiB  # only what was missing
    assert stats["commands"].get("u", 0) == 0  # the same upload URL, no new one
    tokens = {e["token"] for e in emu.request_log if e.get("kind") == "upload"}
    assert tokens <= first_tokens
    out = tmp_path / "out"
    out.mkdir()
    assert mega.download(answer["f"][0]["h"], out).read_bytes() == data
    assert not list(state_dir.glob("upload-*.json"))  # the sidecar is gone once done


def test_resume_false_and_a_changed_file_start_over(
    emu: MegaEmulator, tmp_path: Path, state_dir: Path
) -> None:
    email, mega = account(emu)
    folder = mega.create_folder("again")["again"]
    src = tmp_path / "big.bin"
    write(src, 6 * MiB)
    _interrupted_upload(emu, email, src, folder, state_dir)

    emu.reset_stats()
    mega.upload(src, folder, resume=False)
    assert emu.stats()["upload_bytes"] == 6 * MiB and emu.stats()["commands"]["u"] == 1

    # another interrupted run, then the file changes: a fresh upload of the new content
    src.unlink()
    write(src, 6 * MiB)
    _interrupted_upload(emu, email, src, folder, state_dir)
    data = write(src, 6 * MiB)
    emu.reset_stats()
    answer = mega.upload(src, folder)
    assert emu.stats()["upload_bytes"] == 6 * MiB
    out = tmp_path / "out"
    out.mkdir()
    assert mega.download(answer["f"][0]["h"], out).read_bytes() == data


def test_upload_fileobj_resumes_a_seekable_source(emu: MegaEmulator, mega: Mega) -> None:
    import io

    class Stop(Exception):
        pass

    def stop_midway(done: int, total: int) -> None:
        # two connections of 1 MiB pieces: at most 2 MiB are in flight, so at least 2 MiB
        # were confirmed by the server when 4 MiB have been reported
        if done >= 4 * MiB:
            raise Stop

    data = secrets.token_bytes(6 * MiB)
    cfg = TransferConfig(connections=2, piece_size=MiB)
    emu.set_faults(bandwidth=4 * MiB)
    try:
        with pytest.raises(Stop):
            mega.upload_fileobj(io.BytesIO(data), "obj.bin", config=cfg, progress=stop_midway)
    finally:
        emu.clear_faults()
    emu.reset_stats()
    answer = mega.upload_fileobj(io.BytesIO(data), "obj.bin", config=cfg)
    assert emu.stats()["upload_bytes"] <= len(data) - 2 * MiB
    assert emu.stats()["commands"].get("u", 0) == 0
    out = io.BytesIO()
    mega.download_to_fileobj(answer["f"][0]["h"], out)
    assert out.getvalue() == data


def test_an_interrupted_upload_resumes_across_an_emulator_restart(
    tmp_path: Path, state_dir: Path
) -> None:
    """Client killed, emulator restarted on its data dir: the upload URL and the pieces it
    received survive, so the next upload sends only the rest."""
    data_dir = tmp_path / "emulator"
    email = f"t-{secrets.token_hex(5)}@example.com"
    src = tmp_path / "big.bin"
    data = write(src, 6 * MiB)
    with MegaEmulator(data_dir=data_dir) as first:
        port = first.port
        first.create_account(email, "pw", version=2)
        folder = first.add_folder(email, "kept")
        _interrupted_upload(first, email, src, folder, state_dir)
        sent_before = first.stats()["upload_bytes"]
    assert 2 * MiB <= sent_before < len(data)
    with MegaEmulator(port=port, data_dir=data_dir) as again:
        mega = Mega(api_url=again.api_url).login(email, "pw")
        answer = mega.upload(src, folder)
        assert again.stats()["upload_bytes"] <= len(data) - 2 * MiB
        assert again.stats()["commands"].get("u", 0) == 0
        out = tmp_path / "out"
        out.mkdir()
        assert mega.download(answer["f"][0]["h"], out).read_bytes() == data
