"""Pure logic of the transfer engine: configuration, range planning, sidecars, parsing."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from megafast import crypto as mc
from megafast._wire.retry import RetryPolicy
from megafast.errors import OverQuotaError, RetryExhaustedError, ValidationError
from megafast.transfer import ChunkMap, MiB, TransferConfig, _http, _sidecar, part_paths
from megafast.transfer._upload import _token_text

# -- TransferConfig ---------------------------------------------------------------------------


def test_config_defaults_match_the_design() -> None:
    cfg = TransferConfig()
    assert (cfg.connections, cfg.piece_size, cfg.max_retries, cfg.timeout) == (8, 16 * MiB, 8, 60.0)
    assert cfg.speed_limit is None and cfg.resume is True and cfg.wait_on_quota is False


@pytest.mark.parametrize(
    "changes",
    [
        {"connections": 0},
        {"connections": 65},
        {"connections": 2.0},
        {"connections": True},
        {"piece_size": MiB - 1},
        {"piece_size": "16M"},
        {"max_retries": -1},
        {"timeout": 0},
        {"timeout": float("inf")},
        {"timeout": float("nan")},
        {"timeout": "60"},
        {"speed_limit": 0},
        {"speed_limit": -5.0},
        {"resume": 1},
        {"wait_on_quota": None},
    ],
)
def test_config_rejects_nonsense_when_created(changes: dict) -> None:
    with pytest.raises(ValueError) as info:
        TransferConfig(**changes)
    assert isinstance(info.value, ValidationError)
    assert next(iter(changes)) in str(info.value)


def test_config_is_frozen() -> None:
    cfg = TransferConfig(connections=2, piece_size=MiB, speed_limit=1e6)
    with pytest.raises(AttributeError):
        cfg.connections = 3  # type: ignore[misc]


# -- planning ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 16, 131072, 131073, 4608 * 1024, 5 * MiB + 3, 77 * MiB + 1])
@pytest.mark.parametrize("piece", [MiB, 3 * MiB + 5, 16 * MiB])
def test_plan_covers_the_file_with_ranges_of_whole_chunks(size: int, piece: int) -> None:
    chunks = ChunkMap(size)
    ranges = chunks.plan(piece)
    bounds = {s for s, _ in mc.chunk_bounds(size)} | {size}
    assert [r for r in ranges if r[0] >= r[1]] == []
    pos = 0
    for start, end in ranges:
        assert start == pos and start in bounds and end in bounds
        assert end - start <= piece
        pos = end
    assert pos == size


def test_plan_makes_full_ranges_then_skips_done_chunks() -> None:
    chunks = ChunkMap(40 * MiB)
    ranges = chunks.plan(16 * MiB)
    # chunk boundaries are 4.5 MiB + whole MiB: the first range stops at 15.5 MiB
    half = 512 * 1024
    assert ranges == [
        (0, 16 * MiB - half),
        (16 * MiB - half, 32 * MiB - half),
        (32 * MiB - half, 40 * MiB),
    ]
    done = set(chunks.chunks_in(5 * MiB - 512 * 1024, 20 * MiB - 512 * 1024))
    gaps = chunks.plan(16 * MiB, skip=done)
    assert gaps == [
        (0, 4608 * 1024),
        (20 * MiB - 512 * 1024, 36 * MiB - 512 * 1024),
        (36 * MiB - 512 * 1024, 40 * MiB),
    ]


def test_chunk_map_helpers() -> None:
    chunks = ChunkMap(3 * MiB)
    assert chunks.starts[:3] == [0, 128 * 1024, 384 * 1024]
    assert chunks.is_boundary(0) and chunks.is_boundary(3 * MiB) and not chunks.is_boundary(16)
    assert chunks.floor(128 * 1024 + 5) == 128 * 1024
    # a stream from 100 KiB to 800 KiB completes the chunks that end at 128K and 384K and 768K
    assert chunks.completed_by(100 * 1024, 800 * 1024) == [0, 128 * 1024, 384 * 1024]
    assert chunks.completed_by(0, 3 * MiB) == chunks.starts
    intervals = chunks.to_intervals([0, 128 * 1024, 768 * 1024])
    assert intervals == [[0, 384 * 1024], [768 * 1024, 1280 * 1024]]
    assert chunks.from_intervals(intervals) == {0, 128 * 1024, 768 * 1024}
    with pytest.raises(ValueError):
        chunks.from_intervals([[0, 1000]])
    with pytest.raises(ValueError):
        chunks.from_intervals([[0, 4 * MiB]])
    with pytest.raises(ValidationError):
        ChunkMap(-1)


# -- sidecars ---------------------------------------------------------------------------------


def test_sidecar_is_written_atomically_with_mode_0600(tmp_path) -> None:
    path = tmp_path / "x.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    _sidecar.write_sidecar(path, {"kind": "download", "done": [[0, 1]]})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data == {"version": 1, "kind": "download", "done": [[0, 1]]}
    assert _sidecar.read_sidecar(path) == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]  # no temporary left


@pytest.mark.parametrize("text", ["", "{", "[]", '{"version": 99}', "null"])
def test_unreadable_sidecars_are_ignored(tmp_path, text: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    assert _sidecar.read_sidecar(path) is None
    assert _sidecar.read_sidecar(tmp_path / "missing.json") is None


def test_state_dir_follows_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MEGAFAST_STATE_DIR", str(tmp_path / "state"))
    assert _sidecar.state_dir() == tmp_path / "state"
    assert (tmp_path / "state").is_dir()
    monkeypatch.delenv("MEGAFAST_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert _sidecar.state_dir() == tmp_path / "xdg" / "megafast"


def test_part_paths_sit_beside_the_target(tmp_path) -> None:
    part, side = part_paths(tmp_path / "a.bin")
    assert part == tmp_path / "a.bin.megafast-part"
    assert side == tmp_path / "a.bin.megafast-part.json"


def test_digest_separates_its_parts() -> None:
    assert _sidecar.digest("ab", "c") != _sidecar.digest("a", "bc")
    assert len(_sidecar.digest(b"x")) == 64


# -- parsing server answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"-3", -3),
        (b" -17\n", -17),
        (b"-8", -8),
        (b"", None),
        (b"3", None),
        (b"abc", None),
        (b"-" + b"1" * 20, None),
        (bytes(36), None),
    ],
)
def test_parse_api_error(body: bytes, code: int | None) -> None:
    assert _http.parse_api_error(body) == code


def test_completion_token_text_and_raw() -> None:
    assert _token_text(b"AbC-_9") == "AbC-_9"
    assert _token_text(b"AbC-_9==\n") == "AbC-_9"
    raw = bytes(range(200, 236))
    assert _token_text(raw) == mc.base64_url_encode(raw)


@pytest.mark.parametrize(
    ("code", "exc"),
    [
        (-17, _http.QuotaExceeded),
        (-3, _http.RetryableError),
        (-14, _http.RetryableError),
        (-8, _http.RefreshUrl),
        (-16, Exception),
    ],
)
def test_download_server_error_numbers(code: int, exc: type[BaseException]) -> None:
    with pytest.raises(exc):
        _http.raise_for_api_error(code)


def test_upload_server_error_numbers_restart_or_retry() -> None:
    for code in (-4, -8):
        with pytest.raises(_http.RestartUpload):
            _http.raise_for_api_error(code, upload=True)
    with pytest.raises(_http.RetryableError):
        _http.raise_for_api_error(-14, upload=True)


# -- back-off and budgets ---------------------------------------------------------------------


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base=0.2, cap=8.0, jitter=0.5)
    delays = [policy.backoff(a) for a in range(1, 30)]
    assert all(0 < d <= policy.cap for d in delays)
    assert delays[0] <= policy.base and max(delays) > 4 * policy.base
    assert policy.backoff(10_000) <= policy.cap  # no overflow on huge attempt numbers


def test_retry_policy_server_delays_and_validation() -> None:
    policy = RetryPolicy(delay_429=0.5, delay_503=5.0, max_server_delay=60.0, cap=8.0)
    assert policy.after_429(None) == 0.5 and policy.after_429(3.0) == 3.0
    assert policy.after_429(1e6) == 8.0  # a 429 never waits longer than the cap
    assert policy.after_503(None) == 5.0 and policy.after_503(1e6) == 60.0
    assert RetryPolicy(jitter=0.0).backoff(3) == RetryPolicy().base * 4
    for bad in ({"base": 0}, {"cap": -1}, {"jitter": 2}, {"base": float("inf")}, {"cap": "1"}):
        with pytest.raises(ValidationError):
            RetryPolicy(**bad)
    with pytest.raises(ValidationError):
        RetryPolicy(base=2.0, cap=1.0)
    with pytest.raises(ValidationError):
        TransferConfig(retry=0.5)  # type: ignore[arg-type]


def test_the_api_client_takes_the_same_retry_policy() -> None:
    from megafast._wire.api import ApiClient
    from megafast.errors import ServerUnreachableError

    policy = RetryPolicy(base=0.01, cap=0.02, time_budget=5.0, connect_budget=0.15)
    api = ApiClient("http://127.0.0.1:9", retry=policy)
    assert api.retry is policy
    t0 = time.monotonic()
    with pytest.raises(ServerUnreachableError):
        api.request({"a": "ug"})
    assert time.monotonic() - t0 < 2.0  # the policy's connect budget, not the default 3 s
    legacy = ApiClient("http://127.0.0.1:9", backoff_base=0.5, backoff_cap=2.0, retry_time=7)
    assert (legacy.retry.base, legacy.retry.cap, legacy.retry.time_budget) == (0.5, 2.0, 7.0)
    with pytest.raises(ValueError):
        ApiClient("http://127.0.0.1:9", backoff_base=0)
    with pytest.raises(ValidationError):
        ApiClient("http://127.0.0.1:9", retry=0.5)  # type: ignore[arg-type]


def _controller(**cfg) -> _http.Controller:
    cfg.setdefault("retry", RetryPolicy.fast())
    return _http.Controller(None, TransferConfig(**cfg), 1)


def test_retry_budget_counts_only_attempts_that_delivered_nothing() -> None:
    ctl = _controller(max_retries=2)
    budget = _http.RetryBudget(ctl, "bytes 0-9")
    budget.failed(ConnectionResetError())
    budget.failed(_http.RetryableError("HTTP 500", code=500))
    for _ in range(50):  # drops after some data cost nothing and do not wait
        t0 = time.monotonic()
        assert budget.failed(ConnectionResetError(), delivered=True) is False
        assert time.monotonic() - t0 < 0.005
    budget.failed(ConnectionResetError())
    budget.failed(ConnectionResetError())
    with pytest.raises(RetryExhaustedError) as info:
        budget.failed(_http.RetryableError("HTTP 503", code=503))
    assert "bytes 0-9" in str(info.value) and "HTTP 503" in str(info.value)


def test_quota_raises_with_time_left_unless_waiting_is_asked() -> None:
    budget = _http.RetryBudget(_controller(), "x")
    with pytest.raises(OverQuotaError) as info:
        budget.failed(_http.QuotaExceeded(123.0))
    assert info.value.time_left == 123.0 and info.value.code == -17
    waiting = _http.RetryBudget(_controller(wait_on_quota=True), "x")
    t0 = time.monotonic()
    assert waiting.failed(_http.QuotaExceeded(0.05)) is False
    assert time.monotonic() - t0 >= 0.04


def test_stopped_transfer_wakes_sleepers() -> None:
    ctl = _controller()
    ctl.stop.set()
    t0 = time.monotonic()
    with pytest.raises(_http.Stopped):
        ctl.sleep(10)
    assert time.monotonic() - t0 < 1


def test_rate_limiter_keeps_the_average_rate() -> None:
    ctl = _controller(speed_limit=2e6)
    limiter = ctl.limiter
    assert limiter.block(1 << 20) == 250_000
    t0 = time.monotonic()
    for _ in range(8):
        limiter.account(100_000, ctl)  # 800 kB at 2 MB/s: 0.4 s
    assert 0.35 <= time.monotonic() - t0 < 1.5


def test_cloned_session_keeps_caller_settings_and_pools_connections() -> None:
    import requests

    caller = requests.Session()
    caller.headers["User-Agent"] = "test-agent"
    caller.verify = False
    clone = _http.clone_session(caller, 12)
    assert clone is not caller and clone.headers["User-Agent"] == "test-agent"
    assert clone.verify is False
    assert clone.get_adapter("http://127.0.0.1/x")._pool_maxsize == 12
    assert caller.get_adapter("http://127.0.0.1/x")._pool_maxsize != 12


def test_balanced_piece_size_gives_every_connection_several_ranges() -> None:
    from megafast.transfer._config import balanced_piece_size

    cfg = TransferConfig(connections=8)
    assert balanced_piece_size(10 * 1024 * MiB, cfg) == 16 * MiB  # big files: the maximum
    assert balanced_piece_size(128 * MiB, cfg) == 4 * MiB
    assert balanced_piece_size(100, cfg) == MiB  # never below one MAC chunk
    assert balanced_piece_size(128 * MiB, TransferConfig(connections=1)) == 16 * MiB
