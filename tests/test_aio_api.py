"""The asyncio API client and batcher (megafast.aio) against real HTTP servers: request ids
and bodies on retries, back-off on -3/429/5xx, hashcash solved off the loop, answer caps,
hostile answers mapped to megafast.errors, and batching of many concurrent commands."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import threading
import time

import pytest

from megafast._wire.codec import b64encode
from megafast._wire.retry import RetryPolicy
from megafast.aio import AsyncApiClient, AsyncBatcher
from megafast.errors import (
    HashcashError,
    MegaError,
    NotFoundError,
    RequestError,
    RetryExhaustedError,
    ServerUnreachableError,
    UnexpectedAnswerError,
)
from support.hostile import HostileServer
from support.scripted_api import ScriptedAPI

pytestmark = [pytest.mark.asyncio, pytest.mark.filterwarnings("error")]


def api(url: str, **kw: object) -> AsyncApiClient:
    return AsyncApiClient(url, retry=RetryPolicy.fast(), timeout=10, **kw)  # type: ignore[arg-type]


def challenge(easiness: int) -> str:
    return f"1:{easiness}:{int(time.time())}:{b64encode(secrets.token_bytes(48))}"


async def test_retries_send_the_same_id_and_body(scripted: ScriptedAPI) -> None:
    scripted.script = [
        (200, {}, "-3"),
        (503, {}, ""),
        (429, {}, ""),
        (500, {}, ""),
        (200, {}, "[-3]"),
        (200, {}, "[42]"),
    ]
    client = api(scripted.url)
    try:
        assert await client.request({"a": "uq"}) == 42
        ids = {r["params"]["id"] for r in scripted.requests}
        bodies = {r["body"] for r in scripted.requests}
        assert len(scripted.requests) == 6 and len(ids) == 1 and len(bodies) == 1
        assert client.stats["retries"] == 5
        # the next request has the next id
        assert await client.request({"a": "uq"}) == 0
        assert int(scripted.requests[-1]["params"]["id"]) == int(ids.pop()) + 1
    finally:
        await client.close()


async def test_retry_budget_ends_in_retry_exhausted(scripted: ScriptedAPI) -> None:
    scripted.default = (200, {}, "-3")
    client = api(scripted.url, retry_time=0.3)
    try:
        with pytest.raises(RetryExhaustedError, match="gave up"):
            await client.request({"a": "uq"})
    finally:
        await client.close()


async def test_error_numbers_and_http_errors_are_megafast_errors(scripted: ScriptedAPI) -> None:
    client = api(scripted.url)
    try:
        scripted.script = [(200, {}, "[-9]")]
        with pytest.raises(NotFoundError):
            await client.request({"a": "uq"})
        scripted.script = [(200, {}, "[-9, 5]")]
        assert await client.batch([{"a": "uq"}, {"a": "uq"}]) == [-9, 5]
        scripted.script = [(403, {}, "")]
        with pytest.raises(RequestError, match="HTTP 403"):
            await client.request({"a": "uq"})
        scripted.script = [(302, {"Location": "/cs"}, "")]
        with pytest.raises(RequestError, match="HTTP 302"):
            await client.request({"a": "uq"})
        scripted.script = [(200, {}, "[1, 2]")]
        with pytest.raises(UnexpectedAnswerError, match="1 command"):
            await client.request({"a": "uq"})
    finally:
        await client.close()


async def test_unreachable_server_fails_fast() -> None:
    client = AsyncApiClient("http://127.0.0.1:9", retry=RetryPolicy.fast())
    started = time.monotonic()
    try:
        with pytest.raises(ServerUnreachableError, match="connection refused"):
            await client.request({"a": "uq"})
    finally:
        await client.close()
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("[" * 100_000 + "]" * 100_000, UnexpectedAnswerError),
        ("[NaN]", RequestError),
        ("not json", RequestError),
    ],
)
async def test_odd_json(scripted: ScriptedAPI, body: str, error: type[Exception]) -> None:
    scripted.default = (200, {}, body)
    client = api(scripted.url)
    try:
        with pytest.raises(error):
            await client.request({"a": "uq"})
    finally:
        await client.close()


async def test_endless_body_stops_at_the_limit(hostile: HostileServer) -> None:
    hostile.body_mode = "endless"
    client = api(hostile.url, max_answer_bytes=1 << 20)
    try:
        with pytest.raises(UnexpectedAnswerError, match="max_answer_bytes"):
            await client.request({"a": "uq"})
    finally:
        await client.close()


async def test_declared_length_over_the_limit(scripted: ScriptedAPI) -> None:
    scripted.default = (200, {}, json.dumps([list(range(200_000))]))
    client = api(scripted.url, max_answer_bytes=100_000)
    try:
        with pytest.raises(UnexpectedAnswerError, match="longer than [0-9]+ bytes"):
            await client.request({"a": "uq"})
    finally:
        await client.close()


async def test_endless_streamed_listing_stops_at_the_limit(hostile: HostileServer) -> None:
    hostile.body_mode = "endless_listing"
    client = api(hostile.url, max_listing_bytes=4 << 20)
    seen = 0

    async def sink(chunk: bytes) -> None:
        nonlocal seen
        seen += len(chunk)

    try:
        with pytest.raises(UnexpectedAnswerError, match="max_listing_bytes"):
            await client.stream({"a": "f", "c": 1}, sink)
    finally:
        await client.close()
    assert seen <= 4 << 20


async def test_hashcash_is_solved_without_blocking_the_loop(scripted: ScriptedAPI) -> None:
    scripted.script = [(402, {"X-Hashcash": challenge(255)}, ""), (200, {}, "[7]")]
    client = api(scripted.url)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    beat = asyncio.create_task(ticker())
    try:
        assert await client.request({"a": "uq"}) == 7
    finally:
        beat.cancel()
        await client.close()
    assert scripted.requests[1]["hashcash"] and client.stats["hashcash"] == 1
    assert ticks > 0  # the loop ran while the challenge was solved


async def test_hashcash_too_hard_fails_at_once(scripted: ScriptedAPI) -> None:
    scripted.default = (402, {"X-Hashcash": challenge(0)}, "")
    client = api(scripted.url)
    try:
        with pytest.raises(HashcashError, match="min_hashcash_easiness"):
            await client.request({"a": "uq"})
    finally:
        await client.close()


async def test_cancelled_hashcash_leaves_no_thread(scripted: ScriptedAPI) -> None:
    scripted.default = (402, {"X-Hashcash": challenge(128)}, "")  # minutes of work
    client = api(scripted.url, retry_time=120, hashcash_threads=1)
    before = {t.ident for t in threading.enumerate()}
    try:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.request({"a": "uq"}), 0.5)
        assert time.monotonic() - started < 3
    finally:
        await client.close()
    for _ in range(100):
        left = [
            t
            for t in threading.enumerate()
            if t.ident not in before and t.name.startswith("hashcash")
        ]
        if not left:
            break
        await asyncio.sleep(0.05)
    assert not left


async def test_timeouts_follow_asyncio(scripted: ScriptedAPI) -> None:
    scripted.default = 5.0  # the server stalls 5 s
    client = api(scripted.url)
    started = time.monotonic()
    try:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.request({"a": "uq"}), 0.3)
    finally:
        await client.close()
    assert time.monotonic() - started < 2


async def test_session_id_is_not_in_repr_or_errors(scripted: ScriptedAPI) -> None:
    scripted.default = (500, {}, "")
    client = api(scripted.url, retry_time=0.1)
    client.sid = "SECRETSESSIONID"
    try:
        with pytest.raises(MegaError) as info:
            await client.request({"a": "uq"})
    finally:
        await client.close()
    assert "SECRET" not in str(info.value) and "SECRET" not in repr(client)


# -- the batcher -------------------------------------------------------------------------------
async def test_batcher_coalesces_concurrent_commands(scripted: ScriptedAPI) -> None:
    def answer(record: dict[str, object]) -> tuple[int, dict[str, str], str]:
        batch = json.loads(record["body"])  # type: ignore[arg-type]
        return (200, {}, json.dumps([c["n"] if c["n"] % 7 else -9 for c in batch]))

    scripted.default = answer
    client = api(scripted.url)
    batcher = AsyncBatcher(client)
    try:
        results = await asyncio.gather(
            *(batcher.call({"a": "l", "n": i}) for i in range(1000)), return_exceptions=True
        )
    finally:
        await batcher.close()
        await client.close()
    assert len(scripted.requests) <= 10
    for i, result in enumerate(results):
        if i % 7:
            assert result == i
        else:
            assert isinstance(result, NotFoundError)  # one command's error, not the batch's


async def test_batcher_pushed_back_resends_read_only_commands(scripted: ScriptedAPI) -> None:
    scripted.script = [(200, {}, "-4")]  # the whole first batch refused (rate limit)
    scripted.default = lambda r: (200, {}, json.dumps([1] * len(json.loads(r["body"]))))
    client = api(scripted.url)
    batcher = AsyncBatcher(client)
    try:
        results = await asyncio.gather(
            batcher.call({"a": "g", "n": "A"}),
            batcher.call({"a": "p", "t": "B"}),
            return_exceptions=True,
        )
    finally:
        await batcher.close()
        await client.close()
    assert results[0] == 1  # g sent again
    assert isinstance(results[1], RequestError)  # p is never sent twice


async def test_closed_batcher_refuses(scripted: ScriptedAPI) -> None:
    client = api(scripted.url)
    batcher = AsyncBatcher(client)
    assert await batcher.call({"a": "uq"}) == 0
    await batcher.close()
    await client.close()
    with pytest.raises(MegaError):
        await batcher.call({"a": "uq"})


@pytest.mark.parametrize(
    ("mode", "error"), [("nested", UnexpectedAnswerError), ("redirect", RequestError)]
)
async def test_hostile_bodies(hostile: HostileServer, mode: str, error: type[Exception]) -> None:
    hostile.body_mode = mode
    client = api(hostile.url)
    try:
        with pytest.raises(error):
            await client.request({"a": "uq"})
    finally:
        await client.close()


async def test_hostile_download_redirect_loop(tmp_path: object) -> None:
    from megafast.aio import AsyncMega

    server = HostileServer(account=True)
    try:
        server.file("LoopFil1", "ROOTnode", "loop.bin", b"data" * 100)
        server.download_mode = "redirect"
        async with AsyncMega(server.url, retry=RetryPolicy.fast()) as m:
            await m.resume_session(server.credentials())
            node = await m.find("loop.bin")
            assert node is not None
            with pytest.raises(MegaError):
                await m.download_bytes(node)
    finally:
        server.close()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is Python 3.11+")
async def test_asyncio_timeout_block(scripted: ScriptedAPI) -> None:
    scripted.default = 5.0  # the server stalls 5 s
    client = api(scripted.url)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await client.request({"a": "uq"})
        scripted.default = (200, {}, "[3]")
        assert await client.request({"a": "uq"}) == 3  # the client still works
    finally:
        await client.close()
    assert time.monotonic() - started < 5


async def test_v3_sequence_tags_are_unwrapped_and_remembered(scripted: ScriptedAPI) -> None:
    """The same answers as the sync client's test: v=3 is sent, tags come off and are kept."""
    scripted.script = [(200, {}, '["12", ["13", {"f": []}], [0, "ph"], "ph2", -9, "14"]')]
    client = api(scripted.url)
    names = ["d", "p", "l", "l", "m", "uq"]
    try:
        got = await client.batch([{"a": a} for a in names])
    finally:
        await client.close()
    assert got == [0, {"f": []}, "ph", "ph2", -9, "14"]
    assert "12" in client.own_seqtags and "13" in client.own_seqtags
    assert "14" not in client.own_seqtags
    assert scripted.requests[0]["params"]["v"] == "3"
