"""Defect 4 of issue 13: RPM-bound workloads got server 429s the local limiter could have avoided.

Before (main at 7abec95 and the original 7c375f3 alike), against the live emulator at 100 RPM
(``requests_per_minute`` set on both sides): 110 sequential ``chat`` calls -> 10 server 429s,
110 ``achat`` calls 10 at a time -> 8; the issue measured 12 in 1,100 sequential ``invoke``s at
1,000 RPM and 3 in a concurrent ``abatch``. Every 429 said "wait 0.05 s": the emulator's bucket
started ~50 ms after ours (the first booking comes before the first connection is made, the
server's window starts when that request arrives) and Cerebras reports no requests-minute header to
re-align on, so while saturated every request arrived 50 ms early.

Fix: ``gcra.request_margin`` (memory storage) and the same lines in ``lua/reserve.lua`` (Redis): a
request bucket no header reports keeps ``Limiter(request_margin=1.0)`` second of headroom. The burst
shrinks by ``limit / 60`` requests; the steady rate stays at the limit. After: 0 server 429s.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from cerebras_paygo import CerebrasClient, RateLimits
from cerebras_paygo._ratelimit import Limiter, MemoryLimiter, Scope
from cerebras_paygo._wire import ChatCompletionRequest, Message, RateLimitSnapshot

from .conftest import redis_url

MODEL = "gpt-oss-120b"
RPM = 100
CALLS = 106  # the burst, then 6 calls the bucket paces (0.6 s apart)
SCOPE = Scope("http://rpm.test/v1", "fp-rpm", MODEL)


def _request() -> ChatCompletionRequest:
    return ChatCompletionRequest(model=MODEL, messages=[Message(role="user", content="hi")], max_completion_tokens=16)


def _client(emulator, limiter: Limiter | None = None) -> CerebrasClient:
    emulator.configure(limits={"*": {"requests_per_minute": RPM}})
    return CerebrasClient(
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        rate_limits=RateLimits(requests_per_minute=RPM),
        limiter=limiter,
    )


def _assert_no_429(emulator, started: float) -> None:
    stats = emulator.stats()
    assert stats["statuses"] == {"200": CALLS}, stats["statuses"]
    assert stats["rate_limited"] == 0
    # The pacing is real: 6 calls past the burst are 0.6 s apart (minus what refilled meanwhile).
    assert time.monotonic() - started > 2.0


def test_sequential_calls_at_the_rpm_limit_get_no_server_429(emulator) -> None:
    client = _client(emulator)
    started = time.monotonic()
    for _ in range(CALLS):
        client.chat(_request())
    _assert_no_429(emulator, started)


async def test_concurrent_calls_at_the_rpm_limit_get_no_server_429(emulator) -> None:
    client = _client(emulator)
    gate = asyncio.Semaphore(10)

    async def one() -> None:
        async with gate:
            await client.achat(_request())

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(CALLS)))
    _assert_no_429(emulator, started)
    await client.aclose()


def test_sequential_calls_over_a_redis_limiter_get_no_server_429(emulator, redis_limiter: Limiter) -> None:
    client = _client(emulator, redis_limiter)
    started = time.monotonic()
    for _ in range(CALLS):
        client.chat(_request())
    _assert_no_429(emulator, started)


# -- the margin itself, on both storages ------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_memory_margin_shrinks_the_burst_not_the_rate() -> None:
    clock = _Clock()
    limiter = MemoryLimiter(clock=clock)
    limits = RateLimits(requests_per_minute=60)
    waits = [limiter.acquire(SCOPE, limits, 0).wait_s for _ in range(62)]
    assert waits[:59] == [0.0] * 59  # 60 - 1 s * 60 / 60 s
    assert waits[59:] == pytest.approx([1.0, 2.0, 3.0])  # then one a second: the limit's rate
    exact = MemoryLimiter(clock=clock, request_margin=0)
    assert [exact.acquire(SCOPE, limits, 0).wait_s for _ in range(61)][-2:] == [0.0, 1.0]


def test_memory_margin_never_delays_a_full_bucket_nor_a_reported_one() -> None:
    clock = _Clock()
    limiter = MemoryLimiter(clock=clock)
    assert limiter.acquire(SCOPE, RateLimits(requests_per_minute=1), 0).wait_s == 0.0  # cost = window
    limits = RateLimits(requests_per_minute=60, tokens_per_minute=600)
    snapshot = RateLimitSnapshot(limit={"requests-minute": 60}, remaining={"requests-minute": 60}, reset={})
    other = Scope("http://rpm.test/v1", "fp-reported", MODEL)
    limiter.apply_headers(other, limits, snapshot)
    assert [limiter.acquire(other, limits, 10).wait_s for _ in range(60)] == [0.0] * 60
    # Token buckets are re-aligned by every response's headers: no margin there.
    tokens_only = Scope("http://rpm.test/v1", "fp-tokens", MODEL)
    assert [limiter.acquire(tokens_only, RateLimits(tokens_per_minute=600), 10).wait_s for _ in range(60)] == [0.0] * 60


def test_redis_margin_matches_memory() -> None:
    import uuid

    url = redis_url()
    limiter = Limiter.from_url(url, prefix=f"cprel:{uuid.uuid4().hex[:12]}")
    try:
        limits = RateLimits(requests_per_minute=60)
        began = time.monotonic()
        waits = [limiter.acquire(SCOPE, limits, 0).wait_s for _ in range(61)]
        # Redis TIME moves while we book (61 round trips: 0.1 s on a loaded CI machine): the waits
        # are shorter by at most the refill of that time.
        booking = time.monotonic() - began
        assert max(waits[:59]) == 0.0
        assert 1.0 - booking - 0.01 <= waits[59] <= 1.0 + 0.01
        assert 2.0 - booking - 0.01 <= waits[60] <= 2.0 + 0.01
        other = Scope("http://rpm.test/v1", "fp-reported", MODEL)
        snapshot = RateLimitSnapshot(limit={"requests-minute": 60}, remaining={"requests-minute": 60}, reset={})
        limiter.apply_headers(other, limits, snapshot)
        assert max(limiter.acquire(other, limits, 0).wait_s for _ in range(60)) == 0.0
    finally:
        limiter.reset()
