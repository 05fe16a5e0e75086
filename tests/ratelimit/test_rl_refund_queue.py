"""Refunds reach the queue: tokens a finished request did not use shorten the waits of later bookings."""

from __future__ import annotations

import pytest

from cerebras_paygo._ratelimit import MemoryLimiter, RateLimits, Scope
from cerebras_paygo._wire import RateLimitSnapshot

TPM = RateLimits(tokens_per_minute=6000)  # 100 tokens/s


def test_settle_refund_moves_queued_bookings_earlier(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    first = limiter.acquire(scope, TPM, 6000)
    second = limiter.acquire(scope, TPM, 3000)
    third = limiter.acquire(scope, TPM, 3000)
    assert first.wait_s == 0
    assert limiter.send_delay(second) == pytest.approx(30.0)
    assert limiter.send_delay(third) == pytest.approx(60.0)
    clock.advance(1.0)
    limiter.settle(first, 600)  # used 600 of 6000: 5400 tokens (54 s of refill) come back
    assert limiter.send_delay(second) == 0.0
    assert limiter.send_delay(third) == pytest.approx(60.0 - 1.0 - 54.0)


def test_release_of_a_sleeping_booking_moves_only_later_ones(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    limiter.acquire(scope, TPM, 6000)
    second = limiter.acquire(scope, TPM, 3000)
    third = limiter.acquire(scope, TPM, 3000)
    fourth = limiter.acquire(scope, TPM, 3000)
    limiter.release(third)  # cancelled while sleeping
    assert limiter.send_delay(second) == pytest.approx(30.0)
    assert limiter.send_delay(fourth) == pytest.approx(60.0)


def test_fifo_order_survives_refunds(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    head = limiter.acquire(scope, TPM, 6000)
    queue = [limiter.acquire(scope, TPM, n) for n in (4000, 100, 2000, 100)]
    limiter.settle(head, 1000)
    delays = [limiter.send_delay(r) for r in queue]
    assert delays == sorted(delays)


def test_extra_charge_and_header_correction_move_the_queue_later(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    head = limiter.acquire(scope, TPM, 3000)
    queued = limiter.acquire(scope, TPM, 6000)
    before = limiter.send_delay(queued)
    limiter.settle(head, 3600)  # the estimate was 600 tokens short
    assert limiter.send_delay(queued) == pytest.approx(before + 6.0)
    snapshot = RateLimitSnapshot(limit={"tokens-minute": 6000}, remaining={"tokens-minute": 0}, received_at=clock())
    limiter.sync(scope, TPM, snapshot)
    assert limiter.send_delay(queued) >= before + 6.0


def test_booking_moved_earlier_stays_early_after_bookkeeping(limiter: MemoryLimiter, scope: Scope, clock) -> None:
    """Regression: once a refunded booking's new start passed, bookkeeping (stats, sync, acquire)
    must not send it back to its original, far-future start."""
    head = limiter.acquire(scope, TPM, 6000)
    queued = limiter.acquire(scope, TPM, 3000)
    limiter.settle(head, 600)
    clock.advance(0.5)
    limiter.stats()  # runs the limiter's bookkeeping of sleeping reservations
    limiter.acquire(scope, TPM, 10)
    assert limiter.send_delay(queued) == 0.0
