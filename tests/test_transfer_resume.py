"""Interrupted transfers resume: in-process interruptions, and real processes killed with
SIGKILL midway and resumed by another call."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import megafast
from megafast.transfer import (
    ChunkMap,
    MiB,
    _upload,
    download_file,
    part_paths,
    state_dir,
    upload_file,
)
from support.transfer import Remote, content, fast_config

SLOW = fast_config(connections=3, piece_size=MiB, speed_limit=20e6)


class Interrupt(Exception):
    pass


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of each piece body sent (retries included)."""
    sizes: list[int] = []
    real = _upload._Upload._post_once

    def spy(self, begin, body):
        sizes.append(len(body))
        return real(self, begin, body)

    monkeypatch.setattr(_upload._Upload, "_post_once", spy)
    return sizes


def interrupt_after(fraction: float):
    def progress(done: int, total: int) -> None:
        if done >= total * fraction:
            raise Interrupt

    return progress


def download(remote: Remote, handle: str, data: bytes, key, dest: Path, **kwargs) -> Path:
    """download_file of ``data`` stored as ``handle`` (at SLOW unless ``config`` is given)."""
    kwargs.setdefault("config", SLOW)
    return download_file(remote.http, remote.url_getter(handle), len(data), key, dest, **kwargs)


def interrupted_download(
    remote: Remote, handle: str, data: bytes, key, dest: Path, fraction: float, **kwargs
) -> None:
    """A download stopped (Interrupt) once ``fraction`` of it is done."""
    with pytest.raises(Interrupt):
        download(remote, handle, data, key, dest, progress=interrupt_after(fraction), **kwargs)


def interrupted_upload(remote: Remote, get, source, *size: int, fraction: float, **kwargs) -> None:
    """An upload (at SLOW) stopped (Interrupt) once ``fraction`` of it is done."""
    with pytest.raises(Interrupt):
        upload_file(
            remote.http,
            get,
            source,
            *size,
            config=SLOW,
            progress=interrupt_after(fraction),
            **kwargs,
        )


def sidecar_chunks(side: Path, size: int) -> set[int]:
    state = json.loads(side.read_text())
    return ChunkMap(size).from_intervals(state["done"])


# -- downloads, in process ------------------------------------------------------------------


def test_interrupted_download_resumes_reusing_verified_ranges(
    remote: Remote, tmp_path, fetched
) -> None:
    data = content(12 * MiB + 3)
    h, key = remote.add_file(data)
    dest = tmp_path / "o.bin"
    interrupted_download(remote, h, data, key, dest, 0.4, resume_id=h)
    part, side = part_paths(dest)
    assert part.exists() and side.exists() and not dest.exists()
    assert stat.S_IMODE(side.stat().st_mode) == 0o600
    reused = sidecar_chunks(side, len(data))
    assert reused
    prefixes = sum(e - s for s, e in json.loads(side.read_text()).get("partial", []))
    text = side.read_text()
    assert bytes(mc_key_bytes(key)).hex() not in text  # the node key is not in the sidecar
    first = len(fetched)
    seen: list[int] = []
    download(remote, h, data, key, dest, progress=lambda d, t: seen.append(d), resume_id=h)
    assert dest.read_bytes() == data
    assert not part.exists() and not side.exists()
    again = sum(e - s for s, e in fetched[first:])
    chunks = ChunkMap(len(data))
    reused_bytes = sum(chunks.chunk_end(c) - c for c in reused)
    # nothing reused (whole chunks, and the chunk prefixes the sidecar lists) came again
    assert again == len(data) - reused_bytes - prefixes
    assert seen[-1] == len(data)


def mc_key_bytes(key) -> bytes:
    from megafast import crypto as mc

    return mc.a32_to_str(key)


def test_resume_refetches_ranges_that_fail_reverification(
    remote: Remote, tmp_path, fetched
) -> None:
    data = content(10 * MiB)
    h, key = remote.add_file(data)
    dest = tmp_path / "o.bin"
    interrupted_download(remote, h, data, key, dest, 0.5)
    part, side = part_paths(dest)
    reused = sorted(sidecar_chunks(side, len(data)))
    victim = reused[len(reused) // 2]
    with open(part, "r+b") as f:  # damage one reused chunk on disk
        f.seek(victim + 5)
        byte = f.read(1)
        f.seek(victim + 5)
        f.write(bytes([byte[0] ^ 0xFF]))
    first = len(fetched)
    download(remote, h, data, key, dest)
    assert dest.read_bytes() == data
    assert any(s <= victim < e for s, e in fetched[first:])


def test_sidecar_of_another_file_is_not_trusted(remote: Remote, tmp_path) -> None:
    a, b = content(4 * MiB), content(4 * MiB)
    ha, ka = remote.add_file(a)
    hb, kb = remote.add_file(b)
    dest = tmp_path / "o.bin"
    interrupted_download(remote, ha, a, ka, dest, 0.5)
    download(remote, hb, b, kb, dest)
    assert dest.read_bytes() == b


def test_resume_can_be_turned_off(remote: Remote, tmp_path) -> None:
    data = content(4 * MiB)
    h, key = remote.add_file(data)
    dest = tmp_path / "o.bin"
    cfg = fast_config(connections=2, piece_size=MiB, speed_limit=20e6, resume=False)
    interrupted_download(remote, h, data, key, dest, 0.3, config=cfg)
    assert list(tmp_path.iterdir()) == []  # no part file, no sidecar


# -- uploads, in process --------------------------------------------------------------------


def test_interrupted_upload_resumes_on_the_same_url(remote: Remote, tmp_path, posted) -> None:
    data = content(10 * MiB + 9)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    get = remote.upload_url_getter()
    interrupted_upload(remote, get, src, fraction=0.5)
    sidecars = list(state_dir().glob("upload-*.json"))
    assert len(sidecars) == 1 and stat.S_IMODE(sidecars[0].stat().st_mode) == 0o600
    first = len(posted)
    result = upload_file(remote.http, get, src, config=SLOW)
    assert get.calls == 1  # the URL came from the sidecar
    assert 0 < sum(posted[first:]) < len(data)
    h = remote.create_node(result.token, result.key)
    assert remote.stored_plaintext(h, result.key) == data
    assert list(state_dir().iterdir()) == []


def test_resumed_upload_starts_over_when_the_source_changed(remote: Remote, tmp_path) -> None:
    data = bytearray(content(6 * MiB))
    get = remote.upload_url_getter()
    interrupted_upload(remote, get, bytes(data), fraction=0.6, resume_id="job-1")
    data[100] ^= 1  # the first piece was sent: its content changes
    result = upload_file(remote.http, get, bytes(data), config=SLOW, resume_id="job-1")
    assert get.calls == 2  # the server holds stale bytes: the upload started over
    h = remote.create_node(result.token, result.key)
    assert remote.stored_plaintext(h, result.key) == bytes(data)


def test_resumed_upload_with_an_expired_url_starts_over(remote: Remote, tmp_path) -> None:
    data = content(5 * MiB)
    get = remote.upload_url_getter()
    interrupted_upload(remote, get, data, fraction=0.5, resume_id="j2")
    remote.emu.expire_urls()
    result = upload_file(remote.http, get, data, config=SLOW, resume_id="j2")
    assert get.calls == 2
    h = remote.create_node(result.token, result.key)
    assert remote.stored_plaintext(h, result.key) == data


# -- real processes killed with SIGKILL -----------------------------------------------------

CHILD = r"""
import sys, requests
from megafast.transfer import TransferConfig, download_file, upload_file
mode, url, path, size, key = sys.argv[1:6]
cfg = TransferConfig(connections=3, piece_size=1 << 20, speed_limit=8e6)
key = tuple(int(x) for x in key.split(",")) if key else None
if mode == "download":
    download_file(requests.Session(), lambda r: url, int(size), key, path, config=cfg,
                  resume_id="kill-test")
else:
    upload_file(requests.Session(), lambda n: url, path, config=cfg)
print("finished")
"""


def run_child(*args: str, env_extra: dict[str, str]) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(megafast.__file__).parents[1])
    env.update(env_extra)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_download_killed_midway_resumes_to_an_identical_file(
    remote: Remote, tmp_path, fetched
) -> None:
    data = content(24 * MiB + 77)
    h, key = remote.add_file(data)
    dest = tmp_path / "o.bin"
    part, side = part_paths(dest)
    url = remote.emu.download_url(h)
    child = run_child(
        "download", url, str(dest), str(len(data)), ",".join(map(str, key)), env_extra={}
    )
    try:
        wait_for(lambda: len(sidecar_chunks(side, len(data))) >= 6)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert part.exists() and not dest.exists()
    reused = sidecar_chunks(side, len(data))
    download(remote, h, data, key, dest, resume_id="kill-test")
    assert dest.read_bytes() == data
    chunks = ChunkMap(len(data))
    assert sum(e - s for s, e in fetched) <= len(data) - sum(
        chunks.chunk_end(c) - c for c in reused
    )
    assert not part.exists() and not side.exists()


def test_upload_killed_midway_resumes_to_identical_content(
    remote: Remote, tmp_path, posted
) -> None:
    data = content(20 * MiB + 5)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    url = remote.emu.upload_url(remote.email, len(data))
    state = tmp_path / "state"
    child = run_child(
        "upload", url, str(src), str(len(data)), "", env_extra={"MEGAFAST_STATE_DIR": str(state)}
    )

    def sent_pieces() -> int:
        sidecars = list(state.glob("upload-*.json"))
        return len(json.loads(sidecars[0].read_text())["done"]) if sidecars else 0

    try:
        wait_for(
            lambda: (
                sent_pieces() >= 1
                and len(
                    ChunkMap(len(data)).from_intervals(
                        json.loads(next(state.glob("upload-*.json")).read_text())["done"]
                    )
                )
                >= 8
            )
        )
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    get = remote.upload_url_getter()
    result = upload_file(remote.http, get, src, config=SLOW)
    assert get.calls == 0  # continued on the URL of the killed process
    assert sum(posted) < len(data)
    h = remote.create_node(result.token, result.key)
    assert remote.stored_plaintext(h, result.key) == data
    assert src.read_bytes() == data


def test_resumed_stream_upload_refuses_a_changed_source(remote: Remote) -> None:
    data = bytearray(content(6 * MiB))
    get = remote.upload_url_getter()
    interrupted_upload(remote, get, iter([bytes(data)]), len(data), fraction=0.6, resume_id="job-3")
    assert list(state_dir().glob("upload-*.json"))
    data[100] ^= 1
    from megafast.errors import TransferError

    with pytest.raises(TransferError, match="source changed"):
        upload_file(
            remote.http, get, iter([bytes(data)]), len(data), config=SLOW, resume_id="job-3"
        )
    assert list(state_dir().glob("upload-*.json")) == []  # a useless sidecar is not kept


def test_resumed_stream_upload_continues(remote: Remote) -> None:
    data = content(9 * MiB + 1)
    get = remote.upload_url_getter()
    interrupted_upload(remote, get, iter([data]), len(data), fraction=0.5, resume_id="job-4")
    result = upload_file(remote.http, get, iter([data]), len(data), config=SLOW, resume_id="job-4")
    assert get.calls == 1
    h = remote.create_node(result.token, result.key)
    assert remote.stored_plaintext(h, result.key) == data


def test_two_downloads_to_one_file_do_not_mix(remote: Remote, tmp_path) -> None:
    from megafast.errors import TransferError

    data = content(6 * MiB)
    h, key = remote.add_file(data)
    dest = tmp_path / "o.bin"
    started = []
    errors: list[BaseException] = []

    def second(done: int, total: int) -> None:
        if not started:
            started.append(done)
            try:
                download_file(remote.http, remote.url_getter(h), len(data), key, dest)
            except TransferError as exc:
                errors.append(exc)

    download_file(
        remote.http, remote.url_getter(h), len(data), key, dest, config=SLOW, progress=second
    )
    assert errors and "another transfer" in str(errors[0])
    assert dest.read_bytes() == data


def test_two_uploads_of_one_source_do_not_share_a_sidecar(remote: Remote, tmp_path) -> None:
    from megafast.errors import TransferError

    data = content(4 * MiB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    get = remote.upload_url_getter()
    errors: list[BaseException] = []

    def second(done: int, total: int) -> None:
        if not errors:
            try:
                upload_file(remote.http, get, src)
            except TransferError as exc:
                errors.append(exc)

    result = upload_file(remote.http, get, src, config=SLOW, progress=second)
    assert errors and "another transfer" in str(errors[0])
    h = remote.create_node(result.token, result.key)
    assert remote.stored_plaintext(h, result.key) == data


def test_progress_must_be_callable(tmp_path) -> None:
    from megafast.errors import ValidationError

    with pytest.raises(ValidationError, match="progress"):
        download_file(None, lambda r: "http://x", 1, tuple(range(8)), tmp_path / "o", progress=5)
    with pytest.raises(ValidationError, match="progress"):
        upload_file(None, lambda n: "http://x", b"abc", progress="yes")
