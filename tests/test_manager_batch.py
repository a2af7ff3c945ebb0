"""CommandBatcher against the emulator: one /cs request for many workers' commands, errors per
command, the same request id on retry, and a batch cap that the server pushes down."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from megafast import Mega
from megafast._wire.retry import RetryPolicy
from megafast.errors import MegaError, NotFoundError, RetryExhaustedError
from megafast.testing import MegaEmulator
from megafast.transfer import CommandBatcher
from megafast.transfer._batch import slot_error


@pytest.fixture(scope="module")
def emu() -> Iterator[MegaEmulator]:
    with MegaEmulator() as e:
        yield e


@pytest.fixture
def mega(emu: MegaEmulator) -> Iterator[Mega]:
    emu.clear_faults()
    email = f"batch-{secrets.token_hex(4)}@example.com"
    emu.create_account(email, "pw")
    m = Mega(api_url=emu.api_url).login(email, "pw")
    m._api.retry = RetryPolicy.fast()
    yield m
    emu.clear_faults()


def submit_together(batcher: CommandBatcher, commands: list[dict[str, Any]]) -> list[Future[Any]]:
    """Queue the commands while the dispatcher cannot take any, so they leave as one batch."""
    with batcher._cond:  # re-entrant: submit() takes it too
        return [batcher.submit(c) for c in commands]


def api_batches(emu: MegaEmulator) -> list[list[str]]:
    return [e["commands"] for e in emu.request_log if e.get("kind") == "api"]


def test_one_bad_command_fails_alone(mega: Mega, emu: MegaEmulator) -> None:
    handle = mega.get_id_from_obj(mega.upload_fileobj(b"hello", "a.txt"))
    emu.reset_stats()
    with CommandBatcher(mega._api) as batcher:
        good, bad, url = submit_together(
            batcher,
            [
                {"a": "g", "g": 1, "n": handle},
                {"a": "g", "g": 1, "n": "AAAAAAAA"},
                {"a": "u", "s": 5},
            ],
        )
        assert good.result(10)["s"] == 5
        with pytest.raises(NotFoundError):
            bad.result(10)
        assert url.result(10)["p"].startswith("http")
    assert api_batches(emu) == [["g", "g", "u"]]


def test_many_threads_share_few_requests(mega: Mega, emu: MegaEmulator) -> None:
    emu.set_faults(latency=0.05)
    emu.reset_stats()
    results: list[Any] = []
    with CommandBatcher(mega._api) as batcher:

        def worker() -> None:
            for _ in range(5):
                results.append(batcher.call({"a": "u", "s": 10}, timeout=30))

        threads = [threading.Thread(target=worker) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 50 and all(r["p"].startswith("http") for r in results)
    assert batcher.stats["commands"] == 50
    assert len(api_batches(emu)) <= 25  # each round trip carries the commands that waited


def test_server_push_back_shrinks_the_cap_and_success_grows_it(
    mega: Mega, emu: MegaEmulator
) -> None:
    with CommandBatcher(mega._api, start_batch=64) as batcher:
        emu.set_faults(api_error_rate=1.0, api_error_statuses=(503,), api_error_limit=2)
        emu.reset_stats()
        futures = submit_together(batcher, [{"a": "u", "s": 1}] * 3)
        assert all(f.result(10)["p"] for f in futures)
        ids = [e["id"] for e in emu.request_log if e.get("kind") == "api"]
        assert len(ids) == 3 and len(set(ids)) == 1  # retried with the same id and body
        assert batcher.cap == 32 and batcher.stats["shrinks"] == 1
        batcher.call({"a": "u", "s": 1}, timeout=10)
        assert batcher.cap == 33


def test_a_batch_that_keeps_failing_resends_only_read_only_commands(
    mega: Mega, emu: MegaEmulator
) -> None:
    mega._api.retry = RetryPolicy.fast().with_changes(time_budget=0.0)  # the first 503 ends it
    with CommandBatcher(mega._api, start_batch=8) as batcher:
        emu.set_faults(api_error_rate=1.0, api_error_statuses=(503,), api_error_limit=1)
        url1, move, url2 = submit_together(
            batcher,
            [{"a": "u", "s": 1}, {"a": "m", "n": "AAAAAAAA", "t": "BBBBBBBB"}, {"a": "u", "s": 2}],
        )
        assert url1.result(10)["p"] and url2.result(10)["p"]
        with pytest.raises(RetryExhaustedError):
            move.result(10)  # a change is never sent twice in another batch
        assert batcher.stats["shrinks"] == 1 and batcher.cap == 5  # halved, then one clean batch


def test_closed_batcher_refuses_commands(mega: Mega) -> None:
    batcher = CommandBatcher(mega._api)
    pending = batcher.submit({"a": "u", "s": 1})
    batcher.close()
    assert pending.result(10)["p"]  # queued before close: still sent
    with pytest.raises(MegaError):
        batcher.submit({"a": "u", "s": 1})
    with pytest.raises(ValueError):
        CommandBatcher(mega._api, max_batch=4, start_batch=5)


@pytest.mark.parametrize(
    ("slot", "error"),
    [
        (0, None),
        ({"f": []}, None),
        (-9, NotFoundError),
        ({"err": -9}, NotFoundError),
        (True, None),
        ("text", None),
    ],
)
def test_slot_error(slot: Any, error: type[Exception] | None) -> None:
    found = slot_error(slot)
    assert (found is None) if error is None else isinstance(found, error)


class _OddApi:
    """A server that answers batches wrongly (pure logic: no HTTP needed)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.stats = {"retries": 0}

    def batch(self, commands: Any, *, folder: str | None = None) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer", [[0], "text", None, [0, 0, 0], KeyError("boom")])
def test_odd_batch_answers_fail_every_command_and_the_dispatcher_lives(answer: Any) -> None:
    with CommandBatcher(_OddApi(answer)) as batcher:
        futures = submit_together(batcher, [{"a": "u", "s": 1}, {"a": "u", "s": 2}])
        for f in futures:
            with pytest.raises((MegaError, KeyError)):
                f.result(5)
        batcher.api.answer = [{"p": "http://x/1"}]  # type: ignore[attr-defined]
        assert batcher.call({"a": "u", "s": 3}, timeout=5) == {"p": "http://x/1"}


def test_numbered_names() -> None:
    from megafast._account.treejobs import numbered

    assert numbered("a.txt", 1) == "a (1).txt"
    assert numbered("archive.tar.gz", 2) == "archive.tar (2).gz"
    assert numbered(".bashrc", 1) == ".bashrc (1)"
    assert numbered("noext", 3) == "noext (3)"
