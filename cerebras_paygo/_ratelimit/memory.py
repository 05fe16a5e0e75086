"""``MemoryLimiter``: the ``gcra`` state machine under one lock, shared by threads and event loops.

Every method takes the lock for O(1) work (O(log n) to track sleeping reservations) and never holds
it across I/O, sleep or logging. The async twins call the sync methods directly: the lock is held
for microseconds, so taking it on an event loop is cheaper than a thread hop, and one instance is
safe from many threads and many event loops at once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from cerebras_paygo._ratelimit import gcra
from cerebras_paygo._ratelimit.base import BucketStats, Reservation, Scope
from cerebras_paygo._ratelimit.gcra import US, ScopeState, to_us
from cerebras_paygo._ratelimit.limits import RateLimits
from cerebras_paygo._wire import RateLimitSnapshot
from cerebras_paygo.errors import ConfigurationError, RateLimitError, RequestTooLargeError

__all__ = ["MemoryLimiter", "shared_limiter"]

logger = logging.getLogger("cerebras_paygo.ratelimit")

#: Waits longer than this (seconds) are logged at INFO, shorter ones at DEBUG.
SLOW_WAIT_S = 1.0


@dataclass(slots=True)
class _Entry:
    scope: Scope
    state: ScopeState = field(default_factory=ScopeState)
    #: Heap of (start us, seq, reservation) of reservations granted with a wait.
    sleeping: list[tuple[int, int, Reservation]] = field(default_factory=list)
    waiting_tokens: int = 0
    waiting_requests: int = 0


class MemoryLimiter:
    """The in-process ``Limiter``: one set of GCRA buckets per ``Scope``.

    Usage (what the gateway does)::

        limiter = shared_limiter()
        r = limiter.acquire(scope, limits, prompt_estimate + max_completion_tokens, max_wait=60)
        try:
            while (delay := limiter.send_delay(r)) > 0:   # r.wait_s, then any 429 pause
                time.sleep(delay)
            response = send()
        except BaseException:
            limiter.release(r)          # never sent: request and tokens return
            raise
        limiter.settle(r, response.usage.total_tokens)
        limiter.sync(scope, limits, response.rate_limits)

    Args:
        clock: seconds on a monotonic clock; ``RateLimitSnapshot.received_at`` must use the same
            one (``time.monotonic``, the default).
        rng: source of the pause jitter (seed it in tests).
        max_pause_jitter: after a 429 pause, callers resume spread over ``min(this, 0.2 * pause)``
            seconds so they do not all fire at once.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        max_pause_jitter: float = 1.0,
    ) -> None:
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._max_jitter = max(0.0, max_pause_jitter)
        self._lock = threading.Lock()
        self._scopes: dict[Scope, _Entry] = {}
        self._seq = itertools.count()
        _INSTANCES.add(self)

    # --- helpers (call with the lock held) -----------------------------------------------------

    def _now(self) -> int:
        return round(self._clock() * US)

    def _entry(self, scope: Scope) -> _Entry:
        entry = self._scopes.get(scope)
        if entry is None:
            entry = self._scopes[scope] = _Entry(scope)
        return entry

    @staticmethod
    def _advance(entry: _Entry, now: int) -> None:
        """Forget reservations whose start has come: they are no longer waiting."""
        heap = entry.sleeping
        state = entry.state
        while heap:
            start, seq, reservation = heap[0]
            if not reservation._waiting:
                # Settled, released or already sent: its original start says nothing any more.
                heapq.heappop(heap)
                continue
            current = gcra.start_of(state, reservation.booking)
            if current > now:
                if current != start:
                    # A refund or correction moved it: re-file it under its current start.
                    heapq.heapreplace(heap, (current, seq, reservation))
                    continue
                break
            heapq.heappop(heap)
            gcra.forget_started(state, reservation.booking)
            if reservation._waiting:
                reservation._waiting = False
                entry.waiting_tokens -= reservation.tokens
                entry.waiting_requests -= reservation.requests

    @staticmethod
    def _unwait(entry: _Entry | None, reservation: Reservation) -> None:
        if reservation._waiting:
            reservation._waiting = False
            if entry is not None:
                entry.waiting_tokens -= reservation.tokens
                entry.waiting_requests -= reservation.requests

    def _close(self, reservation: Reservation, undo: Callable[[ScopeState, int], None]) -> bool:
        """Close a reservation once (settle or release); False when it was already closed."""
        self._check_owner(reservation)
        with self._lock:
            if reservation._closed:
                return False
            reservation._closed = True
            entry = self._scopes.get(reservation.scope)
            self._unwait(entry, reservation)
            if entry is not None:
                undo(entry.state, self._now())
            return True

    def _check_owner(self, reservation: Reservation) -> None:
        if reservation._owner is not self:
            raise ConfigurationError("this reservation was granted by another limiter")

    # --- the Limiter interface -------------------------------------------------------------

    def acquire(self, scope: Scope, limits: RateLimits, tokens: int, *, max_wait: float | None = None) -> Reservation:
        """Book 1 request and ``tokens`` on every bucket of ``limits``; never sleeps.

        ``limits`` are the user's over the catalog's; limits learned from headers override them.
        The booking is all-or-nothing and FIFO: it may start after every earlier booking of the
        scope, and after a 429 pause (plus jitter).

        Returns:
            The reservation: sleep ``wait_s`` (better: loop on ``send_delay``), then send.

        Raises:
            RequestTooLargeError: ``tokens`` exceed a token bucket's capacity.
            RateLimitError: the wait would exceed ``max_wait`` seconds (``quota`` "tokens" or
                "requests", None for a 429 pause; ``type`` "local_rate_limit"). Nothing is booked.
            ConfigurationError: ``tokens`` is not an integer >= 0.
        """
        if not isinstance(tokens, int) or tokens < 0:
            raise ConfigurationError(f"tokens must be an integer >= 0, not {tokens!r}")
        jitter = self._rng.random()
        max_wait_us = None if max_wait is None else max(0, to_us(max_wait))
        try:
            with self._lock:
                now = self._now()
                entry = self._entry(scope)
                if entry.sleeping:
                    self._advance(entry, now)
                booking = gcra.reserve(
                    entry.state,
                    gcra.effective_limits(entry.state, limits),
                    tokens,
                    now,
                    max_wait=max_wait_us,
                    jitter=jitter,
                )
                wait = booking.start - now
                reservation = Reservation(scope, booking, wait_s=wait / US, start=booking.start / US, owner=self)
                if wait > 0:
                    reservation._waiting = True
                    heapq.heappush(entry.sleeping, (booking.start, next(self._seq), reservation))
                    entry.waiting_tokens += tokens
                    entry.waiting_requests += 1
        except (RateLimitError, RequestTooLargeError) as exc:
            logger.debug("acquire %s tokens=%d refused: %s", scope, tokens, exc)
            raise
        logger.log(
            logging.INFO if reservation.wait_s > SLOW_WAIT_S else logging.DEBUG,
            "acquire %s tokens=%d wait=%.3fs binding=%s",
            scope,
            tokens,
            reservation.wait_s,
            booking.binding,
        )
        return reservation

    def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """The request was sent: correct its booking to ``actual_tokens``.

        Unused tokens return at once (never past full); extra tokens are charged. Call it with the
        usage the server reported, or with ``reservation.tokens`` to keep the charge when the usage
        is unknown (timeout or broken stream after the server admitted the request). Idempotent:
        only the first settle or release of a reservation counts.
        """
        actual = max(0, int(actual_tokens))
        first = self._close(reservation, lambda state, now: gcra.settle(state, reservation.booking, actual, now))
        logger.debug(
            "settle %s reserved=%d actual=%d%s",
            reservation.scope,
            reservation.tokens,
            actual,
            "" if first else " (already closed: ignored)",
        )

    def release(self, reservation: Reservation) -> None:
        """The request never reached the server (cancelled, connection refused, 429, 402):
        return its request and tokens. Idempotent, like ``settle``."""
        first = self._close(reservation, lambda state, now: gcra.release(state, reservation.booking, now))
        logger.debug(
            "release %s tokens=%d%s",
            reservation.scope,
            reservation.tokens,
            "" if first else " (already closed: ignored)",
        )

    def sync(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        in_flight_tokens: int | None = None,
    ) -> RateLimits:
        """Correct the scope's buckets from one response's ``x-ratelimit-*`` headers.

        ``limit-*`` values are adopted and override ``limits`` from now on. ``remaining-*`` only
        lowers a bucket, to ``remaining`` minus what the server has not counted yet: by default the
        requests and tokens of reservations still sleeping their wait (``in_flight_tokens``
        overrides the token figure). Snapshots older than the newest applied one are ignored.

        Returns:
            The effective limits: header limits over ``limits``.
        """
        with self._lock:
            now = self._now()
            entry = self._entry(scope)
            if entry.sleeping:
                self._advance(entry, now)
            waiting_tokens = entry.waiting_tokens if in_flight_tokens is None else in_flight_tokens
            applied = gcra.apply_snapshot(
                entry.state,
                limits,
                snapshot,
                now,
                in_flight_tokens=waiting_tokens,
                in_flight_requests=entry.waiting_requests,
            )
            effective = gcra.effective_limits(entry.state, limits)
        logger.debug(
            "sync %s remaining=%s limit=%s in_flight_tokens=%d%s",
            scope,
            dict(snapshot.remaining),
            dict(snapshot.limit),
            waiting_tokens,
            "" if applied else " (stale: ignored)",
        )
        return RateLimits(**effective)

    def apply_headers(self, scope: Scope, limits: RateLimits, snapshot: RateLimitSnapshot) -> RateLimits:
        """Correct the scope's buckets from one response's ``x-ratelimit-*`` headers (see ``sync``)."""
        return self.sync(scope, limits, snapshot)

    async def aapply_headers(self, scope: Scope, limits: RateLimits, snapshot: RateLimitSnapshot) -> RateLimits:
        return self.sync(scope, limits, snapshot)

    def pause(self, scope: Scope, seconds: float) -> None:
        """A 429: nothing on ``scope`` starts before now + ``seconds``; a pause is never shortened.

        New reservations get ``wait_s`` >= the pause left (plus jitter); holders of reservations
        already granted must check ``send_delay`` (or ``pause_remaining``) before sending.
        """
        if not seconds > 0:
            return
        seconds = min(seconds, 86400.0)
        with self._lock:
            now = self._now()
            gcra.pause(self._entry(scope).state, now, to_us(seconds), to_us(min(self._max_jitter, 0.2 * seconds)))
        logger.info("rate limit: %s paused for %.2fs after a 429", scope, seconds)

    def pause_remaining(self, scope: Scope) -> float:
        """Seconds left of the scope's 429 pause (0.0 if none), without jitter."""
        with self._lock:
            entry = self._scopes.get(scope)
            if entry is None:
                return 0.0
            return gcra.pause_remaining(entry.state, self._now()) / US

    def send_delay(self, reservation: Reservation) -> float:
        """Seconds before ``reservation`` may be sent: its own wait, or a later 429 pause (with this
        reservation's jitter). 0.0 means send now. Loop on it: a pause may come while sleeping."""
        with self._lock:
            now = self._now()
            target = reservation.booking.start
            entry = self._scopes.get(reservation.scope)
            if entry is not None:
                # Refunds from finished requests may have moved this booking earlier.
                target = gcra.start_of(entry.state, reservation.booking)
                if entry.state.blocked_until > now:
                    target = max(target, gcra.resume_at(entry.state, reservation.booking.jitter))
                if target <= now:
                    # The caller sends now: the server is about to count it, so it no longer waits.
                    self._unwait(entry, reservation)
                    gcra.forget_started(entry.state, reservation.booking)
        return max(0, target - now) / US

    def stats(self, scope: Scope | None = None) -> list[BucketStats]:
        """One ``BucketStats`` per bucket of ``scope`` (every scope when None)."""
        rows: list[BucketStats] = []
        with self._lock:
            now = self._now()
            if scope is None:
                entries = list(self._scopes.values())
            else:
                found = self._scopes.get(scope)
                entries = [] if found is None else [found]
            for entry in entries:
                self._advance(entry, now)
                paused = gcra.pause_remaining(entry.state, now) / US
                for bucket in entry.state.buckets.values():
                    rows.append(
                        BucketStats(
                            scope=entry.scope,
                            limit=bucket.name,
                            level=bucket.level(now),
                            capacity=bucket.limit,
                            waiters=entry.waiting_requests,
                            last_sync=bucket.synced_at,
                            paused_s=paused,
                        )
                    )
        return rows

    def reset(self, scope: Scope | None = None) -> None:
        """Forget the state of ``scope`` (every scope when None): buckets start full again.

        Reservations still open stay valid; settling or releasing them becomes a no-op.
        """
        with self._lock:
            if scope is None:
                self._scopes.clear()
            else:
                self._scopes.pop(scope, None)

    # --- async twins (same semantics; nothing here awaits I/O) ----------------------------------

    async def aacquire(
        self, scope: Scope, limits: RateLimits, tokens: int, *, max_wait: float | None = None
    ) -> Reservation:
        return self.acquire(scope, limits, tokens, max_wait=max_wait)

    async def asettle(self, reservation: Reservation, actual_tokens: int) -> None:
        self.settle(reservation, actual_tokens)

    async def arelease(self, reservation: Reservation) -> None:
        self.release(reservation)

    async def async_(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        in_flight_tokens: int | None = None,
    ) -> RateLimits:
        return self.sync(scope, limits, snapshot, in_flight_tokens=in_flight_tokens)

    async def apause(self, scope: Scope, seconds: float) -> None:
        self.pause(scope, seconds)

    async def apause_remaining(self, scope: Scope) -> float:
        return self.pause_remaining(scope)

    async def asend_delay(self, reservation: Reservation) -> float:
        return self.send_delay(reservation)

    async def astats(self, scope: Scope | None = None) -> list[BucketStats]:
        return self.stats(scope)

    def _after_fork(self) -> None:
        # The child may have copied the lock while another thread held it.
        self._lock = threading.Lock()


_INSTANCES: weakref.WeakSet[MemoryLimiter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for limiter in list(_INSTANCES):
        limiter._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_shared: MemoryLimiter | None = None
_shared_lock = threading.Lock()


def shared_limiter() -> MemoryLimiter:
    """The process-wide ``MemoryLimiter``: every client, adapter and event loop of a process that
    uses the same key and model shares its buckets (LangChain and LlamaIndex models included).

    Processes do not share it (a forked child keeps a copy); use the Redis backend for that.
    """
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = MemoryLimiter()
    return _shared
