"""What to do after a failed attempt: wait out a 429, hand a 402 to the payment circuit, back off, or raise.

This is the **only** retry layer of cerebras-paygo. The HTTP clients underneath never retry
(no SDK ``max_retries``, no tenacity on top), and the adapters do not retry either, so a single
429 never becomes 12 requests as in stacked retry layers (3 tenacity tries x 4 SDK tries): it
becomes one pause of the whole key+model in the shared limiter, then one new request admitted
through that limiter.

Everything here is sans-IO: :func:`next_action` is a pure function of the error, the attempt
number, the time already spent and a random source, and returns a :class:`RetryAction`. The
gateway sleeps (or pauses the limiter), never this module.

The rules, in order:

1. An error after content reached the caller (``delivered=True``, any
   :class:`~cerebras_paygo.errors.StreamInterruptedError`, a ``MalformedResponseError`` with
   ``delivered_chunks``) is raised: the caller saw tokens, a retry would repeat them. Local
   refusals (``LocalRateLimitError``, ``LocalPaymentRequiredError``) are final and raised.
2. A server 402 goes to the payment circuit (``"payment"``), whatever the headers say.
3. ``x-should-retry: false`` (``error.meta.should_retry``) raises; ``x-should-retry: true`` makes
   any status error retryable with backoff (as the OpenAI and Cerebras SDKs do).
4. 429 is waited out (``"rate_limited"``): the delay is ``retry_after`` (``retry-after-ms`` /
   ``retry-after``), else the ``x-ratelimit-reset-*`` header of the quota that tripped, else a
   backoff. It is bounded by ``deadline``, not by ``max_retries``; without a deadline at most
   ``max(max_retries, 6)`` waits of at most 120 s each are made.
5. 408, 409, 5xx, malformed 2xx/3xx answers, connection errors and timeouts before the first
   byte back off (``"backoff"``) with full jitter,
   ``uniform(0, min(backoff_max, backoff_base * 2**attempt))``, or the server's Retry-After; at
   most ``max_retries`` times and never past ``deadline``.
6. Everything else (400, 401, 403, 404, 422, context window, retired model, configuration, budget,
   request too large, unknown errors) is raised at once.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from cerebras_paygo._wire import MAX_RETRY_AFTER, parse_retry_after_value
from cerebras_paygo.errors import (
    APIConnectionError,
    APIPaymentRequiredError,
    APIRateLimitError,
    APIStatusError,
    ConfigurationError,
    LocalPaymentRequiredError,
    LocalRateLimitError,
    MalformedResponseError,
    StreamInterruptedError,
)

__all__ = [
    "MAX_RETRY_AFTER",
    "MIN_RATE_LIMIT_WAITS",
    "RetryAction",
    "RetryKind",
    "RetryPolicy",
    "SupportsUniform",
    "next_action",
    "parse_retry_after",
]

RetryKind = Literal["raise", "backoff", "rate_limited", "payment"]

# MAX_RETRY_AFTER (120 s): Retry-After values above it are ignored (as openai-python does), and
# without a deadline no single rate-limit wait is longer than it.
#: Without a deadline, a call waits out at least this many 429s (``max(max_retries, 6)``).
MIN_RATE_LIMIT_WAITS = 6
#: Added to an ``x-ratelimit-reset-*`` delay so the retry lands after the server's reset, not on it.
RESET_PAD = 0.05

_RETRYABLE_STATUS = frozenset({408, 409})
_WINDOW_RE = re.compile(r"\bper\s+(second|minute|hour|day)\b", re.IGNORECASE)
_WINDOWS = ("minute", "hour", "day")


class SupportsUniform(Protocol):
    """A random source such as :class:`random.Random` (tests pass a seeded or fake one)."""

    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one call may retry.

    Args:
        max_retries: Backoff retries after 408/409/5xx/connection errors (0 disables them).
            429 waits are not counted against it when a deadline is set.
        backoff_base: Seconds of the first backoff cap; the cap doubles each attempt.
        backoff_max: Largest backoff cap in seconds.
        deadline: Seconds from the start of the call after which no wait starts; ``None`` for none.

    Raises:
        ConfigurationError: A value is negative or of the wrong type.
    """

    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be a non-negative integer, not {self.max_retries!r}")
        for name in ("backoff_base", "backoff_max", "deadline"):
            value = getattr(self, name)
            if value is None and name == "deadline":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"RetryPolicy.{name} must be a non-negative number, not {value!r}")

    @property
    def max_rate_limit_waits(self) -> int:
        """How many 429s one call waits out when no deadline is set."""
        return max(self.max_retries, MIN_RATE_LIMIT_WAITS)

    def backoff_cap(self, attempt: int) -> float:
        """The upper bound of the jittered backoff after failed attempt ``attempt`` (0-based)."""
        return min(self.backoff_max, self.backoff_base * 2.0 ** min(max(attempt, 0), 62))


@dataclass(frozen=True)
class RetryAction:
    """The decision after one failed attempt.

    ``kind`` is:

    - ``"raise"``: give up and raise the error (``delay`` is 0);
    - ``"backoff"``: sleep ``delay`` seconds, then send again (re-acquiring the limiter);
    - ``"rate_limited"``: pause the whole key+model in the limiter for ``delay`` seconds, then
      re-acquire and send again;
    - ``"payment"``: hand over to the payment circuit (:mod:`cerebras_paygo._payment`).

    ``reason`` is a short human-readable explanation for logs and error messages.
    """

    kind: RetryKind
    delay: float = 0.0
    reason: str = ""


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, or ``None``.

    Reads ``retry-after-ms`` (milliseconds), then ``retry-after`` as seconds or as an HTTP-date
    (relative to ``now``, a wall-clock ``time.time()`` reading, read here when not given). Only
    values with ``0 < x <= 120`` are honoured, as openai-python does; anything else is ``None``.
    The transport already did this once per response (``ResponseMeta.retry_after``); this is for
    header mappings from elsewhere.
    """
    if not headers:
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    return parse_retry_after_value(
        lowered.get("retry-after-ms"), lowered.get("retry-after"), wall=time.time() if now is None else now
    )


def _reset_delay(error: APIRateLimitError) -> tuple[float, str] | None:
    """The ``x-ratelimit-reset-*`` delay of the quota that tripped, with the header's name."""
    if error.quota == "queue":
        return None  # capacity, not a quota: the reset headers say nothing about it
    snapshot = error.meta.rate_limits
    kinds = (error.quota,) if error.quota in ("tokens", "requests") else ("tokens", "requests")
    match = _WINDOW_RE.search(error.message or "")
    hint = None if match is None else ("minute" if match.group(1).lower() == "second" else match.group(1).lower())
    exhausted: list[tuple[float, str]] = []
    minute: list[tuple[float, str]] = []
    for kind in kinds:
        for window in (hint,) if hint else _WINDOWS:
            key = f"{kind}-{window}"
            name = f"x-ratelimit-reset-{key}"
            reset = snapshot.reset.get(key)
            if reset is None or reset <= 0:
                continue
            if hint:
                exhausted.append((reset, name))
                continue
            remaining = snapshot.remaining.get(key)
            if remaining is not None and remaining <= 0:
                exhausted.append((reset, name))
            elif window == "minute":
                minute.append((reset, name))
    # Every exhausted window must recover; failing that, the minute bucket is the usual culprit
    # (a request larger than what is left this minute).
    pool = exhausted or minute
    if not pool:
        return None
    reset, name = max(pool)
    return reset + RESET_PAD, name


def _over_deadline(policy: RetryPolicy, elapsed: float, delay: float) -> bool:
    return policy.deadline is not None and elapsed + delay > policy.deadline


def _rate_limited(
    policy: RetryPolicy, error: APIRateLimitError, *, attempt: int, elapsed: float, rng: SupportsUniform
) -> RetryAction:
    what = f"429 ({error.quota} quota)" if error.quota else "429"
    if policy.deadline is None and attempt >= policy.max_rate_limit_waits:
        return RetryAction("raise", 0.0, f"{what}: gave up after {attempt + 1} rate-limited attempts (no deadline set)")
    retry_after = error.retry_after
    if retry_after is None or not 0 < retry_after <= MAX_RETRY_AFTER:
        retry_after = error.meta.retry_after
    if retry_after is not None:
        delay, source = retry_after, "retry-after"
    else:
        reset = _reset_delay(error)
        if reset is not None:
            delay, source = reset
        else:
            # No hint at all: equal jitter, so the retry never comes back at once.
            cap = policy.backoff_cap(attempt)
            delay, source = cap / 2 + rng.uniform(0.0, cap / 2), "backoff"
    if policy.deadline is None and delay > MAX_RETRY_AFTER:
        return RetryAction("raise", 0.0, f"{what}: quota resets in {delay:.1f} s ({source}); no deadline set")
    if _over_deadline(policy, elapsed, delay):
        return RetryAction(
            "raise", 0.0, f"{what}: waiting {delay:.1f} s ({source}) would pass the {policy.deadline:g} s deadline"
        )
    return RetryAction("rate_limited", delay, f"{what}: waiting {delay:.2f} s ({source})")


def _backoff(
    policy: RetryPolicy, error: BaseException, *, attempt: int, elapsed: float, rng: SupportsUniform, what: str
) -> RetryAction:
    if attempt >= policy.max_retries:
        return RetryAction("raise", 0.0, f"{what}: max_retries={policy.max_retries} used up")
    retry_after = error.meta.retry_after if isinstance(error, APIStatusError) else None
    if retry_after is not None:
        delay, source = retry_after, "retry-after"
    else:
        delay, source = rng.uniform(0.0, policy.backoff_cap(attempt)), "backoff"
    if _over_deadline(policy, elapsed, delay):
        return RetryAction(
            "raise", 0.0, f"{what}: waiting {delay:.1f} s ({source}) would pass the {policy.deadline:g} s deadline"
        )
    return RetryAction(
        "backoff", delay, f"{what}: retry {attempt + 1} of {policy.max_retries} in {delay:.2f} s ({source})"
    )


def next_action(
    policy: RetryPolicy,
    error: BaseException,
    *,
    attempt: int,
    elapsed: float,
    delivered: bool,
    rng: SupportsUniform,
) -> RetryAction:
    """Decide what to do after attempt ``attempt`` of a call failed with ``error``.

    Args:
        policy: The call's retry policy.
        error: The error of the failed attempt, as mapped by the transport. Budget, configuration,
            request-too-large and every local refusal (``LocalRateLimitError`` from
            ``Limiter.acquire``'s ``max_wait``, ``LocalPaymentRequiredError``, local context and
            retired-model errors) return ``"raise"``: they are final. Headers are read from
            ``error.meta`` only (parsed once by the transport).
        attempt: 0-based number of the attempt that failed, counting every earlier attempt of this
            call whatever its kind (so it is also the number of retries made so far). The backoff
            cap grows as ``backoff_base * 2**attempt``.
        elapsed: Seconds since the call started (for ``policy.deadline``).
        delivered: Whether any content already reached the caller (a stream yielded a chunk).
        rng: Random source for the jitter (``random.Random()`` or a fake).

    Returns:
        The :class:`RetryAction`; ``delay`` is in seconds and never negative.
    """
    name = type(error).__name__
    if delivered or isinstance(error, StreamInterruptedError):
        return RetryAction("raise", 0.0, f"{name} after content was delivered: not retried")
    if isinstance(error, MalformedResponseError) and error.delivered_chunks:
        return RetryAction("raise", 0.0, f"{name} after content was delivered: not retried")
    if isinstance(error, (LocalRateLimitError, LocalPaymentRequiredError)):
        return RetryAction("raise", 0.0, f"{name}: a local refusal after waiting is final")
    if isinstance(error, APIPaymentRequiredError):
        return RetryAction("payment", 0.0, "402 payment required: handing over to the payment circuit")
    should_retry = error.meta.should_retry if isinstance(error, APIStatusError) else None
    if should_retry is False:
        return RetryAction("raise", 0.0, f"{name}: the server sent x-should-retry: false")
    if isinstance(error, APIRateLimitError):
        return _rate_limited(policy, error, attempt=attempt, elapsed=elapsed, rng=rng)
    if isinstance(error, MalformedResponseError):
        what = f"{name} (HTTP {error.status_code})"
        return _backoff(policy, error, attempt=attempt, elapsed=elapsed, rng=rng, what=what)
    if isinstance(error, APIStatusError):
        status = error.status_code or 0
        if should_retry or status >= 500 or status in _RETRYABLE_STATUS:
            what = f"HTTP {status}" + (" (x-should-retry: true)" if should_retry else "")
            return _backoff(policy, error, attempt=attempt, elapsed=elapsed, rng=rng, what=what)
        return RetryAction("raise", 0.0, f"{name} (HTTP {status}) is not retryable")
    if isinstance(error, APIConnectionError):
        return _backoff(policy, error, attempt=attempt, elapsed=elapsed, rng=rng, what=f"{name} before the first byte")
    return RetryAction("raise", 0.0, f"{name} is not retryable")
