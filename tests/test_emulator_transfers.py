"""The emulator's transfer servers over real HTTP: ranged GETs, piecewise uploads, URL expiry."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megafast import crypto as mc
from megafast.testing import MegaEmulator
from support.raw_client import RawClient

EMAIL = "t@example.com"


@pytest.fixture
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        e.create_account(EMAIL, "pw")
        yield e


def _blob_url(emu: MegaEmulator, size: int = 300_000) -> tuple[str, bytes, str]:
    data = os.urandom(size)
    h, _ = emu.add_file(EMAIL, data, "f.bin")
    return emu.download_url(h), emu.stored_blob(h), h


# --- downloads ---------------------------------------------------------------------------


def test_get_whole_file_and_ranges(emu: MegaEmulator) -> None:
    url, blob, _ = _blob_url(emu)
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == blob
    assert r.headers["Content-Length"] == str(len(blob))
    r = requests.get(f"{url}/1000-1999", timeout=10)
    assert r.status_code == 200 and r.content == blob[1000:2000]  # inclusive end
    assert requests.get(f"{url}/0-0", timeout=10).content == blob[:1]
    last = len(blob) - 1
    assert requests.get(f"{url}/{last - 9}-{last}", timeout=10).content == blob[-10:]
    # a Range header works too, with 206 and Content-Range
    r = requests.get(url, headers={"Range": "bytes=5-14"}, timeout=10)
    assert r.status_code == 206 and r.content == blob[5:15]
    assert r.headers["Content-Range"] == f"bytes 5-14/{len(blob)}"
    r = requests.get(url, headers={"Range": "bytes=-7"}, timeout=10)
    assert r.status_code == 206 and r.content == blob[-7:]
    deadline = time.monotonic() + 5  # the server records a request just after answering it
    while emu.stats().get("download_requests", 0) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    log = [e for e in emu.request_log if e["kind"] == "download"]
    expected = [("", len(blob)), ("1000-1999", 1000), ("0-0", 1), (f"{last - 9}-{last}", 10)]
    expected += [("", 10), ("", 7)]
    assert sorted((e["where"], e["bytes"]) for e in log) == sorted(expected)
    assert emu.stats()["download_bytes"] == len(blob) + 1028


def test_bad_ranges_and_unknown_urls(emu: MegaEmulator) -> None:
    url, blob, _ = _blob_url(emu, 1000)
    assert requests.get(f"{url}/2000-2100", timeout=10).status_code == 416
    assert requests.get(f"{url}/9-3", timeout=10).status_code == 416
    assert requests.get(f"{url}/x-y", timeout=10).status_code == 416
    assert requests.get(url, headers={"Range": "lines=1-2"}, timeout=10).status_code == 416
    base = url.rsplit("/", 1)[0]
    assert requests.get(f"{base}/nosuchtoken", timeout=10).status_code == 404
    assert requests.get(url, timeout=10).content == blob  # still serving


def test_download_urls_expire(emu: MegaEmulator) -> None:
    url, blob, h = _blob_url(emu, 100)
    emu.expire_urls()
    assert requests.get(url, timeout=10).status_code == 403
    assert requests.get(emu.download_url(h), timeout=10).content == blob
    emu.set_faults(url_ttl=0.2)
    url = emu.download_url(h)
    time.sleep(0.3)
    assert requests.get(url, timeout=10).status_code == 403


def test_expired_upload_urls_are_refused_and_swept_when_the_table_doubled(
    emu: MegaEmulator,
) -> None:
    svc = emu.service
    svc._sweep_at = 4  # as if 4 uploads had been left after the last sweep
    emu.set_faults(url_ttl=0.2)
    old = [emu.upload_url(EMAIL, 10) for _ in range(4)]
    time.sleep(0.3)
    # expired, not swept yet (the table has not grown past 4): refused all the same
    assert requests.post(old[0], data=b"x" * 10, timeout=10).text == "-8"
    emu.set_faults(url_ttl=60.0)
    fresh = emu.upload_url(EMAIL, 10)  # the 5th: the expired 4 go, their files too
    assert len(svc.uploads) == 1 and svc._sweep_at == 1000
    assert not any((svc.store.upload_dir / u.rpartition("/")[2]).exists() for u in old)
    assert requests.post(fresh, data=b"y" * 10, timeout=10).status_code == 200


def test_g_returns_url_size_and_attributes(emu: MegaEmulator) -> None:
    data = os.urandom(70_000)
    h, packed = emu.add_file(EMAIL, data, "g.bin")
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    res = c.one({"a": "g", "g": 1, "n": h, "ssl": 2})
    assert res["s"] == len(data) and res["g"].startswith(emu.api_url + "/dl/")
    k4 = [packed[i] ^ packed[i + 4] for i in range(4)]
    attrs = mc.decrypt_attr(mc.base64_url_decode(res["at"]), k4)
    assert attrs["n"] == "g.bin"
    # the fingerprint a client would write, as megafast.crypto computes it
    node_ts = next(n["ts"] for n in c.files()["f"] if n["h"] == h)
    assert attrs["c"] == mc.fingerprint(io.BytesIO(data), node_ts)
    assert "g" not in c.one({"a": "g", "n": h})
    # what add_file stored is what a client would have uploaded: it decrypts and MACs
    cipher = mc.FileCipher(packed, size=len(data))
    assert cipher.decrypt(requests.get(res["g"], timeout=10).content) == data
    cipher.verify()


def test_add_file_streams_from_a_path_and_a_file_object(emu: MegaEmulator, tmp_path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    p = tmp_path / "src.bin"
    p.write_bytes(data)
    for source in (p, str(p)):
        h, packed = emu.add_file(EMAIL, source, "from path")
        cipher = mc.FileCipher(packed, size=len(data))
        assert cipher.decrypt(emu.stored_blob(h)) == data
        cipher.verify()
    with open(p, "rb") as fh:
        fh.seek(5)
        h, packed = emu.add_file(EMAIL, fh, "from file object")
    assert mc.FileCipher(packed, size=len(data) - 5).decrypt(emu.stored_blob(h)) == data[5:]
    assert emu.decrypt_attributes(h)["n"] == "from file object"


def test_many_concurrent_connections(emu: MegaEmulator) -> None:
    url, blob, _ = _blob_url(emu, 2 * 1024 * 1024)
    parts = urlsplit(url)
    n = 64
    barrier = threading.Barrier(n)

    def fetch(i: int) -> bool:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.connect()
        barrier.wait(timeout=60)  # all 64 connections are open at once
        start = i * 30_000
        conn.request("GET", f"{parts.path}/{start}-{start + 29_999}")
        body = conn.getresponse().read()
        conn.close()
        return body == blob[start : start + 30_000]

    with ThreadPoolExecutor(n) as pool:
        assert all(pool.map(fetch, range(n)))


def test_keep_alive_serves_many_requests_on_one_connection(emu: MegaEmulator) -> None:
    url, blob, _ = _blob_url(emu, 50_000)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    for i in range(20):
        conn.request("GET", f"{parts.path}/{i * 100}-{i * 100 + 99}")
        assert conn.getresponse().read() == blob[i * 100 : i * 100 + 100]
    conn.request("POST", "/cs?id=1", body=b'[{"a":"us0","user":"t@example.com"}]')
    assert conn.getresponse().read().startswith(b'[{"v":2')
    conn.close()


# --- uploads -----------------------------------------------------------------------------


def test_upload_pieces_in_any_order_and_in_parallel(emu: MegaEmulator) -> None:
    size = 5 * 1024 * 1024 + 123
    data = os.urandom(size)
    url = emu.upload_url(EMAIL, size)
    bounds = [(s, min(size, s + 512 * 1024)) for s in range(0, size, 512 * 1024)]
    last = bounds.pop(3)  # this one completes the file
    order = bounds[::-1]

    def send(b: tuple[int, int]) -> requests.Response:
        return requests.post(f"{url}/{b[0]}", data=data[b[0] : b[1]], timeout=30)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, order))
    assert all(r.status_code == 200 and r.content == b"" for r in answers)
    final = send(last)
    token = final.text
    assert len(mc.base64_url_decode(token)) == 36 and token == mc.base64_url_encode(
        mc.base64_url_decode(token)
    )
    # a retried piece after completion gets the token again
    assert send(bounds[0]).text == token
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    res = c.one({"a": "p", "t": c.root(), "n": [{"h": token, "t": 0, "a": "AAAA", "k": "A" * 43}]})
    h = res["f"][0]["h"]
    assert res["f"][0]["s"] == size
    assert emu.stored_blob(h) == data  # stored exactly as sent: the server never needs keys


def test_upload_from_a_streamed_chunked_body(emu: MegaEmulator) -> None:
    data = os.urandom(700_001)
    url = emu.upload_url(EMAIL, len(data))

    def gen() -> Iterator[bytes]:
        for i in range(0, len(data), 65_536):
            yield data[i : i + 65_536]

    token = requests.post(f"{url}/0", data=gen(), timeout=30).text  # Transfer-Encoding: chunked
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    res = c.one({"a": "p", "t": c.root(), "n": [{"h": token, "t": 0, "a": "AAAA", "k": "A" * 43}]})
    assert emu.stored_blob(res["f"][0]["h"]) == data


def test_upload_with_v2_gives_a_raw_token_and_empty_files_work(emu: MegaEmulator) -> None:
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    url = c.one({"a": "u", "s": 10, "v": 2})["p"]
    raw = requests.post(f"{url}/0", data=b"0123456789", timeout=10).content
    assert len(raw) == 36
    res = c.one(
        {
            "a": "p",
            "t": c.root(),
            "n": [{"h": mc.base64_url_encode(raw), "t": 0, "a": "AAAA", "k": "A" * 43}],
        }
    )
    assert emu.stored_blob(res["f"][0]["h"]) == b"0123456789"
    empty_url = c.one({"a": "u", "s": 0})["p"]
    token = requests.post(f"{empty_url}/0", data=b"", timeout=10).text
    res = c.one({"a": "p", "t": c.root(), "n": [{"h": token, "t": 0, "a": "AAAA", "k": "A" * 43}]})
    assert res["f"][0]["s"] == 0 and emu.stored_blob(res["f"][0]["h"]) == b""
    assert requests.get(emu.download_url(res["f"][0]["h"]), timeout=10).content == b""


def test_upload_size_checks_and_bad_urls(emu: MegaEmulator) -> None:
    url = emu.upload_url(EMAIL, 100)
    assert requests.post(f"{url}/90", data=b"x" * 11, timeout=10).text == "-2"
    assert requests.post(f"{url}/-5", data=b"x", timeout=10).text == "-2"
    assert requests.post(f"{url}/abc", data=b"x", timeout=10).text == "-2"
    base = url.rsplit("/", 1)[0]
    assert requests.post(f"{base}/unknown/0", data=b"x", timeout=10).text == "-9"
    assert requests.post(f"{url}/0", data=b"x" * 50, timeout=10).text == ""
    # an empty chunked piece far beyond the end cannot wedge the upload
    assert requests.post(f"{url}/999999", data=iter([b""]), timeout=10).text == "-2"
    assert requests.post(f"{url}/100", data=b"", timeout=10).text == ""
    emu.expire_urls()
    assert requests.post(f"{url}/50", data=b"x" * 50, timeout=10).text == "-8"


def test_upload_of_a_client_encrypted_file_downloads_and_verifies(emu: MegaEmulator) -> None:
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    data = os.urandom(1_500_000)
    node, packed, _ = c.upload(data, "enc.bin", piece=384 * 1024)
    url = c.one({"a": "g", "g": 1, "n": node["h"]})["g"]
    cipher = mc.FileCipher(packed, size=len(data))
    assert cipher.decrypt(requests.get(url, timeout=10).content) == data
    cipher.verify()
    assert c.name(node) == "enc.bin"


# --- the command line --------------------------------------------------------------------


def _serve(tmp_path, *extra: str):
    import subprocess
    import sys

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [
            str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src"),
            env.get("PYTHONPATH", ""),
        ]
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "megafast.testing", "--data-dir", str(tmp_path / "state"), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("http://127.0.0.1:"), (
        line,
        proc.stderr.read() if proc.poll() is not None else "",
    )
    return proc, line


def test_serve_main_keeps_state_across_restarts(tmp_path) -> None:
    import signal

    proc, api = _serve(tmp_path, "--user", "cli@example.com:p:w:v1", "--user", "v2@example.com:x")
    try:
        c = RawClient(api)
        assert c.one({"a": "us0", "user": "cli@example.com"}) == {"v": 1}
        assert isinstance(c.login("cli@example.com", "p:w"), dict)  # ':' inside the password
        node, packed, _ = c.upload(b"survives" * 1000, "keep.bin")
        assert RawClient(api).one({"a": "us0", "user": "v2@example.com"})["v"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    proc, api = _serve(tmp_path, "--user", "cli@example.com:p:w:v1")
    try:
        c = RawClient(api)
        c.login("cli@example.com", "p:w")
        listing = {n["h"]: n for n in c.files()["f"]}
        assert c.name(listing[node["h"]]) == "keep.bin"
        url = c.one({"a": "g", "g": 1, "n": node["h"]})["g"]
        assert (
            mc.FileCipher(packed, size=8000).decrypt(requests.get(url, timeout=10).content)
            == b"survives" * 1000
        )
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_transfer_urls_survive_a_restart_with_the_same_data_dir(tmp_path) -> None:
    data_dir = tmp_path / "state"
    piece = 1 << 20
    payload = os.urandom(2 * piece)
    with MegaEmulator(data_dir=data_dir) as first:
        port = first.port
        first.create_account(EMAIL, "pw")
        expired_url, _, _ = _blob_url(first, 100)
        expired_up = first.upload_url(EMAIL, 10)
        first.expire_urls()
        url, blob, _ = _blob_url(first)
        c = RawClient(first.api_url)
        c.login(EMAIL, "pw")
        up = c.one({"a": "u", "s": len(payload)})["p"]
        assert requests.post(f"{up}/0", data=payload[:piece], timeout=10).content == b""
        first.set_faults(url_ttl=0.5)
        short_url, _, _ = _blob_url(first, 100)
    with MegaEmulator(port=port, data_dir=data_dir) as again:
        assert requests.get(url, timeout=10).content == blob
        assert requests.get(f"{url}/5-9", timeout=10).content == blob[5:10]
        # the upload goes on where it stopped: only the second half is sent now
        token = requests.post(f"{up}/{piece}", data=payload[piece:], timeout=10).text
        assert token and token not in ("-8", "-9", "-2")
        c = RawClient(again.api_url)
        c.login(EMAIL, "pw")
        made = c.one(
            {"a": "p", "t": c.root(), "n": [{"h": token, "t": 0, "a": "AAAA", "k": "A" * 43}]}
        )
        assert again.stored_blob(made["f"][0]["h"]) == payload
        # expired before the restart: still expired (not forgotten)
        assert requests.get(expired_url, timeout=10).status_code == 403
        assert requests.post(f"{expired_up}/0", data=b"0123456789", timeout=10).content == b"-8"
        time.sleep(0.6)  # the lifetime counts from when the URL was given, across restarts
        assert requests.get(short_url, timeout=10).status_code == 403


def test_serve_main_restart_keeps_urls_in_progress(tmp_path) -> None:
    import signal

    port = str(_free_port())
    payload = os.urandom(300_000)
    proc, api = _serve(tmp_path, "--port", port, "--user", "u@example.com:pw")
    try:
        c = RawClient(api)
        c.login("u@example.com", "pw")
        node, packed, _ = c.upload(b"kept" * 5000, "kept.bin")
        url = c.one({"a": "g", "g": 1, "n": node["h"]})["g"]
        up = c.one({"a": "u", "s": len(payload)})["p"]
        assert requests.post(f"{up}/0", data=payload[:131072], timeout=10).content == b""
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    proc, api2 = _serve(tmp_path, "--port", port)
    try:
        assert api2 == api
        got = requests.get(url, timeout=10)
        assert got.status_code == 200
        assert mc.FileCipher(packed, size=20000).decrypt(got.content) == b"kept" * 5000
        token = requests.post(f"{up}/131072", data=payload[131072:], timeout=10).text
        c = RawClient(api2)
        c.login("u@example.com", "pw")
        made = c.one(
            {"a": "p", "t": c.root(), "n": [{"h": token, "t": 0, "a": "AAAA", "k": "A" * 43}]}
        )
        down = c.one({"a": "g", "g": 1, "n": made["f"][0]["h"]})["g"]
        assert requests.get(down, timeout=10).content == payload
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_stop_removes_the_temporary_state_and_closes_connections() -> None:
    emu = MegaEmulator().start()
    data_dir = emu.data_dir
    assert data_dir is not None and (data_dir / "state.sqlite3").exists()
    s = socket.create_connection(("127.0.0.1", emu.port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while not got.endswith(b"MEGA emulator\n"):
        got += s.recv(1000)
    assert got.startswith(b"HTTP/1.1 200")  # now an idle keep-alive connection
    emu.stop()
    assert not data_dir.exists()
    s.settimeout(5)
    assert s.recv(10) == b""  # the server closed our idle keep-alive connection
    s.close()
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{emu.api_url}/cs", data=b"[]", timeout=2)


def test_blob_files_are_written_in_place_not_kept_in_memory(emu: MegaEmulator) -> None:
    """An upload's partial file has its final size at once and fills in at offsets."""
    url = emu.upload_url(EMAIL, 1_000_000)
    token = url.rsplit("/", 1)[1]
    partial = emu.data_dir / "uploads" / token
    assert partial.stat().st_size == 1_000_000
    requests.post(f"{url}/500000", data=b"\x01" * 1000, timeout=10)
    with open(partial, "rb") as fh:
        fh.seek(500_000)
        assert fh.read(1000) == b"\x01" * 1000
    assert (
        hashlib.sha256(partial.read_bytes()[:1000]).digest() == hashlib.sha256(bytes(1000)).digest()
    )


def test_large_file_in_parallel_ranges_round_trips(emu: MegaEmulator) -> None:
    """32 MiB up in 8 parallel pieces and down in 8 parallel ranges (sendfile path)."""
    size = 32 * 1024 * 1024 + 4097
    data = os.urandom(size)
    url = emu.upload_url(EMAIL, size)
    step = -(-size // 8)
    pieces = [(a, min(size, a + step)) for a in range(0, size, step)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda p: requests.post(f"{url}/{p[0]}", data=data[p[0] : p[1]], timeout=60).text,
                pieces,
            )
        )
    tokens = [a for a in answers if a]
    assert len(tokens) == 1
    c = RawClient(emu.api_url)
    c.login(EMAIL, "pw")
    res = c.one(
        {"a": "p", "t": c.root(), "n": [{"h": tokens[0], "t": 0, "a": "AAAA", "k": "A" * 43}]}
    )
    dl = c.one({"a": "g", "g": 1, "n": res["f"][0]["h"]})["g"]
    with ThreadPoolExecutor(8) as pool:
        parts = list(
            pool.map(lambda p: requests.get(f"{dl}/{p[0]}-{p[1] - 1}", timeout=60).content, pieces)
        )
    assert hashlib.sha256(b"".join(parts)).digest() == hashlib.sha256(data).digest()


def test_serve_main_reports_bad_arguments_with_status_2(capsys) -> None:
    from megafast.testing import serve_main

    assert serve_main(["--user", "no-colon"]) == 2
    assert "EMAIL:PASSWORD" in capsys.readouterr().err
    assert serve_main(["--port", "-5"]) == 2
    assert serve_main(["--api-error-rate", "2"]) == 1  # reaches Faults, which refuses it
    assert "api_error_rate" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert serve_main(["--port", str(taken.getsockname()[1])]) == 1  # cannot bind
    assert "megafast serve:" in capsys.readouterr().err


# --- fuzzing the transfer servers with raw HTTP -------------------------------------------

_paths = st.sampled_from(
    ["/dl/@D", "/dl/@D/@R", "/ul/@U/@O", "/ul/@U", "/cs?id=@O", "/dl/x", "/zz", "/"]
)
_ranges = st.one_of(st.text(max_size=12), st.sampled_from(["0-9", "5-", "-5", "9-0", "bytes=1-2"]))
_numbers = st.one_of(st.integers(-5, 10**12).map(str), st.text(max_size=6))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "OPTIONS"]),
    path=_paths,
    rng=_ranges,
    offset=_numbers,
    headers=st.dictionaries(
        st.sampled_from(["Range", "Content-Length", "Transfer-Encoding", "X-Hashcash", "Expect"]),
        st.one_of(_numbers, st.sampled_from(["chunked", "bytes=0-1", "100-continue"])),
        max_size=3,
    ),
    body=st.one_of(
        st.binary(max_size=300), st.sampled_from([b"zz\r\nab\r\n0\r\n\r\n", b"5\r\nabc"])
    ),
)
def test_raw_http_garbage_never_breaks_the_server(
    fuzz_server, method: str, path: str, rng: str, offset: str, headers: dict, body: bytes
) -> None:
    emu, dl_token, ul_token = fuzz_server
    target = (
        path.replace("@D", dl_token)
        .replace("@U", ul_token)
        .replace("@R", rng)
        .replace("@O", offset)
    )
    target = "".join(c if 33 <= ord(c) < 127 else "%41" for c in target)
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\n"
    for k, v in headers.items():
        head += f"{k}: {''.join(c for c in v if 32 <= ord(c) < 127)}\r\n"
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        s.shutdown(socket.SHUT_WR)  # the server sees the end instead of waiting for more
        try:
            while s.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError):
            pass
    assert emu.stats().get("server_errors", 0) == 0
    assert requests.get(f"{emu.api_url}/", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[tuple[MegaEmulator, str, str]]:
    with MegaEmulator() as e:
        e.create_account(EMAIL, "pw")
        h, _ = e.add_file(EMAIL, os.urandom(5000), "f")
        dl = e.download_url(h).rsplit("/", 1)[1]
        ul = e.upload_url(EMAIL, 10**9).rsplit("/", 1)[1]
        yield e, dl, ul
