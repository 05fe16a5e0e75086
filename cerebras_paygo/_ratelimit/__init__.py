"""The shared rate limiter: token-aware GCRA reservations per (server, key, model).

- ``gcra``: the sans-IO bucket math (no locks, no clock).
- ``Limiter``: the one limiter class (waits, reservations, jitter, fallback), over a ``Storage``:
  ``MemoryStorage`` (the math under one lock, one process) or ``RedisStorage`` (the same steps as
  Lua scripts, shared by processes and machines; ``Limiter.from_url("redis://...")``).
- ``shared_limiter()`` is the process-wide memory limiter; ``MemoryLimiter()`` builds a fresh one.
"""

from cerebras_paygo._ratelimit.base import AsyncStorage, BucketStats, Reservation, Scope, Storage, Ticket
from cerebras_paygo._ratelimit.limiter import Limiter, MemoryLimiter, shared_limiter
from cerebras_paygo._ratelimit.limits import HEADER_LIMIT_NAMES, LIMIT_WINDOWS, RateLimits
from cerebras_paygo._ratelimit.memory import MemoryStorage

__all__ = [
    "HEADER_LIMIT_NAMES",
    "LIMIT_WINDOWS",
    "AsyncStorage",
    "BucketStats",
    "Limiter",
    "MemoryLimiter",
    "MemoryStorage",
    "RateLimits",
    "Reservation",
    "Scope",
    "Storage",
    "Ticket",
    "shared_limiter",
]
