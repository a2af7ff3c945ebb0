"""Downloads against the emulator on loopback: parallel ranges, faults, integrity, readers."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from megafast.errors import IntegrityError, OverQuotaError, RetryExhaustedError, ValidationError
from megafast.transfer import (
    MiB,
    _download,
    download_file,
    download_to_fileobj,
    open_reader,
    part_paths,
)
from support.transfer import Remote, content, fast_config

SMALL = fast_config(connections=4, piece_size=MiB)


def leftovers(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


@pytest.mark.parametrize(
    "size", [0, 1, 15, 16, 17, 128 * 1024, 128 * 1024 + 1, 4608 * 1024 + 16, 5 * MiB + 3]
)
def test_download_round_trip(remote: Remote, tmp_path, size: int) -> None:
    data = content(size)
    h, key = remote.add_file(data)
    seen: list[tuple[int, int]] = []
    dest = tmp_path / "out.bin"
    out = download_file(
        remote.http,
        remote.url_getter(h),
        size,
        key,
        dest,
        config=SMALL,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert out == dest and dest.read_bytes() == data
    assert leftovers(dest) == ["out.bin"]  # no part file, no sidecar
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_ranges_are_whole_chunks_fetched_over_parallel_connections(
    remote: Remote, tmp_path, fetched
) -> None:
    data = content(24 * MiB + 5)
    h, key = remote.add_file(data)
    active = 0
    peak = 0
    lock = threading.Lock()
    real_consume = _download._FileDownload._consume

    def consume(self, offset, view):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.002)  # hold the block a moment so that overlaps show
        try:
            return real_consume(self, offset, view)
        finally:
            with lock:
                active -= 1

    cfg = fast_config(connections=6, piece_size=2 * MiB)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_download._FileDownload, "_consume", consume)
        download_file(remote.http, remote.url_getter(h), len(data), key, tmp_path / "o", config=cfg)
    assert (tmp_path / "o").read_bytes() == data
    from megafast.transfer import ChunkMap
    from megafast.transfer._config import balanced_piece_size

    assert sorted(fetched) == ChunkMap(len(data)).plan(balanced_piece_size(len(data), cfg))
    assert len(fetched) >= 4 * cfg.connections  # every connection gets several ranges
    assert peak >= 2  # several ranges were in flight at once


def test_fifty_random_connection_drops_give_a_byte_identical_file(remote: Remote, tmp_path) -> None:
    data = content(64 * MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(drop_after_bytes=300_007, drop_rate=0.7, drop_limit=50, seed=5)
    cfg = fast_config(connections=8, piece_size=2 * MiB, max_retries=4)
    download_file(remote.http, remote.url_getter(h), len(data), key, tmp_path / "o", config=cfg)
    assert remote.emu.fault_counts.get("drop") == 50
    assert (tmp_path / "o").read_bytes() == data


def test_corrupted_byte_gives_integrity_error_and_leaves_the_target_untouched(
    remote: Remote, tmp_path
) -> None:
    data = content(3 * MiB + 7)
    h, key = remote.add_file(data)
    dest = tmp_path / "o.bin"
    dest.write_bytes(b"previous content")
    remote.emu.set_faults(corrupt_rate=1.0, corrupt_limit=1)
    with pytest.raises(IntegrityError):
        download_file(remote.http, remote.url_getter(h), len(data), key, dest, config=SMALL)
    assert remote.emu.fault_counts.get("corrupt") == 1
    assert dest.read_bytes() == b"previous content"
    assert leftovers(dest) == ["o.bin"]


def test_corrupted_byte_without_previous_file_leaves_no_file(remote: Remote, tmp_path) -> None:
    data = content(MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(corrupt_rate=1.0, corrupt_limit=1)
    with pytest.raises(IntegrityError):
        download_file(remote.http, remote.url_getter(h), len(data), key, tmp_path / "o")
    assert list(tmp_path.iterdir()) == []


def test_wrong_key_gives_integrity_error(remote: Remote, tmp_path) -> None:
    data = content(300_000)
    h, key = remote.add_file(data)
    bad = list(key)
    bad[6] ^= 1  # the meta-MAC word
    with pytest.raises(IntegrityError):
        download_file(remote.http, remote.url_getter(h), len(data), bad, tmp_path / "o")
    assert list(tmp_path.iterdir()) == []


def test_url_expiring_mid_transfer_gets_a_fresh_one(remote: Remote, tmp_path) -> None:
    data = content(12 * MiB)
    h, key = remote.add_file(data)
    getter = remote.url_getter(h)
    expired = []

    def progress(done: int, total: int) -> None:
        if not expired and done >= total // 4:
            remote.emu.expire_urls()
            expired.append(done)

    cfg = fast_config(connections=3, piece_size=MiB, speed_limit=30e6)
    download_file(
        remote.http, getter, len(data), key, tmp_path / "o", config=cfg, progress=progress
    )
    assert expired and expired[0] < len(data)
    assert getter.refreshes >= 1
    assert (tmp_path / "o").read_bytes() == data


def test_over_quota_raises_with_the_time_to_wait(remote: Remote, tmp_path) -> None:
    data = content(MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(over_quota=True, over_quota_time_left=42)
    with pytest.raises(OverQuotaError) as info:
        download_file(remote.http, remote.url_getter(h), len(data), key, tmp_path / "o")
    assert info.value.time_left == 42
    assert not (tmp_path / "o").exists()


def test_over_quota_is_waited_out_when_asked(remote: Remote, tmp_path) -> None:
    data = content(MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(over_quota=True, over_quota_time_left=1)

    def lift_after_the_first_509() -> None:  # however slow the machine, one 509 is seen
        deadline = time.monotonic() + 30
        while not remote.emu.fault_counts.get("over_quota") and time.monotonic() < deadline:
            time.sleep(0.01)
        remote.emu.set_faults(over_quota=False)

    threading.Thread(target=lift_after_the_first_509, daemon=True).start()
    cfg = fast_config(wait_on_quota=True)
    t0 = time.monotonic()
    download_file(remote.http, remote.url_getter(h), len(data), key, tmp_path / "o", config=cfg)
    assert remote.emu.fault_counts.get("over_quota", 0) >= 1
    assert time.monotonic() - t0 >= 0.9  # the server's time-left (1 s) was waited out
    assert (tmp_path / "o").read_bytes() == data


def test_storm_of_5xx_and_429_is_retried(remote: Remote, tmp_path) -> None:
    data = content(8 * MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(transfer_error_rate=0.5, transfer_error_limit=40, seed=3)
    download_file(remote.http, remote.url_getter(h), len(data), key, tmp_path / "o", config=SMALL)
    assert remote.emu.fault_counts.get("transfer_error", 0) >= 5
    assert (tmp_path / "o").read_bytes() == data


def test_storm_of_eagain_on_g_is_absorbed(remote: Remote, tmp_path) -> None:
    data = content(2 * MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(api_eagain_rate=0.7, api_eagain_limit=20, seed=2)
    getter = remote.url_getter(h)
    remote.emu.expire_urls()  # and every range needs a fresh URL once
    download_file(remote.http, getter, len(data), key, tmp_path / "o", config=SMALL)
    assert (tmp_path / "o").read_bytes() == data


def test_retry_budget_runs_out_with_a_clear_error(remote: Remote, tmp_path) -> None:
    data = content(MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(transfer_error_rate=1.0, transfer_error_statuses=(500,))
    getter = remote.url_getter(h)
    cfg = fast_config(max_retries=2)
    with pytest.raises(RetryExhaustedError) as info:
        download_file(remote.http, getter, len(data), key, tmp_path / "o", config=cfg)
    text = str(info.value)
    assert "gave up after 3 failed attempts" in text and "HTTP 500" in text
    assert getter._fetch().split("/")[-1] not in text  # no URL token in messages
    assert not (tmp_path / "o").exists()


def test_no_data_within_the_timeout_is_retried_then_fails(remote: Remote, tmp_path) -> None:
    data = content(64 * 1024)
    h, key = remote.add_file(data)
    getter = remote.url_getter(h)
    getter(False)
    remote.emu.set_faults(latency=1.0)
    cfg = fast_config(max_retries=1, timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(RetryExhaustedError) as info:
        download_file(remote.http, getter, len(data), key, tmp_path / "o", config=cfg)
    assert "Timeout" in str(info.value)
    assert time.monotonic() - t0 < 5


def test_api_errors_from_get_url_propagate(remote: Remote, tmp_path) -> None:
    def get_url(refresh: bool) -> str:
        raise OverQuotaError(-17, time_left=7)

    with pytest.raises(OverQuotaError):
        download_file(remote.http, get_url, 100, (1, 2, 3, 4, 5, 6, 7, 8), tmp_path / "o")


def test_speed_limit_is_kept(remote: Remote, tmp_path) -> None:
    data = content(2 * MiB)
    h, key = remote.add_file(data)
    cfg = fast_config(connections=4, piece_size=MiB, speed_limit=4e6)
    t0 = time.monotonic()
    download_file(remote.http, remote.url_getter(h), len(data), key, tmp_path / "o", config=cfg)
    assert time.monotonic() - t0 >= 0.4  # 2 MiB at 4 MB/s: 0.52 s
    assert (tmp_path / "o").read_bytes() == data


def test_progress_callback_error_stops_the_download(remote: Remote, tmp_path) -> None:
    data = content(8 * MiB)
    h, key = remote.add_file(data)

    def progress(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    cfg = fast_config(connections=2, piece_size=MiB, speed_limit=20e6)
    with pytest.raises(KeyboardInterrupt):
        download_file(
            remote.http,
            remote.url_getter(h),
            len(data),
            key,
            tmp_path / "o",
            config=cfg,
            progress=progress,
        )
    assert not (tmp_path / "o").exists()
    part, side = part_paths(tmp_path / "o")
    assert part.exists() and side.exists()  # kept for a resume


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"size": -1}, "size"),
        ({"size": 1.5}, "size"),
        ({"key": (1, 2, 3, 4)}, "nonce"),
        ({"key": (1, 2, 3)}, "key"),
        ({"config": {"connections": 2}}, "TransferConfig"),
        ({"resume_id": 5}, "resume_id"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, args: dict, message: str) -> None:
    kwargs = {"size": 10, "key": tuple(range(8)), "dest": tmp_path / "o"} | args
    extra = {k: kwargs.pop(k) for k in ("config", "resume_id") if k in kwargs}
    with pytest.raises(ValueError, match=message):
        download_file(None, lambda r: "http://127.0.0.1:9/x", **kwargs, **extra)


def test_destination_folder_is_rejected(tmp_path) -> None:
    with pytest.raises(ValidationError):
        download_file(None, lambda r: "http://x", 1, tuple(range(8)), tmp_path)
    with pytest.raises(ValidationError):
        download_file(None, lambda r: "http://x", 1, tuple(range(8)), tmp_path / "no" / "f")


def test_get_url_returning_garbage_is_a_clear_error(tmp_path) -> None:
    from megafast.errors import TransferError

    with pytest.raises(TransferError, match="http"):
        download_file(None, lambda r: None, 100, tuple(range(8)), tmp_path / "o")  # type: ignore


# -- file objects ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 17, 5 * MiB + 3, 9 * MiB])
def test_download_into_a_file_object(remote: Remote, size: int) -> None:
    data = content(size)
    h, key = remote.add_file(data)
    out = io.BytesIO()
    seen: list[int] = []
    cfg = fast_config(connections=3, piece_size=MiB)
    download_to_fileobj(
        remote.http,
        remote.url_getter(h),
        size,
        key,
        out,
        config=cfg,
        progress=lambda d, t: seen.append(d),
    )
    assert out.getvalue() == data
    assert seen[-1] == size


def test_download_into_a_file_object_with_drops(remote: Remote) -> None:
    data = content(6 * MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(drop_after_bytes=300_000, drop_rate=1.0, drop_limit=10)
    out = io.BytesIO()
    download_to_fileobj(remote.http, remote.url_getter(h), len(data), key, out, config=SMALL)
    assert out.getvalue() == data and remote.emu.fault_counts.get("drop") == 10


def test_file_object_download_detects_corruption(remote: Remote) -> None:
    data = content(2 * MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(corrupt_rate=1.0, corrupt_limit=1)
    with pytest.raises(IntegrityError):
        download_to_fileobj(remote.http, remote.url_getter(h), len(data), key, io.BytesIO())


# -- random-access reader -------------------------------------------------------------------


def test_reader_seeks_and_reads_like_a_file(remote: Remote) -> None:
    data = content(7 * MiB + 100)
    h, key = remote.add_file(data)
    with open_reader(remote.http, remote.url_getter(h), len(data), key) as r:
        assert r.seekable() and r.readable() and r.size == len(data)
        for pos, n in [
            (5_000_001, 100),
            (0, 10),
            (len(data) - 3, 10),
            (128 * 1024 - 1, 2),
            (3 * MiB, 2 * MiB),
        ]:
            r.seek(pos)
            assert r.read(n) == data[pos : pos + n]
        assert r.seek(-5, os.SEEK_END) == len(data) - 5
        assert r.read() == data[-5:]
        assert r.read(10) == b""
        r.seek(10)
        r.seek(5, os.SEEK_CUR)
        assert r.tell() == 15
        with pytest.raises(ValueError):
            r.seek(-1)
    with pytest.raises(ValueError):
        r.read(1)


def test_reader_verifies_the_whole_file_on_a_full_read(remote: Remote) -> None:
    data = content(3 * MiB + 5)
    h, key = remote.add_file(data)
    r = open_reader(remote.http, remote.url_getter(h), len(data), key)
    buffered = io.BufferedReader(r, buffer_size=64 * 1024)
    got = bytearray()
    while chunk := buffered.read(100_000):
        got += chunk
    assert bytes(got) == data and r.verified


def test_reader_refuses_corrupted_content(remote: Remote) -> None:
    data = content(2 * MiB)
    h, key = remote.add_file(data)
    remote.emu.set_faults(corrupt_rate=1.0, corrupt_limit=1)
    r = open_reader(remote.http, remote.url_getter(h), len(data), key)
    with pytest.raises(IntegrityError):
        r.read()
    assert not r.verified


def test_reader_notices_a_chunk_that_changes_between_reads(remote: Remote) -> None:
    data = content(MiB)
    h, key = remote.add_file(data)
    r = open_reader(remote.http, remote.url_getter(h), len(data), key, config=fast_config())
    assert r.read(10) == data[:10]
    remote.emu.set_faults(corrupt_rate=1.0, corrupt_limit=1)
    r._drop_window()  # forget the window: the next read fetches again
    r.seek(0)
    with pytest.raises(IntegrityError):
        r.read(MiB)


def test_reader_over_an_empty_file(remote: Remote) -> None:
    h, key = remote.add_file(b"")
    r = open_reader(remote.http, remote.url_getter(h), 0, key)
    assert r.read() == b"" and r.verified


@pytest.mark.parametrize("mode", ["direct", "page-cache", "no-o-direct"])
def test_download_with_and_without_direct_io(
    remote: Remote, tmp_path, monkeypatch, mode: str
) -> None:
    data = content(9 * MiB + 5)  # whole 4 MiB blocks by direct I/O, the tail by page cache
    h, key = remote.add_file(data)
    direct_writes: list[int] = []
    real_open = os.open

    def spy_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        if flags & getattr(os, "O_DIRECT", 0):
            direct_writes.append(fd)
        return fd

    monkeypatch.setattr(os, "open", spy_open)
    if mode == "page-cache":
        monkeypatch.setattr(_download, "DIRECT_IO", False)
    elif mode == "no-o-direct":
        monkeypatch.delattr(os, "O_DIRECT", raising=False)
    download_file(remote.http, remote.url_getter(h), len(data), key, tmp_path / "o", config=SMALL)
    assert (tmp_path / "o").read_bytes() == data
    assert bool(direct_writes) == (mode == "direct")
