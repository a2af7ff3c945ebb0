"""A hostile API server: answers too long, nested too deeply or not quite JSON, and hashcash
challenges that cannot be solved in time. Each raises a megafast error, quickly."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from megafast import Mega
from megafast._wire.api import ApiClient
from megafast._wire.codec import b64encode
from megafast.errors import HashcashError, RequestError, UnexpectedAnswerError
from support.hostile import HostileServer
from support.scripted_api import ScriptedAPI


def api(url: str, **kw: object) -> ApiClient:
    return ApiClient(url, retry_time=2.0, timeout=10, **kw)  # type: ignore[arg-type]


def test_endless_body_stops_at_the_limit(hostile: HostileServer) -> None:
    hostile.body_mode = "endless"
    client = api(hostile.url, max_answer_bytes=1 << 20)
    started = time.monotonic()
    with pytest.raises(UnexpectedAnswerError) as info:
        client.request({"a": "uq"})
    assert time.monotonic() - started < 10
    assert "max_answer_bytes" in str(info.value) and str(1 << 20) in str(info.value)
    # a listing has its own (larger) limit, which the message names
    with pytest.raises(UnexpectedAnswerError, match="max_listing_bytes"):
        api(hostile.url, max_listing_bytes=1 << 20).request({"a": "f", "c": 1})


def test_endless_streamed_listing_stops_at_the_limit() -> None:
    server = HostileServer(account=True)
    try:
        server.body_mode = "endless_listing"
        m = Mega({"api_url": server.url, "retry_time": 2.0, "max_listing_bytes": 4 << 20})
        with pytest.raises(UnexpectedAnswerError, match="max_listing_bytes"):
            m.resume_session(server.credentials())
            m.get_files()
    finally:
        server.close()


def test_declared_length_over_the_limit_is_not_read(scripted: ScriptedAPI) -> None:
    scripted.default = (200, {}, json.dumps([list(range(200_000))]))
    with pytest.raises(UnexpectedAnswerError, match="longer than [0-9]+ bytes"):
        api(scripted.url, max_answer_bytes=100_000).request({"a": "uq"})
    # the user can raise the limit: the same answer is then read
    m = Mega({"api_url": scripted.url, "max_answer_bytes": 10 << 20})
    assert len(m._request({"a": "uq"})) == 200_000


def test_defaults_allow_a_large_listing() -> None:
    client = ApiClient("http://127.0.0.1:9")
    assert client.max_listing_bytes >= 1 << 30  # a 1,000,000-node f answer is ~300 MB
    assert client.max_answer_bytes >= 16 << 20


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("[" * 100_000 + "]" * 100_000, UnexpectedAnswerError),
        ('[{"a":' * 50_000 + "1" + "}]" * 50_000, UnexpectedAnswerError),
        ("[NaN]", RequestError),
        ("[Infinity]", RequestError),
        ("[1e400]", None),  # a number too big for a float is inf, not an error: callers check
    ],
)
def test_odd_json(scripted: ScriptedAPI, body: str, error: type[Exception] | None) -> None:
    scripted.default = (200, {}, body)
    if error is None:
        assert api(scripted.url).request({"a": "uq"}) == float("inf")
        return
    with pytest.raises(error):
        api(scripted.url).request({"a": "uq"})


def challenge(easiness: int) -> str:
    return f"1:{easiness}:{int(time.time())}:{b64encode(secrets.token_bytes(48))}"


def test_hashcash_too_hard_fails_at_once(scripted: ScriptedAPI) -> None:
    scripted.default = (402, {"X-Hashcash": challenge(0)}, "")
    started = time.monotonic()
    with pytest.raises(HashcashError) as info:
        Mega(api_url=scripted.url, retry_time=120)._request({"a": "us0", "user": "x@y.z"})
    assert time.monotonic() - started < 5
    text = str(info.value)
    assert "easiness 0" in text and "min_hashcash_easiness" in text and "tries" in text


def test_hashcash_bounded_by_retry_time(scripted: ScriptedAPI) -> None:
    # easiness 128 is allowed, but expects ~32,768 tries of 12 MiB: far more than 1.5 s
    scripted.default = (402, {"X-Hashcash": challenge(128)}, "")
    client = Mega({"api_url": scripted.url, "retry_time": 1.5, "hashcash_threads": 1})
    started = time.monotonic()
    # a lucky solve (a few per cent of runs) meets a fresh challenge: the budget still ends it
    with pytest.raises(HashcashError, match="retry_time|kept asking"):
        client._request({"a": "us0", "user": "x@y.z"})
    assert time.monotonic() - started < 10


def test_hashcash_easy_enough_is_solved(scripted: ScriptedAPI) -> None:
    header = challenge(255)
    scripted.script = [(402, {"X-Hashcash": header}, ""), (200, {}, "[7]")]
    assert Mega(api_url=scripted.url, retry_time=30)._request({"a": "uq"}) == 7
    assert scripted.requests[1]["hashcash"]


def test_option_min_hashcash_easiness(scripted: ScriptedAPI) -> None:
    scripted.default = (402, {"X-Hashcash": challenge(200)}, "")
    with pytest.raises(HashcashError, match="easiness 200"):
        Mega({"api_url": scripted.url, "min_hashcash_easiness": 201})._request({"a": "uq"})
    with pytest.raises(ValueError):
        ApiClient("http://127.0.0.1:9", min_hashcash_easiness=256)


def test_solver_bounds() -> None:
    from megafast.crypto import solve_hashcash

    started = time.monotonic()
    with pytest.raises(HashcashError, match="easiness 0: about 477,218,588 tries"):
        solve_hashcash(challenge(0), min_easiness=128)
    with pytest.raises(HashcashError, match="no time left"):
        solve_hashcash(challenge(255), timeout=0)
    with pytest.raises(HashcashError, match="not solved within 0.3 s"):
        solve_hashcash(challenge(128), threads=1, timeout=0.3)
    assert time.monotonic() - started < 10
    assert solve_hashcash(challenge(255), min_easiness=255).startswith("1:")
