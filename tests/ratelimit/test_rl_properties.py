"""Property-based tests of the bucket math (``gcra``), with hypothesis.

A simulated set of holders books, sends exactly at each booking's current start, settles (never
above the reservation) or cancels while waiting, at random times. Whatever the sequence:

- never more units sent than the bucket allows over any interval (capacity + refill);
- a refund never makes a bucket fuller than full (``tat >= now``) and never reorders the queue;
- every pending booking's start, as the holder would read it, is never before now.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cerebras_paygo._ratelimit import gcra
from cerebras_paygo._ratelimit.gcra import US, Booking, ScopeState

LIMIT, WINDOW = 1000, 60 * US
LIMITS = {"tokens_per_minute": LIMIT, "requests_per_minute": 20}

op = st.one_of(
    st.tuples(st.just("book"), st.integers(0, LIMIT), st.floats(0.0, 1.0)),
    st.tuples(st.just("wait"), st.integers(0, 20 * US)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
)


def _send_due(
    state: ScopeState, now: int, open_: dict[int, Booking], sent: list[tuple[int, int]], fraction: dict[int, float]
) -> None:
    for seq, booking in sorted(open_.items()):
        if gcra.start_of(state, booking) <= now:
            gcra.forget_started(state, booking)
            actual = int(booking.tokens * fraction[seq])
            gcra.settle(state, booking, actual, now)
            assert state.buckets["tokens_per_minute"].tat >= now
            sent.append((now, actual))
            del open_[seq]


def _check_queue(state: ScopeState, now: int, open_: dict[int, Booking]) -> None:
    starts = [max(now, gcra.start_of(state, b)) for _, b in sorted(open_.items())]
    assert starts == sorted(starts)  # FIFO survives every refund
    assert all(s >= now for s in starts)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, min_size=1, max_size=60))
def test_never_more_than_capacity_over_any_interval(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    state = ScopeState()
    now = 1_000 * US
    open_: dict[int, Booking] = {}
    fraction: dict[int, float] = {}
    sent: list[tuple[int, int]] = []
    for item in ops:
        if item[0] == "book":
            booking = gcra.reserve(state, LIMITS, item[1], now)
            open_[booking.seq] = booking
            fraction[booking.seq] = item[2]
        elif item[0] == "cancel" and open_:
            seq = sorted(open_)[item[1] % len(open_)]
            booking = open_.pop(seq)
            gcra.release(state, booking, now)
            assert state.buckets["tokens_per_minute"].tat >= now
        elif item[0] == "wait":
            # Advance to each start on the way, so holders send exactly when allowed.
            target = now + item[1]
            while True:
                due = [gcra.start_of(state, b) for b in open_.values()]
                nxt = min((d for d in due if d > now), default=None)
                if nxt is None or nxt > target:
                    break
                now = nxt
                _send_due(state, now, open_, sent, fraction)
            now = target
        _send_due(state, now, open_, sent, fraction)
        _check_queue(state, now, open_)
    # Token-bucket conformance: units sent in [t1, t2] <= capacity + refill over t2 - t1 (+1 for
    # the microsecond rounding of costs).
    sent.sort()
    for i, (t1, _) in enumerate(sent):
        total = 0
        for t2, units in sent[i:]:
            total += units
            assert total <= LIMIT + (t2 - t1) * LIMIT / WINDOW + 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, LIMIT), min_size=2, max_size=40), st.data())
def test_refunds_move_only_later_bookings_and_never_before_now(sizes: list[int], data: st.DataObject) -> None:
    state = ScopeState()
    now = 1_000 * US
    bookings = [gcra.reserve(state, LIMITS, n, now) for n in sizes]
    victim = data.draw(st.integers(0, len(bookings) - 1))
    before = [gcra.start_of(state, b) for b in bookings]
    gcra.release(state, bookings[victim], now)
    after = [gcra.start_of(state, b) for b in bookings]
    for i in range(len(bookings)):
        if i < victim:
            assert after[i] == before[i]  # earlier bookings keep their start (no over-grant)
        elif i > victim and before[i] > now:
            assert after[i] <= before[i]
            assert max(now, after[i]) >= now
    assert state.buckets["tokens_per_minute"].tat >= now
