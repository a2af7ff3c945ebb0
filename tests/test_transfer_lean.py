"""Range GETs that skip requests' own work (transfer/_lean.py), against real sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from megafast.transfer import MiB, _http, download_file
from megafast.transfer._lean import LeanAnswer, lean_get
from support.transfer import Remote, content, fast_config

TIMEOUT = (2.0, 2.0)


def _url(remote: Remote, data: bytes) -> str:
    h, _key = remote.add_file(data)
    return str(remote.url_getter(h)(False))


def test_a_plain_session_gets_the_same_bytes_as_requests(remote: Remote) -> None:
    url = _url(remote, content(3 * MiB))
    session = requests.Session()
    session.trust_env = False
    answer = lean_get(session, f"{url}/1000-66535", TIMEOUT)
    assert isinstance(answer, LeanAnswer)
    assert answer.status_code in (200, 206)
    assert answer.headers.get("content-length") == "65536"  # headers match in any case
    body = answer.raw.read()
    answer.raw.release_conn()
    assert body == session.get(f"{url}/1000-66535").content


def _proxied(s: requests.Session) -> None:
    s.proxies["http"] = "http://127.0.0.1:9"


def _auth(s: requests.Session) -> None:
    s.auth = ("user", "password")


def _cookie(s: requests.Session) -> None:
    s.cookies.set("name", "value")


def _hook(s: requests.Session) -> None:
    s.hooks["response"].append(lambda r, *a, **k: r)


@pytest.mark.parametrize("change", [_proxied, _auth, _cookie, _hook])
def test_a_session_that_needs_requests_is_left_to_it(
    change: Callable[[requests.Session], None],
) -> None:
    session = requests.Session()
    session.trust_env = False
    change(session)
    # None before any connection is tried (nothing listens on port 9)
    assert lean_get(session, "http://127.0.0.1:9/dl/x/0-15", TIMEOUT) is None


def test_a_proxy_from_the_environment_is_left_to_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = requests.Session()  # reads the environment (trust_env): left to requests
    assert lean_get(session, "http://127.0.0.1:9/dl/x/0-15", TIMEOUT) is None
    session.trust_env = False  # the environment is not read: nothing stops the lean GET
    with pytest.raises(requests.ConnectionError):
        lean_get(session, "http://127.0.0.1:9/dl/x/0-15", TIMEOUT)


def test_a_refused_connection_is_a_requests_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.ConnectionError):
        lean_get(session, f"http://127.0.0.1:{port}/dl/x/0-15", TIMEOUT)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    for conn in held:
        conn.close()


def test_a_server_that_never_answers_is_a_requests_timeout(silent_server: int) -> None:
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.Timeout):
        lean_get(session, f"http://127.0.0.1:{silent_server}/dl/x/0-15", (2.0, 0.2))


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "requests"])
def test_downloads_verify_on_either_path(
    remote: Remote, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, lean: bool
) -> None:
    data = content(5 * MiB + 3)
    h, key = remote.add_file(data)
    session = requests.Session()
    session.trust_env = False  # as a transfer's own session, once the environment was read
    hooked: list[int] = []
    if not lean:  # a response hook: every GET goes through requests
        session.hooks["response"].append(lambda r, *a, **k: hooked.append(r.status_code))
    taken: list[bool] = []
    real = _http.lean_get

    def spy(*args: Any) -> Any:
        answer = real(*args)
        taken.append(answer is not None)
        return answer

    monkeypatch.setattr(_http, "lean_get", spy)
    download_file(
        session,
        remote.url_getter(h),
        len(data),
        key,
        str(tmp_path / "out.bin"),
        config=fast_config(connections=3, piece_size=MiB),
        shared_session=True,
    )
    assert (tmp_path / "out.bin").read_bytes() == data  # MAC-checked by the download too
    assert taken and all(taken) == lean and any(taken) == lean
    assert bool(hooked) != lean
