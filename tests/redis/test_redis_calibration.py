"""The token estimator's calibration shared through Redis (``CalibrationFeed``): what one process
learns from the server's counts, the others learn, and a worker that starts later begins there."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cerebras_paygo._context import TokenEstimator
from cerebras_paygo._context.calibration import Observation
from cerebras_paygo._context.feed import CalibrationFeed
from cerebras_paygo._wire import ChatCompletionRequest, Message
from tests.redis.conftest import redis_url

pytestmark = pytest.mark.redis

MODEL = "zai-glm-4.7"  # no exact tokenizer: its estimates are calibrated
TEXT = "Token buckets refill continuously; the whole completion budget is reserved up front. " * 20


def _client(url: str) -> Any:
    import redis
    import redis.cluster

    if url.startswith("redis+cluster://"):
        return redis.cluster.RedisCluster.from_url(url.replace("redis+cluster://", "redis://", 1))
    return redis.Redis.from_url(url)


@pytest.fixture
def redis_client(target_url: str) -> Iterator[Any]:
    client = _client(target_url)
    yield client
    client.close()


@pytest.fixture
def cal_prefix(redis_client: Any) -> Iterator[str]:
    name = f"cptest:{uuid.uuid4().hex[:12]}"
    yield name
    redis_client.delete(f"{name}:cal")


def _request(n: int) -> ChatCompletionRequest:
    return ChatCompletionRequest(model=MODEL, messages=[Message(role="user", content=f"{n}: {TEXT}")])


def _learn_from_server(estimator: TokenEstimator, count: int, ratio: float = 1.35) -> None:
    """What the flow does after each response: estimate, then observe the server's count."""
    for n in range(count):
        estimate = estimator.estimate_request(_request(n))
        estimator.observe(MODEL, estimate, round(estimate / 1.2 * ratio))


def test_what_one_process_learns_the_other_learns(redis_client: Any, cal_prefix: str) -> None:
    first, second = TokenEstimator(), TokenEstimator()
    feed_a = CalibrationFeed(redis_client, prefix=cal_prefix, interval=None)
    feed_b = CalibrationFeed(redis_client, prefix=cal_prefix, interval=None)
    feed_a.attach(first)
    feed_b.attach(second)
    before = second.estimate_request(_request(999))
    _learn_from_server(first, 12)
    assert feed_a.sync_now() == 0  # sent its 12; nothing from anyone else
    assert redis_client.xlen(f"{cal_prefix}:cal") == 12
    assert feed_b.sync_now() == 12
    assert second.calibration(MODEL).observations == 12
    # The same observations in the same order from the same prior: the same calibration.
    assert second.estimate_request(_request(999)) == first.estimate_request(_request(999)) != before
    assert second.calibration(MODEL).factor == pytest.approx(first.calibration(MODEL).factor)
    assert (
        feed_a.sync_now() == 0 and first.calibration(MODEL).observations == 12
    )  # its own entries are not learned twice
    # And back: the second process's lessons reach the first.
    _learn_from_server(second, 3)
    feed_b.sync_now()
    assert feed_a.sync_now() == 3 and first.calibration(MODEL).observations == 15


def test_a_worker_that_starts_later_replays_the_stream(redis_client: Any, cal_prefix: str) -> None:
    early = TokenEstimator()
    feed = CalibrationFeed(redis_client, prefix=cal_prefix, interval=None)
    feed.attach(early)
    _learn_from_server(early, 20)
    feed.sync_now()
    late = TokenEstimator()
    late_feed = CalibrationFeed(redis_client, prefix=cal_prefix, interval=None)
    late_feed.attach(late)
    assert late_feed.sync_now() == 20
    assert late.calibration(MODEL).observations == 20
    assert late.estimate_request(_request(5)) == early.estimate_request(_request(5))
    assert redis_client.ttl(f"{cal_prefix}:cal") > 0  # an abandoned stream expires


def test_the_background_thread_shares_without_being_asked(redis_client: Any, cal_prefix: str) -> None:
    first, second = TokenEstimator(), TokenEstimator()
    CalibrationFeed(redis_client, prefix=cal_prefix, interval=0.05).attach(first)
    CalibrationFeed(redis_client, prefix=cal_prefix, interval=0.05).attach(second)
    _learn_from_server(first, 5)
    deadline = time.monotonic() + 10
    while second.calibration(MODEL).observations < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert second.calibration(MODEL).observations == 5


def test_junk_in_the_stream_is_skipped(redis_client: Any, cal_prefix: str) -> None:
    redis_client.xadd(f"{cal_prefix}:cal", {"o": "someone", "m": MODEL, "p": "1,2", "l": "0", "x": "0", "a": "9"})
    redis_client.xadd(f"{cal_prefix}:cal", {"hello": "world"})
    estimator = TokenEstimator()
    feed = CalibrationFeed(redis_client, prefix=cal_prefix, interval=None)
    feed.attach(estimator)
    assert feed.sync_now() == 0 and estimator.calibration(MODEL).observations == 0


def _child(url: str, prefix: str) -> None:  # in a forked child: the feed object is the parent's
    estimator = FORKED[0]
    _learn_from_server(estimator, 7)
    FORKED[1].sync_now()


FORKED: list[Any] = []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_is_another_process(redis_client: Any, cal_prefix: str, target_url: str) -> None:
    """gunicorn --preload forks workers after the app (and its feed) is built: each child gets its
    own origin, so the parent and its siblings learn from it."""
    estimator = TokenEstimator()
    feed = CalibrationFeed(redis_client, prefix=cal_prefix, interval=None)
    feed.attach(estimator)
    FORKED[:] = [estimator, feed]
    child = multiprocessing.get_context("fork").Process(target=_child, args=(target_url, cal_prefix))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert feed.sync_now() == 7 and estimator.calibration(MODEL).observations == 7


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "calibration failed" in r.getMessage()]


def test_redis_down_is_logged_once_and_never_fails_a_call(caplog: pytest.LogCaptureFixture) -> None:
    import redis

    dead = redis.Redis(port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    estimator = TokenEstimator()
    feed = CalibrationFeed(dead, prefix="cptest:dead", interval=0.05)
    with caplog.at_level(logging.WARNING, logger="cerebras_paygo.calibration"):
        feed.attach(estimator)
        _learn_from_server(estimator, 3)  # observe never waits for, nor fails on, Redis
        assert estimator.calibration(MODEL).observations == 3
        deadline = time.monotonic() + 20
        while not _warnings(caplog) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # more failed rounds: still one warning
    assert len(_warnings(caplog)) == 1
    with pytest.raises(redis.ConnectionError):
        feed.sync_now()
    assert len(feed._pending) == 3  # kept for when Redis is back


def test_clients_on_one_redis_share_calibration_across_processes(emulator: Any) -> None:
    """End to end: a worker process calls the emulator through CerebrasClient(redis_url=...); a
    process that starts afterwards has its estimator calibrated before its first call."""
    # Its own database: the client uses the default key prefix (cerebras_paygo:cal).
    url = redis_url("standalone").rsplit("/", 1)[0] + "/14"
    scratch = _client(url)
    scratch.delete("cerebras_paygo:cal")
    script = f"""
import sys
from cerebras_paygo import CerebrasClient, ChatCompletionRequest, Message
from cerebras_paygo._context import TokenEstimator
estimator = TokenEstimator()
client = CerebrasClient(api_key={emulator.api_key!r}, base_url={emulator.base_url!r}, estimator=estimator,
                        redis_url={url!r}, tier="paygo")
shared = client.shared
for n in range(6):
    client.chat(ChatCompletionRequest(model={MODEL!r}, max_completion_tokens=16,
                messages=[Message(role="user", content=f"{{n}}: " + {TEXT!r})]))
shared.calibration.sync_now()
print(estimator.calibration({MODEL!r}).observations)
"""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("CEREBRAS_PAYGO_REDIS_URL", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "6"
    try:
        late = TokenEstimator()
        feed = CalibrationFeed(scratch, prefix="cerebras_paygo", interval=None)
        feed.attach(late)
        assert feed.sync_now() == 6
        assert late.calibration(MODEL).observations == 6
    finally:
        scratch.delete("cerebras_paygo:cal")
        scratch.close()


def test_an_observation_carries_counts_only() -> None:
    from cerebras_paygo._context.feed import _decode, _encode

    observation = Observation((3.0, 4.0, 120.5, 30.25, 0.0, 0.0), 110.0, False, 171)
    fields = _encode(MODEL, "origin", observation)
    assert set(fields) == {"o", "m", "p", "l", "x", "a"}
    assert _decode({k.encode(): v.encode() for k, v in fields.items()}) == ("origin", MODEL, observation)
