"""The sans-IO bucket math, driven with explicit ``now`` values (integer microseconds)."""

from __future__ import annotations

import pytest

from cerebras_paygo._ratelimit import gcra
from cerebras_paygo._ratelimit.gcra import PAUSE, US, ScopeState
from cerebras_paygo._wire import RateLimitSnapshot
from cerebras_paygo.errors import RateLimitError, RequestTooLargeError

T0 = 1_000 * US
RPM = {"requests_per_minute": 60}
TPM = {"tokens_per_minute": 100}
BOTH = {"requests_per_minute": 2, "tokens_per_minute": 1000}


def level(state: ScopeState, name: str, now: int) -> float:
    return state.buckets[name].level(now)


def test_bucket_starts_full_and_refills_continuously() -> None:
    state = ScopeState()
    starts = [gcra.reserve(state, RPM, 0, T0).start for _ in range(60)]
    assert starts == [T0] * 60  # the whole burst fits a full bucket
    assert level(state, "requests_per_minute", T0) == pytest.approx(0)
    late = gcra.reserve(state, RPM, 0, T0)
    assert late.start == T0 + 1 * US  # one request per second refills
    assert late.binding == "requests_per_minute"
    assert level(state, "requests_per_minute", T0 + 30 * US) == pytest.approx(29)
    assert level(state, "requests_per_minute", T0 + 3600 * US) == 60  # never fuller than full


def test_fifo_large_request_is_not_starved_by_small_ones() -> None:
    state = ScopeState()
    assert gcra.reserve(state, TPM, 90, T0).start == T0
    big = gcra.reserve(state, TPM, 100, T0 + 1 * US)
    # 100 tokens are available once the 90 have refilled: 90 * 0.6 s after T0.
    assert big.start == T0 + 54 * US
    smalls = [gcra.reserve(state, TPM, 5, T0 + (2 + i) * US) for i in range(20)]
    assert all(s.start > big.start for s in smalls)
    assert [s.start for s in smalls] == sorted(s.start for s in smalls)


def test_booking_is_all_or_nothing_across_requests_and_tokens() -> None:
    state = ScopeState()
    gcra.reserve(state, BOTH, 10, T0)
    gcra.reserve(state, BOTH, 10, T0)
    before = {name: b.tat for name, b in state.buckets.items()}
    with pytest.raises(RateLimitError) as info:
        gcra.reserve(state, BOTH, 10, T0, max_wait=0)
    assert info.value.quota == "requests"
    assert info.value.retry_after == pytest.approx(30.0)
    assert {name: b.tat for name, b in state.buckets.items()} == before  # TPM untouched too

    state = ScopeState()
    gcra.reserve(state, BOTH, 990, T0)
    before = {name: b.tat for name, b in state.buckets.items()}
    with pytest.raises(RateLimitError) as info:
        gcra.reserve(state, BOTH, 20, T0, max_wait=US // 10)
    assert info.value.quota == "tokens"
    assert info.value.type == "local_rate_limit"
    assert {name: b.tat for name, b in state.buckets.items()} == before  # RPM untouched too


def test_max_wait_allows_a_wait_within_the_bound() -> None:
    state = ScopeState()
    gcra.reserve(state, TPM, 100, T0)
    booking = gcra.reserve(state, TPM, 10, T0, max_wait=6 * US)
    assert booking.start == T0 + 6 * US


def test_oversize_request_raises_at_once_and_books_nothing() -> None:
    state = ScopeState()
    gcra.reserve(state, BOTH, 10, T0)
    before = {name: b.tat for name, b in state.buckets.items()}
    with pytest.raises(RequestTooLargeError) as info:
        gcra.reserve(state, BOTH, 1001, T0)
    assert (info.value.needed, info.value.capacity, info.value.limit_name) == (1001, 1000, "tokens_per_minute")
    assert {name: b.tat for name, b in state.buckets.items()} == before
    assert gcra.reserve(state, BOTH, 990, T0).start == T0  # the full capacity can be booked


def test_settle_refunds_unused_tokens_at_once_and_charges_extra() -> None:
    state = ScopeState()
    limits = {"tokens_per_minute": 1000}
    booking = gcra.reserve(state, limits, 500, T0)
    gcra.settle(state, booking, 100, T0)
    assert level(state, "tokens_per_minute", T0) == pytest.approx(900)
    booking = gcra.reserve(state, limits, 100, T0)
    gcra.settle(state, booking, 300, T0)
    assert level(state, "tokens_per_minute", T0) == pytest.approx(600)


def test_refund_never_makes_a_bucket_fuller_than_full() -> None:
    state = ScopeState()
    limits = {"tokens_per_minute": 1000}
    booking = gcra.reserve(state, limits, 600, T0)
    now = T0 + 30 * US  # 500 tokens refilled: level 900
    assert level(state, "tokens_per_minute", now) == pytest.approx(900)
    gcra.settle(state, booking, 0, now)
    assert level(state, "tokens_per_minute", now) == 1000
    gcra.release(state, gcra.reserve(state, limits, 0, now), now)
    assert level(state, "tokens_per_minute", now) == 1000
    assert state.buckets["tokens_per_minute"].tat == now


def test_release_returns_request_and_tokens_exactly() -> None:
    state = ScopeState()
    limits = {"requests_per_minute": 7, "tokens_per_minute": 997}  # costs that do not divide evenly
    bookings = [gcra.reserve(state, limits, 123, T0) for _ in range(7)]
    assert bookings[-1].start > T0
    for booking in reversed(bookings):
        gcra.release(state, booking, T0)
    assert {name: b.tat for name, b in state.buckets.items()} == {
        "requests_per_minute": T0,
        "tokens_per_minute": T0,
    }
    # Settle to the reserved amount changes nothing.
    booking = gcra.reserve(state, limits, 50, T0)
    tat = state.buckets["tokens_per_minute"].tat
    gcra.settle(state, booking, 50, T0)
    assert state.buckets["tokens_per_minute"].tat == tat


def test_rounding_does_not_drift_over_many_bookings() -> None:
    state = ScopeState()
    limits = {"tokens_per_minute": 999_983}
    for i in range(10_000):
        booking = gcra.reserve(state, limits, 37 + i % 11, T0)
        gcra.settle(state, booking, 0, T0)
    assert state.buckets["tokens_per_minute"].tat == T0


def test_header_sync_lowers_local_availability() -> None:
    state = ScopeState()
    limits = {"tokens_per_minute": 1000}
    gcra.reserve(state, limits, 100, T0)  # local level 900
    snapshot = RateLimitSnapshot(remaining={"tokens-minute": 400}, received_at=T0 / US)
    assert gcra.apply_snapshot(state, _rl(limits), snapshot, T0)
    assert level(state, "tokens_per_minute", T0) == pytest.approx(400)
    assert state.buckets["tokens_per_minute"].synced_at == T0 / US


def test_header_sync_never_raises_local_availability() -> None:
    state = ScopeState()
    limits = {"tokens_per_minute": 1000}
    gcra.reserve(state, limits, 700, T0)
    snapshot = RateLimitSnapshot(remaining={"tokens-minute": 950}, received_at=T0 / US)
    gcra.apply_snapshot(state, _rl(limits), snapshot, T0)
    assert level(state, "tokens_per_minute", T0) == pytest.approx(300)


def test_header_sync_subtracts_tokens_in_flight() -> None:
    state = ScopeState()
    snapshot = RateLimitSnapshot(remaining={"tokens-minute": 900, "requests-day": 50}, received_at=T0 / US)
    limits = {"tokens_per_minute": 1000, "requests_per_day": 100}
    gcra.apply_snapshot(state, _rl(limits), snapshot, T0, in_flight_tokens=200, in_flight_requests=3)
    assert level(state, "tokens_per_minute", T0) == pytest.approx(700)
    assert level(state, "requests_per_day", T0) == pytest.approx(47)


def test_header_sync_credits_refill_since_the_snapshot() -> None:
    state = ScopeState()
    snapshot = RateLimitSnapshot(remaining={"tokens-minute": 400}, received_at=(T0 - 6 * US) / US)
    gcra.apply_snapshot(state, _rl({"tokens_per_minute": 1000}), snapshot, T0)
    assert level(state, "tokens_per_minute", T0) == pytest.approx(500)  # 400 + 6 s of 1000/min


def test_header_limits_are_adopted_and_override_given_limits() -> None:
    state = ScopeState()
    limits = {"tokens_per_minute": 1000}
    gcra.reserve(state, limits, 600, T0)
    snapshot = RateLimitSnapshot(
        limit={"tokens-minute": 2000, "requests-day": 14_400}, remaining={}, received_at=T0 / US
    )
    gcra.apply_snapshot(state, _rl(limits), snapshot, T0)
    effective = gcra.effective_limits(state, _rl(limits))
    assert effective == {"tokens_per_minute": 2000, "requests_per_day": 14_400}
    bucket = state.buckets["tokens_per_minute"]
    assert bucket.limit == 2000
    assert bucket.level(T0) == pytest.approx(1400)  # the 600 in use are kept
    # A smaller header limit shrinks capacity: a request larger than it can never pass.
    gcra.apply_snapshot(state, _rl(limits), RateLimitSnapshot(limit={"tokens-minute": 500}, received_at=1001), T0)
    with pytest.raises(RequestTooLargeError):
        gcra.reserve(state, gcra.effective_limits(state, _rl(limits)), 600, T0)


def test_stale_snapshot_is_ignored() -> None:
    state = ScopeState()
    limits = _rl({"tokens_per_minute": 1000})
    assert gcra.apply_snapshot(
        state, limits, RateLimitSnapshot(remaining={"tokens-minute": 800}, received_at=999.5), T0
    )
    stale = RateLimitSnapshot(remaining={"tokens-minute": 10}, limit={"tokens-minute": 50}, received_at=999.0)
    assert not gcra.apply_snapshot(state, limits, stale, T0)
    assert level(state, "tokens_per_minute", T0) == pytest.approx(800 + 1000 * 0.5 / 60)
    assert state.header_limits == {}


def test_snapshot_without_limit_for_a_series_is_skipped() -> None:
    state = ScopeState()
    snapshot = RateLimitSnapshot(remaining={"tokens-hour": 5}, received_at=T0 / US)
    assert gcra.apply_snapshot(state, _rl({"tokens_per_minute": 1000}), snapshot, T0)
    assert "tokens_per_hour" not in state.buckets


def test_pause_delays_every_booking_with_jitter_and_is_never_shortened() -> None:
    state = ScopeState()
    gcra.pause(state, T0, 10 * US, US)
    gcra.pause(state, T0, 2 * US, 0)  # a shorter pause does not shorten the first
    assert gcra.pause_remaining(state, T0) == 10 * US
    early = gcra.reserve(state, RPM, 0, T0, jitter=0.0)
    late = gcra.reserve(state, RPM, 0, T0, jitter=0.5)
    assert (early.start, early.binding) == (T0 + 10 * US, PAUSE)
    assert late.start == T0 + 10 * US + US // 2
    with pytest.raises(RateLimitError) as info:
        gcra.reserve(state, RPM, 0, T0, max_wait=5 * US)
    assert info.value.quota is None
    assert gcra.pause_remaining(state, T0 + 11 * US) == 0
    assert gcra.reserve(state, RPM, 0, T0 + 11 * US).binding is None


def _rl(limits: dict[str, int]) -> gcra.RateLimits:
    return gcra.RateLimits(**limits)
