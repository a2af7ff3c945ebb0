"""Uploads against the emulator on loopback: sources, parallel pieces, faults, restarts."""

from __future__ import annotations

import io
import os
import threading

import pytest

from megafast import crypto as mc
from megafast.errors import OverQuotaError, TransferError, ValidationError
from megafast.transfer import MiB, _upload, download_file, upload_file
from support.transfer import Remote, content, fast_config

SMALL = fast_config(connections=4, piece_size=MiB)


def check_round_trip(remote: Remote, result, data: bytes, tmp_path) -> None:
    """The stored blob decrypts to ``data`` under the returned key, and downloads back."""
    assert result.size == len(data)
    h = remote.create_node(result.token, result.key)
    assert remote.stored_plaintext(h, result.key) == data
    out = download_file(remote.http, remote.url_getter(h), len(data), result.key, tmp_path / "dl")
    assert out.read_bytes() == data


@pytest.mark.parametrize("size", [0, 1, 17, 128 * 1024 + 5, 5 * MiB + 3])
def test_upload_from_a_path(remote: Remote, tmp_path, size: int) -> None:
    data = content(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    before = os.stat(src)
    seen: list[tuple[int, int]] = []
    result = upload_file(
        remote.http,
        remote.upload_url_getter(),
        src,
        config=SMALL,
        progress=lambda d, t: seen.append((d, t)),
    )
    check_round_trip(remote, result, data, tmp_path)
    after = os.stat(src)
    assert src.read_bytes() == data  # the source is never modified
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert seen[-1] == (size, size)
    state = tmp_path / "state"
    assert not state.exists() or list(state.iterdir()) == []  # sidecar deleted on success


def test_upload_of_many_pieces_in_parallel(remote: Remote, tmp_path, monkeypatch) -> None:
    data = content(20 * MiB + 1)
    posted: list[int] = []
    real = _upload._Upload._post_once

    def spy(self, begin, body):
        posted.append(begin)
        return real(self, begin, body)

    monkeypatch.setattr(_upload._Upload, "_post_once", spy)
    cfg = fast_config(connections=8, piece_size=2 * MiB)
    result = upload_file(remote.http, remote.upload_url_getter(), data, config=cfg)
    from megafast.transfer import ChunkMap
    from megafast.transfer._config import balanced_piece_size

    piece = balanced_piece_size(len(data), cfg)
    assert piece < 2 * MiB  # 8 connections: ranges shrink so that each gets several
    assert sorted(posted) == [s for s, _ in ChunkMap(len(data)).plan(piece)]
    check_round_trip(remote, result, data, tmp_path)


def test_upload_from_file_objects_and_iterators(remote: Remote, tmp_path) -> None:
    data = content(3 * MiB + 11)
    get = remote.upload_url_getter()
    # bytes
    check_round_trip(remote, upload_file(remote.http, get, data, config=SMALL), data, tmp_path)
    # a seekable file object, from its current position
    buf = io.BytesIO(b"skip" + data)
    buf.seek(4)
    check_round_trip(remote, upload_file(remote.http, get, buf, config=SMALL), data, tmp_path)
    # a real file object (positional reads on its descriptor)
    (tmp_path / "f").write_bytes(data)
    with open(tmp_path / "f", "rb") as f:
        check_round_trip(remote, upload_file(remote.http, get, f, config=SMALL), data, tmp_path)
    # an iterator of odd-sized pieces, size given
    pieces = (data[i : i + 77_777] for i in range(0, len(data), 77_777))
    result = upload_file(remote.http, get, pieces, len(data), config=SMALL)
    check_round_trip(remote, result, data, tmp_path)


def test_upload_from_a_pipe(remote: Remote, tmp_path) -> None:
    data = content(6 * MiB + 5)
    rfd, wfd = os.pipe()

    def feed() -> None:
        with open(wfd, "wb") as w:
            w.write(data)

    threading.Thread(target=feed, daemon=True).start()
    with open(rfd, "rb") as r:
        result = upload_file(remote.http, remote.upload_url_getter(), r, len(data), config=SMALL)
    check_round_trip(remote, result, data, tmp_path)


def test_iterator_of_the_wrong_length_is_rejected(remote: Remote) -> None:
    get = remote.upload_url_getter()
    with pytest.raises(ValidationError, match="ended"):
        upload_file(remote.http, get, iter([b"abc"]), 10)
    with pytest.raises(ValidationError, match="more than"):
        upload_file(remote.http, get, iter([b"abc", b"def"]), 4)
    with pytest.raises(ValidationError, match="size"):
        upload_file(remote.http, get, iter([b"abc"]))


@pytest.mark.parametrize(
    ("source", "size", "message"),
    [
        (12345, None, "cannot upload"),
        ("no-such-file", None, "No such file"),  # a str is a path
        (b"abc", 4, "does not match"),
        (b"abc", -1, "size"),
    ],
)
def test_bad_sources_are_rejected(source, size, message: str) -> None:
    with pytest.raises((ValueError, OSError), match=message):
        upload_file(None, lambda n: "http://127.0.0.1:9/u", source, size)


def test_keys_are_fresh_for_every_upload(remote: Remote) -> None:
    data = content(1000)
    get = remote.upload_url_getter()
    a = upload_file(remote.http, get, data)
    b = upload_file(remote.http, get, data)
    assert a.key[:6] != b.key[:6]


def test_raw_completion_token_is_encoded(remote: Remote, tmp_path) -> None:
    data = content(2 * MiB + 1)
    result = upload_file(remote.http, remote.upload_url_getter(raw_token=True), data, config=SMALL)
    assert len(mc.base64_url_decode(result.token)) >= 16
    check_round_trip(remote, result, data, tmp_path)


def test_dropped_upload_pieces_are_retried(remote: Remote, tmp_path) -> None:
    data = content(8 * MiB)
    remote.emu.set_faults(
        transfer_faults="upload", drop_after_bytes=200_000, drop_rate=0.5, drop_limit=8, seed=4
    )
    result = upload_file(remote.http, remote.upload_url_getter(), data, config=SMALL)
    assert remote.emu.fault_counts.get("drop") == 8
    check_round_trip(remote, result, data, tmp_path)


def test_storm_of_5xx_on_upload_is_retried(remote: Remote, tmp_path) -> None:
    data = content(6 * MiB)
    remote.emu.set_faults(
        transfer_faults="upload", transfer_error_rate=0.5, transfer_error_limit=12, seed=9
    )
    result = upload_file(remote.http, remote.upload_url_getter(), data, config=SMALL)
    assert remote.emu.fault_counts.get("transfer_error", 0) >= 3
    check_round_trip(remote, result, data, tmp_path)


def test_upload_url_expiring_mid_transfer_starts_over(remote: Remote, tmp_path) -> None:
    data = content(10 * MiB)
    get = remote.upload_url_getter()
    expired = []

    def progress(done: int, total: int) -> None:
        if not expired and done >= total // 4:
            remote.emu.expire_urls()
            expired.append(done)

    cfg = fast_config(connections=2, piece_size=MiB, speed_limit=25e6)
    result = upload_file(remote.http, get, data, config=cfg, progress=progress)
    assert expired and get.calls == 2
    check_round_trip(remote, result, data, tmp_path)


def test_streamed_source_cannot_start_over(remote: Remote) -> None:
    data = content(4 * MiB)
    remote.emu.expire_urls()
    get = remote.upload_url_getter()
    url = get(len(data))
    remote.emu.expire_urls()
    pieces = iter([data])
    with pytest.raises(TransferError, match="streamed"):
        upload_file(remote.http, lambda n: url, pieces, len(data), config=SMALL)


def test_dead_upload_urls_are_retried_a_bounded_number_of_times(remote: Remote) -> None:
    data = content(300_000)
    remote.emu.expire_urls()

    def dead_url(size: int) -> str:
        url = remote.emu.upload_url(remote.email, size)
        remote.emu.expire_urls()
        return url

    from megafast.errors import RetryExhaustedError

    with pytest.raises(RetryExhaustedError, match="upload kept failing"):
        upload_file(remote.http, dead_url, data, config=fast_config(max_retries=2))


def test_upload_over_quota_raises(remote: Remote) -> None:
    # HTTP 509 from an upload server is a quota error too
    remote.emu.set_faults(
        transfer_faults="upload", transfer_error_rate=1.0, transfer_error_statuses=(509,)
    )
    with pytest.raises(OverQuotaError):
        upload_file(remote.http, remote.upload_url_getter(), content(1000))
