"""The limiter's value types and the storage interface its backends implement.

``Limiter`` (``limiter.py``) owns waits, jitter, reservations, fallbacks and logging; a ``Storage``
only keeps the bucket state and runs the bucket math atomically: in process (``MemoryStorage``,
the readable reference) or in Redis Lua scripts (``RedisStorage``). Times cross the interface as
integer microseconds *relative to the storage's own now*, so a storage may use another clock
(Redis ``TIME``) than the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cerebras_paygo._ratelimit.limits import RateLimits
from cerebras_paygo._wire import RateLimitSnapshot

__all__ = ["AsyncStorage", "BucketStats", "Reservation", "Scope", "Storage", "Ticket"]


@dataclass(frozen=True, slots=True)
class Scope:
    """One set of buckets: Cerebras limits per organization (key) and model, on one server.

    ``key_fingerprint`` is ``settings.key_fingerprint(api_key)``, never the key itself, so a scope is
    safe to log and to use in Redis key names.
    """

    base_url: str
    key_fingerprint: str
    model: str

    def __str__(self) -> str:
        return f"{self.base_url}|{self.key_fingerprint}|{self.model}"


@dataclass(slots=True)
class Ticket:
    """What a storage booked for one reservation; it undoes exactly this on settle or release."""

    #: The booking's sequence number within its scope (FIFO order).
    seq: int
    #: The bucket names booked (the effective limits at booking time).
    names: tuple[str, ...]
    tokens: int
    requests: int
    #: Microseconds from the storage's now until the booking may start (pause included).
    wait_us: int
    #: The limit name (or ``"pause"``) that set the start; None when it could start at once.
    binding: str | None
    #: The booking's fraction in [0, 1) of a pause's jitter window.
    jitter: float
    #: True once the storage keeps no waiting state for it (granted with no wait, or started).
    started: bool
    #: The storage that granted it (settle and release go back there, fallback or not).
    source: object = None
    #: Backend-specific data (the memory backend's ``gcra.Booking``).
    data: object = None
    #: True once the storage reported the booking reclaimed (its lease ran out before it started).
    reclaimed: bool = False


class Reservation:
    """One booking returned by ``Limiter.acquire``: sleep ``wait_s``, then send.

    Public attributes: ``scope``, ``tokens`` (booked on every token bucket), ``requests`` (1),
    ``wait_s`` (seconds to sleep before sending), ``start`` (the limiter-clock instant the booking
    starts) and ``binding``. ``ticket`` is the storage's. Settle or release it exactly once; further
    calls are no-ops, so ``finally: limiter.release(r)`` after a settle is safe.
    """

    __slots__ = ("_closed", "_owner", "binding", "limits", "requests", "scope", "start", "ticket", "tokens", "wait_s")

    def __init__(self, scope: Scope, ticket: Ticket, *, start: float, owner: object, limits: RateLimits) -> None:
        self.scope = scope
        #: The limits it was booked under (a reclaimed booking is booked again with them).
        self.limits = limits
        self.tokens = ticket.tokens
        self.requests = ticket.requests
        self.rebook(ticket, start=start)
        self._closed = False
        self._owner = owner

    def rebook(self, ticket: Ticket, *, start: float) -> None:
        """Hold ``ticket`` from now on (the limiter booked it again after a reclaim)."""
        self.ticket = ticket
        self.wait_s = ticket.wait_us / 1_000_000
        self.binding = ticket.binding
        self.start = start

    @property
    def closed(self) -> bool:
        """True once settled or released."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"Reservation({self.scope}, tokens={self.tokens}, wait_s={self.wait_s:.3f}, "
            f"binding={self.binding}, {state})"
        )


@dataclass(frozen=True, slots=True)
class BucketStats:
    """A snapshot of one bucket, for dashboards and debugging."""

    scope: Scope
    #: The limit name, e.g. ``"tokens_per_minute"``.
    limit: str
    #: Units available now; negative when granted reservations reach into the future.
    level: float
    #: The bucket's capacity (the effective limit).
    capacity: int
    #: Reservations of the scope granted but not started yet (still sleeping their wait).
    waiters: int
    #: Limiter-clock time of the last header snapshot that corrected this bucket (None: never).
    last_sync: float | None
    #: Seconds left of the scope's 429 pause (0.0 if none).
    paused_s: float


@runtime_checkable
class Storage(Protocol):
    """Bucket state plus the atomic steps of the bucket math (see ``gcra`` for the model).

    Every method is one atomic step (one lock hold, or one Redis round trip) and never sleeps.
    Backend failures raise ``BackendUnavailableError``; the bucket math raises
    ``RequestTooLargeError`` and ``RateLimitError`` exactly as ``gcra`` does.
    """

    def reserve(
        self,
        scope: Scope,
        limits: RateLimits,
        tokens: int,
        *,
        max_wait_us: int | None,
        jitter: float,
        margin_us: int = 0,
    ) -> Ticket:
        """Book 1 request and ``tokens`` on every bucket (header limits over ``limits``), all or
        nothing, FIFO; refuse (booking nothing) when the wait would exceed ``max_wait_us``. Request
        buckets no header has reported keep ``margin_us`` of headroom (``gcra.request_margin``)."""
        ...

    def close(self, scope: Scope, ticket: Ticket, actual_tokens: int | None) -> bool:
        """Settle to ``actual_tokens`` (None: release everything); False when there was nothing to
        undo any more (the booking was reclaimed or the scope reset)."""
        ...

    def delay(self, scope: Scope, ticket: Ticket) -> int:
        """Microseconds until the booking may be sent (its start, or a later pause plus its jitter);
        at 0 the booking counts as started (it no longer waits)."""
        ...

    def apply_headers(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        age_us: int,
        in_flight_tokens: int | None,
    ) -> tuple[RateLimits, bool]:
        """Correct the buckets from a response's headers received ``age_us`` ago (header sync only
        lowers); returns the effective limits and False when the snapshot was stale."""
        ...

    def pause(self, scope: Scope, duration_us: int, jitter_us: int) -> None:
        """Nothing on ``scope`` starts for ``duration_us`` (plus each booking's share of
        ``jitter_us``); never shortens a pause."""
        ...

    def pause_remaining(self, scope: Scope) -> int:
        """Microseconds left of the scope's pause (0 if none)."""
        ...

    def stats(self, scope: Scope | None, local_now: float) -> list[BucketStats]:
        """The buckets of ``scope`` (every scope when None); ``last_sync`` on the caller's clock,
        which reads ``local_now`` at this instant."""
        ...

    def reset(self, scope: Scope | None) -> None:
        """Forget ``scope`` (every scope of this storage when None)."""
        ...


@runtime_checkable
class AsyncStorage(Protocol):
    """The ``Storage`` steps for a backend whose I/O is awaited (same semantics)."""

    async def reserve(
        self,
        scope: Scope,
        limits: RateLimits,
        tokens: int,
        *,
        max_wait_us: int | None,
        jitter: float,
        margin_us: int = 0,
    ) -> Ticket: ...

    async def close(self, scope: Scope, ticket: Ticket, actual_tokens: int | None) -> bool: ...

    async def delay(self, scope: Scope, ticket: Ticket) -> int: ...

    async def apply_headers(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        age_us: int,
        in_flight_tokens: int | None,
    ) -> tuple[RateLimits, bool]: ...

    async def pause(self, scope: Scope, duration_us: int, jitter_us: int) -> None: ...

    async def pause_remaining(self, scope: Scope) -> int: ...

    async def stats(self, scope: Scope | None, local_now: float) -> list[BucketStats]: ...

    async def reset(self, scope: Scope | None) -> None: ...
