#!/usr/bin/env python3
"""Drive MEGA's own ``megacli`` (meganz/sdk, unpatched) through a scenario against
``megafast serve --tls``, with megafast's client as the other party. Not run by CI: it needs a
megacli binary (``scripts/interop_megacli.sh`` builds one from an SDK source folder).

Steps (each printed PASS or FAIL with what was seen):
  1. v1 login, listing, logout; 2. v2 login and listing;
  3. upload a file with megacli; megacli sees its own upload (the ``t`` packet with its ``st``);
     megafast downloads it and checks the MAC and the bytes;
  4. megacli downloads it back (the SDK checks the MAC) and the bytes match;
  5. megafast creates a folder and uploads a file: megacli hears both through ``/sc`` and lists
     them; megacli downloads megafast's file;
  6. public links both ways: megacli exports its file and megafast opens the link; megafast
     exports a file and megacli downloads it by its link.

Usage: ``python scripts/interop_megacli.py --megacli PATH [--size BYTES] [--keep]``. Run it
with megafast importable (``PYTHONPATH=src``). Exit status 0 when every step passed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pty
import re
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

V1 = ("v1user@example.com", "interop-pass-1")
V2 = ("v2user@example.com", "interop-pass-2")


class Megacli:
    """megacli on a pseudo-terminal; :meth:`run` sends a line and waits for a pattern in what
    it prints afterwards."""

    def __init__(self, binary: str, cwd: Path, log: Path) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [binary],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            close_fds=True,
            env={**os.environ, "TERM": "dumb"},
        )
        os.close(slave)
        self.out = ""
        self.lock = threading.Lock()
        self.log = open(log, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.5)
                if not ready:
                    if self.proc.poll() is not None:
                        return
                    continue
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            text = data.decode("utf-8", "replace").replace("\r", "")
            with self.lock:
                self.out += text
            self.log.write(text)
            self.log.flush()

    def mark(self) -> int:
        with self.lock:
            return len(self.out)

    def since(self, mark: int) -> str:
        with self.lock:
            return self.out[mark:]

    def wait(self, pattern: str, mark: int, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while time.monotonic() < deadline:
            found = rx.search(self.since(mark))
            if found:
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(f"megacli exited ({self.proc.returncode})")
            time.sleep(0.1)
        raise TimeoutError(f"megacli did not print /{pattern}/ within {timeout:.0f} s")

    def send(self, line: str) -> int:
        mark = self.mark()
        os.write(self.master, (line + "\n").encode())
        return mark

    def run(self, line: str, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        return self.wait(pattern, self.send(line), timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        os.close(self.master)
        self.log.close()


class Emulator:
    """``megafast serve --tls`` in a child process."""

    def __init__(self, data_dir: Path, plain_transfers: bool = False) -> None:
        self.ca_file = data_dir / "ca.pem"
        cmd = [sys.executable, "-m", "megafast", "serve", "--tls", "--ca-file", str(self.ca_file)]
        if plain_transfers:
            cmd.append("--plain-transfers")
        cmd += ["--data-dir", str(data_dir / "state"), "--sc-wait-timeout", "20"]
        for (email, password), v in ((V1, ":v1"), (V2, "")):
            cmd += ["--user", f"{email}:{password}{v}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.api_url = self.proc.stdout.readline().strip()
        if not self.api_url.startswith("https://"):
            raise RuntimeError(f"megafast serve did not start (printed {self.api_url!r})")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def wait_for_file(path: Path, size: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size == size:
            return True
        time.sleep(0.2)
    return False


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--megacli", required=True, help="the megacli binary")
    ap.add_argument("--size", type=int, default=5 * 1024 * 1024 + 12345, help="file size (bytes)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, files)")
    args = ap.parse_args(argv)
    os.environ["REQUESTS_CA_BUNDLE"] = ""  # set below, once the emulator wrote its CA
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="megacli-interop-", dir=base))
    print(f"work folder: {work}")
    (work / "cli").mkdir()
    results: list[tuple[str, bool, str]] = []

    def step(name: str, fn: Callable[[], str]) -> bool:
        began = time.monotonic()
        try:
            note = fn()
            ok = True
        except Exception as exc:  # noqa: BLE001 - a failed step is reported, the rest runs
            ok, note = False, f"{type(exc).__name__}: {exc}"
        results.append((name, ok, note))
        print(f"{'PASS' if ok else 'FAIL'}  {name}  ({time.monotonic() - began:.1f} s) {note}")
        sys.stdout.flush()
        return ok

    emu = Emulator(work)
    os.environ["REQUESTS_CA_BUNDLE"] = str(emu.ca_file)
    os.environ.pop("CURL_CA_BUNDLE", None)
    from megafast import Mega

    cli = Megacli(args.megacli, work / "cli", work / "megacli.log")
    payload = work / "from_megacli.bin"
    payload.write_bytes(secrets.token_bytes(args.size))
    theirs = work / "from_megafast.bin"
    theirs.write_bytes(secrets.token_bytes(args.size // 2 + 7))
    state: dict[str, str] = {}
    try:
        cli.wait(r"MEGA|>", 0, 30)
        cli.run(f"debug -verbose -noconsole -file {work / 'sdk.log'}", r"Log to file", 10)
        # megacli insists on https:// here; "true" turns off the SDK's pinning of MEGA's keys
        cli.run(f"apiurl {emu.api_url}/ true", r"\n", 10)

        def login(email: str, password: str) -> str:
            mark = cli.send(f"login {email} {password}")
            cli.wait(r"Login successful\.", mark, 120)
            # the tree is loaded and /sc caught up: megacli reports the users it now knows
            cli.wait(r"users? received or updated", mark, 120)
            return f"logged in, tree loaded; ls: {listing()}"

        def listing() -> list[str]:
            mark = cli.send("ls")
            time.sleep(1.5)
            lines = [re.sub(r"MEGA[^>]*>\s*", "", x).strip() for x in cli.since(mark).splitlines()]
            return [x for x in lines if x and x != "ls"]

        def v1_login() -> str:
            note = login(*V1)
            cli.send("logout")
            time.sleep(2)
            return note

        step("1 v1 login, listing, logout", v1_login)
        step("2 v2 login and listing", lambda: login(*V2))

        def upload() -> str:
            mark = cli.send(f"put {payload}")
            seen = cli.wait(r"1 file added or updated", mark, 300)
            if not any(payload.name in x for x in listing()):
                raise AssertionError("megacli's ls does not show its upload")
            m = Mega(api_url=emu.api_url).login(*V2)
            node = m.find(payload.name)
            if node is None:
                raise AssertionError("megafast does not see megacli's upload")
            out = work / "mf_out"
            out.mkdir(exist_ok=True)
            got = m.download(node, str(out))
            if sha(got) != sha(payload):
                raise AssertionError("megafast downloaded different bytes")
            return f"megacli saw its own upload ({seen.group(0)!r}); megafast got it, MAC ok"

        step("3 megacli upload, seen by itself, downloaded by megafast", upload)

        def download(name: str, source: Path) -> str:
            target = work / "cli" / name
            target.unlink(missing_ok=True)
            cli.send(f"get {name}")
            if not wait_for_file(target, source.stat().st_size, 300):
                raise AssertionError(f"{name} did not arrive")
            time.sleep(0.5)
            if sha(target) != sha(source):
                raise AssertionError("different bytes")
            return "bytes match (the SDK checked the MAC)"

        step("4 megacli downloads its upload", lambda: download(payload.name, payload))

        def another_client() -> str:
            m = Mega(api_url=emu.api_url).login(*V2)
            mark = cli.mark()
            m.create_folder("made_by_megafast")
            folder_seen = cli.wait(r"1 folder added or updated", mark, 60)
            mark = cli.mark()
            m.upload(str(theirs))
            cli.wait(r"1 file added or updated", mark, 120)
            shown = listing()
            if not all(any(n in x for x in shown) for n in ("made_by_megafast", theirs.name)):
                raise AssertionError(f"megacli's ls does not show megafast's changes: {shown}")
            note = download(theirs.name, theirs)
            return f"/sc delivered {folder_seen.group(0)!r} and the file; megacli got it: {note}"

        step("5 megafast's changes reach megacli through /sc", another_client)

        def links() -> str:
            found = cli.run(f"export {payload.name}", r"(https://mega\.nz/\S+)", 60)
            link = found.group(1)
            state["cli_link"] = link
            anon = Mega(api_url=emu.api_url)
            out = work / "link_out"
            out.mkdir(exist_ok=True)
            got = anon.download_url(link, str(out))
            if sha(got) != sha(payload):
                raise AssertionError("megafast opened megacli's link to different bytes")
            m = Mega(api_url=emu.api_url).login(*V2)
            mf_link = m.export(theirs.name)
            state["mf_link"] = mf_link
            target = work / "cli" / theirs.name
            target.unlink(missing_ok=True)
            cli.send(f"get {mf_link}")
            if not wait_for_file(target, theirs.stat().st_size, 300):
                raise AssertionError("megacli did not download megafast's link")
            time.sleep(0.5)
            if sha(target) != sha(theirs):
                raise AssertionError("megacli opened megafast's link to different bytes")
            return "megacli link -> megafast ok; megafast link -> megacli ok"

        step("6 public links both ways", links)
    finally:
        cli.close()
        emu.close()
    failed = [name for name, ok, _ in results if not ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} steps passed")
    if args.keep or failed:
        print(f"megacli's output: {work / 'megacli.log'}; the SDK's log: {work / 'sdk.log'}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed or len(results) < 6 else 0


if __name__ == "__main__":
    sys.exit(main())
