"""The shared rate limiter: token-aware GCRA reservations per (server, key, model).

- ``gcra``: the sans-IO bucket math (no locks, no clock).
- ``MemoryLimiter``: that state machine under one lock, for every thread and event loop of a
  process; ``shared_limiter()`` is the process-wide instance.
- ``Limiter``: the protocol a Redis backend implements too.
"""

from cerebras_paygo._ratelimit.base import BucketStats, Limiter, Reservation, Scope
from cerebras_paygo._ratelimit.limits import HEADER_LIMIT_NAMES, LIMIT_WINDOWS, RateLimits
from cerebras_paygo._ratelimit.memory import MemoryLimiter, shared_limiter

__all__ = [
    "HEADER_LIMIT_NAMES",
    "LIMIT_WINDOWS",
    "BucketStats",
    "Limiter",
    "MemoryLimiter",
    "RateLimits",
    "Reservation",
    "Scope",
    "shared_limiter",
]
