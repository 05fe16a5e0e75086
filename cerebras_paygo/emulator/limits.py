"""Rate limits as the server keeps them: continuous token buckets per (org, model).

Every limit of ``ServerLimits`` (requests and tokens per minute, hour, day) is a bucket of ``limit``
capacity refilled at ``limit / window`` per second. Admission takes 1 request and the reservation
(prompt + ``max_completion_tokens``) from every bucket, or from none; ``refund`` returns what the
completion did not use. Header values are read from the buckets: ``remaining`` is the level,
``reset`` the seconds until the bucket is full again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cerebras_paygo.emulator.facts import LIMIT_WINDOWS, ServerLimits

__all__ = [
    "NO_LIMIT",
    "Bucket",
    "BucketSet",
    "RateLimiter",
    "Trip",
    "limit_message",
    "resolve_limits",
]

#: What the real API reports for a limit that does not exist (``x-ratelimit-limit-requests-day``).
NO_LIMIT = 1_000_000_000
_WINDOW_WORD = {60.0: "minute", 3600.0: "hour", 86400.0: "day"}


def limit_message(name: str) -> tuple[str, str, str]:
    """``(message, type, code)`` of the 429 for the limit ``name`` (``"tokens_per_minute"`` ...)."""
    kind, window = LIMIT_WINDOWS[name]
    word = _WINDOW_WORD[window]
    if kind == "tokens":
        return (
            f"Tokens per {word} limit exceeded - too many tokens processed.",
            "too_many_tokens_error",
            "token_quota_exceeded",
        )
    return (
        f"Requests per {word} limit exceeded - too many requests sent.",
        "too_many_requests_error",
        "request_quota_exceeded",
    )


@dataclass
class Bucket:
    """One continuous token bucket.

    A ``virtual`` bucket stands for a limit the tier does not have: it never refuses, and counts
    down over a fixed window (``updated`` is the window's start), so its headers move like the real
    API's ``1000000000`` daily request limit does.
    """

    name: str
    capacity: float
    window: float
    level: float
    updated: float
    virtual: bool = False

    @property
    def rate(self) -> float:
        return self.capacity / self.window

    def refill(self, now: float) -> None:
        if self.virtual:
            if now >= self.updated + self.window:
                self.updated += math.floor((now - self.updated) / self.window) * self.window
                self.level = self.capacity
            return
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` is available (``inf`` if it never fits)."""
        self.refill(now)
        if amount > self.capacity:
            return math.inf
        return max(0.0, (amount - self.level) / self.rate)

    def reset_in(self, now: float) -> float:
        self.refill(now)
        if self.virtual:
            return max(0.0, self.updated + self.window - now)
        return max(0.0, (self.capacity - self.level) / self.rate)

    def resize(self, capacity: float, now: float) -> None:
        """New capacity; what was used stays used."""
        self.refill(now)
        used = self.capacity - self.level
        self.capacity = float(capacity)
        self.level = max(0.0, self.capacity - used)


@dataclass(frozen=True)
class Trip:
    """A refused admission: which limit, and how long until it would fit."""

    name: str
    wait_s: float


class BucketSet:
    """The buckets of one (org, model)."""

    def __init__(self, limits: ServerLimits, now: float) -> None:
        self.buckets: dict[str, Bucket] = {}
        self.apply(limits, now)

    def apply(self, limits: ServerLimits, now: float) -> None:
        wanted = dict(limits.items())
        if "requests_per_day" not in wanted:
            wanted["requests_per_day"] = NO_LIMIT
        if "tokens_per_minute" not in wanted:
            wanted["tokens_per_minute"] = NO_LIMIT
        for name in list(self.buckets):
            if name not in wanted:
                del self.buckets[name]
        for name, value in wanted.items():
            virtual = value == NO_LIMIT and getattr(limits, name) is None
            bucket = self.buckets.get(name)
            if bucket is None or bucket.virtual != virtual:
                window = LIMIT_WINDOWS[name][1]
                self.buckets[name] = Bucket(name, float(value), window, float(value), now, virtual)
            elif bucket.capacity != value:
                bucket.resize(value, now)

    def _cost(self, name: str, tokens: int) -> int:
        return 1 if LIMIT_WINDOWS[name][0] == "requests" else tokens

    def check(self, tokens: int, now: float) -> Trip | None:
        """The first limit (minute before hour before day, requests before tokens) that refuses."""
        for name in LIMIT_WINDOWS:
            bucket = self.buckets.get(name)
            if bucket is None or bucket.virtual:
                continue
            wait = bucket.wait_for(self._cost(name, tokens), now)
            if wait > 0:
                return Trip(name, wait)
        return None

    def take(self, tokens: int, now: float) -> None:
        for name, bucket in self.buckets.items():
            bucket.refill(now)
            bucket.level -= self._cost(name, tokens)

    def refund(self, tokens: int, now: float, *, requests: int = 0) -> None:
        for name, bucket in self.buckets.items():
            bucket.refill(now)
            amount = requests if LIMIT_WINDOWS[name][0] == "requests" else tokens
            bucket.level = min(bucket.capacity, bucket.level + amount)

    def headers(self, now: float) -> dict[str, str]:
        day = self.buckets["requests_per_day"]
        minute = self.buckets["tokens_per_minute"]
        day.refill(now)
        minute.refill(now)
        return {
            "x-ratelimit-limit-requests-day": str(int(day.capacity)),
            "x-ratelimit-limit-tokens-minute": str(int(minute.capacity)),
            "x-ratelimit-remaining-requests-day": str(max(0, math.floor(day.level))),
            "x-ratelimit-remaining-tokens-minute": str(max(0, math.floor(minute.level))),
            "x-ratelimit-reset-requests-day": repr(day.reset_in(now)),
            "x-ratelimit-reset-tokens-minute": repr(minute.reset_in(now)),
        }

    def snapshot(self, now: float) -> dict[str, dict[str, float]]:
        out = {}
        for name, bucket in self.buckets.items():
            bucket.refill(now)
            out[name] = {"limit": bucket.capacity, "remaining": bucket.level, "reset": bucket.reset_in(now)}
        return out


def resolve_limits(
    base: ServerLimits,
    overrides: Mapping[str, ServerLimits],
    *,
    org: str,
    tier: str,
    model: str,
) -> ServerLimits:
    """The facts' tier limits with the config's scoped overrides applied (most specific last)."""
    result = base
    for scope in ("*", f"*/{model}", tier, f"{tier}/{model}", org, f"{org}/{model}"):
        override = overrides.get(scope)
        if override is not None:
            result = override.merged_over(result)
    return result


class RateLimiter:
    """All bucket sets, created on first use. Not thread-safe: the state's lock guards it."""

    def __init__(self) -> None:
        self.sets: dict[tuple[str, str], BucketSet] = {}

    def get(self, org: str, model: str, limits: ServerLimits, now: float) -> BucketSet:
        key = (org, model)
        buckets = self.sets.get(key)
        if buckets is None:
            buckets = self.sets[key] = BucketSet(limits, now)
        return buckets

    def reapply(self, resolve: Iterable[tuple[tuple[str, str], ServerLimits]], now: float) -> None:
        for key, limits in resolve:
            if key in self.sets:
                self.sets[key].apply(limits, now)
