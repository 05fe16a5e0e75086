"""``MemoryLimiter`` with an injected clock: reservations, settlement, header sync, pauses, stats."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from cerebras_paygo._ratelimit import (
    BucketStats,
    Limiter,
    MemoryLimiter,
    RateLimits,
    Reservation,
    Scope,
    shared_limiter,
)
from cerebras_paygo._settings import key_fingerprint
from cerebras_paygo._wire import RateLimitSnapshot
from cerebras_paygo.errors import (
    APIStatusError,
    ConfigurationError,
    LocalRateLimitError,
    RateLimitError,
    RequestTooLargeError,
)

LIMITS = RateLimits(requests_per_minute=60, tokens_per_minute=6000)


def levels(limiter: MemoryLimiter, scope: Scope) -> dict[str, float]:
    return {row.limit: round(row.level, 6) for row in limiter.stats(scope)}


def test_memory_limiter_implements_the_protocol(limiter: MemoryLimiter) -> None:
    assert isinstance(limiter, Limiter)


def test_shared_limiter_is_one_instance_per_process() -> None:
    assert shared_limiter() is shared_limiter()
    assert isinstance(shared_limiter(), MemoryLimiter)


def test_scope_str_never_holds_the_key() -> None:
    key = "csk-super-secret-key-123"
    scope = Scope("https://api.cerebras.ai/v1", key_fingerprint(key), "m")
    assert key not in str(scope)
    assert key not in repr(scope)
    assert str(scope) == f"https://api.cerebras.ai/v1|{key_fingerprint(key)}|m"


def test_acquire_books_and_settle_refunds(limiter: MemoryLimiter, scope: Scope) -> None:
    r = limiter.acquire(scope, LIMITS, 1000)
    assert isinstance(r, Reservation)
    assert (r.scope, r.tokens, r.requests, r.wait_s) == (scope, 1000, 1, 0.0)
    assert levels(limiter, scope) == {"requests_per_minute": 59, "tokens_per_minute": 5000}
    limiter.settle(r, 250)
    assert r.closed
    assert levels(limiter, scope) == {"requests_per_minute": 59, "tokens_per_minute": 5750}


def test_settle_and_release_are_idempotent(limiter: MemoryLimiter, scope: Scope) -> None:
    r = limiter.acquire(scope, LIMITS, 1000)
    limiter.settle(r, 100)
    after = levels(limiter, scope)
    limiter.settle(r, 0)
    limiter.release(r)
    assert levels(limiter, scope) == after
    r2 = limiter.acquire(scope, LIMITS, 1000)
    limiter.release(r2)
    limiter.release(r2)
    limiter.settle(r2, 5000)
    assert levels(limiter, scope) == after


def test_reservation_of_another_limiter_is_refused(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    other = MemoryLimiter(clock=clock)
    r = other.acquire(scope, LIMITS, 10)
    with pytest.raises(ConfigurationError):
        limiter.settle(r, 1)
    with pytest.raises(ConfigurationError):
        limiter.release(r)


def test_negative_tokens_are_a_configuration_error(limiter: MemoryLimiter, scope: Scope) -> None:
    with pytest.raises(ConfigurationError):
        limiter.acquire(scope, LIMITS, -1)
    with pytest.raises(ConfigurationError):
        limiter.acquire(scope, LIMITS, 1.5)  # type: ignore[arg-type]


def test_refill_over_time_with_injected_clock(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    for _ in range(6):
        limiter.acquire(scope, LIMITS, 1000)
    r = limiter.acquire(scope, LIMITS, 1000)
    assert r.wait_s == pytest.approx(10.0)  # 1000 tokens at 100 tokens/s
    assert limiter.send_delay(r) == pytest.approx(10.0)
    clock.advance(4)
    assert limiter.send_delay(r) == pytest.approx(6.0)
    clock.advance(30)
    assert levels(limiter, scope)["tokens_per_minute"] == pytest.approx(2400)  # -1000 + 34 s x 100/s
    clock.advance(36)
    assert levels(limiter, scope) == {"requests_per_minute": 60, "tokens_per_minute": 6000}


def test_big_request_is_served_in_order_while_small_ones_keep_coming(
    limiter: MemoryLimiter, scope: Scope, clock
) -> None:
    limits = RateLimits(tokens_per_minute=6000)
    limiter.acquire(scope, limits, 5900)
    big = limiter.acquire(scope, limits, 6000)
    assert big.wait_s == pytest.approx(59.0)
    for _ in range(100):
        clock.advance(0.25)
        small = limiter.acquire(scope, limits, 10)
        assert small.start > big.start


def test_max_wait_refusal_books_nothing(limiter: MemoryLimiter, scope: Scope) -> None:
    limiter.acquire(scope, LIMITS, 6000)
    before = levels(limiter, scope)
    with pytest.raises(RateLimitError) as info:
        limiter.acquire(scope, LIMITS, 500, max_wait=1.0)
    assert info.value.quota == "tokens"
    assert info.value.retry_after == pytest.approx(5.0)
    # A local refusal had no response: no status code, and `except APIStatusError` does not catch it.
    assert isinstance(info.value, LocalRateLimitError)
    assert not isinstance(info.value, APIStatusError)
    assert info.value.status_code is None
    assert levels(limiter, scope) == before
    assert limiter.stats(scope)[0].waiters == 0
    r = limiter.acquire(scope, LIMITS, 500, max_wait=5.0)
    assert r.wait_s == pytest.approx(5.0)


def test_oversize_request_raises_and_books_nothing(limiter: MemoryLimiter, scope: Scope) -> None:
    limiter.acquire(scope, LIMITS, 100)
    before = levels(limiter, scope)
    with pytest.raises(RequestTooLargeError) as info:
        limiter.acquire(scope, LIMITS, 6001)
    assert info.value.limit_name == "tokens_per_minute"
    assert levels(limiter, scope) == before


async def test_cancelled_while_sleeping_returns_everything(limiter: MemoryLimiter, scope: Scope) -> None:
    limiter.acquire(scope, LIMITS, 6000)
    before = levels(limiter, scope)
    sleeping = asyncio.Event()

    async def call() -> None:
        r = await limiter.aacquire(scope, LIMITS, 3000)
        try:
            assert r.wait_s == pytest.approx(30.0)
            sleeping.set()
            await asyncio.sleep(r.wait_s)  # cancelled long before this ends
            raise AssertionError("not reached")
        except BaseException:
            await limiter.arelease(r)
            raise

    task = asyncio.create_task(call())
    await sleeping.wait()
    assert limiter.stats(scope)[0].waiters == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert levels(limiter, scope) == before
    assert limiter.stats(scope)[0].waiters == 0


def test_header_sync_lowers_adopts_and_ignores_stale(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    limiter.acquire(scope, LIMITS, 1000)
    snap = RateLimitSnapshot(remaining={"tokens-minute": 2000, "requests-day": 10}, received_at=clock())
    effective = limiter.sync(scope, LIMITS, snap)
    assert effective == LIMITS  # no limit headers: nothing adopted
    assert levels(limiter, scope)["tokens_per_minute"] == 2000
    assert "requests_per_day" not in levels(limiter, scope)  # no known limit for that series

    # A higher remaining never raises local availability.
    clock.advance(1)
    limiter.sync(scope, LIMITS, RateLimitSnapshot(remaining={"tokens-minute": 6000}, received_at=clock()))
    assert levels(limiter, scope)["tokens_per_minute"] == 2100

    # Limit headers are adopted and override the user's limits.
    clock.advance(1)
    snap = RateLimitSnapshot(
        limit={"tokens-minute": 3000, "requests-day": 100},
        remaining={"requests-day": 40},
        received_at=clock(),
    )
    effective = limiter.sync(scope, LIMITS, snap)
    assert effective == RateLimits(requests_per_minute=60, tokens_per_minute=3000, requests_per_day=100)
    stats = {row.limit: row for row in limiter.stats(scope)}
    assert stats["tokens_per_minute"].capacity == 3000
    assert stats["tokens_per_minute"].level == pytest.approx(3000 - (6000 - 2200))  # units in use kept
    assert stats["requests_per_day"].level == pytest.approx(40)
    assert stats["requests_per_day"].last_sync == clock()
    with pytest.raises(RequestTooLargeError):
        limiter.acquire(scope, LIMITS, 3001)  # the header limit wins over the user's 6000

    # An older snapshot (a slow response landing late) is ignored.
    old = RateLimitSnapshot(remaining={"requests-day": 1}, limit={"requests-day": 5}, received_at=clock() - 0.5)
    assert limiter.sync(scope, LIMITS, old).requests_per_day == 100
    assert {row.limit: row for row in limiter.stats(scope)}["requests_per_day"].level == pytest.approx(40, abs=0.01)


def test_header_sync_subtracts_reservations_still_sleeping(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    limits = RateLimits(tokens_per_minute=6000)
    limiter.acquire(scope, limits, 6000)
    waiting = limiter.acquire(scope, limits, 600)  # sleeps 6 s: the server has not seen it
    assert waiting.wait_s == pytest.approx(6.0)
    snap = RateLimitSnapshot(remaining={"tokens-minute": 1000}, received_at=clock())
    limiter.sync(scope, limits, snap)
    # Level = 1000 - 600 in flight = 400 (local was -600, which is lower, so it stays).
    assert levels(limiter, scope)["tokens_per_minute"] == pytest.approx(-600)
    limiter.reset(scope)
    limits = RateLimits(tokens_per_minute=6000, requests_per_minute=1)
    limiter.acquire(scope, limits, 100)
    waiting = limiter.acquire(scope, limits, 500)
    assert waiting.wait_s == pytest.approx(60.0)  # sleeps on the RPM bucket
    limiter.sync(scope, limits, RateLimitSnapshot(remaining={"tokens-minute": 5000}, received_at=clock()))
    assert levels(limiter, scope)["tokens_per_minute"] == pytest.approx(4500)  # 5000 - 500 in flight
    limiter.sync(
        scope, limits, RateLimitSnapshot(remaining={"tokens-minute": 4000}, received_at=clock()), in_flight_tokens=0
    )
    assert levels(limiter, scope)["tokens_per_minute"] == pytest.approx(4000)  # caller's figure wins


def test_pause_makes_everyone_wait_with_jitter(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    granted = limiter.acquire(scope, LIMITS, 10)  # granted before the 429, wait 0
    assert limiter.pause_remaining(scope) == 0.0
    limiter.pause(scope, 5.0)
    limiter.pause(scope, 1.0)  # never shortened
    assert limiter.pause_remaining(scope) == pytest.approx(5.0)
    delay = limiter.send_delay(granted)
    assert 5.0 <= delay <= 6.0  # the granted reservation must not send during the pause
    waits = [limiter.acquire(scope, LIMITS, 10).wait_s for _ in range(40)]
    assert all(5.0 <= w <= 6.0 for w in waits)
    assert len({round(w, 3) for w in waits}) > 20  # spread, not one thundering herd
    assert [row.paused_s for row in limiter.stats(scope)] == [pytest.approx(5.0)] * 2
    with pytest.raises(RateLimitError) as info:
        limiter.acquire(scope, LIMITS, 10, max_wait=2.0)
    assert info.value.quota is None
    clock.advance(6.5)
    assert limiter.pause_remaining(scope) == 0.0
    assert limiter.send_delay(granted) == 0.0
    assert limiter.acquire(scope, LIMITS, 10).wait_s == 0.0
    limiter.pause(scope, 0)
    limiter.pause(scope, float("nan"))
    assert limiter.pause_remaining(scope) == 0.0
    assert limiter.pause_remaining(Scope("u", "f", "unknown")) == 0.0


async def test_async_twins(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    r = await limiter.aacquire(scope, LIMITS, 100)
    await limiter.asettle(r, 50)
    r2 = await limiter.aacquire(scope, LIMITS, 100)
    await limiter.arelease(r2)
    effective = await limiter.async_(
        scope, LIMITS, RateLimitSnapshot(remaining={"tokens-minute": 10}, received_at=clock())
    )
    assert effective == LIMITS
    await limiter.apause(scope, 2.0)
    assert await limiter.apause_remaining(scope) == pytest.approx(2.0)
    assert await limiter.asend_delay(r) >= 2.0
    rows = await limiter.astats(scope)
    assert {row.limit for row in rows} == {"requests_per_minute", "tokens_per_minute"}
    assert all(isinstance(row, BucketStats) for row in rows)


def test_stats_reports_every_scope(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    other = Scope(scope.base_url, scope.key_fingerprint, "other-model")
    limiter.acquire(scope, LIMITS, 6000)
    limiter.acquire(scope, LIMITS, 600)
    limiter.acquire(other, RateLimits(requests_per_day=10), 0)
    rows = limiter.stats()
    assert {(row.scope.model, row.limit) for row in rows} == {
        ("gpt-oss-120b", "requests_per_minute"),
        ("gpt-oss-120b", "tokens_per_minute"),
        ("other-model", "requests_per_day"),
    }
    mine = {row.limit: row for row in limiter.stats(scope)}
    assert mine["tokens_per_minute"].waiters == 1
    assert mine["tokens_per_minute"].level == pytest.approx(-600)
    assert mine["tokens_per_minute"].last_sync is None
    clock.advance(6)  # the waiter's start has come: no longer waiting
    assert limiter.stats(scope)[0].waiters == 0
    assert limiter.stats(Scope("x", "y", "z")) == []
    limiter.reset()
    assert limiter.stats() == []


def test_settle_after_reset_is_harmless(limiter: MemoryLimiter, scope: Scope) -> None:
    r = limiter.acquire(scope, LIMITS, 100)
    limiter.reset(scope)
    limiter.settle(r, 10)
    assert r.closed


def test_logging_debug_per_call_info_for_slow_waits_and_no_key(
    limiter: MemoryLimiter, clock, caplog: pytest.LogCaptureFixture
) -> None:
    key = "csk-do-not-log-me"
    scope = Scope("https://api.cerebras.ai/v1", key_fingerprint(key), "m")
    caplog.set_level(logging.DEBUG, logger="cerebras_paygo.ratelimit")
    r = limiter.acquire(scope, LIMITS, 6000)
    limiter.settle(r, 6000)
    slow = limiter.acquire(scope, LIMITS, 600)
    limiter.release(slow)
    limiter.sync(scope, LIMITS, RateLimitSnapshot(remaining={"tokens-minute": 1}, received_at=clock()))
    limiter.pause(scope, 3)
    records = [(rec.levelno, rec.getMessage()) for rec in caplog.records if rec.name == "cerebras_paygo.ratelimit"]
    assert any(level == logging.DEBUG and msg.startswith("acquire") for level, msg in records)
    assert any(level == logging.DEBUG and msg.startswith("settle") for level, msg in records)
    assert any(level == logging.INFO and msg.startswith("acquire") and "wait=6.000s" in msg for level, msg in records)
    assert any(level == logging.INFO and "paused" in msg for level, msg in records)
    assert key not in caplog.text
    assert key_fingerprint(key) in caplog.text


def test_real_clock_default() -> None:
    limiter = MemoryLimiter(rng=random.Random(0))
    scope = Scope("https://api.cerebras.ai/v1", "f", "m")
    r = limiter.acquire(scope, LIMITS, 10)
    assert r.wait_s == 0.0
    assert limiter.send_delay(r) == 0.0
    limiter.settle(r, 5)
    assert limiter.stats(scope)[1].level == pytest.approx(5995, abs=1)
