"""The decisions of one call, across its attempts: no I/O, no sleeping.

The sync and async shells (``_sync/calls.py``, ``_async/calls.py``) ask this object what to do
next (wait, send on which key, pause, back off, raise) and tell it what happened. Every rule that
decides *what to reserve, what to wait for, what to retry, what to cut* is here or below.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from cerebras_paygo._backends import monotonic
from cerebras_paygo._billing import BudgetToken, worst_case_cost
from cerebras_paygo._catalog import ModelSpec, Prices, Tier
from cerebras_paygo._context import ContextPlan, plan_context
from cerebras_paygo._payment import PaymentCircuit, payment_required_message
from cerebras_paygo._ratelimit import RateLimits, Reservation, Scope
from cerebras_paygo._retry import next_action
from cerebras_paygo._settings import Settings
from cerebras_paygo._wire import ChatCompletionRequest, RateLimitSnapshot, Usage
from cerebras_paygo.errors import (
    CerebrasError,
    ContextWindowExceededError,
    LocalPaymentRequiredError,
    PaymentRequiredError,
)

if TYPE_CHECKING:
    from cerebras_paygo._client import CerebrasClient

__all__ = ["SEND_POLL_S", "Attempt", "CallInfo", "CallState", "Recovery", "Route"]

logger = logging.getLogger("cerebras_paygo.gateway")

_FREE = Prices(input=0.0, output=0.0)

#: Longest nap of a booking waiting its turn; it re-reads its start after each (refunds move it).
SEND_POLL_S = 0.1

#: Extra room left on a re-plan after a server context error (template tokens we cannot see).
_REPLAN_MARGIN = 32


@dataclass(frozen=True)
class CallInfo:
    """What one call cost and saw; the adapters put it in their response metadata."""

    model: str
    tier: Tier
    rate_limits: RateLimitSnapshot | None
    cost_usd: float
    request_id: str | None
    attempts: int
    waited_s: float
    prompt_estimate: int
    max_completion_tokens: int
    dropped_messages: int
    used_fallback_key: bool = False

    def as_metadata(self) -> dict[str, object]:
        return {
            "tier": self.tier,
            "cost_usd": self.cost_usd,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "waited_s": round(self.waited_s, 6),
            "prompt_estimate": self.prompt_estimate,
            "max_completion_tokens": self.max_completion_tokens,
            "dropped_messages": self.dropped_messages,
            "used_fallback_key": self.used_fallback_key,
            "rate_limits": self.rate_limits.as_dict() if self.rate_limits else None,
        }


@dataclass(frozen=True)
class Route:
    """One key to send on: its settings, tier, limiter scope, limits and payment circuit."""

    settings: Settings
    scope: Scope
    limits: RateLimits
    circuit: PaymentCircuit
    fallback: bool = False

    @property
    def tier(self) -> Tier:
        return self.settings.tier


@dataclass
class Attempt:
    """One admitted try: where it goes, what it reserved."""

    route: Route
    plan: ContextPlan
    reservation: Reservation
    probe: bool
    budget_token: BudgetToken | None = None
    sent_at: float = 0.0

    @property
    def payload(self) -> dict[str, object]:
        return self.plan.request.to_payload()


@dataclass(frozen=True)
class Recovery:
    """What to do after a failed attempt."""

    kind: Literal["raise", "sleep", "pause"]
    delay: float = 0.0
    error: CerebrasError | None = None
    call_hook: bool = False


@dataclass(frozen=True)
class Gate:
    """Before an attempt: send on ``route`` (maybe as the payment probe), wait, or raise."""

    kind: Literal["send", "wait", "raise"]
    route: Route | None = None
    probe: bool = False
    wait_s: float = 0.0
    error: CerebrasError | None = None


@dataclass
class CallState:
    """The state of one call across attempts."""

    client: CerebrasClient
    request: ChatCompletionRequest
    stream: bool = False
    spec: ModelSpec = field(init=False)
    started: float = field(default_factory=monotonic)
    attempts: int = 0
    retries: int = 0
    waited_s: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    _plans: dict[Tier, ContextPlan] = field(default_factory=dict)
    #: Tokens the server counted beyond our estimate, per tier: the next plan leaves that much room.
    _window_gap: dict[Tier, int] = field(default_factory=dict)
    _outage_started: float | None = None

    def __post_init__(self) -> None:
        self.spec = self.client.spec(self.request.model)
        self.spec.check_available()
        # Plan for the primary tier now: a prompt over the cap raises before anything is reserved.
        self.plan_for(self.client.primary_route(self.spec))

    # -- before an attempt ----------------------------------------------------------------------

    def plan_for(self, route: Route) -> ContextPlan:
        plan = self._plans.get(route.tier)
        if plan is None:
            request = self.request
            if self.stream:
                request = request.model_copy(update={"stream_options": {"include_usage": True}})
            client = self.client
            window = client.context_window if not route.fallback else None
            gap = self._window_gap.get(route.tier)
            if gap:
                window = (window or self.spec.window(route.tier)) - gap
            plan = plan_context(
                request,
                self.spec,
                route.tier,
                estimator=client.estimator,
                overflow=client.context_overflow,
                window=window,
            )
            self._plans[route.tier] = plan
        return plan

    def reserve_tokens(self, plan: ContextPlan) -> int:
        return plan.prompt_tokens + plan.max_completion_tokens

    def gate(self, now: float) -> Gate:
        """Decide where the next attempt goes, honouring the primary key's payment circuit."""
        primary = self.client.primary_route(self.spec)
        decision = primary.circuit.gate(now, policy=self.client.payment_policy)
        if decision.kind == "send":
            return Gate("send", route=primary)
        if decision.kind == "probe":
            return Gate("send", route=primary, probe=True)
        fallback = self.client.fallback_route(self.spec)
        if fallback is not None:
            return Gate("send", route=fallback)
        if decision.kind == "wait":
            return Gate("wait", wait_s=decision.wait_s)
        policy = self.client.payment_policy
        waited = now - (decision.outage_started if decision.outage_started is not None else now)
        return Gate(
            "raise",
            error=LocalPaymentRequiredError(
                payment_required_message(waited, policy.max_wait, primary.settings.fingerprint),
                waited=waited,
                status_code=402,
                code="payment_required",
                param="quota",
            ),
        )

    def max_wait(self, now: float) -> float | None:
        deadline = self.client.retry_policy.deadline
        if deadline is None:
            return None
        return max(0.0, deadline - (now - self.started))

    def _recover_context(self, attempt: Attempt, error: ContextWindowExceededError) -> Recovery:
        """The server counted more than we estimated: learn, and under a trimming or shrinking
        policy plan once more, leaving room for whatever the estimator has not yet learned."""
        plan = attempt.plan
        estimator = self.client.estimator
        estimator.observe_context_error(self.spec.id, error, plan.prompt_tokens, plan.max_completion_tokens)
        tier = attempt.route.tier
        if self.client.context_overflow == "raise" or error.current_length is None or tier in self._window_gap:
            return Recovery("raise", error=error)
        completion = plan.max_completion_tokens
        # How far the estimator, after learning from this error, still undercounts this prompt.
        ratio = (error.current_length - completion) / max(1, estimator.estimate_request(plan.request))
        room = max(0, plan.window - _REPLAN_MARGIN - completion)
        if ratio > 1.0:
            room = int(room / ratio)
        self._window_gap[tier] = plan.window - (room + completion)
        self._plans.pop(tier, None)
        logger.info(
            "server counted %d tokens where we planned %d; planning %s again with %d tokens less room",
            error.current_length,
            plan.prompt_tokens + completion,
            self.spec.id,
            self._window_gap[tier],
        )
        return Recovery("sleep", delay=0.0, error=error)

    def prices(self, route: Route) -> Prices:
        """What this route pays: catalog prices on PayGo; nothing on the free tier."""
        return self.spec.prices if route.tier == "paygo" else _FREE

    def budget_reserve(self, route: Route, plan: ContextPlan) -> BudgetToken | None:
        guard = self.client.budget_guard
        if guard is None:
            return None
        return guard.reserve(worst_case_cost(self.prices(route), plan.prompt_tokens, plan.max_completion_tokens))

    # -- after an attempt -----------------------------------------------------------------------

    def recover(self, attempt: Attempt, error: CerebrasError, *, delivered: bool, now: float) -> Recovery:
        """Classify a failure: raise it, or sleep/pause and try again."""
        route = attempt.route
        guard = self.client.budget_guard
        if attempt.budget_token is not None and guard is not None:
            if delivered:
                # Tokens were produced and billed: count the worst case rather than nothing.
                plan = attempt.plan
                guard.settle(
                    attempt.budget_token,
                    worst_case_cost(self.prices(route), plan.prompt_tokens, plan.max_completion_tokens),
                )
            else:
                guard.release(attempt.budget_token)
        if attempt.probe and not isinstance(error, PaymentRequiredError):
            # The probe's answer said nothing about credit: the next caller may probe.
            route.circuit.on_probe_done(now)
        if isinstance(error, ContextWindowExceededError) and not error.local:
            return self._recover_context(attempt, error)
        action = next_action(
            self.client.retry_policy,
            error,
            attempt=self.retries,
            elapsed=now - self.started,
            delivered=delivered,
            rng=self.rng,
        )
        if action.kind == "payment":
            new_outage = route.circuit.on_payment_required(
                now, probe=attempt.probe, sent_at=attempt.sent_at, policy=self.client.payment_policy
            )
            logger.debug("402 on key %s (model %s)", route.scope.key_fingerprint, self.spec.id)
            return Recovery("sleep", delay=0.0, call_hook=new_outage and not route.fallback, error=error)
        if action.kind == "raise":
            return Recovery("raise", error=error)
        self.retries += 1
        if action.kind == "rate_limited":
            remaining = self.max_wait(now)
            if remaining is not None and action.delay > remaining:
                return Recovery("raise", error=error)
            logger.info(
                "429 %s on %s: pausing the key+model for %.2fs",
                getattr(error, "quota", None),
                self.spec.id,
                action.delay,
            )
            return Recovery("pause", delay=action.delay, error=error)
        logger.info("retrying %s after %.2fs (%s)", self.spec.id, action.delay, type(error).__name__)
        return Recovery("sleep", delay=action.delay, error=error)

    def succeeded(
        self,
        attempt: Attempt,
        usage: Usage | None,
        snapshot: RateLimitSnapshot | None,
        request_id: str | None,
        now: float,
    ) -> CallInfo:
        """Book a success: circuit, spend, budget, calibration. Returns the call's info."""
        route = attempt.route
        route.circuit.on_success(now, probe=attempt.probe, sent_at=attempt.sent_at)
        client = self.client
        cost = 0.0
        prices = self.prices(route)
        if usage is not None:
            cost = client.spend_meter.record(route.scope.key_fingerprint, self.spec.id, usage, prices)
            if usage.prompt_tokens:
                client.estimator.observe(self.spec.id, attempt.plan.prompt_tokens, usage.prompt_tokens)
        elif attempt.budget_token is not None:
            # No usage reached us (a stream without its final chunk): assume the worst.
            cost = worst_case_cost(prices, attempt.plan.prompt_tokens, attempt.plan.max_completion_tokens)
        if attempt.budget_token is not None and client.budget_guard is not None:
            client.budget_guard.settle(attempt.budget_token, cost)
        return CallInfo(
            model=self.spec.id,
            tier=route.tier,
            rate_limits=snapshot,
            cost_usd=cost,
            request_id=request_id,
            attempts=self.attempts,
            waited_s=self.waited_s,
            prompt_estimate=attempt.plan.prompt_tokens,
            max_completion_tokens=attempt.plan.max_completion_tokens,
            dropped_messages=attempt.plan.dropped_messages,
            used_fallback_key=route.fallback,
        )

    def settle_tokens(self, attempt: Attempt, usage: Usage | None) -> int:
        """Tokens to settle the reservation at: the real total, or all of it when unknown."""
        if usage is None or not usage.total_tokens:
            return attempt.reservation.tokens
        return usage.total_tokens
