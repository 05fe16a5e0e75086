"""The life of one call, as a generator of steps (httpx's ``auth_flow``, h11's sans-IO).

``CallFlow(config, request, stream=...).steps()`` yields the steps of ``_steps`` and receives their
outcomes; the sync and async shells (``_sync/drive.py``, ``_async/drive.py``) only perform them. No
I/O, no sleeping and no client here: the flow reads its clock from the config and everything it
shares with other calls is reached through steps.

One call::

    plan the context (catalog window, estimator)        raises a local context error before anything
    loop:
        CheckCircuit        the key's 402 circuit: send / probe / wait (Sleep) / fail / fallback key
        HoldBudget          worst-case cost (None: wait for in-flight requests to settle)
        Acquire             one request + prompt + max_completion_tokens on the key's buckets
        SendDelay / Sleep   until the booking's turn (refunds move it earlier, a 429 pause later)
        Send                the request; a 2xx status -> Credit (the circuit learns "has credit")
        Relay               (streams) the chunks to the caller, but the last
        Close               the lease's fate: settle / keep / release, budget, probe, headers, spend
        Emit                (streams) the last chunk, with the call's info already set
        success -> return; failure -> raise, or Pause (429) / Sleep (backoff) / RunHook (402) and loop

Every exit path of an attempt, cancellation and a consumer closing the stream early included, goes
through ``Lease.close`` and one ``Close`` step.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from cerebras_paygo._billing import BudgetGuard, SpendMeter
from cerebras_paygo._catalog import ModelSpec, Prices, Tier
from cerebras_paygo._context import ContextOverflow, ContextPlan, TokenEstimator, plan_context
from cerebras_paygo._lease import Lease, Outcome
from cerebras_paygo._payment import PaymentPolicy, payment_required_message
from cerebras_paygo._ratelimit import Limiter, Reservation
from cerebras_paygo._retry import RetryPolicy, next_action
from cerebras_paygo._steps import (
    Acquire,
    CheckCircuit,
    Close,
    Closed,
    Credit,
    Emit,
    HoldBudget,
    Pause,
    Relay,
    Relayed,
    Route,
    RunHook,
    Send,
    SendDelay,
    Sleep,
    StreamResult,
)
from cerebras_paygo._wire import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, RateLimitSnapshot, Usage
from cerebras_paygo.errors import (
    AuthenticationError,
    BudgetExceededError,
    CerebrasError,
    ContextWindowExceededError,
    LocalPaymentRequiredError,
)

__all__ = ["SEND_POLL_S", "CallConfig", "CallFlow", "CallInfo"]

logger = logging.getLogger("cerebras_paygo.gateway")

_FREE = Prices(input=0.0, output=0.0)

#: Longest nap of a booking waiting its turn; it re-reads its start after each (refunds move it).
SEND_POLL_S = 0.1
#: How often a request the budget cannot admit yet looks again while others are in flight.
BUDGET_POLL_S = 0.05
#: Extra room left on a re-plan after a server context error (template tokens we cannot see).
_REPLAN_MARGIN = 32


@dataclass(frozen=True)
class CallConfig:
    """Everything one call needs, frozen: policies, the model, the routes, the shared state."""

    spec: ModelSpec
    primary: Route
    fallback: Route | None
    retry: RetryPolicy
    payment: PaymentPolicy
    overflow: ContextOverflow
    window: int | None
    estimator: TokenEstimator
    limiter: Limiter
    meter: SpendMeter
    budget: BudgetGuard | None
    clock: Callable[[], float]
    rng: Callable[[], random.Random] = random.Random


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


@dataclass
class CallFlow:
    """The state of one call across its attempts; ``steps()`` is the flow.

    Raises (from the constructor, before any step): ``ModelRetiredError``; a local
    ``ContextWindowExceededError`` when the prompt cannot fit the primary key's window.
    """

    config: CallConfig
    request: ChatCompletionRequest
    stream: bool = False
    started: float = 0.0
    attempts: int = 0
    retries: int = 0
    waited_s: float = 0.0
    completion: ChatCompletion | None = None
    info: CallInfo | None = None
    #: Plans per tier in force (None: ``tier="auto"`` before the server told it).
    _plans: dict[Tier | None, ContextPlan] = field(default_factory=dict)
    #: Tokens the server counted beyond our estimate, per tier: the next plan leaves that much room.
    _window_gap: dict[Tier, int] = field(default_factory=dict)
    _rng: random.Random | None = None
    #: What closing the last failed attempt's lease reported, and whether its stream delivered content.
    _closed: Closed = field(default_factory=Closed)
    _delivered: bool = False

    def __post_init__(self) -> None:
        self.started = self.config.clock()
        self.config.spec.check_available()
        self.plan_for(self.config.primary)

    # -- decisions --------------------------------------------------------------------------------

    def plan_for(self, route: Route) -> ContextPlan:
        """The request fitted to ``route``'s window (planned once per tier, again after a server
        context error under a trimming or shrinking policy)."""
        known = route.key_tier.known
        plan = self._plans.get(known)
        if plan is None:
            cfg = self.config
            tier = route.tier
            request = self.request
            if self.stream:
                request = request.model_copy(update={"stream_options": {"include_usage": True}})
            window = cfg.window if not route.fallback else None
            gap = self._window_gap.get(tier)
            if gap:
                window = (window or cfg.spec.window(tier)) - gap
            plan = plan_context(
                request,
                cfg.spec,
                tier,
                estimator=cfg.estimator,
                overflow=cfg.overflow,
                window=window,
                # Tier not known yet: a default completion also fits the free window when it can.
                also_fit=cfg.spec.window("free") if known is None and window is None else None,
            )
            self._plans[known] = plan
        return plan

    def prices(self, route: Route) -> Prices:
        """What this route pays: catalog prices on PayGo; nothing on the free tier."""
        return self.config.spec.prices if route.tier == "paygo" else _FREE

    def remaining(self) -> float | None:
        """Seconds left before the call's deadline (None: no deadline)."""
        deadline = self.config.retry.deadline
        if deadline is None:
            return None
        return max(0.0, deadline - (self.config.clock() - self.started))

    def deadline_at(self) -> float | None:
        deadline = self.config.retry.deadline
        return None if deadline is None else self.started + deadline

    @property
    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = self.config.rng()
        return self._rng

    # -- the flow ------------------------------------------------------------------------------------

    def steps(self) -> Generator[Any, Any, None]:
        """Yield steps until the call succeeded (``self.completion`` / ``self.info`` set) or raise."""
        while True:
            route, probe = yield from self._admission()
            lease = Lease(route=route, plan=self.plan_for(route), prices=self.prices(route), probe=probe)
            try:
                yield from self._attempt(lease)
                return
            except CerebrasError as error:
                yield from self._recover(lease, error)

    def _admission(self) -> Generator[Any, Any, tuple[Route, bool]]:
        """Pass the primary key's payment circuit: the route to send on, and whether as the probe."""
        cfg = self.config
        while True:
            gate = yield CheckCircuit(cfg.primary.circuit, cfg.payment, cfg.clock())
            if gate.kind == "rejected" and gate.error is not None:
                raise gate.error
            if gate.kind == "send":
                return cfg.primary, False
            if gate.kind == "probe":
                return cfg.primary, True
            if cfg.fallback is not None:
                return cfg.fallback, False
            if gate.kind == "wait":
                self.waited_s += gate.wait_s
                yield Sleep(gate.wait_s)
                continue
            now = cfg.clock()
            waited = now - (gate.outage_started if gate.outage_started is not None else now)
            raise LocalPaymentRequiredError(
                payment_required_message(waited, cfg.payment.max_wait, cfg.primary.settings.fingerprint),
                waited=waited,
                status_code=402,
                code="payment_required",
                param="quota",
            )

    def _attempt(self, lease: Lease) -> Generator[Any, Any, None]:
        """One attempt, from the budget hold to the lease's close; raises the attempt's error."""
        cfg = self.config
        route = lease.route
        usage: Usage | None = None
        snapshot: RateLimitSnapshot | None = None
        request_id: str | None = None
        stream: StreamResult | None = None
        last: ChatCompletionChunk | None = None
        relayed = False
        try:
            if cfg.budget is not None:
                lease.budget_token = yield from self._hold_budget(cfg.budget, lease)
            reservation: Reservation = yield Acquire(
                cfg.limiter, route.scope, route.limits, lease.tokens, max_wait=self.remaining()
            )
            lease.reservation = reservation
            while (delay := (yield SendDelay(cfg.limiter, reservation))) > 0:
                nap = min(delay, SEND_POLL_S)
                self.waited_s += nap
                yield Sleep(nap)
            self.attempts += 1
            lease.sent_at = cfg.clock()
            lease.stage = "sent"
            payload = lease.plan.request.to_payload()
            answer = yield Send(route, payload, stream=self.stream, deadline=self.deadline_at())
            lease.stage = "answered"
            if route.key_tier.learn_from_headers(answer.rate_limits):
                lease.prices = self.prices(route)  # the free tier pays nothing, even on this first call
            if self.stream:
                stream = answer  # from here on, every path closes it
            lease.credited = True
            yield Credit(route.circuit, lease.probe, lease.sent_at, cfg.clock())
            if stream is not None:
                relayed = True
                seen: Relayed = yield Relay(stream.stream)
                usage, last = seen.usage, seen.last
                snapshot, request_id = stream.rate_limits, stream.request_id
            else:
                self.completion = answer.data
                usage = answer.data.usage
                snapshot, request_id = answer.rate_limits, answer.request_id
        except GeneratorExit as exc:
            # Closed without its shell (garbage collected mid-attempt): no step can be yielded any
            # more, so carry the lease's fate out here rather than leave its holds behind.
            self._close_step(lease.close(Outcome(error=exc))).run()
            raise
        except BaseException as exc:
            if stream is not None and not relayed:
                yield Relay(stream.stream, discard=True)
            self._delivered = bool(stream is not None and getattr(stream.stream, "delivered_chunks", 0))
            self._closed = yield self._close_step(lease.close(Outcome(error=exc, delivered=self._delivered)))
            raise
        closed = yield self._close_step(lease.close(Outcome(usage=usage, snapshot=snapshot)))
        if usage is not None and usage.prompt_tokens:
            cfg.estimator.observe(cfg.spec.id, lease.plan.prompt_tokens, usage.prompt_tokens)
        self.info = CallInfo(
            model=cfg.spec.id,
            tier=route.tier,
            rate_limits=snapshot,
            cost_usd=closed.cost_usd,
            request_id=request_id,
            attempts=self.attempts,
            waited_s=self.waited_s,
            prompt_estimate=lease.plan.prompt_tokens,
            max_completion_tokens=lease.plan.max_completion_tokens,
            dropped_messages=lease.plan.dropped_messages,
            used_fallback_key=route.fallback,
        )
        if last is not None:
            yield Emit(last)

    def _hold_budget(self, guard: BudgetGuard, lease: Lease) -> Generator[Any, Any, Any]:
        """Hold the worst case on the budget; while requests in flight block it but their settling
        could make room, wait for them (up to the deadline) instead of refusing."""
        while True:
            remaining = self.remaining()
            # At the deadline, ask once more and refuse for good (the error says what is spent and
            # in flight); before it, "not now" means wait.
            final = remaining is not None and remaining <= 0
            token = yield HoldBudget(guard, lease.worst_case_usd, final=final)
            if token is not None:
                return token
            nap = BUDGET_POLL_S if remaining is None else min(BUDGET_POLL_S, remaining)
            self.waited_s += nap
            yield Sleep(nap)

    def _close_step(self, fate: Any) -> Close:
        cfg = self.config
        return Close(fate, cfg.limiter, cfg.budget, cfg.meter, cfg.payment, cfg.clock)

    def _recover(self, lease: Lease, error: CerebrasError) -> Generator[Any, Any, None]:
        """After a failed attempt whose lease is closed: raise, or wait and let ``steps`` try again."""
        cfg = self.config
        closed = self._closed
        route = lease.route
        meta = getattr(error, "meta", None)
        if meta is not None:  # an error answer's headers tell the tier as well as a success's
            route.key_tier.learn_from_headers(meta.rate_limits)
        if isinstance(error, BudgetExceededError):
            raise error
        if isinstance(error, AuthenticationError):
            # The key is wrong for everyone: the circuit (in-memory, no I/O) makes the callers
            # queued behind this one, and later ones, fail with this error without sending.
            route.circuit.on_rejected(cfg.clock(), error)
            raise error
        if isinstance(error, ContextWindowExceededError) and not error.local:
            self._replan_after_context_error(lease, error)
            return
        action = next_action(
            cfg.retry,
            error,
            attempt=self.retries,
            elapsed=cfg.clock() - self.started,
            delivered=self._delivered,
            rng=self.rng,
        )
        if action.kind == "payment":
            logger.debug("402 on key %s (model %s)", route.scope.key_fingerprint, cfg.spec.id)
            hook = cfg.payment.on_payment_required
            if closed.new_outage and not route.fallback and hook is not None:
                yield RunHook(hook, self.payment_hook_info(route, error))
            return
        if action.kind == "raise":
            raise error
        self.retries += 1
        if action.kind == "rate_limited":
            logger.info(
                "429 %s on %s: pausing the key+model for %.2fs",
                getattr(error, "quota", None),
                cfg.spec.id,
                action.delay,
            )
            yield Pause(cfg.limiter, route.scope, action.delay)
            return
        logger.info("retrying %s after %.2fs (%s)", cfg.spec.id, action.delay, type(error).__name__)
        self.waited_s += action.delay
        yield Sleep(action.delay)

    def _replan_after_context_error(self, lease: Lease, error: ContextWindowExceededError) -> None:
        """The server counted more than we estimated: learn, and under a trimming or shrinking policy
        plan once more, leaving room for whatever the estimator has not yet learned."""
        cfg = self.config
        plan = lease.plan
        estimator = cfg.estimator
        estimator.observe_context_error(
            cfg.spec.id, error, plan.prompt_tokens, plan.max_completion_tokens, request=plan.request
        )
        key_tier = lease.route.key_tier
        if self._plans.get(None) is plan:
            # Planned before the tier was known (``tier="auto"``): the error's limit (or its headers)
            # may show the free tier's window. Plan again for it, under any policy.
            key_tier.learn_from_context_limit(cfg.spec, error.limit)
            if key_tier.known == "free":
                del self._plans[None]
                logger.info(
                    "the key is on the free tier (server limit %s): planning %s again", error.limit, cfg.spec.id
                )
                return
        tier = lease.route.tier
        if cfg.overflow == "raise" or error.current_length is None or tier in self._window_gap:
            raise error
        completion = plan.max_completion_tokens
        # How far the low end (which trimming and shrinking decide on) undercounted this prompt.
        ratio = (error.current_length - completion) / max(1, plan.prompt_tokens_low or plan.prompt_tokens)
        room = max(0, plan.window - _REPLAN_MARGIN - completion)
        if ratio > 1.0:
            room = int(room / ratio)
        self._window_gap[tier] = plan.window - (room + completion)
        self._plans.pop(tier, None)
        logger.info(
            "server counted %d tokens where we planned %d; planning %s again with %d tokens less room",
            error.current_length,
            plan.prompt_tokens + completion,
            cfg.spec.id,
            self._window_gap[tier],
        )

    def payment_hook_info(self, route: Route, error: CerebrasError) -> dict[str, Any]:
        """What the ``on_payment_required`` hook receives (no key, only its fingerprint)."""
        return {
            "key_fingerprint": route.scope.key_fingerprint,
            "model": route.scope.model,
            "base_url": route.settings.base_url,
            "message": error.message,
            "request_id": error.request_id,
        }
