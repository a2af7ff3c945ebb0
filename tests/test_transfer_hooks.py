"""The engine's hooks for the TransferManager, against the emulator: a caller-owned session
used as it is (one pool for many files), a ``cancel`` event, and the one-range fast path."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from megafast.transfer import (
    MiB,
    TransferCancelled,
    _http,
    _session,
    download_file,
    part_paths,
    upload_file,
)
from support.transfer import Remote, content, fast_config

SMALL = fast_config(connections=4, piece_size=MiB)


def _pooled_connections(session: requests.Session, url: str) -> int:
    adapter = session.get_adapter(url)
    return sum(pool.num_connections for pool in adapter.poolmanager.pools._container.values())


def test_a_shared_session_is_used_as_it_is_and_left_open(remote: Remote, tmp_path: Path) -> None:
    session = requests.Session()
    datas = [content(3000 + i) for i in range(5)]
    files = [remote.add_file(data, f"f{i}.bin") for i, data in enumerate(datas)]
    for i, (h, key) in enumerate(files):
        out = download_file(
            session,
            remote.url_getter(h),
            3000 + i,
            key,
            tmp_path / f"f{i}.bin",
            config=SMALL,
            shared_session=True,
        )
        assert out.read_bytes() == datas[i]
    url = remote.url_getter(files[0][0])(False)
    # every file went over the caller's own pool, which kept one connection for all of them
    assert _pooled_connections(session, url) == 1
    token = upload_file(session, remote.upload_url_getter(), b"x" * 100, shared_session=True)
    assert token.size == 100 and _pooled_connections(session, url) >= 1
    session.close()


def test_without_shared_session_the_callers_pool_is_untouched(
    remote: Remote, tmp_path: Path
) -> None:
    session = requests.Session()
    h, key = remote.add_file(content(2000))
    download_file(session, remote.url_getter(h), 2000, key, tmp_path / "a.bin", config=SMALL)
    url = remote.url_getter(h)(False)
    assert _pooled_connections(session, url) == 0  # a private clone did the work


def test_the_cancel_event_stops_a_big_download_and_keeps_its_state(
    remote: Remote, tmp_path: Path
) -> None:
    size = 6 * MiB
    data = content(size)
    h, key = remote.add_file(data)
    remote.emu.set_faults(bandwidth=MiB)  # 1 MiB/s per connection: time to cancel
    cancel = threading.Event()
    dest = tmp_path / "big.bin"
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(TransferCancelled):
        download_file(
            remote.http, remote.url_getter(h), size, key, dest, config=SMALL, cancel=cancel
        )
    assert time.monotonic() - started < 1.3  # within a second of the cancel
    part, sidecar = part_paths(dest)
    assert part.exists() and sidecar.exists() and not dest.exists()
    remote.emu.clear_faults()
    out = download_file(remote.http, remote.url_getter(h), size, key, dest, config=SMALL)
    assert out.read_bytes() == data


def test_a_cancelled_upload_raises_transfer_cancelled(remote: Remote) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TransferCancelled):
        upload_file(
            remote.http, remote.upload_url_getter(), content(3 * MiB), config=SMALL, cancel=cancel
        )


def test_a_small_file_takes_the_fast_path(
    remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a one-range transfer started worker threads")

    monkeypatch.setattr(_http.WorkerPool, "run", no_pool)
    data = content(MiB)  # exactly one range
    h, key = remote.add_file(data)
    dest = tmp_path / "one.bin"
    assert download_file(remote.http, remote.url_getter(h), MiB, key, dest).read_bytes() == data
    done = upload_file(remote.http, remote.upload_url_getter(), data, resume_id="small")
    assert remote.stored_plaintext(remote.create_node(done.token, done.key), done.key) == data
    state = tmp_path / "state"
    assert not state.exists() or not list(state.iterdir())  # no sidecar, no lock file


def test_an_interrupted_small_download_leaves_nothing_and_starts_over(
    remote: Remote, tmp_path: Path
) -> None:
    data = content(50_000)
    h, key = remote.add_file(data)
    dest = tmp_path / "small.bin"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TransferCancelled):
        download_file(remote.http, remote.url_getter(h), len(data), key, dest, cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "state") == []
    out = download_file(remote.http, remote.url_getter(h), len(data), key, dest)
    assert out.read_bytes() == data and oct(out.stat().st_mode & 0o777) != "0o0"


def test_a_cloned_session_reads_the_environment_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    quiet = _session.clone_session(requests.Session(), 4)
    assert quiet.trust_env is False and quiet.verify is True
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/some/bundle.pem")
    bundled = _session.clone_session(requests.Session(), 4)
    assert bundled.trust_env is False and bundled.verify == "/some/bundle.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")  # per URL: keep looking
    assert _session.clone_session(requests.Session(), 4).trust_env is True
    monkeypatch.delenv("HTTPS_PROXY")
    (tmp_path / "netrc").write_text("machine example.com login a password b\n")
    assert _session.clone_session(requests.Session(), 4).trust_env is True
    (tmp_path / "netrc").unlink()
    plain = requests.Session()
    plain.trust_env = False  # the caller's choice is kept
    assert _session.clone_session(plain, 4).verify is True
    unverified = requests.Session()
    unverified.verify = False  # with a bundle variable: left to requests, as before
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/some/bundle.pem")
    kept = _session.clone_session(unverified, 4)
    assert kept.verify is False and kept.trust_env is True
