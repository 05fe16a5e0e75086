"""The limiter interface: ``Scope``, ``Reservation``, ``BucketStats`` and the ``Limiter`` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cerebras_paygo._ratelimit.gcra import Booking
from cerebras_paygo._ratelimit.limits import RateLimits
from cerebras_paygo._wire import RateLimitSnapshot

__all__ = ["BucketStats", "Limiter", "Reservation", "Scope"]


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


class Reservation:
    """One booking returned by ``Limiter.acquire``: sleep ``wait_s``, then send.

    Public attributes: ``scope``, ``tokens`` (booked on every token bucket), ``requests`` (1),
    ``wait_s`` (seconds to sleep before sending) and ``start`` (the limiter-clock instant the booking
    starts). Everything else is the backend's. Settle or release it exactly once; further calls are
    no-ops, so ``finally: limiter.release(r)`` after a settle is safe.
    """

    __slots__ = ("_closed", "_owner", "_waiting", "booking", "requests", "scope", "start", "tokens", "wait_s")

    def __init__(self, scope: Scope, booking: Booking, *, wait_s: float, start: float, owner: object) -> None:
        self.scope = scope
        self.tokens = booking.tokens
        self.requests = booking.requests
        self.wait_s = wait_s
        self.start = start
        self.booking = booking
        self._closed = False
        self._owner = owner
        self._waiting = False

    @property
    def closed(self) -> bool:
        """True once settled or released."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"Reservation({self.scope}, tokens={self.tokens}, wait_s={self.wait_s:.3f}, "
            f"binding={self.booking.binding}, {state})"
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
class Limiter(Protocol):
    """A shared rate limiter: ``MemoryLimiter`` in one process, a Redis one across processes.

    Every method is O(1) and never sleeps; the caller sleeps ``Reservation.wait_s`` outside it. The
    async twins have the same semantics (a backend doing I/O awaits it there).
    """

    def acquire(self, scope: Scope, limits: RateLimits, tokens: int, *, max_wait: float | None = None) -> Reservation:
        """Book 1 request and ``tokens`` on every bucket of ``limits`` (header limits override them).

        Raises:
            RequestTooLargeError: ``tokens`` exceed a bucket's capacity.
            RateLimitError: the wait would exceed ``max_wait`` seconds; nothing is booked.
        """
        ...

    def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """The request was sent: correct its tokens to ``actual_tokens`` (idempotent)."""
        ...

    def release(self, reservation: Reservation) -> None:
        """The request never reached the server: return its request and tokens (idempotent)."""
        ...

    def sync(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        in_flight_tokens: int | None = None,
    ) -> RateLimits:
        """Correct the buckets from a response's headers; returns the effective limits."""
        ...

    def apply_headers(self, scope: Scope, limits: RateLimits, snapshot: RateLimitSnapshot) -> RateLimits:
        """Correct the buckets from a response's headers (``sync`` under its new name)."""
        ...

    async def aapply_headers(self, scope: Scope, limits: RateLimits, snapshot: RateLimitSnapshot) -> RateLimits: ...

    def pause(self, scope: Scope, seconds: float) -> None:
        """A 429: every caller of the scope waits until now + ``seconds`` (plus jitter)."""
        ...

    def pause_remaining(self, scope: Scope) -> float:
        """Seconds left of the scope's pause (0.0 if none)."""
        ...

    def send_delay(self, reservation: Reservation) -> float:
        """Seconds the holder of ``reservation`` must still sleep before sending (0.0: send now)."""
        ...

    def stats(self, scope: Scope | None = None) -> list[BucketStats]:
        """The buckets of ``scope`` (or of every scope)."""
        ...

    async def aacquire(
        self, scope: Scope, limits: RateLimits, tokens: int, *, max_wait: float | None = None
    ) -> Reservation: ...

    async def asettle(self, reservation: Reservation, actual_tokens: int) -> None: ...

    async def arelease(self, reservation: Reservation) -> None: ...

    async def async_(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        in_flight_tokens: int | None = None,
    ) -> RateLimits: ...

    async def apause(self, scope: Scope, seconds: float) -> None: ...

    async def apause_remaining(self, scope: Scope) -> float: ...

    async def asend_delay(self, reservation: Reservation) -> float: ...

    async def astats(self, scope: Scope | None = None) -> list[BucketStats]: ...
