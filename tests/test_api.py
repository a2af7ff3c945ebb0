"""The API transport over real HTTP: ids, retries, back-off, hashcash, odd answers.

A small scripted server on 127.0.0.1 plays the API so that each test chooses the exact
answers (5xx, -3, 402, text, stalls); the end-to-end tests against the emulator are in
test_client*.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from megafast._wire.api import ApiClient
from megafast.errors import (
    HashcashError,
    MegaError,
    NotFoundError,
    RequestError,
    RetryExhaustedError,
    ServerUnreachableError,
    SessionError,
    UnexpectedAnswerError,
)
from support.scripted_api import ScriptedAPI


@pytest.fixture
def server() -> Iterator[ScriptedAPI]:
    s = ScriptedAPI()
    yield s
    s.close()


def client(server: ScriptedAPI, **kw: Any) -> ApiClient:
    kw.setdefault("retry_time", 5.0)
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    kw.setdefault("timeout", 5.0)
    return ApiClient(server.url, **kw)


def test_request_ids_start_random_and_grow_by_one(server: ScriptedAPI) -> None:
    a, b = client(server), client(server)
    for _ in range(3):
        a.request({"a": "ug"})
    b.request({"a": "ug"})
    ids = [int(r["params"]["id"]) for r in server.requests]
    assert ids[1] == ids[0] + 1 and ids[2] == ids[1] + 1
    assert ids[3] != ids[0]  # another client starts elsewhere (1 in 2**32 to collide)
    assert all(r["path"] == "/cs" for r in server.requests)


def test_eagain_is_retried_with_same_id_and_body(server: ScriptedAPI) -> None:
    server.script = [(200, {}, "-3"), (200, {}, "[-3]"), (200, {}, '[{"ok":1}]')]
    api = client(server)
    assert api.request({"a": "ug", "x": "é"}) == {"ok": 1}
    assert len(server.requests) == 3
    assert len({r["params"]["id"] for r in server.requests}) == 1
    assert len({r["body"] for r in server.requests}) == 1
    assert json.loads(server.requests[0]["body"]) == [{"a": "ug", "x": "é"}]
    assert api.stats["retries"] == 2


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_http_errors_are_retried(server: ScriptedAPI, status: int) -> None:
    server.script = [(status, {}, ""), (status, {}, "busy"), (200, {}, "[7]")]
    assert client(server).request({"a": "x"}) == 7
    assert len({r["params"]["id"] for r in server.requests}) == 1


def test_retries_stop_within_the_time_budget(server: ScriptedAPI) -> None:
    server.default = (503, {}, "")
    api = client(server, retry_time=0.6, backoff_base=0.05, backoff_cap=0.2)
    start = time.monotonic()
    with pytest.raises(RetryExhaustedError) as info:
        api.request({"a": "ug"})
    elapsed = time.monotonic() - start
    assert elapsed < 1.5
    assert len(server.requests) >= 3
    assert "HTTP 503" in str(info.value)
    # waits grow: the gaps between tries are not all equal to the first one
    times = len(server.requests)
    assert api.stats["retries"] == times - 1


def test_eagain_forever_gives_a_clear_error(server: ScriptedAPI) -> None:
    server.default = (200, {}, "-3")
    with pytest.raises(RetryExhaustedError) as info:
        client(server, retry_time=0.3).request({"a": "ug"})
    assert info.value.code == -3
    assert isinstance(info.value, RequestError)


def test_backoff_is_capped_and_jittered(server: ScriptedAPI) -> None:
    server.script = [(500, {}, "")] * 6
    stamps: list[float] = []
    server.default = (200, {}, "[0]")
    orig = server.script

    def stamp(step: Any) -> Any:
        def f(record: dict[str, Any]) -> Any:
            stamps.append(time.monotonic())
            return step

        return f

    server.script = [stamp(s) for s in orig] + [stamp((200, {}, "[0]"))]
    client(server, backoff_base=0.02, backoff_cap=0.08).request({"a": "ug"})
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert len(gaps) == 6
    assert max(gaps) < 0.08 + 0.1  # the cap (plus scheduling noise)
    assert gaps[-1] >= 0.04 - 0.005  # at least half the cap (jitter is 0.5..1.0)


def test_a_stalled_answer_times_out_and_is_retried(server: ScriptedAPI) -> None:
    server.script = [1.5]  # stall longer than the timeout
    server.default = (200, {}, "[5]")
    api = client(server, timeout=0.3)
    assert api.request({"a": "ug"}) == 5
    assert len(server.requests) == 2
    assert server.requests[0]["params"]["id"] == server.requests[1]["params"]["id"]


def test_hashcash_402_is_solved_and_the_request_resent(server: ScriptedAPI) -> None:
    from megafast.crypto import check_hashcash

    challenge = (
        "1:255:1769956228:" + "atNinVpwMnq2sgu6r3UXgd6TSZFJyi2GwOO_OC7hcUJTpKfMMJmKKPrAgxp8F5xj"
    )

    def answer(record: dict[str, Any]) -> Any:
        if record["hashcash"] and check_hashcash(challenge, record["hashcash"]):
            return (200, {}, '[{"v":2}]')
        return (402, {"X-Hashcash": challenge}, "")

    server.default = answer
    api = client(server, hashcash_threads=1)
    assert api.request({"a": "us0", "user": "x@example.com"}) == {"v": 2}
    assert len(server.requests) == 2
    first, second = server.requests
    assert first["params"]["id"] == second["params"]["id"] and first["body"] == second["body"]
    assert second["hashcash"].startswith("1:atNinVpw")
    assert api.stats["hashcash"] == 1


def test_hashcash_that_never_ends_raises(server: ScriptedAPI) -> None:
    challenge = (
        "1:255:1769956228:" + "n8r22ANvCSdYEqJAw09pFWl2L8dWA8J_VKtFsSlL3532DVsHfX_HgtvXvXuUvv77"
    )
    server.default = (402, {"X-Hashcash": challenge}, "")
    with pytest.raises(HashcashError):
        client(server, hashcash_threads=1).request({"a": "ug"})


def test_malformed_hashcash_challenge_raises(server: ScriptedAPI) -> None:
    server.default = (402, {"X-Hashcash": "2:nonsense"}, "")
    with pytest.raises(HashcashError):
        client(server).request({"a": "ug"})


def test_batches_return_every_result(server: ScriptedAPI) -> None:
    server.script = [(200, {}, '[0, -9, {"h": "x"}, "text", -3]')]
    api = client(server)
    cmds = [{"a": "uq", "n": str(i)} for i in range(5)]
    assert api.batch(cmds) == [0, -9, {"h": "x"}, "text", -3]
    assert len(server.requests) == 1


def test_v3_sequence_tags_are_unwrapped_and_remembered(server: ScriptedAPI) -> None:
    server.script = [(200, {}, '["12", ["13", {"f": []}], [0, "ph"], "ph2", -9, "14"]')]
    api = client(server)
    names = ["d", "p", "l", "l", "m", "uq"]
    got = api.batch([{"a": a} for a in names])
    # d's "12" is its tag (0 without v3); p and l come in [tag, answer]; uq is left alone
    assert got == [0, {"f": []}, "ph", "ph2", -9, "14"]
    assert "12" in api.own_seqtags and "13" in api.own_seqtags and "14" not in api.own_seqtags
    assert server.requests[0]["params"]["v"] == "3"


def test_batch_with_wrong_length_raises(server: ScriptedAPI) -> None:
    server.script = [(200, {}, "[0]")]
    with pytest.raises(RequestError):
        client(server).batch([{"a": "x"}, {"a": "y"}])


@pytest.mark.parametrize(
    ("body", "cls", "code"),
    [
        ("-9", NotFoundError, -9),
        ("[-9]", NotFoundError, -9),
        ("[-15]", SessionError, -15),
        ("[-99]", RequestError, -99),
        ("-1234", RequestError, -1234),
    ],
)
def test_error_numbers_raise_their_class(
    server: ScriptedAPI, body: str, cls: type, code: int
) -> None:
    server.script = [(200, {}, body)]
    with pytest.raises(cls) as info:
        client(server).request({"a": "x"})
    assert info.value.code == code
    assert info.value.message


@pytest.mark.parametrize("code", range(-30, 0))
def test_every_documented_code_has_a_name(server: ScriptedAPI, code: int) -> None:
    if code == -3:
        return
    server.script = [(200, {}, f"[{code}]")]
    with pytest.raises(RequestError) as info:
        client(server).request({"a": "x"})
    assert info.value.code == code and info.value.name.startswith("E")
    assert info.value.name != "EUNKNOWN"


def test_text_answer_is_a_request_error_not_a_crash(server: ScriptedAPI) -> None:
    server.script = [(200, {}, "Service Unavailable <html>")]
    with pytest.raises(RequestError) as info:
        client(server).request({"a": "x"})
    assert "not JSON" in info.value.message


def test_http_403_is_not_retried(server: ScriptedAPI) -> None:
    server.default = (403, {}, "")
    with pytest.raises(RequestError) as info:
        client(server).request({"a": "x"})
    assert info.value.code == "HTTP 403"
    assert len(server.requests) == 1


def test_session_id_and_public_folder_parameters(server: ScriptedAPI) -> None:
    api = client(server)
    api.sid = "SECRET-SID"
    api.request({"a": "ug"})
    api.request({"a": "f"}, folder="ABCDEFGH")
    assert server.requests[0]["params"]["sid"] == "SECRET-SID"
    assert server.requests[1]["params"]["n"] == "ABCDEFGH"
    assert "sid" not in server.requests[1]["params"]


def test_errors_never_show_the_session_id() -> None:
    api = ApiClient("http://127.0.0.1:9", retry_time=0.2, backoff_base=0.01, backoff_cap=0.02)
    api.sid = "SECRET-SID-VALUE"
    with pytest.raises(MegaError) as info:
        api.request({"a": "ug"})
    text = str(info.value) + repr(info.value)
    assert "SECRET-SID-VALUE" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_connections_are_kept_alive(server: ScriptedAPI) -> None:
    api = client(server)
    for _ in range(5):
        api.request({"a": "ug"})
    assert len({r["conn"] for r in server.requests}) == 1


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError):
        ApiClient("http://x", timeout=0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_connection_fails_fast_with_the_host() -> None:
    port = _closed_port()
    api = ApiClient(
        f"http://127.0.0.1:{port}", retry_time=60.0, connect_retry_time=0.4, backoff_base=0.05
    )
    api.sid = "SECRET-SID-VALUE"
    start = time.monotonic()
    with pytest.raises(ServerUnreachableError) as info:
        api.request({"a": "ug"})
    assert time.monotonic() - start < 10  # not the 60 s retry budget
    text = str(info.value)
    assert text.startswith(f"cannot connect to http://127.0.0.1:{port}: connection refused")
    assert "reading the account" in text and "SECRET" not in text + repr(info.value)
    assert "'ug'" not in text
    assert info.value.host == f"http://127.0.0.1:{port}"
    assert isinstance(info.value, RetryExhaustedError)
    assert api.stats["retries"] >= 1  # a few tries, not one


def test_an_unknown_host_name_fails_fast() -> None:
    api = ApiClient("http://no-such-host.invalid", retry_time=60.0, connect_retry_time=0.2)
    start = time.monotonic()
    with pytest.raises(ServerUnreachableError, match="does not resolve"):
        api.request({"a": "f", "c": 1})
    assert time.monotonic() - start < 20


def test_a_server_that_comes_up_within_the_connect_budget_is_used() -> None:
    port = _closed_port()
    started: list[ScriptedAPI] = []
    timer = threading.Timer(0.3, lambda: started.append(ScriptedAPI(port)))
    timer.start()
    try:
        api = ApiClient(
            f"http://127.0.0.1:{port}", connect_retry_time=5.0, backoff_base=0.05, backoff_cap=0.1
        )
        assert api.request({"a": "ug"}) == 0
        assert api.stats["retries"] >= 1
    finally:
        timer.join()
        for s in started:
            s.close()


def test_dropped_connections_keep_the_long_budget() -> None:
    # accepts, then closes without answering: the server is there, so keep trying
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        api = ApiClient(
            f"http://127.0.0.1:{listener.getsockname()[1]}",
            retry_time=0.8,
            connect_retry_time=0.05,
            backoff_base=0.05,
            backoff_cap=0.1,
        )
        start = time.monotonic()
        with pytest.raises(RetryExhaustedError) as info:
            api.request({"a": "f", "c": 1})
        assert not isinstance(info.value, ServerUnreachableError)
        assert time.monotonic() - start >= 0.5  # the 0.8 s budget, not the 0.05 s one
        assert str(info.value).startswith("Listing the files: gave up after")
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_the_gave_up_message_is_human(server: ScriptedAPI) -> None:
    server.default = (503, {}, "")
    with pytest.raises(RetryExhaustedError) as info:
        client(server, retry_time=0.2).batch([{"a": "ug"}, {"a": "uq"}])
    text = str(info.value)
    assert "Reading the account and reading the quota: gave up after" in text
    assert "the last answer was HTTP 503" in text
    assert "['ug'" not in text and "uq'" not in text


def test_stream_retries_then_hands_over_the_body_in_chunks(server: ScriptedAPI) -> None:
    big = json.dumps([{"f": [{"h": f"{i:08d}", "t": 1} for i in range(60_000)], "sn": "x"}])
    server.script = [(200, {}, "-3"), (503, {}, ""), (200, {}, big)]
    api = client(server)
    chunks = list(api.stream({"a": "f", "c": 1}))
    assert len(chunks) > 1 and b"".join(chunks) == big.encode()
    assert len({r["params"]["id"] for r in server.requests}) == 1
    assert api.stats["retries"] == 2


@pytest.mark.parametrize(
    ("body", "error"),
    [("[-9]", NotFoundError), ("-15", SessionError), ('["x"]', UnexpectedAnswerError)],
)
def test_stream_raises_error_numbers_and_odd_answers(
    server: ScriptedAPI, body: str, error: type[Exception]
) -> None:
    server.script = [(200, {}, body)]
    with pytest.raises(error):
        client(server).stream({"a": "f"})
