"""The bucket math of the limiter: sans-IO GCRA in reservation mode.

No locks, no clock, no randomness: every function takes ``now`` (integer microseconds of one
monotonic clock) and mutates the ``ScopeState`` it is given. The memory backend runs it under one
lock; the Redis backend is meant to run the same steps in Lua (keep the two in step).

Model. One ``Bucket`` per limit name (``"tokens_per_minute"``, ...) holds a single number, the
theoretical arrival time ``tat``: the instant at which the bucket is full again if nothing more is
booked. With capacity ``L`` units per window ``W``::

    level(now) = L - (tat - now) * L / W      (= L when tat <= now: a bucket starts full)
    cost(n)    = ceil(n * W / L)              microseconds of refill that n units take

Booking ``n`` units moves ``tat`` to ``max(tat, now) + cost(n)``; the booking may start once
``new_tat - W <= t``. Reservation mode books at once even when that start lies in the future, so
the next booking queues behind it: FIFO by construction, a large request is never starved by a
stream of small ones, and nobody polls. A booking is all-or-nothing across every bucket of the
scope and against ``max_wait``.

Refunds reach the queue. Cerebras reserves the whole ``max_completion_tokens`` up front and most
requests use far less, so the refill time a settle or release gives back is handed to the bookings
queued behind it: every later pending booking's start on that bucket moves earlier by exactly the
refunded cost (and later by an extra charge or a header correction). Throughput then follows the
tokens really used, not the tokens reserved, and the queue keeps its FIFO order.

Units. Integer microseconds avoid the float drift of summing tiny emission intervals (a 1M TPM
bucket refills one token every 60 us). Costs round up by under one microsecond per booking, and a
refund subtracts exactly what its booking added, so nothing drifts while the limit is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cerebras_paygo._ratelimit.limits import HEADER_LIMIT_NAMES, LIMIT_WINDOWS, RateLimits
from cerebras_paygo._wire import RateLimitSnapshot
from cerebras_paygo.errors import LocalRateLimitError, RequestTooLargeError

__all__ = [
    "PAUSE",
    "US",
    "Booking",
    "Bucket",
    "Pending",
    "ScopeState",
    "Shifts",
    "advance",
    "apply_snapshot",
    "effective_limits",
    "forget_started",
    "max_wait_error",
    "pause",
    "pause_remaining",
    "release",
    "reserve",
    "resume_at",
    "settle",
    "start_of",
    "to_us",
    "too_large_error",
]

#: Microseconds per second.
US = 1_000_000
#: ``Booking.binding`` when a 429 pause, not a bucket, set the start time.
PAUSE = "pause"

_LIMIT_NAMES: tuple[str, ...] = tuple(LIMIT_WINDOWS)
_WINDOW_US: dict[str, int] = {name: round(window * US) for name, (_, window) in LIMIT_WINDOWS.items()}
_COUNTS_TOKENS: dict[str, bool] = {name: kind == "tokens" for name, (kind, _) in LIMIT_WINDOWS.items()}


def to_us(seconds: float) -> int:
    """Seconds (a ``time.monotonic()`` reading or a duration) -> integer microseconds."""
    return round(seconds * US)


@dataclass(slots=True)
class Bucket:
    """One limit of one scope: ``limit`` units per ``window_us``, state = ``tat``."""

    name: str
    limit: int
    window_us: int
    counts_tokens: bool
    tat: int
    #: ``received_at`` of the last header snapshot that touched this bucket (None: never synced).
    synced_at: float | None = None

    @classmethod
    def full(cls, name: str, limit: int, now: int) -> Bucket:
        return cls(name, limit, _WINDOW_US[name], _COUNTS_TOKENS[name], now)

    def cost(self, units: int) -> int:
        """Microseconds of refill that ``units`` take (rounded up)."""
        return -(-units * self.window_us // self.limit)

    def level(self, now: int) -> float:
        """Units available at ``now``; negative when bookings reach into the future."""
        used = self.tat - now
        if used <= 0:
            return float(self.limit)
        return self.limit - used * self.limit / self.window_us

    def set_limit(self, limit: int, now: int) -> None:
        """Adopt a new capacity, keeping the units in use (what the server has counted)."""
        if limit == self.limit:
            return
        used = self.tat - now
        if used > 0:
            self.tat = now + -(-used * self.limit // limit)
        self.limit = limit


class Shifts:
    """Per-bucket "move every booking after ``seq``" offsets: Fenwick trees over sequence numbers.

    Position ``p`` (1-based) stands for sequence number ``base + p - 1``. ``add_after`` and
    ``value`` are O(log cap); ``rebase`` (O(pending)) runs when a new sequence number falls past
    ``cap``, folding every pending booking's current start into its raw value, so the trees cover
    only the live span of the queue and their size stays within twice the number of waiters.
    """

    __slots__ = ("base", "cap", "trees")

    MIN_CAP = 64

    def __init__(self) -> None:
        self.base = 0
        self.cap = self.MIN_CAP
        self.trees: dict[str, list[int]] = {}

    def add_after(self, seq: int | None, name: str, delta: int) -> None:
        """Move the bookings with a sequence number above ``seq`` (all of them when None)."""
        pos = 1 if seq is None else max(1, seq - self.base + 2)
        if not delta or pos > self.cap:
            return
        tree = self.trees.get(name)
        if tree is None:
            tree = self.trees[name] = [0] * (self.cap + 1)
        while pos <= self.cap:
            tree[pos] += delta
            pos += pos & -pos

    def value(self, seq: int, name: str) -> int:
        """The sum of the moves that apply to booking ``seq`` on bucket ``name``."""
        tree = self.trees.get(name)
        if tree is None:
            return 0
        pos = seq - self.base + 1
        total = 0
        while pos > 0:
            total += tree[pos]
            pos -= pos & -pos
        return total

    def make_room(self, seq: int, pending: dict[int, Pending]) -> None:
        """Make sure ``seq`` has a position; rebase when it has not (amortized O(1) per booking)."""
        if seq - self.base < self.cap:
            return
        for entry_seq, entry in pending.items():
            for name in entry.raw:
                entry.raw[name] += self.value(entry_seq, name)
        self.base = min(pending, default=seq)
        span = seq - self.base + 1
        cap = self.MIN_CAP
        while cap < 2 * span:
            cap *= 2
        self.cap = cap
        self.trees = {}


@dataclass(slots=True)
class Pending:
    """A booking whose start lies in the future: per-bucket raw starts (see ``Shifts``)."""

    raw: dict[str, int]
    tokens: int
    requests: int


@dataclass(slots=True)
class ScopeState:
    """Everything the limiter knows of one (base URL, key, model)."""

    buckets: dict[str, Bucket] = field(default_factory=dict)
    #: Limits adopted from ``x-ratelimit-limit-*``; they override user and catalog limits.
    header_limits: dict[str, int] = field(default_factory=dict)
    #: 429 pause: nothing starts before this instant (us).
    blocked_until: int = 0
    #: Width of the random spread (us) added to ``blocked_until`` per booking.
    pause_jitter_us: int = 0
    #: ``received_at`` of the newest snapshot applied; older ones are ignored.
    last_sync_at: float | None = None
    #: Bookings whose start lies in the future (they are "waiting"), by sequence number.
    pending: dict[int, Pending] = field(default_factory=dict)
    #: Moves of the pending bookings' starts since they were booked (refunds, corrections).
    shifts: Shifts = field(default_factory=Shifts)
    next_seq: int = 0
    #: No pending booking has a sequence number below this (``advance``'s head pointer).
    head: int = 0
    #: Tokens and requests of the pending bookings: booked here, not yet counted by the server.
    waiting_tokens: int = 0
    waiting_requests: int = 0


@dataclass(frozen=True, slots=True)
class Booking:
    """What one ``reserve`` booked; settle and release undo it exactly."""

    start: int
    names: tuple[str, ...]
    tokens: int
    requests: int
    #: The limit name (or ``PAUSE``) that set ``start``; None when it could start at once.
    binding: str | None
    #: The booking's fraction in [0, 1) of a pause's jitter window.
    jitter: float
    #: Order of the booking within its scope (refunds move only later bookings).
    seq: int = 0


def effective_limits(state: ScopeState, limits: RateLimits) -> dict[str, int]:
    """``limits`` (user over catalog) with the limits the server announced in headers on top."""
    header = state.header_limits
    merged: dict[str, int] = {}
    for name in _LIMIT_NAMES:
        value = header.get(name) or getattr(limits, name)
        if value is not None:
            merged[name] = value
    return merged


def _bucket(state: ScopeState, name: str, limit: int, now: int) -> Bucket:
    bucket = state.buckets.get(name)
    if bucket is None:
        bucket = state.buckets[name] = Bucket.full(name, limit, now)
    elif bucket.limit != limit:
        bucket.set_limit(limit, now)
    return bucket


def too_large_error(name: str, units: int, capacity: int) -> RequestTooLargeError:
    """The error of a booking that can never fit bucket ``name`` (shared with the Redis backend)."""
    counts_tokens = _COUNTS_TOKENS[name]
    return RequestTooLargeError(
        f"the request needs {units} {'tokens' if counts_tokens else 'requests'} but "
        f"{name} is {capacity}; it can never be admitted (lower max_completion_tokens or the prompt)",
        needed=units,
        capacity=capacity,
        limit_name=name,
    )


def max_wait_error(binding: str | None, wait: int, max_wait: int) -> LocalRateLimitError:
    """The error of a booking refused because its wait (us) exceeds ``max_wait`` (us)."""
    wait_s = wait / US
    quota = None if binding == PAUSE else ("tokens" if _COUNTS_TOKENS.get(binding or "") else "requests")
    return LocalRateLimitError(
        f"local rate limit: {binding} would delay this request {wait_s:.3f}s, more than max_wait "
        f"{max_wait / US:.3f}s; nothing was sent",
        quota=quota,
        retry_after=wait_s,
        type="local_rate_limit",
    )


def reserve(
    state: ScopeState,
    limits: Mapping[str, int],
    tokens: int,
    now: int,
    *,
    max_wait: int | None = None,
    jitter: float = 0.0,
) -> Booking:
    """Book 1 request and ``tokens`` on every bucket of ``limits``, all or nothing.

    Args:
        state: the scope's state, mutated only when the booking succeeds.
        limits: effective limits (``effective_limits``), name -> capacity.
        tokens: tokens to book on the token buckets (prompt estimate + ``max_completion_tokens``).
        now: the current time, us.
        max_wait: refuse when the booking could not start within this many us (None: no bound).
        jitter: a number in [0, 1): where in a pause's jitter window this booking resumes.

    Returns:
        The booking; ``start - now`` is how long the caller sleeps before sending.

    Raises:
        RequestTooLargeError: ``tokens`` exceed a token bucket's capacity; waiting cannot help.
        RateLimitError: the wait would exceed ``max_wait`` (``quota`` "tokens"/"requests", or None
            for a 429 pause; ``retry_after`` the wait in seconds). Nothing is booked.
    """
    plan: list[tuple[Bucket, int]] = []
    allowed: dict[str, int] = {}
    start = now
    binding: str | None = None
    for name, limit in limits.items():
        bucket = _bucket(state, name, limit, now)
        units = tokens if bucket.counts_tokens else 1
        if units > bucket.limit:
            raise too_large_error(name, units, bucket.limit)
        tat = bucket.tat if bucket.tat > now else now
        new_tat = tat + bucket.cost(units)
        allowed_at = new_tat - bucket.window_us
        allowed[name] = allowed_at
        if allowed_at > start:
            start = allowed_at
            binding = name
        plan.append((bucket, new_tat))
    if state.blocked_until > now:
        resume = resume_at(state, jitter)
        if resume > start:
            start = resume
            binding = PAUSE
    if max_wait is not None and start - now > max_wait:
        raise max_wait_error(binding, start - now, max_wait)
    for bucket, new_tat in plan:
        bucket.tat = new_tat
    seq = state.next_seq
    state.next_seq += 1
    if start > now:
        shifts = state.shifts
        shifts.make_room(seq, state.pending)
        # Raw values are relative to the moves already recorded at this position.
        raw = {name: at - shifts.value(seq, name) for name, at in allowed.items()}
        state.pending[seq] = Pending(raw, tokens, 1)
        state.waiting_tokens += tokens
        state.waiting_requests += 1
    elif seq == state.head:
        state.head = seq + 1
    return Booking(start, tuple(limits), tokens, 1, binding, jitter, seq)


def _shift_pending(state: ScopeState, after_seq: int | None, name: str, delta: int) -> None:
    """Move the start on bucket ``name`` of pending bookings later than ``after_seq`` (O(log n))."""
    if delta and state.pending:
        state.shifts.add_after(after_seq, name, delta)


def _current_start(state: ScopeState, seq: int, entry: Pending) -> int:
    shifts = state.shifts
    return max((raw + shifts.value(seq, name) for name, raw in entry.raw.items()), default=0)


def start_of(state: ScopeState, booking: Booking) -> int:
    """The booking's current start (refunds and corrections since it was booked included), no pause.

    A booking with no pending entry could start when it was booked or has started since: 0, "now".
    """
    entry = state.pending.get(booking.seq)
    return 0 if entry is None else _current_start(state, booking.seq, entry)


def forget_started(state: ScopeState, booking: Booking) -> None:
    """The booking started (or closed): it no longer waits nor moves with refunds."""
    entry = state.pending.pop(booking.seq, None)
    if entry is not None:
        state.waiting_tokens -= entry.tokens
        state.waiting_requests -= entry.requests


def advance(state: ScopeState, now: int) -> None:
    """Forget the pending bookings at the head of the queue whose start has come.

    A head pointer over sequence numbers: closed ones are skipped, each number is passed once
    (amortized O(1)). A booking behind a later-starting one (pause jitter) is forgotten when the
    head reaches it; until then it still counts as waiting, for at most the jitter window.
    """
    pending = state.pending
    head = state.head
    while head < state.next_seq:
        entry = pending.get(head)
        if entry is not None:
            if _current_start(state, head, entry) > now:
                break
            del pending[head]
            state.waiting_tokens -= entry.tokens
            state.waiting_requests -= entry.requests
        head += 1
    state.head = head


def settle(state: ScopeState, booking: Booking, actual_tokens: int, now: int) -> None:
    """Correct a booking to the tokens really used: unused ones return at once, extra ones are charged.

    A refund never makes a bucket fuller than full (``tat`` never drops below ``now``).
    """
    forget_started(state, booking)
    reserved = booking.tokens
    if actual_tokens == reserved:
        return
    for name in booking.names:
        bucket = state.buckets.get(name)
        if bucket is None or not bucket.counts_tokens:
            continue
        delta = bucket.cost(actual_tokens) - bucket.cost(reserved)
        if actual_tokens > reserved:
            base = bucket.tat if bucket.tat > now else now
            bucket.tat = base + delta
        else:
            tat = bucket.tat + delta
            bucket.tat = tat if tat > now else now
        _shift_pending(state, booking.seq, name, delta)


def release(state: ScopeState, booking: Booking, now: int) -> None:
    """Undo a booking whose request never reached the server: its request and tokens return."""
    forget_started(state, booking)
    for name in booking.names:
        bucket = state.buckets.get(name)
        if bucket is None:
            continue
        cost = bucket.cost(booking.tokens if bucket.counts_tokens else booking.requests)
        tat = bucket.tat - cost
        bucket.tat = tat if tat > now else now
        _shift_pending(state, booking.seq, name, -cost)


def apply_snapshot(
    state: ScopeState,
    limits: RateLimits,
    snapshot: RateLimitSnapshot,
    now: int,
    *,
    in_flight_tokens: int = 0,
    in_flight_requests: int = 0,
) -> bool:
    """Correct the buckets from one response's ``x-ratelimit-*`` headers.

    - ``limit-*`` values are adopted (they override user and catalog limits from now on); a bucket
      keeps the units in use and changes capacity.
    - ``remaining-*`` only ever lowers a bucket: its level at the snapshot's time becomes at most
      ``remaining - in flight`` (bookings the server has not counted yet), then refills from there.
    - A snapshot older than the newest applied one is ignored.

    ``snapshot.received_at`` is read on the same clock as ``now`` (0.0 means "now").

    Returns:
        False when the snapshot was stale and ignored.
    """
    received = snapshot.received_at if snapshot.received_at > 0 else now / US
    if state.last_sync_at is not None and received < state.last_sync_at:
        return False
    state.last_sync_at = received
    for key, value in snapshot.limit.items():
        name = HEADER_LIMIT_NAMES.get(key)
        if name is not None and value > 0:
            state.header_limits[name] = value
    effective = effective_limits(state, limits)
    for name, bucket in state.buckets.items():
        limit = effective.get(name)
        if limit is not None and limit != bucket.limit:
            bucket.set_limit(limit, now)
    at = min(to_us(received), now)
    for key, remaining in snapshot.remaining.items():
        name = HEADER_LIMIT_NAMES.get(key)
        limit = effective.get(name) if name is not None else None
        if name is None or limit is None:
            continue
        bucket = _bucket(state, name, limit, now)
        bucket.synced_at = received
        target = remaining - (in_flight_tokens if bucket.counts_tokens else in_flight_requests)
        if target < limit:
            floor = at + bucket.cost(limit - target)
            if floor > bucket.tat:
                # Pending bookings sit on top of what the server has counted: they move with it.
                _shift_pending(state, None, name, floor - max(bucket.tat, now))
                bucket.tat = floor
    return True


def pause(state: ScopeState, now: int, duration: int, jitter_window: int) -> None:
    """A 429: nothing on this scope starts before ``now + duration`` (never shortens a pause)."""
    until = now + duration
    if until > state.blocked_until:
        state.blocked_until = until
        state.pause_jitter_us = jitter_window


def pause_remaining(state: ScopeState, now: int) -> int:
    """Microseconds left of the scope's pause (0 if none)."""
    left = state.blocked_until - now
    return left if left > 0 else 0


def resume_at(state: ScopeState, jitter: float) -> int:
    """When a booking with this ``jitter`` fraction may start after the current pause."""
    return state.blocked_until + int(jitter * state.pause_jitter_us)
