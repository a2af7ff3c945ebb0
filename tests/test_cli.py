"""The ``megafast`` command line, run for real in subprocesses against the emulator.

Each call is ``python -m megafast ...`` (the same ``megafast.cli:main`` the console script
runs) with its own config folder, talking over HTTP to a :class:`MegaEmulator` started in
the test process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import megafast
from megafast.testing import MegaEmulator

SRC = str(Path(megafast.__file__).resolve().parent.parent)
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery staple"


class Cli:
    """Runs the command line with a fixed environment (config folder, API URL)."""

    def __init__(self, home: Path, api_url: str) -> None:
        self.home = home
        self.config_dir = home / "config"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
            "MEGAFAST_CONFIG_DIR": str(self.config_dir),
            "MEGAFAST_STATE_DIR": str(home / "state"),
            "MEGAFAST_API_URL": api_url,
            "HOME": str(home),
            "COLUMNS": "100",
        }
        self.env.pop("XDG_CONFIG_HOME", None)
        self.env.pop("XDG_CACHE_HOME", None)  # the node cache goes to home/.cache/megafast

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "megafast", *args]

    def run(
        self, *args: str, input: bytes | None = None, timeout: float = 120, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self.command(*args),
            input=input if input is not None else b"",
            capture_output=True,
            env=self.env,
            timeout=timeout,
            cwd=cwd or self.home,
        )

    def ok(self, *args: str, input: bytes | None = None) -> str:
        """Run, expect exit 0, return stdout as text."""
        done = self.run(*args, input=input)
        assert done.returncode == 0, (args, done.returncode, done.stderr.decode())
        return done.stdout.decode()

    def json(self, *args: str) -> object:
        return json.loads(self.ok("--json", *args))

    def login(self) -> None:
        out = self.ok("login", EMAIL, "--password-stdin", input=PASSWORD.encode() + b"\n")
        assert out.strip() == f"logged in as {EMAIL}"


def assert_one_line_error(done: subprocess.CompletedProcess[bytes], code: int, text: str) -> None:
    err = done.stderr.decode()
    assert done.returncode == code, (done.returncode, err)
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("megafast: error: "), err
    assert text in err, err


@pytest.fixture(scope="module")
def emulator() -> Iterator[MegaEmulator]:
    with MegaEmulator() as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


@pytest.fixture(autouse=True)
def _no_faults(emulator: MegaEmulator) -> Iterator[None]:
    yield
    emulator.clear_faults()


@pytest.fixture
def cli(tmp_path: Path, emulator: MegaEmulator) -> Cli:
    """A logged-in command line with a fresh config folder."""
    c = Cli(tmp_path, emulator.api_url)
    c.login()
    return c


@pytest.fixture
def anonymous(tmp_path: Path, emulator: MegaEmulator) -> Cli:
    """A command line that is not logged in."""
    home = tmp_path / "anon"
    home.mkdir()
    return Cli(home, emulator.api_url)


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def unique(name: str) -> str:
    return f"{name}-{os.urandom(4).hex()}"


# -- login and the session file ------------------------------------------------------------


def test_login_stores_only_the_session_with_mode_0600(tmp_path, emulator) -> None:
    c = Cli(tmp_path, emulator.api_url)
    c.login()
    session_file = c.config_dir / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(c.config_dir.stat().st_mode) == 0o700
    assert PASSWORD not in session_file.read_text()
    assert c.ok("whoami").strip() == EMAIL
    assert c.json("whoami")["email"] == EMAIL
    df = c.json("df")
    assert df["total"] > 0 and df["used"] >= 0
    assert c.ok("logout").strip() == "logged out"
    assert not session_file.exists()
    assert_one_line_error(c.run("whoami"), 1, "not logged in")


def test_logging_in_again_ends_the_previous_session_on_the_server(tmp_path, emulator) -> None:
    import json as _json

    import requests

    c = Cli(tmp_path, emulator.api_url)
    c.login()
    session_file = c.config_dir / "session.json"
    first = session_file.read_text()
    c.login()
    assert session_file.read_text() != first
    assert c.ok("whoami").strip() == EMAIL

    def sid_of(text: str) -> str:
        session = _json.loads(text)["session"]
        return (_json.loads(session) if isinstance(session, str) else session)["sid"]

    old_sid = sid_of(first)
    assert old_sid != sid_of(session_file.read_text())
    answer = requests.post(
        f"{emulator.api_url}/cs", params={"id": 1, "sid": old_sid}, json=[{"a": "ug"}], timeout=10
    ).json()
    assert answer in (-15, [-15])  # ESID: the old session no longer works


def test_wrong_password_is_one_line_and_exit_1(anonymous: Cli) -> None:
    done = anonymous.run("login", EMAIL, "--password-stdin", input=b"wrong\n")
    assert_one_line_error(done, 1, "wrong email or password")
    assert not (anonymous.config_dir / "session.json").exists()


def test_two_factor_code_from_the_option(tmp_path, emulator) -> None:
    email = unique("mfa") + "@example.com"
    account = emulator.create_account(email, PASSWORD, mfa_secret=True)
    c = Cli(tmp_path, emulator.api_url)
    done = c.run("login", email, "--password-stdin", input=PASSWORD.encode() + b"\n")
    assert_one_line_error(done, 1, "--mfa")
    c.ok("login", email, "--password-stdin", "--mfa", account.totp(), input=PASSWORD.encode())
    assert c.ok("whoami").strip() == email


def test_a_revoked_session_asks_to_log_in_again(tmp_path, emulator) -> None:
    c = Cli(tmp_path, emulator.api_url)
    c.login()
    saved = (c.config_dir / "session.json").read_bytes()
    c.ok("logout")  # ends the session on the server too
    fd = os.open(c.config_dir / "session.json", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(saved)
    assert_one_line_error(c.run("ls"), 1, "megafast login")


# -- put, ls, get ---------------------------------------------------------------------------


def test_put_ls_get_round_trip(cli: Cli, tmp_path: Path) -> None:
    folder = "/" + unique("docs")
    data = random_bytes(1_500_000)
    local = tmp_path / "report.bin"
    local.write_bytes(data)
    tree = tmp_path / "album"
    (tree / "sub").mkdir(parents=True)
    (tree / "one.txt").write_bytes(b"one")
    (tree / "sub" / "two.bin").write_bytes(random_bytes(200_000))
    (tree / "empty.txt").write_bytes(b"")

    cli.ok("mkdir", folder)
    uploaded = cli.json("put", str(local), str(tree), folder)
    assert {entry["path"] for entry in uploaded} == {
        f"{folder}/report.bin",
        f"{folder}/album/one.txt",
        f"{folder}/album/empty.txt",
        f"{folder}/album/sub/two.bin",
    }

    assert cli.ok("ls", folder).splitlines() == ["album/", "report.bin"]
    listing = cli.json("ls", "-R", folder)
    by_path = {entry["path"]: entry for entry in listing}
    assert by_path[f"{folder}/report.bin"]["size"] == len(data)
    assert by_path[f"{folder}/album/sub"]["type"] == "folder"
    long_lines = cli.ok("ls", "-l", folder).splitlines()
    assert long_lines[1].startswith("-") and long_lines[1].endswith("report.bin")
    assert "1.4 MiB" in long_lines[1]

    out = tmp_path / "out"
    cli.ok("get", f"{folder}/report.bin", "-o", f"{out}/")
    assert (out / "report.bin").read_bytes() == data
    cli.ok("get", f"{folder}/report.bin", "-o", str(out / "renamed.bin"))
    assert (out / "renamed.bin").read_bytes() == data
    cli.ok("get", f"{folder}/album", "-o", str(out))
    assert (out / "album" / "one.txt").read_bytes() == b"one"
    assert (out / "album" / "empty.txt").read_bytes() == b""
    assert (out / "album" / "sub" / "two.bin").read_bytes() == (
        tree / "sub" / "two.bin"
    ).read_bytes()
    # the default destination is the current folder
    here = tmp_path / "here"
    here.mkdir()
    done = cli.run("get", f"{folder}/report.bin", "--quiet", cwd=here)
    assert done.returncode == 0 and done.stderr == b""
    assert (here / "report.bin").read_bytes() == data


def test_put_one_file_under_a_new_name_and_to_the_root(cli: Cli, tmp_path: Path) -> None:
    local = tmp_path / unique("plain")
    local.write_bytes(b"hello")
    cli.ok("put", str(local))
    assert local.name in cli.ok("ls", "/").splitlines()
    folder = "/" + unique("dest")
    cli.ok("mkdir", folder)
    cli.ok("put", str(local), f"{folder}/renamed.txt")
    assert cli.ok("ls", folder).splitlines() == ["renamed.txt"]
    assert cli.run("cat", f"{folder}/renamed.txt").stdout == b"hello"


def test_get_resumes_an_interrupted_download(cli: Cli, emulator: MegaEmulator, tmp_path) -> None:
    data = random_bytes(3 << 20)
    name = unique("big") + ".bin"
    handle, _key = emulator.add_file(EMAIL, data, name)
    target = tmp_path / "dl" / name
    part = target.with_name(name + ".megafast-part")
    sidecar = target.with_name(name + ".megafast-part.json")

    emulator.set_faults(bandwidth=256 * 1024)  # ~12 s for the whole file on one connection
    process = subprocess.Popen(
        cli.command("get", f"/{name}", "-o", f"{target.parent}/", "--connections", "1"),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        done_ranges: list = []
        while time.monotonic() < deadline and process.poll() is None:
            if sidecar.exists():
                try:
                    done_ranges = json.loads(sidecar.read_text())["done"]
                except (ValueError, KeyError):
                    done_ranges = []
                if done_ranges:
                    break
            time.sleep(0.1)
        assert done_ranges, "the download never saved its progress"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err.decode()
    assert err.decode().strip().endswith("megafast: interrupted")
    assert part.exists() and sidecar.exists() and not target.exists()
    emulator.clear_faults()

    # Spoil the server's copy inside a range the first run already has: only a download that
    # really resumes (and fetches just the rest) can still pass the MAC check.
    first_start, first_end = json.loads(sidecar.read_text())["done"][0]
    assert first_end - first_start >= 16
    blob = emulator.store.blob_path(emulator.node(handle)["blob"])
    spoiled = bytearray(blob.read_bytes())
    spoiled[first_start : first_start + 16] = bytes(
        b ^ 0xFF for b in spoiled[first_start : first_start + 16]
    )
    original = blob.read_bytes()
    blob.write_bytes(bytes(spoiled))
    try:
        cli.ok("get", f"/{name}", "-o", f"{target.parent}/")
        assert target.read_bytes() == data
        assert not part.exists() and not sidecar.exists()
        # control: starting over reads the spoiled range and fails the integrity check
        again = cli.run("get", f"/{name}", "-o", str(tmp_path / "fresh.bin"), "--no-resume")
        assert again.returncode == 1
        assert "Traceback" not in again.stderr.decode()
    finally:
        blob.write_bytes(original)


def test_put_resumes_an_interrupted_upload(cli: Cli, emulator: MegaEmulator, tmp_path) -> None:
    local = tmp_path / (unique("up") + ".bin")
    data = random_bytes(4 << 20)
    local.write_bytes(data)
    state = cli.home / "state"

    def sent_so_far() -> int:
        total = 0
        for f in state.glob("upload-*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                total += sum(e - b for b, e in json.loads(f.read_text())["done"])
        return total

    emulator.set_faults(bandwidth=1 << 20)  # ~4 s on one connection
    process = subprocess.Popen(
        cli.command("put", str(local), "/", "--connections", "1"),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None and sent_so_far() < 1 << 20:
            time.sleep(0.05)
        assert sent_so_far() >= 1 << 20, "the upload never saved its progress"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        emulator.clear_faults()
    emulator.wait_idle()  # the killed client's requests are counted when they end

    before = emulator.stats()["upload_bytes"]
    cli.ok("put", str(local), "/")
    assert emulator.stats()["upload_bytes"] - before <= len(data) - (1 << 20)
    cli.ok("get", f"/{local.name}", "-o", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data
    assert not list(state.glob("upload-*.json"))


# -- links ----------------------------------------------------------------------------------


def test_link_then_get_ls_cat_the_url_without_login(
    cli: Cli, anonymous: Cli, emulator: MegaEmulator, tmp_path: Path
) -> None:
    data = random_bytes(700_000)
    folder = unique("shared")
    folder_handle = emulator.add_folder(EMAIL, folder)
    emulator.add_file(EMAIL, data, "inside.bin", folder_handle)
    emulator.add_file(EMAIL, b"top", "top.txt")

    file_link = cli.ok("link", f"/{folder}/inside.bin").strip()
    folder_link = cli.ok("link", f"/{folder}").strip()
    assert file_link.startswith("https://mega.nz/file/")
    assert folder_link.startswith("https://mega.nz/folder/")

    out = tmp_path / "pub"
    anonymous.ok("get", file_link, "-o", f"{out}/")
    assert (out / "inside.bin").read_bytes() == data
    anonymous.ok("get", folder_link, "-o", str(out))
    assert (out / folder / "inside.bin").read_bytes() == data
    assert anonymous.run("cat", file_link).stdout == data

    entries = anonymous.json("ls", file_link)
    assert [(e["name"], e["size"]) for e in entries] == [("inside.bin", len(data))]
    assert anonymous.ok("ls", folder_link).splitlines() == ["inside.bin"]

    # import the file link into the account
    cli.ok("mkdir", f"/{folder}-copy")
    assert (
        cli.ok("import", file_link, f"/{folder}-copy").strip()
        == f"imported to /{folder}-copy/inside.bin"
    )
    assert cli.run("cat", f"/{folder}-copy/inside.bin").stdout == data


def test_a_link_with_a_wrong_key_fails_cleanly(cli: Cli, anonymous: Cli, emulator) -> None:
    name = unique("k") + ".txt"
    emulator.add_file(EMAIL, b"secret", name)
    link = cli.ok("link", f"/{name}").strip()
    handle = link.split("/file/")[1].split("#")[0]
    wrong = f"https://mega.nz/file/{handle}#" + "A" * 43
    done = anonymous.run("get", wrong, "-o", str(anonymous.home) + "/")
    assert_one_line_error(done, 1, "wrong key")
    assert "A" * 43 not in done.stderr.decode()  # keys never reach error lines
    done = anonymous.run("get", f"https://mega.nz/file/{handle}")
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()
    # cat finds the wrong key before it writes a byte
    done = anonymous.run("cat", wrong)
    assert_one_line_error(done, 1, "wrong key")
    assert done.stdout == b""


# -- folders, moves, removal -----------------------------------------------------------------


def test_mkdir_mv_rm(cli: Cli, emulator: MegaEmulator) -> None:
    top = "/" + unique("work")
    assert_one_line_error(cli.run("mkdir", f"{top}/a/b"), 1, "mkdir -p")
    cli.ok("mkdir", "-p", f"{top}/a/b")
    cli.ok("mkdir", "-p", f"{top}/a/b")  # no error when it exists
    assert_one_line_error(cli.run("mkdir", f"{top}/a"), 1, "already exists")
    note = unique("note") + ".txt"
    emulator.add_file(EMAIL, b"x", note)
    cli.ok("mv", f"/{note}", f"{top}/a/b")
    cli.ok("mv", f"{top}/a/b/{note}", f"{top}/renamed.txt")
    assert cli.ok("ls", "-R", top).splitlines() == ["a/", "a/b/", "renamed.txt"]
    assert_one_line_error(cli.run("mv", f"{top}/a", f"{top}/a/b"), 1, "into itself")

    assert_one_line_error(cli.run("rm", f"{top}/a"), 1, "rm -r")
    cli.ok("rm", "-r", f"{top}/a")
    cli.ok("rm", "--permanent", f"{top}/renamed.txt")
    assert cli.ok("ls", top) == ""
    assert f"{top}/a" not in [e["path"] for e in cli.json("ls", "-R", "/")]
    assert_one_line_error(cli.run("rm", "/"), 1, "root")


def test_commands_use_the_node_cache(cli: Cli, emulator: MegaEmulator) -> None:
    def listings() -> int:
        return sum("f" in e.get("commands", ()) for e in emulator.request_log)

    top = "/" + unique("cached")
    cli.ok("mkdir", top)
    cache = cli.home / ".cache" / "megafast"
    [cached] = cache.glob("*.mfcache")
    assert cached.stat().st_mode & 0o777 == 0o600
    name = unique("elsewhere") + ".txt"
    emulator.add_file(EMAIL, b"new", name)
    emulator.reset_stats()
    assert name in cli.ok("ls", "/")  # a warm start: the change through /sc
    assert cli.ok("ls", top) == ""
    assert listings() == 0
    cli.ok("--no-cache", "ls", "/")
    assert listings() == 1
    assert cli.json("cache", "clear")["removed"] == 1  # type: ignore[index]
    assert not list(cache.glob("*.mfcache"))


# -- errors, output, progress -----------------------------------------------------------------


def test_error_paths(cli: Cli, anonymous: Cli, tmp_path: Path) -> None:
    assert_one_line_error(
        cli.run("get", "/no/such/file"), 1, "no such file or folder: /no/such/file"
    )
    assert_one_line_error(cli.run("cat", "/"), 1, "is a folder")
    assert_one_line_error(anonymous.run("ls"), 1, "not logged in")
    assert_one_line_error(cli.run("put", str(tmp_path / "missing.bin")), 1, "no such file")

    usage = cli.run("ls", "--no-such-option")
    assert usage.returncode == 2 and b"usage:" in usage.stderr
    assert cli.run("frobnicate").returncode == 2
    assert cli.run().returncode == 2

    # a server that is down: a few quick tries, then one clear line (no --retry-time needed)
    down = cli.run("--api-url", "http://127.0.0.1:9", "whoami", timeout=30)
    assert_one_line_error(down, 1, "cannot connect to http://127.0.0.1:9: connection refused")
    debug = cli.run("--api-url", "http://127.0.0.1:9", "whoami", "--debug", "--retry-time", "0.5")
    assert debug.returncode == 1 and b"Traceback" in debug.stderr

    as_json = cli.run("--json", "get", "/no/such/file")
    assert as_json.returncode == 1 and as_json.stdout == b""
    assert json.loads(as_json.stderr)["error"].startswith("no such file or folder")


def test_progress_bars_show_speed_and_quiet_hides_them(cli: Cli, tmp_path: Path) -> None:
    local = tmp_path / "bar.bin"
    local.write_bytes(random_bytes(2 << 20))
    folder = "/" + unique("bars")
    cli.ok("mkdir", folder)
    shown = cli.run("put", str(local), folder, "--progress", "always")
    err = shown.stderr.decode()
    assert shown.returncode == 0, err
    assert "100%" in err and "B/s" in err and "2.00M/2.00M" in err
    assert f"uploaded {folder}/bar.bin (2.0 MiB)" in err
    quiet = cli.run(
        "get", f"{folder}/bar.bin", "-o", str(tmp_path / "q.bin"), "-q", "--progress", "always"
    )
    assert quiet.returncode == 0 and quiet.stderr == b""
    # not a terminal and not asked: no bar, only the status line
    plain = cli.run("get", f"{folder}/bar.bin", "-o", str(tmp_path / "p.bin"))
    assert plain.returncode == 0 and "%" not in plain.stderr.decode()


# -- commands that need no account ------------------------------------------------------------


def test_info_reports_backend_kernel_and_versions(anonymous: Cli) -> None:
    from megafast import crypto

    info = anonymous.json("info")
    assert info["backend"] == crypto.BACKEND and info["kernel"] == crypto.KERNEL
    assert info["versions"]["megafast"] == megafast.__version__
    assert info["logged_in_as"] is None
    text = anonymous.ok("info")
    assert "kernel" in text and crypto.KERNEL in text


def test_bench_prints_a_table_native_against_pure(anonymous: Cli) -> None:
    from megafast.crypto import _backend

    result = anonymous.json("bench", "--seconds", "0.5", "--size", "64K")
    names = [row["name"] for row in result["results"]]
    assert any("decrypt + MAC" in name for name in names)
    assert all(row["rates"]["python"] > 0 for row in result["results"])
    if _backend.BACKEND == "native":
        assert result["native"] is True
        assert all(row["ratio"] is not None for row in result["results"])
    table = anonymous.ok("bench", "--seconds", "0.3", "--size", "16K")
    assert "native/pure" in table.splitlines()[0] and "MB/s" in table


def test_demo_round_trip_is_verified(anonymous: Cli) -> None:
    result = anonymous.json("demo", "--size", "3M", "--connections", "2")
    assert result["verified"] is True and result["size"] == 3 << 20
    assert result["upload_mb_per_s"] > 0 and result["download_mb_per_s"] > 0
    text = anonymous.ok("demo", "--size", "100K")
    assert "verified" in text and "MB/s" in text


def test_serve_runs_the_emulator_until_interrupted(tmp_path: Path) -> None:
    c = Cli(tmp_path, "unused")
    process = subprocess.Popen(
        c.command(
            "serve", "--user", f"bob@example.com:{PASSWORD}", "--data-dir", str(tmp_path / "d")
        ),
        env=c.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:")
        c.env["MEGAFAST_API_URL"] = url
        c.ok("login", "bob@example.com", "--password-stdin", input=PASSWORD.encode())
        assert c.ok("whoami").strip() == "bob@example.com"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_import_of_the_cli_module_is_light() -> None:
    code = (
        "import sys, megafast.cli; "
        "print(sorted(m for m in ('requests', 'megafast.client', 'megafast.crypto', 'tqdm') "
        "if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=True)
    assert out.stdout.decode().strip() == "[]"


def test_console_script_runs_the_same_main() -> None:
    script = shutil.which("megafast", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the megafast console script is not installed in this environment")
    done = subprocess.run([script, "--version"], capture_output=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.decode().strip() == f"megafast {megafast.__version__}"


def _read_until(master: int, wanted: bytes, seen: bytearray, timeout: float = 60) -> None:
    import select

    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {wanted!r}; got {bytes(seen)!r}"
        ready, _, _ = select.select([master], [], [], left)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"the terminal closed before {wanted!r}; got {bytes(seen)!r}"
            seen += chunk


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_login_asks_on_the_terminal_without_echo(tmp_path, emulator) -> None:
    email = unique("tty") + "@example.com"
    account = emulator.create_account(email, PASSWORD, mfa_secret=True)
    c = Cli(tmp_path, emulator.api_url)
    master, slave = os.openpty()
    process = subprocess.Popen(
        c.command("login"),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=c.env,
        start_new_session=True,  # no controlling terminal: getpass uses stdin, echo off
    )
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"Email: ", seen)
        os.write(master, email.encode() + b"\n")
        _read_until(master, b"Password: ", seen)
        os.write(master, PASSWORD.encode() + b"\n")
        _read_until(master, b"Two-factor code: ", seen)
        os.write(master, account.totp().encode() + b"\n")
        _read_until(master, b"logged in as " + email.encode(), seen)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert email.encode() in seen  # the email is echoed as typed ...
    assert PASSWORD.encode() not in seen  # ... the password is not
    assert c.ok("whoami").strip() == email
