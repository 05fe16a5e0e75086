"""One suite, every backend: memory, Redis and Redis Cluster give the same outcomes.

Redis keeps its own clock (``TIME``); the ``clock.advance`` of these tests moves the scripts' test
offset with the local clock, so waits are compared with a tolerance for the milliseconds Redis'
real clock moves during a test.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from cerebras_paygo._ratelimit import Limiter, MemoryLimiter, RateLimits, Scope
from cerebras_paygo._ratelimit.gcra import US
from cerebras_paygo._wire import RateLimitSnapshot
from cerebras_paygo.errors import RateLimitError, RequestTooLargeError
from tests.ratelimit.conftest import FakeClock

LIMITS = RateLimits(requests_per_minute=60, tokens_per_minute=6000)
TPM = RateLimits(tokens_per_minute=6000)  # 100 tokens/s
TOL = 0.05  # seconds of Redis real time a test may take


@dataclass
class Backend:
    name: str
    limiter: Limiter
    clock: FakeClock
    advance: Callable[[float], None]


def _redis_backend(name: str, var: str, scheme: str) -> Iterator[Backend]:
    url = os.environ.get(var)
    if not url:
        pytest.skip(f"{var} is not set (e.g. {var}=redis://127.0.0.1:6379/15)")
    clock = FakeClock()
    limiter = Limiter.from_url(
        url.replace("redis://", scheme, 1),
        prefix=f"cptest:{uuid.uuid4().hex[:12]}",
        clock=clock,
        rng=random.Random(1234),
    )
    storages = [limiter._storage, limiter._astorage]

    def advance(seconds: float) -> None:
        clock.advance(seconds)
        for storage in storages:
            storage.codec.time_offset_us += round(seconds * US)  # type: ignore[union-attr]

    yield Backend(name, limiter, clock, advance)
    limiter.reset()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()
        yield Backend("memory", MemoryLimiter(clock=clock, rng=random.Random(1234)), clock, clock.advance)
    elif request.param == "redis":
        yield from _redis_backend("redis", "CEREBRAS_PAYGO_REDIS_URL", "redis://")
    else:
        yield from _redis_backend("redis-cluster", "CEREBRAS_PAYGO_REDIS_CLUSTER_URL", "redis+cluster://")


def levels(limiter: Limiter, scope: Scope) -> dict[str, float]:
    return {row.limit: row.level for row in limiter.stats(scope)}


def approx(value: float) -> object:
    return pytest.approx(value, abs=TOL)


def units(value: float) -> object:
    """A bucket level: TOL seconds of refill at up to 100 units/s."""
    return pytest.approx(value, abs=100 * TOL + 1)


def test_fifo_waits(backend: Backend, scope: Scope) -> None:
    lim = backend.limiter
    waits = [lim.acquire(scope, TPM, n).wait_s for n in (6000, 3000, 3000, 1)]
    assert waits == [approx(0.0), approx(30.0), approx(60.0), approx(60.01)]
    starts = [lim.acquire(scope, RateLimits(tokens_per_minute=6000), n).start for n in (600, 10, 300)]
    assert starts == sorted(starts)


def test_settle_refund_moves_queued_bookings_earlier(backend: Backend, scope: Scope) -> None:
    lim = backend.limiter
    first = lim.acquire(scope, TPM, 6000)
    second = lim.acquire(scope, TPM, 3000)
    third = lim.acquire(scope, TPM, 3000)
    backend.advance(1.0)
    lim.settle(first, 600)  # 5400 tokens (54 s of refill) come back
    assert lim.send_delay(second) == 0.0
    assert lim.send_delay(third) == approx(60.0 - 1.0 - 54.0)
    assert levels(lim, scope)["tokens_per_minute"] == units(6000 - 600 - 3000 - 3000 + 100)


def test_release_mid_queue_moves_only_later_bookings(backend: Backend, scope: Scope) -> None:
    lim = backend.limiter
    lim.acquire(scope, TPM, 6000)
    second = lim.acquire(scope, TPM, 3000)
    third = lim.acquire(scope, TPM, 3000)
    fourth = lim.acquire(scope, TPM, 3000)
    lim.release(third)
    lim.release(third)  # idempotent
    assert lim.send_delay(second) == approx(30.0)
    assert lim.send_delay(fourth) == approx(60.0)
    assert lim.stats(scope)[0].waiters == 2


def test_extra_charge_moves_the_queue_later(backend: Backend, scope: Scope) -> None:
    lim = backend.limiter
    head = lim.acquire(scope, TPM, 3000)
    queued = lim.acquire(scope, TPM, 6000)
    before = lim.send_delay(queued)
    lim.settle(head, 3600)
    assert lim.send_delay(queued) == approx(before + 6.0)


def test_header_sync_lowers_adopts_and_ignores_stale(backend: Backend, scope: Scope) -> None:
    lim, clock = backend.limiter, backend.clock
    lim.acquire(scope, LIMITS, 1000)
    effective = lim.apply_headers(
        scope, LIMITS, RateLimitSnapshot(remaining={"tokens-minute": 2000}, received_at=clock())
    )
    assert effective == LIMITS
    assert levels(lim, scope)["tokens_per_minute"] == units(2000)
    backend.advance(1)
    lim.apply_headers(scope, LIMITS, RateLimitSnapshot(remaining={"tokens-minute": 6000}, received_at=clock()))
    assert levels(lim, scope)["tokens_per_minute"] == units(2100)  # a higher remaining never raises it
    backend.advance(1)
    snap = RateLimitSnapshot(
        limit={"tokens-minute": 3000, "requests-day": 100}, remaining={"requests-day": 40}, received_at=clock()
    )
    effective = lim.sync(scope, LIMITS, snap)  # the deprecated alias still works
    assert effective == RateLimits(requests_per_minute=60, tokens_per_minute=3000, requests_per_day=100)
    rows = {row.limit: row for row in lim.stats(scope)}
    assert rows["tokens_per_minute"].capacity == 3000
    assert rows["tokens_per_minute"].level == pytest.approx(3000 - (6000 - 2200), abs=5)
    assert rows["requests_per_day"].level == units(40)
    assert rows["requests_per_day"].last_sync == pytest.approx(clock(), abs=TOL)
    with pytest.raises(RequestTooLargeError):
        lim.acquire(scope, LIMITS, 3001)
    old = RateLimitSnapshot(remaining={"requests-day": 1}, limit={"requests-day": 5}, received_at=clock() - 0.5)
    assert lim.apply_headers(scope, LIMITS, old).requests_per_day == 100


def test_header_sync_subtracts_reservations_still_sleeping(backend: Backend, scope: Scope) -> None:
    lim, clock = backend.limiter, backend.clock
    limits = RateLimits(tokens_per_minute=6000, requests_per_minute=1)
    lim.acquire(scope, limits, 100)
    waiting = lim.acquire(scope, limits, 500)
    assert waiting.wait_s == approx(60.0)
    lim.apply_headers(scope, limits, RateLimitSnapshot(remaining={"tokens-minute": 5000}, received_at=clock()))
    assert levels(lim, scope)["tokens_per_minute"] == units(4500)


def test_pause_with_per_booking_jitter(backend: Backend, scope: Scope) -> None:
    lim = backend.limiter
    granted = lim.acquire(scope, LIMITS, 10)
    lim.pause(scope, 5.0)
    lim.pause(scope, 1.0)  # never shortened
    assert lim.pause_remaining(scope) == approx(5.0)
    assert 5.0 - TOL <= lim.send_delay(granted) <= 6.0
    waits = [lim.acquire(scope, LIMITS, 10).wait_s for _ in range(20)]
    assert all(5.0 - TOL <= w <= 6.0 for w in waits)
    assert len({round(w, 2) for w in waits}) > 10
    with pytest.raises(RateLimitError) as info:
        lim.acquire(scope, LIMITS, 10, max_wait=2.0)
    assert info.value.quota is None
    backend.advance(6.5)
    assert lim.pause_remaining(scope) == 0.0
    assert lim.send_delay(granted) == 0.0


def test_max_wait_refusal_books_nothing(backend: Backend, scope: Scope) -> None:
    lim = backend.limiter
    lim.acquire(scope, LIMITS, 6000)
    before = levels(lim, scope)
    with pytest.raises(RateLimitError) as info:
        lim.acquire(scope, LIMITS, 500, max_wait=1.0)
    assert info.value.quota == "tokens"
    assert info.value.retry_after == approx(5.0)
    after = levels(lim, scope)
    # Nothing booked: no 500-token drop; Redis' real clock may refill a few tokens meanwhile
    # (rounding both sides failed when 0.49 became 0.5 between the two reads).
    assert after.keys() == before.keys()
    assert all(before[k] - 1e-3 <= after[k] <= before[k] + 10 for k in before)
    assert lim.stats(scope)[0].waiters == 0
    assert lim.acquire(scope, LIMITS, 500, max_wait=5.5).wait_s == approx(5.0)


def test_too_large_books_nothing(backend: Backend, scope: Scope) -> None:
    lim = backend.limiter
    lim.acquire(scope, LIMITS, 100)
    with pytest.raises(RequestTooLargeError) as info:
        lim.acquire(scope, LIMITS, 6001)
    assert (info.value.limit_name, info.value.needed, info.value.capacity) == ("tokens_per_minute", 6001, 6000)
    assert levels(lim, scope)["tokens_per_minute"] == units(5900)


def test_stats_and_reset(backend: Backend, scope: Scope) -> None:
    lim = backend.limiter
    other = Scope(scope.base_url, scope.key_fingerprint, "other-model")
    lim.acquire(scope, LIMITS, 6000)
    lim.acquire(scope, LIMITS, 600)
    lim.acquire(other, RateLimits(requests_per_day=10), 0)
    assert {(row.scope.model, row.limit) for row in lim.stats()} == {
        ("gpt-oss-120b", "requests_per_minute"),
        ("gpt-oss-120b", "tokens_per_minute"),
        ("other-model", "requests_per_day"),
    }
    mine = {row.limit: row for row in lim.stats(scope)}
    assert mine["tokens_per_minute"].waiters == 1
    assert mine["tokens_per_minute"].level == units(-600)
    assert mine["tokens_per_minute"].last_sync is None
    backend.advance(6.1)
    assert lim.stats(scope)[0].waiters == 0
    assert lim.stats(Scope("x", "y", "z")) == []
    lim.reset()
    assert lim.stats() == []


def test_async_twins(backend: Backend, scope: Scope) -> None:
    lim, clock = backend.limiter, backend.clock

    async def main() -> None:
        r = await lim.aacquire(scope, TPM, 6000)
        queued = await lim.aacquire(scope, TPM, 3000)
        assert await lim.asend_delay(queued) == approx(30.0)
        await lim.asettle(r, 3000)
        assert await lim.asend_delay(queued) == 0.0
        r2 = await lim.aacquire(scope, TPM, 100)
        await lim.arelease(r2)
        await lim.aapply_headers(scope, TPM, RateLimitSnapshot(remaining={"tokens-minute": 10}, received_at=clock()))
        await lim.async_(scope, TPM, RateLimitSnapshot(remaining={"tokens-minute": 10}, received_at=clock()))
        await lim.apause(scope, 2.0)
        assert await lim.apause_remaining(scope) == approx(2.0)
        rows = await lim.astats(scope)
        assert [row.limit for row in rows] == ["tokens_per_minute"]
        assert rows[0].level == units(0)  # 6000 - 3000 - 3000; the remaining of 10 never raises it

    asyncio.run(main())
