"""The tier of a key: configured (``"paygo"`` / ``"free"``) or learned from the server (``"auto"``).

A free key used as if it were PayGo gets the 131k window, PayGo prices and PayGo limits: its long
prompts fail on the server and ``check`` reports PayGo costs. With ``tier="auto"`` (the default) the
tier is learned per key:

- from the ``x-ratelimit-*`` headers of the first answer (any status): a daily cap on requests or
  tokens means the free tier; PayGo has none (its ``limit-requests-day`` reads 1,000,000,000);
- from a server context error whose limit is no larger than the model's free window (the free cap).

Until it is learned, calls plan with the PayGo window (a prompt that may fit is never refused or cut
locally), PayGo prices (the budget books the larger cost) and PayGo limits (the headers of the first
answer replace them); a defaulted ``max_completion_tokens`` is lowered to fit the free window too,
where the prompt allows it, so a free key's first call does not fail on our default. The payment
circuit lets one call go first on a key it has not heard from, so in practice one request is sent
before the tier is known.
"""

from __future__ import annotations

import threading

from cerebras_paygo._catalog import TIER_SETTINGS, ModelSpec, Tier, TierSetting
from cerebras_paygo._wire import RateLimitSnapshot

__all__ = ["TIER_SETTINGS", "KeyTier", "TierSetting", "tier_from_headers"]

#: A daily cap below this many requests (or tokens) is a free-tier cap. The free tier allows 14,400
#: requests and 1,000,000 tokens a day; PayGo reports 1,000,000,000 requests a day ("no cap").
_DAILY_REQUESTS_CEILING = 10_000_000
_DAILY_TOKENS_CEILING = 1_000_000_000


def tier_from_headers(snapshot: RateLimitSnapshot | None) -> Tier | None:
    """The tier the limit headers of one answer show, or None when they show nothing."""
    if snapshot is None or not snapshot.limit:
        return None
    limits = snapshot.limit
    requests_day = limits.get("requests-day")
    tokens_day = limits.get("tokens-day")
    if requests_day is not None and requests_day < _DAILY_REQUESTS_CEILING:
        return "free"
    if tokens_day is not None and tokens_day < _DAILY_TOKENS_CEILING:
        return "free"
    if requests_day is not None or tokens_day is not None:
        return "paygo"
    return None  # only per-minute limits: they vary per organisation and tell nothing


class KeyTier:
    """The tier of one key, shared by every model's route on that key (thread-safe, no I/O)."""

    __slots__ = ("_known", "_lock", "configured")

    def __init__(self, configured: TierSetting) -> None:
        self.configured: TierSetting = configured
        self._known: Tier | None = None if configured == "auto" else configured
        self._lock = threading.Lock()

    @property
    def known(self) -> Tier | None:
        """The tier in force: the configured one, the learned one, or None (``auto``, not heard yet)."""
        return self._known

    @property
    def planning(self) -> Tier:
        """The tier calls are planned, priced and limited with: the known one, else PayGo's."""
        return self._known or "paygo"

    def learn(self, tier: Tier | None) -> bool:
        """Adopt ``tier`` when it is still to be learned; True when this changed the known tier."""
        if tier is None or self._known is not None:
            return False
        with self._lock:
            if self._known is not None:
                return False
            self._known = tier
            return True

    def learn_from_headers(self, snapshot: RateLimitSnapshot | None) -> bool:
        if self._known is not None:  # the common case: one attribute read per answer
            return False
        return self.learn(tier_from_headers(snapshot))

    def learn_from_context_limit(self, spec: ModelSpec, limit: int | None) -> bool:
        """A server context error said ``while limit is <limit>``: a limit no larger than the free
        window is the free cap; one at least the PayGo window is PayGo's."""
        if self._known is not None or limit is None:
            return False
        free, paygo = spec.window("free"), spec.window("paygo")
        if free >= paygo:  # the catalog does not tell the two apart for this model
            return False
        return self.learn("free" if limit <= free else "paygo" if limit >= paygo else None)

    def __repr__(self) -> str:
        return f"KeyTier(configured={self.configured!r}, known={self._known!r})"
