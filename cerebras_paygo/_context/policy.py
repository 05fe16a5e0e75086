"""Context caps: make a request fit the model's window for the tier of the key, before it is sent.

Cerebras rejects a request whose prompt plus ``max_completion_tokens`` exceeds the window (8,192
tokens on the free tier; 131,072 on PayGo for gpt-oss-120b and zai-glm-4.7), and reserves the whole
``max_completion_tokens`` against tokens-per-minute. ``plan_context`` is a pure function: it
validates ``max_completion_tokens``, fills in a per-model default when the request has none, and
applies the overflow policy (``"raise"``, ``"trim_history"`` or ``"shrink_completion"``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from cerebras_paygo._catalog import ModelSpec, Tier
from cerebras_paygo._context.calibration import RawParts, add_parts, subtract_parts
from cerebras_paygo._context.estimator import TokenBand, TokenEstimator, shared_estimator
from cerebras_paygo._wire import ChatCompletionRequest, Message
from cerebras_paygo.errors import ConfigurationError, ContextWindowExceededError, LocalContextWindowExceededError

__all__ = ["ContextOverflow", "ContextPlan", "plan_context"]

ContextOverflow = Literal["raise", "trim_history", "shrink_completion"]
_OVERFLOWS: tuple[str, ...] = get_args(ContextOverflow)
_KEPT_ROLES = ("system", "developer")

# Requests made by plan_context whose max_completion_tokens is a default we chose (not the
# caller's): planning one again, e.g. for the free tier after a 402 fallback, re-derives the default.
_DEFAULTED: weakref.WeakValueDictionary[int, ChatCompletionRequest] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class ContextPlan:
    """A request that fits, and what was done to it.

    Attributes:
        request: the request to send: a copy of the caller's with ``max_completion_tokens`` set and
            messages maybe trimmed, or the caller's own when the plan changes nothing (never mutated).
        prompt_tokens: the high end of that copy's prompt band (what the rate limiter reserves); pass it
            to ``TokenEstimator.observe``.
        max_completion_tokens: what the copy asks for (and what the rate limiter must reserve).
        window: the context window the plan was made for.
        dropped_messages: how many of the oldest messages ``trim_history`` dropped.
        completion_defaulted: ``max_completion_tokens`` is the model's default, not the caller's.
        prompt_tokens_low: the low end of the prompt band (the true count is never below it).
        prompt_exact: the prompt was counted token for token (``prompt_tokens_low == prompt_tokens``).
    """

    request: ChatCompletionRequest
    prompt_tokens: int
    max_completion_tokens: int
    window: int
    dropped_messages: int = 0
    completion_defaulted: bool = False
    prompt_tokens_low: int = 0
    prompt_exact: bool = False

    @property
    def reserved_tokens(self) -> int:
        """Prompt estimate plus ``max_completion_tokens``: what a request reserves against TPM."""
        return self.prompt_tokens + self.max_completion_tokens


def plan_context(
    request: ChatCompletionRequest,
    spec: ModelSpec,
    tier: Tier,
    *,
    estimator: TokenEstimator | None = None,
    overflow: ContextOverflow = "raise",
    window: int | None = None,
    min_completion_tokens: int = 256,
    also_fit: int | None = None,
) -> ContextPlan:
    """Fit ``request`` into the context window of ``spec`` for ``tier``, before any request is sent.

    Always plan from the caller's request; when the key (and so the tier) changes, plan it again
    with the new tier. A request returned by an earlier plan also works: a default
    ``max_completion_tokens`` it got is chosen again for the new tier.

    Args:
        request: the request as the caller built it; it is never mutated.
        spec: the model's catalog entry (window, output cap and default completion per tier).
        tier: the tier of the API key in use (``"paygo"`` or ``"free"``).
        estimator: the token estimator (default: ``shared_estimator()``).
        overflow: what to do when prompt plus completion exceed the window: ``"raise"``,
            ``"trim_history"`` (drop the oldest turns; system/developer messages, the last user
            turn and everything after it stay, and tool calls leave with their results), or
            ``"shrink_completion"`` (lower ``max_completion_tokens`` down to ``min_completion_tokens``).
        window: overrides ``spec.window(tier)``.
        min_completion_tokens: the smallest completion a default or shrunk ``max_completion_tokens``
            may be lowered to.
        also_fit: a smaller window a *default* ``max_completion_tokens`` is lowered to fit as well,
            when the prompt leaves at least the free tier's default completion there (the free
            window while ``tier="auto"`` has not learned the key's tier). Never refuses or trims.

    Returns:
        A ``ContextPlan`` whose ``request`` fits the window by the estimate.

    Raises:
        ConfigurationError: ``max_completion_tokens`` is zero, negative or above the model's output
            cap for the tier; or an argument of this function is invalid.
        ContextWindowExceededError: (``local=True``, with ``current_length`` and ``limit``) the
            request cannot be made to fit under the chosen policy.
    """
    if overflow not in _OVERFLOWS:
        raise ConfigurationError(
            f"context_overflow must be one of {', '.join(map(repr, _OVERFLOWS))}, not {overflow!r}"
        )
    if min_completion_tokens < 1:
        raise ConfigurationError(f"min_completion_tokens must be at least 1, not {min_completion_tokens!r}")
    limit = spec.window(tier) if window is None else window
    if not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"window must be a positive number of tokens, not {limit!r}")
    estimator = estimator if estimator is not None else shared_estimator()

    requested = _requested_completion(request)
    cap = spec.output_cap(tier)
    if requested is not None:
        if requested <= 0:
            raise ConfigurationError(f"max_completion_tokens must be a positive number of tokens, not {requested}")
        if requested > cap:
            raise ConfigurationError(
                f"max_completion_tokens={requested:,} is above the {cap:,}-token output cap of {spec.id!r} "
                f"on the {tier} tier; pass at most {cap:,}"
            )

    messages = list(request.messages)
    breakdown = estimator.breakdown(request)  # the request is counted once; every check below adds up parts
    costs: list[RawParts] = list(breakdown.message_parts)
    lows: list[float] = list(breakdown.message_low)
    if len(costs) != len(messages) or len(lows) != len(messages):  # totals only: take them as text
        costs = [(0.0, 0.0, cost, 0.0, 0.0, 0.0) for cost in breakdown.messages]
        lows = [0.0 for _ in breakdown.messages]
    key = spec.id  # calibration is per canonical model id (the gateway observes under spec.id too)
    scale = estimator.scale(key)  # one snapshot for every check of this plan
    exact = breakdown.exact

    # The server's own count of this very prompt, when a context_length_exceeded told it: exact.
    known = estimator.server_count(key, request)

    def band_of(parts: RawParts, low: float, dropped: int = 0) -> TokenBand:
        if known is not None and not dropped:
            return estimator.known_band(key, known, remember=False)
        return estimator.bounds(key, parts, low, exact, scale=scale, remember=False)

    # The completion that must fit: the caller's value, or (for a default) the floor it may drop to.
    if requested is None:
        default = min(spec.default_completion(tier), cap)
        needed = min(min_completion_tokens, default)
    else:
        default = requested
        needed = requested if overflow != "shrink_completion" else min(min_completion_tokens, requested)

    # Refuse, trim or shrink only on the low end: what certainly does not fit. A band straddling
    # the window is sent, and the server decides (its context_length_exceeded teaches the estimator).
    raw_total = add_parts(breakdown.fixed_parts, *costs)
    raw_low = breakdown.fixed_low + sum(lows)
    dropped = 0
    if band_of(raw_total, raw_low).low + needed > limit and overflow == "trim_history":
        messages, raw_total, raw_low, dropped = _trim(
            messages,
            costs,
            lows,
            raw_total,
            raw_low,
            lambda raw, low, gone: band_of(raw, low, gone).low + needed <= limit,
        )

    band = band_of(raw_total, raw_low, dropped)
    if band.low + needed > limit:
        raise _exceeded(request, spec, tier, overflow, band.low, needed, requested, limit, dropped, len(messages))

    if requested is not None and overflow != "shrink_completion":
        completion = default
    else:
        # a default or shrinkable completion: what surely fits by the high end, else by the low end
        completion = min(default, limit - band.high) if limit - band.high >= needed else min(default, limit - band.low)
        if requested is None and also_fit is not None and also_fit < limit:
            room = also_fit - band.high
            if room >= min(spec.default_completion("free"), default):
                completion = min(completion, room)
    unchanged = (
        not dropped
        and request.max_completion_tokens == completion
        and "max_tokens" not in (request.__pydantic_extra__ or {})  # the legacy alias leaves in a copy
    )
    planned = request if unchanged else _copy(request, messages, completion)
    if requested is None:
        _DEFAULTED[id(planned)] = planned
    if known is not None and not dropped:
        high = estimator.known_band(key, known)  # remembered for observe()
    else:
        high = estimator.bounds(key, raw_total, raw_low, exact, scale=scale)  # remembered for observe()
    return ContextPlan(
        request=planned,
        prompt_tokens=high.high,
        max_completion_tokens=completion,
        window=limit,
        dropped_messages=dropped,
        completion_defaulted=requested is None,
        prompt_tokens_low=high.low,
        prompt_exact=high.exact,
    )


def _requested_completion(request: ChatCompletionRequest) -> int | None:
    if _DEFAULTED.get(id(request)) is request:
        return None  # our own default from an earlier plan: choose it again for this tier
    if request.max_completion_tokens is not None:
        return int(request.max_completion_tokens)
    legacy = (request.model_extra or {}).get("max_tokens")  # deprecated alias
    if legacy is None:
        return None
    if isinstance(legacy, bool) or not isinstance(legacy, int):
        raise ConfigurationError(f"max_tokens must be an integer, not {legacy!r}")
    return legacy


def _copy(request: ChatCompletionRequest, messages: list[Message], completion: int) -> ChatCompletionRequest:
    planned = request.model_copy(update={"messages": messages, "max_completion_tokens": completion})
    extra = planned.__pydantic_extra__
    if extra and "max_tokens" in extra:  # the copy carries the value as max_completion_tokens only
        del extra["max_tokens"]
        planned.__pydantic_fields_set__ = set(planned.model_fields_set) - {"max_tokens"}
    return planned


def _units(messages: list[Message]) -> list[list[int]]:
    """Droppable units of ``messages`` (lists of indices, oldest first).

    The kept tail is the last user message and everything after it (or, without a user message,
    the last assistant message and what follows it). Before it, a unit is a user message with the
    assistant and tool messages that follow it, so an assistant's tool calls always leave together
    with their results; messages before the first user message form units of their own (an
    assistant message with its tool results, or orphan tool results). System and developer
    messages are in no unit: they are always kept.
    """
    tail = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if tail is None:
        tail = len(messages)
        while tail > 0 and messages[tail - 1].role in (*_KEPT_ROLES, "tool"):
            tail -= 1
        tail = max(tail - 1, 0)
    units: list[list[int]] = []
    for index in range(tail):
        role = messages[index].role
        if role in _KEPT_ROLES:
            continue
        if units and (role == "tool" or (role == "assistant" and messages[units[-1][0]].role == "user")):
            units[-1].append(index)  # the turn goes on; tool results stay with their call
        else:
            units.append([index])
    return units


def _trim(
    messages: list[Message],
    costs: list[RawParts],
    lows: list[float],
    raw_total: RawParts,
    raw_low: float,
    fits: Callable[[RawParts, float, int], bool],
) -> tuple[list[Message], RawParts, float, int]:
    """Drop the oldest units until ``fits(raw_total, raw_low, dropped so far)``; return the kept
    messages, their raw parts and low end, and the count dropped."""
    dropped: set[int] = set()
    for unit in _units(messages):
        if fits(raw_total, raw_low, len(dropped)):
            break
        dropped.update(unit)
        raw_total = subtract_parts(raw_total, *(costs[index] for index in unit))
        raw_low -= sum(lows[index] for index in unit)
    kept = [message for index, message in enumerate(messages) if index not in dropped]
    return kept, raw_total, raw_low, len(dropped)


def _exceeded(
    request: ChatCompletionRequest,
    spec: ModelSpec,
    tier: Tier,
    overflow: ContextOverflow,
    prompt: int,
    completion: int,
    requested: int | None,
    limit: int,
    dropped: int,
    kept: int,
) -> ContextWindowExceededError:
    total = prompt + completion
    if requested is None:
        what = f"the smallest default max_completion_tokens ({completion:,})"
    elif overflow == "shrink_completion":
        what = f"max_completion_tokens shrunk to its floor ({completion:,})"
    else:
        what = f"max_completion_tokens ({completion:,})"
    if overflow == "trim_history":
        done = f" even after dropping {dropped} older message(s) ({kept} kept: system/developer and the last turn)"
    elif overflow == "shrink_completion":
        done = " even after shrinking max_completion_tokens"
    else:
        done = ""
    message = (
        f"the prompt of at least {prompt:,} tokens plus {what} does not fit the {limit:,}-token "
        f"context window of {spec.id!r} on the {tier} tier{done}. Current length is {total} while limit is {limit}. "
        "Ways out: shorten the prompt, pass a smaller max_completion_tokens, or set "
        'context_overflow="trim_history" (drop the oldest turns) or "shrink_completion" '
        "(lower max_completion_tokens to fit)."
    )
    return LocalContextWindowExceededError(
        message,
        current_length=total,
        limit=limit,
        local=True,
        code="context_length_exceeded",
        param="messages",
    )
