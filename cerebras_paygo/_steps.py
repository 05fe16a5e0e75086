"""The steps a call's flow (``_flow.CallFlow``) yields, and what each shell does with them.

A step is a frozen value. Five of them are I/O the shells perform themselves, the only places where
sync and async differ: ``Sleep``, ``Send``, ``Relay``, ``Emit`` and ``RunHook``. Every other step touches the
state a call shares with other calls (the limiter, the payment circuit, the budget, the spend meter)
and performs itself: ``step.run()`` from the sync shell, ``await step.arun()`` from the async one. With
the in-process backends both return at once; a backend doing I/O (Redis) awaits it in ``arun``.

Nothing here sends, sleeps or decides: the flow decides, a step only carries the decision out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cerebras_paygo._billing import BudgetGuard, BudgetToken, SpendMeter
from cerebras_paygo._catalog import Tier
from cerebras_paygo._payment import Gate as CircuitGate
from cerebras_paygo._payment import PaymentCircuit, PaymentHook, PaymentPolicy
from cerebras_paygo._ratelimit import Limiter, RateLimits, Reservation, Scope
from cerebras_paygo._settings import Settings
from cerebras_paygo._tier import KeyTier
from cerebras_paygo._wire import ChatCompletionChunk, RateLimitSnapshot, Usage

if TYPE_CHECKING:
    from cerebras_paygo._lease import Fate

__all__ = [
    "Acquire",
    "CheckCircuit",
    "Close",
    "Closed",
    "ConsumerClosed",
    "Credit",
    "Emit",
    "HoldBudget",
    "Pause",
    "Relay",
    "Relayed",
    "Route",
    "RunHook",
    "Send",
    "SendDelay",
    "SharedStep",
    "Sleep",
    "Step",
    "StreamResult",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Route:
    """One key to send on: its settings, limiter scope, payment circuit and tier, and the limits of
    each tier (the tier in force picks them: ``tier="auto"`` learns it from the first answer)."""

    settings: Settings
    scope: Scope
    tier_limits: Mapping[Tier, RateLimits]
    circuit: PaymentCircuit
    key_tier: KeyTier
    fallback: bool = False

    @property
    def tier(self) -> Tier:
        """The tier this route plans, prices and limits with (PayGo's while ``auto`` is unknown)."""
        return self.key_tier.planning

    @property
    def limits(self) -> RateLimits:
        return self.tier_limits[self.key_tier.planning]


class ConsumerClosed(BaseException):
    """Thrown into a flow in place of ``GeneratorExit`` when the caller closes a stream early.

    A generator that delegates with ``yield from`` answers a thrown ``GeneratorExit`` by closing its
    sub-generator, which may not yield any more; the flow must still yield its ``Close`` step. The
    shell re-raises the caller's ``GeneratorExit`` once the flow is done.
    """


# --- I/O the shells perform --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sleep:
    """Sleep ``seconds`` (a backoff, a wait for credit, a nap while queued)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``payload`` on ``route``'s key. Plain: the shell answers with the transport's ``Response``.
    Stream: the shell opens the SSE response (status and headers read, body not) and answers with the
    open stream; ``Relay`` then forwards its chunks."""

    route: Route
    payload: dict[str, Any]
    stream: bool
    #: Absolute ``time.monotonic()`` instant by which the whole response must be in (None: no bound).
    deadline: float | None = None


@dataclass
class StreamResult:
    """What a stream's ``Send`` answers with: the open stream, what its headers said, its request id."""

    stream: Any
    rate_limits: RateLimitSnapshot | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Relay:
    """Forward the open ``stream``'s chunks to the caller as they arrive, then close it; the shell
    answers with a ``Relayed``. ``discard``: close it unread. A chunk that may be the last (a finish
    reason or the usage: ``_http.may_end_stream``) is held until the next arrives, and the last one
    held until the flow has closed the attempt, so it reaches the caller with ``info`` already set."""

    stream: Any
    discard: bool = False


@dataclass(frozen=True, slots=True)
class Relayed:
    """What a ``Relay`` saw: the last usage (None: the stream ended without one) and the held chunk."""

    usage: Usage | None = None
    last: ChatCompletionChunk | None = None


@dataclass(frozen=True, slots=True)
class Emit:
    """Hand ``chunk`` (the one ``Relay`` held back) to the caller."""

    chunk: ChatCompletionChunk


@dataclass(frozen=True, slots=True)
class RunHook:
    """Run the ``on_payment_required`` hook (sync or async) with ``info``; it never raises."""

    hook: PaymentHook
    info: dict[str, Any]


# --- shared state: steps that perform themselves ---------------------------------------------------


class SharedStep(Generic[T]):
    """A step on shared state: ``run`` from sync code, ``arun`` from async code."""

    __slots__ = ()

    def run(self) -> T:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    async def arun(self) -> T:  # pragma: no cover - every subclass overrides it (its backend may await)
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class CheckCircuit(SharedStep[CircuitGate]):
    """Ask the key's payment circuit whether a request may go now (send / probe / wait / fail)."""

    circuit: PaymentCircuit
    policy: PaymentPolicy
    now: float

    def run(self) -> CircuitGate:
        return self.circuit.gate(self.now, policy=self.policy)

    async def arun(self) -> CircuitGate:
        return await self.circuit.agate(self.now, policy=self.policy)


@dataclass(frozen=True, slots=True)
class HoldBudget(SharedStep["BudgetToken | None"]):
    """Hold ``worst_case_usd`` on the budget. ``None``: the budget cannot admit it while the requests
    in flight hold their worst case, but could once they settle (wait and ask again). Raises
    ``BudgetExceededError`` when even a settled budget could not admit it, and, with ``final`` (the
    call's deadline has come), whenever it cannot admit it now."""

    guard: BudgetGuard
    worst_case_usd: float
    final: bool = False

    def run(self) -> BudgetToken | None:
        if self.final:
            return self.guard.reserve(self.worst_case_usd)
        return self.guard.hold(self.worst_case_usd)

    async def arun(self) -> BudgetToken | None:
        if self.final:
            return await self.guard.areserve(self.worst_case_usd)
        return await self.guard.ahold(self.worst_case_usd)


@dataclass(frozen=True, slots=True)
class Acquire(SharedStep[Reservation]):
    """Book one request and ``tokens`` on the scope's buckets (FIFO; may start in the future)."""

    limiter: Limiter
    scope: Scope
    limits: RateLimits
    tokens: int
    max_wait: float | None

    def run(self) -> Reservation:
        return self.limiter.acquire(self.scope, self.limits, self.tokens, max_wait=self.max_wait)

    async def arun(self) -> Reservation:
        return await self.limiter.aacquire(self.scope, self.limits, self.tokens, max_wait=self.max_wait)


@dataclass(frozen=True, slots=True)
class SendDelay(SharedStep[float]):
    """Seconds the booking must still wait (refunds move it earlier, a 429 pause later); 0: send now."""

    limiter: Limiter
    reservation: Reservation

    def run(self) -> float:
        return self.limiter.send_delay(self.reservation)

    async def arun(self) -> float:
        return await self.limiter.asend_delay(self.reservation)


@dataclass(frozen=True, slots=True)
class Credit(SharedStep[None]):
    """A 2xx status arrived on the key: the circuit learns it has credit (before the body is read)."""

    circuit: PaymentCircuit
    probe: bool
    sent_at: float
    now: float

    def run(self) -> None:
        self.circuit.on_success(self.now, probe=self.probe, sent_at=self.sent_at)

    async def arun(self) -> None:
        await self.circuit.aon_success(self.now, probe=self.probe, sent_at=self.sent_at)


@dataclass(frozen=True, slots=True)
class Pause(SharedStep[None]):
    """A 429: every caller of the scope waits ``seconds`` (plus jitter)."""

    limiter: Limiter
    scope: Scope
    seconds: float

    def run(self) -> None:
        self.limiter.pause(self.scope, self.seconds)

    async def arun(self) -> None:
        await self.limiter.apause(self.scope, self.seconds)


@dataclass(frozen=True, slots=True)
class Closed:
    """What closing a lease reported: the cost booked, and whether a 402 opened a new outage."""

    cost_usd: float = 0.0
    new_outage: bool = False


@dataclass(frozen=True, slots=True)
class Close(SharedStep[Closed]):
    """Carry out a lease's fate (``Lease.close``): the limiter booking, the budget hold, the probe slot,
    the response's rate-limit headers and the spend, each exactly once."""

    fate: Fate
    limiter: Limiter
    budget: BudgetGuard | None
    meter: SpendMeter
    policy: PaymentPolicy
    now: Callable[[], float]

    def run(self) -> Closed:
        fate = self.fate
        route = fate.route
        if fate.reservation is not None:
            if fate.tokens == "release":
                self.limiter.release(fate.reservation)
            else:
                self.limiter.settle(fate.reservation, fate.settle_tokens)
        if fate.snapshot is not None:
            self.limiter.apply_headers(route.scope, route.limits, fate.snapshot)
        return self._close_rest()

    async def arun(self) -> Closed:
        fate = self.fate
        route = fate.route
        if fate.reservation is not None:
            if fate.tokens == "release":
                await self.limiter.arelease(fate.reservation)
            else:
                await self.limiter.asettle(fate.reservation, fate.settle_tokens)
        if fate.snapshot is not None:
            await self.limiter.aapply_headers(route.scope, route.limits, fate.snapshot)
        fate = self.fate
        cost = 0.0
        if fate.usage is not None:
            scope = fate.route.scope
            cost = await self.meter.arecord(scope.key_fingerprint, scope.model, fate.usage, fate.prices)
        elif fate.budget == "worst_case":
            cost = fate.worst_case_usd
        if fate.budget_token is not None and self.budget is not None:
            if fate.budget == "release":
                await self.budget.arelease(fate.budget_token)
            else:
                await self.budget.asettle(fate.budget_token, cost)
        new_outage = False
        if fate.circuit == "payment":
            new_outage = await fate.route.circuit.aon_payment_required(
                self.now(), probe=fate.probe, sent_at=fate.sent_at, policy=self.policy
            )
        elif fate.circuit == "probe_done":
            await fate.route.circuit.aon_probe_done(self.now())
        return Closed(cost_usd=cost, new_outage=new_outage)

    def _close_rest(self) -> Closed:
        # The sync twin of the second half of ``arun`` (meter, budget, circuit).
        fate = self.fate
        cost = 0.0
        if fate.usage is not None:
            cost = self.meter.record(fate.route.scope.key_fingerprint, fate.route.scope.model, fate.usage, fate.prices)
        elif fate.budget == "worst_case":
            cost = fate.worst_case_usd
        if fate.budget_token is not None and self.budget is not None:
            if fate.budget == "release":
                self.budget.release(fate.budget_token)
            else:
                self.budget.settle(fate.budget_token, cost)
        new_outage = False
        if fate.circuit == "payment":
            new_outage = fate.route.circuit.on_payment_required(
                self.now(), probe=fate.probe, sent_at=fate.sent_at, policy=self.policy
            )
        elif fate.circuit == "probe_done":
            fate.route.circuit.on_probe_done(self.now())
        return Closed(cost_usd=cost, new_outage=new_outage)


#: Everything a flow may yield.
Step = Sleep | Send | Relay | Emit | RunHook | SharedStep[Any]
