"""``MemoryStorage``: the ``gcra`` state machine under one lock, shared by threads and event loops.

The readable reference of the Redis Lua scripts (``lua/*.lua`` run the same steps). Every method
takes the lock for O(log n) work in the number of waiters and never holds it across I/O, sleep or
logging. One instance is safe from many threads and many event loops at once.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable

from cerebras_paygo._ratelimit import gcra
from cerebras_paygo._ratelimit.base import BucketStats, Scope, Ticket
from cerebras_paygo._ratelimit.gcra import US, Booking, ScopeState
from cerebras_paygo._ratelimit.limits import RateLimits
from cerebras_paygo._wire import RateLimitSnapshot

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """In-process bucket state: one ``gcra.ScopeState`` per ``Scope``.

    Args:
        clock: seconds on a monotonic clock; ``RateLimitSnapshot.received_at`` must use the same
            one (``time.monotonic``, the default).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._scopes: dict[Scope, ScopeState] = {}
        _INSTANCES.add(self)

    def __repr__(self) -> str:
        return "MemoryStorage()"

    def _now(self) -> int:
        return round(self.clock() * US)

    def _state(self, scope: Scope) -> ScopeState:
        state = self._scopes.get(scope)
        if state is None:
            state = self._scopes[scope] = ScopeState()
        return state

    def reserve(
        self, scope: Scope, limits: RateLimits, tokens: int, *, max_wait_us: int | None, jitter: float
    ) -> Ticket:
        with self._lock:
            now = self._now()
            state = self._state(scope)
            if state.pending:
                gcra.advance(state, now)
            effective = gcra.effective_limits(state, limits)
            booking = gcra.reserve(state, effective, tokens, now, max_wait=max_wait_us, jitter=jitter)
        wait = booking.start - now
        return Ticket(
            booking.seq,
            booking.names,
            tokens,
            booking.requests,
            wait,
            booking.binding,
            jitter,
            started=wait <= 0,
            source=self,
            data=booking,
        )

    def close(self, scope: Scope, ticket: Ticket, actual_tokens: int | None) -> bool:
        booking = ticket.data
        assert isinstance(booking, Booking)
        with self._lock:
            state = self._scopes.get(scope)
            if state is None:
                return False
            if actual_tokens is None:
                gcra.release(state, booking, self._now())
            else:
                gcra.settle(state, booking, actual_tokens, self._now())
            return True

    def delay(self, scope: Scope, ticket: Ticket) -> int:
        booking = ticket.data
        assert isinstance(booking, Booking)
        with self._lock:
            now = self._now()
            state = self._scopes.get(scope)
            if state is None:
                return max(0, booking.start - now)
            # Refunds from finished requests may have moved this booking earlier.
            target = gcra.start_of(state, booking)
            if state.blocked_until > now:
                target = max(target, gcra.resume_at(state, booking.jitter))
            if target <= now:
                # The caller sends now: the server is about to count it, so it no longer waits.
                gcra.forget_started(state, booking)
                ticket.started = True
            return max(0, target - now)

    def apply_headers(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        age_us: int,
        in_flight_tokens: int | None,
    ) -> tuple[RateLimits, bool]:
        # Same clock as the caller: the snapshot's own ``received_at`` is exact here.
        with self._lock:
            now = self._now()
            state = self._state(scope)
            if state.pending:
                gcra.advance(state, now)
            applied = gcra.apply_snapshot(
                state,
                limits,
                snapshot,
                now,
                in_flight_tokens=state.waiting_tokens if in_flight_tokens is None else in_flight_tokens,
                in_flight_requests=state.waiting_requests,
            )
            effective = gcra.effective_limits(state, limits)
        return RateLimits(**effective), applied

    def pause(self, scope: Scope, duration_us: int, jitter_us: int) -> None:
        with self._lock:
            gcra.pause(self._state(scope), self._now(), duration_us, jitter_us)

    def pause_remaining(self, scope: Scope) -> int:
        with self._lock:
            state = self._scopes.get(scope)
            return 0 if state is None else gcra.pause_remaining(state, self._now())

    def stats(self, scope: Scope | None, local_now: float) -> list[BucketStats]:
        rows: list[BucketStats] = []
        with self._lock:
            now = self._now()
            if scope is None:
                items = list(self._scopes.items())
            else:
                found = self._scopes.get(scope)
                items = [] if found is None else [(scope, found)]
            for item_scope, state in items:
                gcra.advance(state, now)
                paused = gcra.pause_remaining(state, now) / US
                for bucket in state.buckets.values():
                    rows.append(
                        BucketStats(
                            scope=item_scope,
                            limit=bucket.name,
                            level=bucket.level(now),
                            capacity=bucket.limit,
                            waiters=state.waiting_requests,
                            last_sync=bucket.synced_at,
                            paused_s=paused,
                        )
                    )
        return rows

    def reset(self, scope: Scope | None) -> None:
        with self._lock:
            if scope is None:
                self._scopes.clear()
            else:
                self._scopes.pop(scope, None)

    def _after_fork(self) -> None:
        # The child may have copied the lock while another thread held it.
        self._lock = threading.Lock()


_INSTANCES: weakref.WeakSet[MemoryStorage] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for storage in list(_INSTANCES):
        storage._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
