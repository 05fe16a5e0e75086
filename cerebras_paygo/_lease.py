"""One lease per attempt: what an attempt holds, and the one decision of how each part ends.

An attempt may hold three things other calls wait on: a limiter reservation (tokens and a request
booked on the key's buckets), a budget hold (its worst-case cost), and the payment circuit's probe
slot. ``Lease.close(outcome)`` decides, in this one place and for every way an attempt can end, what
happens to each, and returns a ``Fate`` that the ``Close`` step carries out:

===========================================  ===============  ==============  =============
how the attempt ended                         reservation      budget hold     probe slot
===========================================  ===============  ==============  =============
2xx, usage known                              settle to usage  settle at price  (freed at 2xx)
2xx, usage unknown (stream without usage)     keep             worst case       (freed at 2xx)
refused before sending (limiter, budget)      release          release          freed
an error status (4xx, 429, 5xx)               release          release          freed
402                                           release          release          402 reported
malformed 2xx body                            keep             worst case       (freed at 2xx)
connection failed before the request left     release          release          freed
timeout/broken read after it left             keep             worst case       freed
broken stream after content was delivered     keep             worst case       (freed at 2xx)
cancelled or closed while queued              release          release          freed
cancelled or closed once sent                 keep             worst case       freed
===========================================  ===============  ==============  =============

"Keep" settles the reservation at what it booked: the server may have counted all of it, and the
next response's headers correct the buckets if it did not. Refunding it instead would make the
local view overstate the quota, and the next batch would meet real 429s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cerebras_paygo._billing import BudgetToken, worst_case_cost
from cerebras_paygo._catalog import Prices
from cerebras_paygo._context import ContextPlan
from cerebras_paygo._ratelimit import Reservation
from cerebras_paygo._steps import Route
from cerebras_paygo._wire import RateLimitSnapshot, Usage
from cerebras_paygo.errors import APIPaymentRequiredError, APIStatusError, StreamInterruptedError

__all__ = ["Fate", "Lease", "Outcome", "Stage"]

#: Where an attempt is: ``queued`` (nothing left the process), ``sent`` (the request may be at the
#: server), ``answered`` (a 2xx status arrived; its body or stream is being read).
Stage = Literal["queued", "sent", "answered"]
TokenFate = Literal["settle", "keep", "release"]
BudgetFate = Literal["settle", "worst_case", "release"]
CircuitFate = Literal["none", "payment", "probe_done"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended: ``error`` is None on success (then ``usage`` and ``snapshot`` may be set);
    any exception otherwise, a ``CerebrasError`` or a cancellation (``CancelledError``,
    ``GeneratorExit``, ``KeyboardInterrupt``...)."""

    error: BaseException | None = None
    usage: Usage | None = None
    snapshot: RateLimitSnapshot | None = None
    delivered: bool = False


@dataclass(frozen=True, slots=True)
class Fate:
    """What ``Close`` does with each part of a lease (see the table in this module's docstring)."""

    route: Route
    reservation: Reservation | None
    tokens: TokenFate
    settle_tokens: int
    budget_token: BudgetToken | None
    budget: BudgetFate
    worst_case_usd: float
    usage: Usage | None
    prices: Prices
    snapshot: RateLimitSnapshot | None
    circuit: CircuitFate
    probe: bool
    sent_at: float | None


@dataclass(slots=True)
class Lease:
    """What one attempt holds; the flow fills it in as the attempt advances, then closes it once."""

    route: Route
    plan: ContextPlan
    prices: Prices
    probe: bool = False
    reservation: Reservation | None = None
    budget_token: BudgetToken | None = None
    stage: Stage = "queued"
    sent_at: float | None = None
    #: The probe's answer (2xx) already reached the circuit through a ``Credit`` step.
    credited: bool = False
    closed: bool = False

    @property
    def tokens(self) -> int:
        """What the attempt books on the token buckets: prompt estimate plus ``max_completion_tokens``."""
        return self.plan.prompt_tokens + self.plan.max_completion_tokens

    @property
    def worst_case_usd(self) -> float:
        return worst_case_cost(self.prices, self.plan.prompt_tokens, self.plan.max_completion_tokens)

    def close(self, outcome: Outcome) -> Fate:
        """Decide how each part of the lease ends; a lease closes once (a second call is a bug)."""
        if self.closed:
            raise RuntimeError("a lease is closed once")
        self.closed = True
        error = outcome.error
        admitted = self._maybe_admitted(error, outcome.delivered)
        usage = outcome.usage if error is None else None
        token_fate: TokenFate
        budget_fate: BudgetFate
        if usage is not None and usage.total_tokens:
            token_fate, budget_fate = "settle", "settle"
        elif admitted:
            token_fate, budget_fate = "keep", "worst_case"
        else:
            token_fate, budget_fate = "release", "release"
        circuit: CircuitFate = "none"
        if isinstance(error, APIPaymentRequiredError):
            circuit = "payment"
        elif self.probe and not self.credited:
            circuit = "probe_done"
        snapshot = outcome.snapshot
        if snapshot is None and isinstance(error, APIStatusError):
            snapshot = error.meta.rate_limits
        return Fate(
            route=self.route,
            reservation=self.reservation,
            tokens=token_fate,
            settle_tokens=usage.total_tokens if token_fate == "settle" and usage is not None else self.tokens,
            budget_token=self.budget_token,
            budget=budget_fate,
            worst_case_usd=self.worst_case_usd,
            usage=usage,
            prices=self.prices,
            snapshot=snapshot if snapshot is not None and not snapshot.empty else None,
            circuit=circuit,
            probe=self.probe,
            sent_at=self.sent_at,
        )

    def _maybe_admitted(self, error: BaseException | None, delivered: bool) -> bool:
        """Whether the server may have counted this attempt against the quota."""
        if self.stage == "queued":
            return False
        if error is None or delivered or self.stage == "answered" or isinstance(error, StreamInterruptedError):
            return True
        flag = getattr(error, "maybe_admitted", None)
        if isinstance(flag, bool):  # the transport knows whether the request left (and was answered)
            return flag
        # An error status: the server refused it before running it. Anything else (cancelled, or a
        # failure in our own code) after the request left: it may be running.
        return not isinstance(error, APIStatusError)
