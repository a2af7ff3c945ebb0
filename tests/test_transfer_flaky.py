"""Flaky links (issue 15): transfers make progress whenever bytes flow.

The emulator's ``drop_every`` fault kills every connection moving a transfer body on a
jittered timer (what ``ss -K`` does from outside); a small hostile range server checks what
the engine keeps from answers of the wrong length, offset or content. The full-size runs
(256 MiB) live in ``benchmarks/bench_flaky.py``.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from megafast import crypto as mc
from megafast.errors import IntegrityError, TransferError
from megafast.transfer import MiB, download_file, download_to_fileobj, open_reader, upload_file
from support.transfer import Remote, content, fast_config

RATE = 4e6  # bytes/s per connection, as in the issue


def test_download_with_a_drop_every_quarter_second_fetches_each_byte_about_once(
    remote: Remote, tmp_path: Path
) -> None:
    size = 24 * MiB
    data = content(size)
    handle, key = remote.add_file(data)
    before = remote.emu.stats().get("download_bytes", 0)
    remote.emu.set_faults(bandwidth=RATE, drop_every=0.25)
    dest = tmp_path / "out.bin"
    download_file(
        remote.http, remote.url_getter(handle), size, key, dest, config=fast_config(connections=4)
    )
    fetched = remote.emu.stats()["download_bytes"] - before
    assert dest.read_bytes() == data
    assert remote.emu.fault_counts.get("timer_drop", 0) >= 4  # the fault really fired
    assert fetched <= 1.05 * size


def test_upload_with_drops_splits_pieces_and_completes(remote: Remote) -> None:
    size = 12 * MiB
    data = content(size)
    posts: list[tuple[int, bool]] = []  # (size, got through), in order (one connection)
    # drops 0.64-0.96 s apart: the first 1 MiB POST (0.26 s) gets through with time to spare
    # even on a busy machine, the window grows, and a larger POST is cut
    remote.emu.set_faults(bandwidth=RATE, drop_every=0.8, drop_every_jitter=0.2)
    from megafast.transfer import _upload

    real = _upload._Upload._post_once

    def spy(self: _upload._Upload, begin: int, body: object) -> None:
        try:
            real(self, begin, body)
        except BaseException:
            posts.append((len(body), False))  # type: ignore[arg-type]
            raise
        posts.append((len(body), True))  # type: ignore[arg-type]

    cfg = fast_config(connections=1, piece_size=4 * MiB)  # one piece needs ~0.8 s unbroken
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_upload._Upload, "_post_once", spy)
        result = upload_file(remote.http, remote.upload_url_getter(), data, config=cfg)
    handle = remote.create_node(result.token, result.key)
    assert remote.stored_plaintext(handle, result.key) == data
    assert remote.emu.fault_counts.get("timer_drop", 0) >= 1
    sizes = [n for n, _ in posts]
    assert max(sizes) > 3 * MiB // 2  # the window grew while POSTs got through
    failed = [i for i, (n, ok) in enumerate(posts[:-1]) if not ok and n > MiB]
    assert failed  # the fault cut POSTs of more than one chunk ...
    assert all(posts[i + 1][0] < posts[i][0] for i in failed)  # ... and the next was smaller


def test_reader_reads_through_drops(remote: Remote) -> None:
    size = 6 * MiB
    data = content(size)
    handle, key = remote.add_file(data)
    remote.emu.set_faults(bandwidth=RATE, drop_every=0.2)
    with open_reader(
        remote.http, remote.url_getter(handle), size, key, config=fast_config()
    ) as reader:
        assert reader.read() == data
        assert reader.verified
    assert remote.emu.fault_counts.get("timer_drop", 0) >= 1


def test_timer_drop_settings_are_validated(remote: Remote) -> None:
    for bad in ({"drop_every": 0}, {"drop_every": -1.0}, {"drop_every_jitter": 1.5}):
        with pytest.raises(ValueError):
            remote.emu.set_faults(**bad)


# -- a hostile range server --------------------------------------------------------------


def _encrypted(size: int) -> tuple[bytes, bytes, tuple[int, ...]]:
    """Plaintext, its ciphertext and the packed node key."""
    data = os.urandom(size)
    cipher = mc.FileCipher(os.urandom(16), os.urandom(8), size=size)
    return data, cipher.encrypt(data), tuple(cipher.packed_key())


class _Hostile:
    """Serves ``GET /f/<a>-<b>`` from ``blob``; ``script`` says how to misbehave on each
    request in turn (then it answers honestly): a callable ``(handler, a, b)``."""

    def __init__(self, blob: bytes, script: list[Callable[..., None]]) -> None:
        self.blob = blob
        self.script = list(script)
        self.requests: list[tuple[int, int]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if not self.path.startswith("/f/"):
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                a, _, b = self.path[3:].partition("-")
                start, end = int(a), int(b) + 1
                outer.requests.append((start, end))
                step = outer.script.pop(0) if outer.script else _honest
                step(self, outer.blob, start, end)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/f"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Hostile:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _send(h: http.server.BaseHTTPRequestHandler, body: bytes, length: int, **headers: str) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(length))
    for name, value in headers.items():
        h.send_header(name.replace("_", "-"), value)
    h.end_headers()
    h.wfile.write(body)
    h.wfile.flush()


def _honest(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
    _send(h, blob[a:b], b - a)


def _drop_after(n: int, flip: int | None = None) -> Callable[..., None]:
    """Promise the whole range, send ``n`` bytes (one flipped at ``flip``), then hang up."""

    def step(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
        body = bytearray(blob[a : a + n])
        if flip is not None:
            body[flip] ^= 0x01
        _send(h, bytes(body), b - a)
        h.close_connection = True
        h.connection.shutdown(2)

    return step


def _short(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
    _send(h, blob[a : b - 100], b - a - 100)  # an honest length, but less than asked


def _long(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
    _send(h, blob[a : b + 100] + b"\0" * 100, b - a + 100)


def _shifted(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
    # the right length, but from another offset (what a 200 instead of a 206 may carry)
    _send(h, blob[0 : b - a], b - a, Content_Range=f"bytes 0-{b - a - 1}/{len(blob)}")


@pytest.fixture
def plain_blob_key() -> Iterator[tuple[bytes, bytes, tuple[int, ...]]]:
    yield _encrypted(3 * MiB + 12345)


def _get(url: str) -> Callable[[bool], str]:
    return lambda refresh: url


def test_wrong_length_and_offset_answers_keep_no_wrong_bytes(
    plain_blob_key: tuple[bytes, bytes, tuple[int, ...]], tmp_path: Path
) -> None:
    data, blob, key = plain_blob_key
    script = [_short, _long, _shifted, _drop_after(70_001), _drop_after(5), _short]
    with _Hostile(blob, script) as srv:
        dest = tmp_path / "out.bin"
        cfg = fast_config(connections=1, piece_size=MiB, max_retries=8)
        download_file(None, _get(srv.url), len(data), key, dest, config=cfg)
        assert dest.read_bytes() == data
        # after the drop after 70001 bytes the next request starts exactly there
        first, end = srv.requests[3]
        assert srv.requests[4] == (first + 70_001, end)


def _stall_after(n: int, release: threading.Event) -> Callable[..., None]:
    """Promise the whole range, send ``n`` bytes, then hold the connection open (no more
    bytes) until ``release`` is set, then hang up."""

    def step(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
        _send(h, blob[a : a + n], b - a)
        release.wait(30)
        h.close_connection = True
        h.connection.shutdown(2)

    return step


def test_a_reader_hands_over_bytes_while_the_connection_is_live(
    plain_blob_key: tuple[bytes, bytes, tuple[int, ...]],
) -> None:
    data, blob, key = plain_blob_key
    release = threading.Event()
    got: list[bytes] = []
    with _Hostile(blob, [_stall_after(70_001, release)]) as srv:
        cfg = fast_config(piece_size=MiB)  # a 1 MiB window: it does not complete the file
        with open_reader(None, _get(srv.url), len(data), key, config=cfg) as reader:
            worker = threading.Thread(target=lambda: got.append(reader.read(65_536)))
            worker.start()
            worker.join(timeout=20)
            returned_while_stalled = not worker.is_alive()  # the server still holds on
            release.set()
            worker.join(timeout=20)
            assert returned_while_stalled and got == [data[:65_536]]
            assert reader.read() == data[65_536:] and reader.verified


def _refuse(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
    _send(h, b"", 0, Content_Type="text/plain")  # a 200 with no body at all
    h.close_connection = True


def _bad_request(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
    h.send_response(400)
    h.send_header("Content-Length", "0")
    h.end_headers()


def test_a_stopped_download_resumes_inside_a_chunk(
    plain_blob_key: tuple[bytes, bytes, tuple[int, ...]], tmp_path: Path
) -> None:
    data, blob, key = plain_blob_key
    dest = tmp_path / "out.bin"
    cfg = fast_config(connections=1, piece_size=MiB)
    script = [_drop_after(300_007), _refuse, _bad_request]
    with _Hostile(blob, script) as srv, pytest.raises(TransferError):
        download_file(None, _get(srv.url), len(data), key, dest, config=cfg, resume_id="r")
    state = json.loads((tmp_path / "out.bin.megafast-part.json").read_text())
    assert state["done"] == [[0, 131072]] and state["partial"] == [[131072, 300_000]]
    with _Hostile(blob, []) as srv:
        download_file(None, _get(srv.url), len(data), key, dest, config=cfg, resume_id="r")
        assert srv.requests[0][0] == 300_000  # only the rest of the chunk is asked for
    assert dest.read_bytes() == data


def test_a_byte_corrupted_before_a_drop_fails_the_mac_never_a_wrong_file(
    plain_blob_key: tuple[bytes, bytes, tuple[int, ...]], tmp_path: Path
) -> None:
    data, blob, key = plain_blob_key
    with _Hostile(blob, [_drop_after(200_000, flip=123_457)]) as srv:
        dest = tmp_path / "out.bin"
        with pytest.raises(IntegrityError):
            download_file(None, _get(srv.url), len(data), key, dest, config=fast_config())
        assert not dest.exists()
    with _Hostile(blob, [_drop_after(200_000, flip=7)]) as srv:
        out = io.BytesIO()
        with pytest.raises(IntegrityError):
            download_to_fileobj(None, _get(srv.url), len(data), key, out, config=fast_config())


def _whole_file(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
    _send(h, blob, len(blob))  # a 200 with the whole file instead of the range


def _flipped(at: int) -> Callable[..., None]:
    """An honest answer with the byte at ``at`` (in the body) flipped."""

    def step(h: http.server.BaseHTTPRequestHandler, blob: bytes, a: int, b: int) -> None:
        body = bytearray(blob[a:b])
        body[at] ^= 0x40
        _send(h, bytes(body), b - a)

    return step


def test_a_whole_file_in_place_of_a_range_keeps_no_wrong_bytes(
    plain_blob_key: tuple[bytes, bytes, tuple[int, ...]], tmp_path: Path
) -> None:
    data, blob, key = plain_blob_key
    with _Hostile(blob, [_drop_after(100_003), _whole_file, _whole_file]) as srv:
        dest = tmp_path / "out.bin"
        cfg = fast_config(connections=1, piece_size=MiB)
        download_file(None, _get(srv.url), len(data), key, dest, config=cfg)
        assert dest.read_bytes() == data
        assert srv.requests[1][0] == srv.requests[3][0] == 100_003  # asked again from there


def test_a_byte_corrupted_after_a_cut_fails_the_mac_and_leaves_no_file(
    plain_blob_key: tuple[bytes, bytes, tuple[int, ...]], tmp_path: Path
) -> None:
    data, blob, key = plain_blob_key
    dest = tmp_path / "out.bin"
    cfg = fast_config(connections=1, piece_size=MiB)
    with _Hostile(blob, [_drop_after(300_007), _flipped(12_345)]) as srv:
        with pytest.raises(IntegrityError):
            download_file(None, _get(srv.url), len(data), key, dest, config=cfg, resume_id="c")
        assert srv.requests[1][0] == 300_007  # the corrupt answer came after the cut
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no file, no part, no sidecar


def test_a_redirect_loop_on_a_transfer_url_is_a_megafast_error(
    plain_blob_key: tuple[bytes, bytes, tuple[int, ...]], tmp_path: Path
) -> None:
    data, blob, key = plain_blob_key
    with _Hostile(blob, []) as srv:
        loop = srv.url.replace("/f", "/loop")
        with pytest.raises(TransferError):
            download_file(None, _get(loop), len(data), key, tmp_path / "x", config=fast_config())
        with pytest.raises(TransferError):
            upload_file(None, lambda size: loop, data, config=fast_config(resume=False))


_CHILD = r"""
import sys, requests
from megafast.transfer import TransferConfig, download_file
url, path, size, key = sys.argv[1:5]
key = tuple(int(x) for x in key.split(","))
download_file(requests.Session(), lambda r: url, int(size), key, path,
              config=TransferConfig(connections=4), resume_id="flaky-kill")
"""


def test_download_killed_a_third_in_reruns_with_at_most_three_quarters(
    remote: Remote, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys
    import time

    import megafast

    size = 24 * MiB
    data = content(size)
    handle, key = remote.add_file(data)
    remote.emu.set_faults(bandwidth=RATE)
    dest = tmp_path / "out.bin"
    env = dict(os.environ, PYTHONPATH=str(Path(megafast.__file__).parents[1]))
    args = [remote.emu.download_url(handle), str(dest), str(size), ",".join(map(str, key))]
    start = remote.emu.stats().get("download_bytes", 0)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, *args], env=env)
    try:
        deadline = time.monotonic() + 60
        while remote.emu.stats().get("download_bytes", 0) - start < size // 3:
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    while remote.emu.stats()["active_transfers"]:  # requests of the killed process end
        time.sleep(0.01)
    before = remote.emu.stats()["download_bytes"]
    remote.emu.clear_faults()
    download_file(remote.http, remote.url_getter(handle), size, key, dest, resume_id="flaky-kill")
    assert dest.read_bytes() == data
    assert remote.emu.stats()["download_bytes"] - before <= 0.75 * size


def test_a_reader_whose_window_failed_reads_it_again(
    plain_blob_key: tuple[bytes, bytes, tuple[int, ...]],
) -> None:
    data, blob, key = plain_blob_key
    script = [_drop_after(100_003), _bad_request]
    with _Hostile(blob, script) as srv:
        cfg = fast_config(piece_size=MiB, max_retries=2)
        with open_reader(None, _get(srv.url), len(data), key, config=cfg) as reader:
            assert reader.read(50_000) == data[:50_000]  # arrived before the cut
            with pytest.raises(TransferError):
                reader.read(100_000)  # the rest of it is answered with a 400
            assert reader.tell() == 50_000  # where it was before the failed read
            assert reader.read() == data[50_000:] and reader.verified
