"""The mega:// filesystem (megafast.fs.MegaFileSystem) against the emulator: every method,
credentials, integrity, pickling and bad input."""

from __future__ import annotations

import errno
import io
import os
import pickle
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import fsspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from megafast import Mega
from megafast.errors import IntegrityError, RequestError, ValidationError, WrongKeyError
from megafast.fs import MegaFileSystem, escape_name, unescape_name
from support.megafs import EMAIL, PASSWORD, payload


@pytest.fixture(scope="module")
def emu(fs_emulator):
    return fs_emulator


@pytest.fixture(scope="module")
def fs(emu) -> MegaFileSystem:
    return fsspec.filesystem("mega", email=EMAIL, password=PASSWORD, api_url=emu.api_url)


@pytest.fixture
def base(fs) -> str:
    """A fresh folder for one test."""
    path = f"t-{uuid.uuid4().hex[:8]}"
    fs.makedirs(path)
    return path


# -- registration and credentials ----------------------------------------------------------
def test_protocol_is_registered_through_the_entry_point():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="fsspec.specs")}
    assert names.get("mega") == "megafast.fs:MegaFileSystem"
    assert fsspec.get_filesystem_class("mega") is MegaFileSystem


def test_session_from_options_environment_and_cli_store(emu, fs, base, monkeypatch, tmp_path):
    fs.pipe_file(f"{base}/x", b"x")
    session = Mega(api_url=emu.api_url).login(EMAIL, PASSWORD).dump_session()
    by_option = MegaFileSystem(session=session, api_url=emu.api_url, skip_instance_cache=True)
    assert by_option.cat_file(f"{base}/x") == b"x"

    monkeypatch.setenv("MEGAFAST_SESSION", session)
    by_env = MegaFileSystem(api_url=emu.api_url, skip_instance_cache=True)
    assert by_env.cat_file(f"{base}/x") == b"x"

    monkeypatch.delenv("MEGAFAST_SESSION")
    monkeypatch.setenv("MEGAFAST_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ValidationError, match="no MEGA credentials"):
        MegaFileSystem(skip_instance_cache=True)
    from megafast._cli.session import save_session

    save_session(emu.api_url, EMAIL, session)
    by_store = MegaFileSystem(skip_instance_cache=True)  # the API URL comes from the store too
    assert by_store.cat_file(f"{base}/x") == b"x"


def test_storage_options_and_pickles_hold_no_password(fs):
    assert "password" not in fs.storage_options
    assert PASSWORD.encode() not in pickle.dumps(fs)
    assert PASSWORD not in fs.to_json()
    assert "session" not in fs.to_dict(include_password=False)


def test_unpickled_filesystem_resumes_the_session_once_per_process(emu, fs, base):
    fs.pipe_file(f"{base}/p.txt", b"pickled")
    blob = pickle.dumps(fs)
    before = emu.stats()["commands"]
    code = (
        "import pickle, sys\n"
        "blob = sys.stdin.buffer.read()\n"
        "out = [pickle.loads(blob).cat_file(sys.argv[1]) for _ in range(3)]\n"
        "assert out == [b'pickled'] * 3, out\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, f"{base}/p.txt"], input=blob, check=True, timeout=120
    )
    after = emu.stats()["commands"]
    grew = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert grew.get("us", 0) == 0 and grew.get("us0", 0) == 0  # no password login
    assert grew.get("ug") == 1 and grew.get("f") == 1  # one resume and one tree for 3 tasks


# -- listing and metadata ------------------------------------------------------------------
def test_ls_gives_name_size_type_mtime_handle(fs, base):
    fs.pipe_file(f"{base}/a.bin", b"12345")
    fs.mkdir(f"{base}/sub")
    entries = fs.ls(base, detail=True)
    assert [e["name"] for e in entries] == [f"{base}/a.bin", f"{base}/sub"]
    first = entries[0]
    assert (first["size"], first["type"]) == (5, "file")
    assert entries[1]["type"] == "directory"
    assert first["mtime"] > 1.7e9 and isinstance(first["handle"], str) and len(first["handle"]) == 8
    assert fs.ls(base, detail=False) == [f"{base}/a.bin", f"{base}/sub"]
    assert fs.ls(f"mega://{base}/", detail=False) == fs.ls(base, detail=False)


def test_info_and_exists_use_the_tree_without_requests(emu, fs, base):
    fs.pipe_file(f"{base}/deep.txt", b"abc")
    emu.reset_stats()
    for _ in range(50):
        assert fs.info(f"{base}/deep.txt")["size"] == 3
        assert fs.exists(f"{base}/deep.txt") and not fs.exists(f"{base}/nope")
        assert fs.isdir(base) and fs.isfile(f"{base}/deep.txt")
    assert emu.stats().get("api_requests", 0) == 0


def test_missing_paths_raise_file_not_found(fs, base, tmp_path):
    missing = f"{base}/missing"
    for call in (
        lambda: fs.info(missing),
        lambda: fs.ls(missing),
        lambda: fs.open(missing, "rb"),
        lambda: fs.cat_file(missing),
        lambda: fs.get_file(missing, str(tmp_path / "x")),
        lambda: fs.rm(missing),
        lambda: fs.mv(missing, f"{base}/other"),
        lambda: fs.modified(missing),
        lambda: fs.checksum(missing),
        lambda: fs.ls(f"{base}/missing/below"),
    ):
        with pytest.raises(FileNotFoundError):
            call()
    assert not (tmp_path / "x").exists()


def test_modified_comes_from_the_fingerprint(fs, base, tmp_path):
    local = tmp_path / "old.txt"
    local.write_bytes(b"old content")
    os.utime(local, (1_500_000_000, 1_500_000_000))
    fs.put_file(str(local), f"{base}/old.txt")
    assert fs.modified(f"{base}/old.txt").timestamp() == 1_500_000_000
    assert fs.created(f"{base}/old.txt").timestamp() > 1_700_000_000


def test_checksum_changes_with_the_content(fs, base):
    fs.pipe_file(f"{base}/c.bin", b"one")
    first = fs.checksum(f"{base}/c.bin")
    assert first == fs.checksum(f"{base}/c.bin")
    fs.pipe_file(f"{base}/c.bin", b"two")
    assert fs.checksum(f"{base}/c.bin") != first


def test_invalidate_cache_sees_changes_of_other_clients(emu, fs, base):
    other = Mega(api_url=emu.api_url).login(EMAIL, PASSWORD)
    folder = other.find(base)[0]
    other.upload_fileobj(b"from elsewhere", "other.txt", dest=folder)
    assert not fs.exists(f"{base}/other.txt")  # the tree is kept, not fetched per call
    fs.invalidate_cache(f"{base}/other.txt")  # a path alone costs nothing
    fs.invalidate_cache()
    assert fs.cat_file(f"{base}/other.txt") == b"from elsewhere"


# -- reading -------------------------------------------------------------------------------
def test_open_rb_reads_seeks_and_reads_ranges(fs, base):
    data = payload(6_000_000)
    fs.pipe_file(f"{base}/r.bin", data)
    with fs.open(f"{base}/r.bin", "rb") as f:
        assert f.size == len(data) and f.seekable()
        assert f.read(10) == data[:10]
        f.seek(5_000_000)
        assert f.read(1_000) == data[5_000_000:5_001_000]
        f.seek(-7, os.SEEK_END)
        assert f.read() == data[-7:]
        f.seek(123_457)
        assert f.read() == data[123_457:]


def test_random_one_mib_reads_take_at_most_two_requests_each(emu, fs, base):
    data = payload(12 << 20, seed=7)
    fs.pipe_file(f"{base}/rand.bin", data)
    offsets = [9_000_001, 300, 5_555_555, 11 << 20, 2_000_000, 7_777_777]
    with fs.open(f"{base}/rand.bin", "rb") as f:
        for off in offsets:
            emu.reset_stats()
            f.seek(off)
            assert f.read(1 << 20) == data[off : off + (1 << 20)]
            s = emu.stats()
            assert s.get("download_requests", 0) + s.get("api_requests", 0) <= 2, (off, s)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (None, None),
        (0, 10),
        (5, None),
        (None, 5),
        (-5, None),
        (2_000_000, 2_100_000),
        (-1_500_000, -10),
        (10, 5),
        (0, 10**9),
    ],
)
def test_cat_file_ranges_match_slicing(fs, base, start, end):
    data = payload(3_000_000, seed=3)
    fs.pipe_file(f"{base}/cat.bin", data)
    assert fs.cat_file(f"{base}/cat.bin", start=start, end=end) == data[start:end]


def test_whole_reads_check_the_mac(emu, fs, base):
    fs.pipe_file(f"{base}/bad.bin", payload(2_000_000))
    emu.set_faults(corrupt_rate=1.0, transfer_faults="download")
    try:
        with pytest.raises(IntegrityError):
            fs.cat_file(f"{base}/bad.bin")
        with pytest.raises(IntegrityError), fs.open(f"{base}/bad.bin", "rb") as f:
            while f.read(300_000):
                pass
    finally:
        emu.clear_faults()


def test_concurrent_reads_from_threads(fs, base):
    files = {f"{base}/c{i}.bin": payload(200_000 + i, seed=i) for i in range(6)}
    fs.pipe(files)
    results: dict[str, bytes] = {}

    def read(path: str) -> None:
        results[path] = fs.cat_file(path)

    threads = [threading.Thread(target=read, args=(p,)) for p in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == files


# -- writing -------------------------------------------------------------------------------
def test_open_wb_spools_and_replaces_the_old_file(fs, base):
    path = f"{base}/w.bin"
    fs.pipe_file(path, b"old")
    old_handle = fs.info(path)["handle"]
    data = payload(3_500_000)
    with fs.open(path, "wb") as f:
        for i in range(0, len(data), 100_000):
            f.write(data[i : i + 100_000])
        assert fs.cat_file(path) == b"old"  # nothing replaced before the upload completes
    assert fs.cat_file(path) == data
    assert fs.info(path)["handle"] != old_handle
    assert fs.ls(base, detail=False) == [path]


def test_open_wb_with_a_size_hint_streams(fs, base):
    data = payload(2_500_000, seed=5)
    with fs.open(f"{base}/s.bin", "wb", size=len(data)) as f:
        for i in range(0, len(data), 700_000):
            f.write(data[i : i + 700_000])
    assert fs.cat_file(f"{base}/s.bin") == data


@pytest.mark.parametrize("written", [10, 30])
def test_a_wrong_size_hint_creates_nothing(fs, base, written):
    with pytest.raises(ValidationError), fs.open(f"{base}/h.bin", "wb", size=20) as f:
        f.write(b"x" * written)
        f.flush(force=True)
    assert not fs.exists(f"{base}/h.bin")


def test_a_failed_with_block_uploads_nothing(fs, base):
    with pytest.raises(RuntimeError), fs.open(f"{base}/half.bin", "wb") as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert not fs.exists(f"{base}/half.bin")


def test_writing_over_a_folder_raises_is_a_directory(fs, base, tmp_path):
    fs.mkdir(f"{base}/d")
    local = tmp_path / "f"
    local.write_bytes(b"f")
    for call in (
        lambda: fs.open(f"{base}/d", "wb"),
        lambda: fs.pipe_file(f"{base}/d", b"x"),
        lambda: fs.put_file(str(local), f"{base}/d"),
        lambda: fs.open(f"{base}/d", "rb"),
    ):
        with pytest.raises(IsADirectoryError):
            call()
    assert fs.isdir(f"{base}/d")


def test_exclusive_modes(fs, base):
    fs.pipe_file(f"{base}/e", b"1")
    with pytest.raises(FileExistsError):
        fs.open(f"{base}/e", "xb")
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{base}/e", b"2", mode="create")
    with pytest.raises(ValueError, match="not supported"):
        fs.open(f"{base}/e", "ab")


def test_put_and_get_files_and_trees(fs, base, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 1000)
    (src / "sub" / "b.bin").write_bytes(payload(1_500_000))
    fs.put(str(src), f"{base}/up", recursive=True)
    assert sorted(fs.find(f"{base}/up")) == [f"{base}/up/a.txt", f"{base}/up/sub/b.bin"]
    sizes = []

    class Progress(fsspec.callbacks.Callback):
        def call(self, *args, **kwargs):
            sizes.append((self.value, self.size))

    fs.get_file(f"{base}/up/sub/b.bin", str(tmp_path / "one.bin"), callback=Progress())
    assert (tmp_path / "one.bin").read_bytes() == payload(1_500_000)
    assert sizes and sizes[-1] == (1_500_000, 1_500_000)
    fs.get(f"{base}/up", str(tmp_path / "down"), recursive=True)
    assert (tmp_path / "down" / "sub" / "b.bin").read_bytes() == payload(1_500_000)
    assert (tmp_path / "down" / "a.txt").read_bytes() == b"a" * 1000
    sink = io.BytesIO()
    fs.get_file(f"{base}/up/a.txt", sink)
    assert sink.getvalue() == b"a" * 1000


def test_mkdir_makedirs_rmdir(fs, base):
    fs.mkdir(f"{base}/a/b/c")
    assert fs.isdir(f"{base}/a/b/c")
    with pytest.raises(FileExistsError):
        fs.mkdir(f"{base}/a")
    with pytest.raises(FileNotFoundError):
        fs.mkdir(f"{base}/x/y", create_parents=False)
    fs.makedirs(f"{base}/a/b", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.makedirs(f"{base}/a/b")
    with pytest.raises(OSError) as info:
        fs.rmdir(f"{base}/a")
    assert info.value.errno == errno.ENOTEMPTY
    fs.rmdir(f"{base}/a/b/c")
    assert not fs.exists(f"{base}/a/b/c")


def test_rm_files_and_trees(fs, base):
    fs.pipe({f"{base}/t/x": b"1", f"{base}/t/s/y": b"2", f"{base}/keep": b"3"})
    with pytest.raises(OSError):
        fs.rm(f"{base}/t")  # not empty, not recursive
    fs.rm(f"{base}/t", recursive=True)
    assert fs.ls(base, detail=False) == [f"{base}/keep"]
    fs.rm(f"{base}/keep")
    assert fs.ls(base) == []


def test_mv_is_server_side(emu, fs, base):
    data = payload(1_000_000)
    fs.pipe_file(f"{base}/m.bin", data)
    handle = fs.info(f"{base}/m.bin")["handle"]
    fs.pipe_file(f"{base}/dest/old.bin", b"replaced")
    emu.reset_stats()
    fs.mv(f"{base}/m.bin", f"{base}/dest/old.bin")
    stats = emu.stats()
    assert stats.get("download_bytes", 0) == 0 and stats.get("upload_bytes", 0) == 0
    assert fs.info(f"{base}/dest/old.bin")["handle"] == handle
    assert fs.ls(f"{base}/dest", detail=False) == [f"{base}/dest/old.bin"]
    assert not fs.exists(f"{base}/m.bin")
    fs.mv(f"{base}/dest", f"{base}/moved")
    assert fs.cat_file(f"{base}/moved/old.bin") == data
    with pytest.raises(ValidationError):
        fs.mv(f"{base}/moved", f"{base}/moved/inside")


def test_cp_file_copies_on_the_server(emu, fs, base):
    data = payload(1_200_000)
    fs.pipe_file(f"{base}/src.bin", data)
    emu.reset_stats()
    fs.cp_file(f"{base}/src.bin", f"{base}/copy/dst.bin")
    stats = emu.stats()
    assert stats.get("download_bytes", 0) == 0 and stats.get("upload_bytes", 0) == 0
    assert fs.cat_file(f"{base}/copy/dst.bin") == data
    assert fs.checksum(f"{base}/copy/dst.bin") == fs.checksum(f"{base}/src.bin")
    assert fs.info(f"{base}/copy/dst.bin")["handle"] != fs.info(f"{base}/src.bin")["handle"]


# -- names, links --------------------------------------------------------------------------
@given(st.text(min_size=1, max_size=20))
def test_escaping_round_trips_and_never_makes_a_separator(name):
    component = escape_name(name)
    assert "/" not in component and component not in (".", "..")
    assert not any(ord(c) < 32 or ord(c) == 127 for c in component)
    assert unescape_name(component) == name


def test_escaping_is_the_documented_one():
    assert escape_name("a/b%c") == "a%2Fb%25c"
    assert escape_name("tab\there\x00") == "tab%09here%00"
    assert (escape_name("."), escape_name("..")) == ("%2E", "%2E%2E")
    assert unescape_name("a%2fb") == "a/b" and unescape_name("100%") == "100%"
    assert unescape_name("%41%2") == "%41%2"  # other escapes are literal


def test_hostile_sizes_and_times_do_not_crash(fs, base):
    fs.pipe_file(f"{base}/odd.bin", b"12")
    handle = fs.info(f"{base}/odd.bin")["handle"]
    store = fs._engine.tree()[0].store
    slot = store.slot_of[handle]
    saved = dict(store.extra.get(slot) or {})
    try:
        # raw fields kept as the server sent them override the parsed ones in the node dicts
        store.set_extra(handle, "s", "12")
        store.set_extra(handle, "ts", [1])
        assert fs.info(f"{base}/odd.bin")["size"] == 0
        assert fs.info(f"{base}/odd.bin")["created"] == 0.0
        with pytest.raises(RequestError):
            fs.cat_file(f"{base}/odd.bin")
    finally:
        store.extra[slot] = saved
    assert fs.cat_file(f"{base}/odd.bin") == b"12"


def test_block_sizes_are_clamped(fs, base):
    data = payload(5_000_000)
    fs.pipe_file(f"{base}/b.bin", data)
    for block in (1, 50 << 20):
        with fs.open(f"{base}/b.bin", "rb", block_size=block) as f:
            assert f.blocksize in (1 << 20, 4 << 20)
            f.seek(4_321_000)
            assert f.read(100_000) == data[4_321_000:4_421_000]


def test_names_with_slashes_and_dots_are_escaped(emu, fs, base, tmp_path):
    folder = fs.info(base)["handle"]
    emu.add_file(EMAIL, b"slash", "a/b", parent=folder)
    emu.add_file(EMAIL, b"percent", "100%", parent=folder)
    emu.add_file(EMAIL, b"dots", "..", parent=folder)
    fs.invalidate_cache()
    names = fs.ls(base, detail=False)
    assert names == sorted([f"{base}/%2E%2E", f"{base}/100%25", f"{base}/a%2Fb"])
    assert fs.cat_file(f"{base}/a%2Fb") == b"slash"
    assert fs.cat_file(f"{base}/100%25") == b"percent"
    assert not fs.exists(f"{base}/a/b")
    fs.get(base, str(tmp_path / "out"), recursive=True)
    assert (tmp_path / "out" / "%2E%2E").read_bytes() == b"dots"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing climbed out
    with pytest.raises(ValidationError):
        fs.pipe_file(f"{base}/bad%2Fname", b"x")  # MEGA names made here hold no '/'


def test_public_folder_link(emu, fs, base):
    fs.pipe({f"{base}/pub/one.txt": b"one", f"{base}/pub/in/two.txt": b"two"})
    link = emu.export(fs.info(f"{base}/pub")["handle"])
    pub = MegaFileSystem(link=link, api_url=emu.api_url)
    assert pub.ls("", detail=False) == ["in", "one.txt"]
    assert pub.cat_file("in/two.txt") == b"two"
    with pub.open("one.txt", "rb") as f:
        assert f.read() == b"one"
    with pytest.raises(PermissionError):
        pub.pipe_file("new.txt", b"x")
    with pytest.raises(PermissionError):
        pub.rm("one.txt")
    assert PASSWORD.encode() not in pickle.dumps(pub)
    assert pickle.loads(pickle.dumps(pub)).cat_file("one.txt") == b"one"


def test_public_file_link_as_filesystem_and_as_path(emu, fs, base):
    fs.pipe_file(f"{base}/shared.csv", b"a,b\n1,2\n")
    link = emu.export(fs.info(f"{base}/shared.csv")["handle"])
    pub = MegaFileSystem(link=link, api_url=emu.api_url)
    assert pub.ls("", detail=False) == ["shared.csv"]
    assert pub.cat_file("shared.csv") == b"a,b\n1,2\n"
    assert fs.cat_file(link) == b"a,b\n1,2\n"
    assert fs.info(link)["size"] == 8
    fs.cp_file(link, f"{base}/imported/copy.csv")  # an import on the server
    assert fs.cat_file(f"{base}/imported/copy.csv") == b"a,b\n1,2\n"
    with pytest.raises(PermissionError):
        pub.cp_file("shared.csv", "other.csv")


def test_a_wrong_link_key_fails_before_any_byte(emu, fs, base):
    fs.pipe({f"{base}/k/f.txt": b"secret"})
    folder_link = emu.export(fs.info(f"{base}/k")["handle"])
    file_link = emu.export(fs.info(f"{base}/k/f.txt")["handle"])
    wrong_folder = folder_link[:-4] + ("AAAA" if not folder_link.endswith("AAAA") else "BBBB")
    h, _, key = file_link.partition("#")
    wrong_file = f"{h}#{key[:-6]}{'A' * 6 if not key.endswith('A' * 6) else 'B' * 6}"
    emu.reset_stats()
    for link in (wrong_folder, wrong_file):
        with pytest.raises(WrongKeyError):
            MegaFileSystem(link=link, api_url=emu.api_url, skip_instance_cache=True).ls("")
    with pytest.raises(WrongKeyError):
        fs.cat_file(wrong_file)
    assert emu.stats().get("download_requests", 0) == 0


def test_transactions_commit_on_exit(fs, base):
    with fs.transaction:
        with fs.open(f"{base}/tx.txt", "wb") as f:
            f.write(b"later")
        assert not fs.exists(f"{base}/tx.txt")
    assert fs.cat_file(f"{base}/tx.txt") == b"later"


def test_touch_and_empty_files(fs, base):
    fs.touch(f"{base}/empty")
    assert fs.info(f"{base}/empty")["size"] == 0
    assert fs.cat_file(f"{base}/empty") == b""
    with fs.open(f"{base}/empty", "rb") as f:
        assert f.read() == b""


def test_local_paths_are_untouched_by_put(fs, base, tmp_path):
    local = tmp_path / "keep.bin"
    local.write_bytes(payload(300_000))
    before = (local.stat().st_mtime_ns, local.read_bytes())
    fs.put_file(str(local), f"{base}/keep.bin")
    assert (local.stat().st_mtime_ns, local.read_bytes()) == before
    assert Path(local).exists()


def test_password_logins_happen_once_per_process_and_two_factor(emu):
    from megafast.errors import TwoFactorRequiredError

    account = emu.create_account("mfa@example.com", "mfa pw", mfa_secret="JBSWY3DPEHPK3PXP")
    with pytest.raises(TwoFactorRequiredError):
        MegaFileSystem("mfa@example.com", "mfa pw", api_url=emu.api_url, skip_instance_cache=True)
    emu.reset_stats()
    opts = {"api_url": emu.api_url, "mfa": account.totp()}
    seen = []

    def make() -> None:
        seen.append(MegaFileSystem("mfa@example.com", "mfa pw", **opts).ls(""))

    threads = [threading.Thread(target=make) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [[], [], []]
    commands = emu.stats()["commands"]
    assert commands.get("us", 0) == 1 and commands.get("f", 0) == 1


def test_session_file_and_logout(fs_emulator, tmp_path):
    from megafast.errors import SessionError

    mega = Mega(api_url=fs_emulator.api_url).login(EMAIL, PASSWORD)
    mega.save_session(tmp_path / "session.json")
    by_file = MegaFileSystem(session=tmp_path / "session.json", api_url=fs_emulator.api_url)
    assert "session.json" not in str(by_file.storage_options["session"])  # the text travels
    assert by_file.ls("", detail=False) is not None
    by_file.logout()
    with pytest.raises(SessionError):
        MegaFileSystem(**by_file.storage_options, skip_instance_cache=True).ls("")
    with pytest.raises(ValidationError, match="cannot read the session file"):
        MegaFileSystem(session=str(tmp_path / "missing.json"), skip_instance_cache=True)


def test_a_failed_with_block_after_the_last_streamed_byte_creates_nothing(fs, base):
    data = payload(3 << 20)
    with pytest.raises(RuntimeError), fs.open(f"{base}/late.bin", "wb", size=len(data)) as f:
        for i in range(0, len(data), 1 << 20):
            f.write(data[i : i + (1 << 20)])  # each write flushes a whole block
        raise RuntimeError("failed after the last byte")
    assert not fs.exists(f"{base}/late.bin")


def test_concurrent_writes_into_a_new_folder_make_one_folder(fs, base):
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            fs.pipe_file(f"{base}/new/dir/f{i}", payload(100_000 + i, seed=i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    fs.invalidate_cache()  # what the server holds, not only this process's tree
    tree = fs._engine.tree()[0]
    news = tree.children_named(fs.info(base)["handle"], "new")
    assert len(news) == 1  # ls would hide a second folder of the same name
    assert len(tree.children_named(news[0]["h"], "dir")) == 1
    assert len(fs.ls(f"{base}/new/dir")) == 6
    assert fs.cat_file(f"{base}/new/dir/f5") == payload(100_005, seed=5)
