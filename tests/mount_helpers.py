"""Helpers of the mount and HTTP tests: a logged-in command line, a mount that always
unmounts, a second client, a test video made by ffmpeg."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import megafast
from megafast.testing import MegaEmulator

SRC = str(Path(megafast.__file__).resolve().parent.parent)
EMAIL = "mount@example.com"
PASSWORD = "mount password"


def fuse_missing() -> str | None:
    """Why mount tests cannot run here (None when they can)."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (no FUSE in this machine or container)"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (Debian: apt-get install fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot load libfuse 3: {exc}"
    return None


def need_fuse() -> None:
    reason = fuse_missing()
    if reason:
        pytest.skip(reason)


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (Debian: apt-get install {program})")
    return path


class Cli:
    """The ``megafast`` command line in a private home, config and state folder."""

    def __init__(self, home: Path, api_url: str) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
            "MEGAFAST_CONFIG_DIR": str(home / "config"),
            "MEGAFAST_STATE_DIR": str(home / "state"),
            "MEGAFAST_API_URL": api_url,
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / "xdg-state"),
        }
        self.env.pop("XDG_CONFIG_HOME", None)
        self.env.pop("XDG_CACHE_HOME", None)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "megafast", *args]

    def login(self) -> None:
        subprocess.run(
            self.command("login", EMAIL, "--password-stdin"),
            input=PASSWORD.encode() + b"\n",
            env=self.env,
            capture_output=True,
            check=True,
            timeout=120,
        )


class Mounted:
    """A running ``megafast mount``: its folder and process."""

    def __init__(self, path: Path, process: subprocess.Popen[bytes]) -> None:
        self.path = path
        self.process = process


def is_mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point in /proc/mounts (a dead FUSE mount too, which
    ``os.path.ismount`` cannot stat)."""
    target = os.path.realpath(path)
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return os.path.ismount(path)
    return any(len(f := line.split()) > 1 and f[1] == target for line in lines)


def unmount(path: Path) -> None:
    """``fusermount3 -u`` (lazily when busy or dead); never raises."""
    for args in (["-u"], ["-uz"]):
        if not is_mounted(path):
            return
        subprocess.run(["fusermount3", *args, str(path)], capture_output=True, timeout=60)
        for _ in range(50):
            if not is_mounted(path):
                return
            time.sleep(0.1)


@contextlib.contextmanager
def mounted(cli: Cli, mountpoint: Path, *args: str) -> Iterator[Mounted]:
    """``megafast mount ARGS... MOUNTPOINT`` until the block ends; always unmounted."""
    need_fuse()
    mountpoint.mkdir(parents=True, exist_ok=True)
    err = open(cli.home / f"mount-{mountpoint.name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        cli.command("mount", *args, str(mountpoint)),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=err,
    )
    try:
        deadline = time.monotonic() + 60
        while not os.path.ismount(mountpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                err.flush()
                log = (cli.home / f"mount-{mountpoint.name}.log").read_text(errors="replace")
                pytest.fail(f"the mount did not come up: {log}")
            time.sleep(0.05)
        yield Mounted(mountpoint, process)
    finally:
        unmount(mountpoint)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        err.close()


@contextlib.contextmanager
def account_emulator(**kwargs: Any) -> Iterator[MegaEmulator]:
    """The emulator (``kwargs`` as for :class:`MegaEmulator`) with the test account."""
    with MegaEmulator(**kwargs) as emu:
        emu.create_account(EMAIL, PASSWORD)
        yield emu


def second_client(emu: MegaEmulator) -> megafast.Mega:
    """Another client of the test account (its changes reach a mount through /sc)."""
    mega = megafast.Mega(api_url=emu.api_url)
    mega.login(EMAIL, PASSWORD)
    return mega


@contextlib.contextmanager
def account_mount(emu: MegaEmulator, home: Path) -> Iterator[Mounted]:
    """``megafast mount`` of the test account, logged in from the private ``home``."""
    cli = Cli(home, emu.api_url)
    cli.login()
    with mounted(cli, home / "mnt") as m:
        yield m


def make_video(path: Path, seconds: int = 4) -> Path:
    """A small H.264/MP4 (or MPEG-4 when x264 is missing) made with ffmpeg's testsrc."""
    ffmpeg = need("ffmpeg")
    base = [
        ffmpeg,
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc=duration={seconds}:size=320x240:rate=25",
    ]
    done = subprocess.run([*base, "-g", "25", str(path)], capture_output=True, timeout=120)
    if done.returncode != 0:
        done = subprocess.run(
            [*base, "-c:v", "mpeg4", "-g", "25", str(path)], capture_output=True, timeout=120
        )
    assert done.returncode == 0, done.stderr.decode()
    return path


def ffprobe_duration(target: str) -> float:
    ffprobe = need("ffprobe")
    done = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", target],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    return float(done.stdout.decode().strip())


def ffmpeg_seek_frame(target: str, at: float, out: Path) -> None:
    """Decode one frame at ``at`` seconds (a seek) into ``out``."""
    ffmpeg = need("ffmpeg")
    done = subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-ss", str(at), "-i", target, "-frames:v", "1", str(out)],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert out.stat().st_size > 0
