"""Prices, spend tracking and spend budgets.

- :func:`price_usage` turns one response's ``usage`` into USD with the catalog's prices
  (cached prompt tokens at the cached price when the catalog has one; reasoning tokens are part of
  ``completion_tokens`` and priced as output, never twice).
- :class:`SpendMeter` adds up requests, tokens and USD per (key fingerprint, model); one is shared
  per process (:func:`shared_spend_meter`).
- :class:`BudgetGuard` refuses a request **before it is sent** when its worst-case cost
  (:func:`worst_case_cost`: the prompt estimate plus the whole ``max_completion_tokens``) on top of
  what was spent and what is in flight would cross ``max_spend_usd``; with a known starting
  balance it logs a warning when the estimated balance falls below ``warn_below_usd``.

Spend is an estimate from list prices: Cerebras' own usage graphs lag by up to 5 minutes and are
the truth for billing. Nothing here does I/O; state sits behind a ``threading.Lock`` held for O(1)
work (``totals`` is O(keys x models)).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from dataclasses import dataclass
from typing import NoReturn

from cerebras_paygo._catalog import Prices
from cerebras_paygo._wire import Usage
from cerebras_paygo.errors import BudgetExceededError, ConfigurationError

__all__ = [
    "Budget",
    "BudgetGuard",
    "BudgetToken",
    "SpendMeter",
    "SpendTotals",
    "price_usage",
    "shared_spend_meter",
    "worst_case_cost",
]

logger = logging.getLogger("cerebras_paygo.billing")

_EPSILON = 1e-9


def price_usage(prices: Prices, usage: Usage | None) -> float:
    """The USD cost of one response's ``usage`` (0.0 when there is none).

    Cached prompt tokens (``prompt_tokens_details.cached_tokens``, a part of ``prompt_tokens``)
    cost ``prices.cached_input`` when set; reasoning tokens are already in ``completion_tokens``.
    """
    if usage is None:
        return 0.0
    return prices.cost(max(usage.prompt_tokens, 0), max(usage.completion_tokens, 0), max(usage.cached_tokens, 0))


def worst_case_cost(prices: Prices, prompt_tokens: int, max_completion_tokens: int) -> float:
    """The most one request can cost: every prompt token uncached plus the whole completion budget."""
    return prices.cost(max(prompt_tokens, 0), max(max_completion_tokens, 0))


@dataclass(frozen=True)
class SpendTotals:
    """Requests, tokens and estimated USD summed over some (key fingerprint, model) pairs."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: SpendTotals) -> SpendTotals:
        return SpendTotals(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


class SpendMeter:
    """Thread-safe running totals per (key fingerprint, model).

    Keys appear only as fingerprints (``settings.key_fingerprint``), never in clear.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], SpendTotals] = {}

    def record(self, fingerprint: str, model: str, usage: Usage | None, prices: Prices) -> float:
        """Add one completed request; returns its USD cost (``usage=None`` counts the request only)."""
        cost = price_usage(prices, usage)
        entry = SpendTotals(
            requests=1,
            input_tokens=max(usage.prompt_tokens, 0) if usage else 0,
            output_tokens=max(usage.completion_tokens, 0) if usage else 0,
            cached_tokens=max(usage.cached_tokens, 0) if usage else 0,
            reasoning_tokens=max(usage.reasoning_tokens, 0) if usage else 0,
            cost_usd=cost,
        )
        key = (fingerprint, model)
        with self._lock:
            previous = self._totals.get(key)
            self._totals[key] = entry if previous is None else previous + entry
        return cost

    def totals(self, fingerprint: str | None = None, model: str | None = None) -> SpendTotals:
        """The sum over every pair matching ``fingerprint`` and ``model`` (``None`` matches all)."""
        with self._lock:
            items = list(self._totals.items())
        total = SpendTotals()
        for (fp, mdl), value in items:
            if (fingerprint is None or fp == fingerprint) and (model is None or mdl == model):
                total = total + value
        return total

    def snapshot(self) -> dict[tuple[str, str], SpendTotals]:
        """Every (fingerprint, model) pair and its totals."""
        with self._lock:
            return dict(self._totals)

    def reset(self) -> None:
        with self._lock:
            self._totals.clear()

    def __repr__(self) -> str:
        total = self.totals()
        return f"SpendMeter(pairs={len(self.snapshot())}, requests={total.requests}, cost_usd={total.cost_usd:.6f})"


_shared_meter = SpendMeter()


def shared_spend_meter() -> SpendMeter:
    """The process-wide meter every client records into."""
    return _shared_meter


def _check_amount(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"Budget.{name} must be a non-negative number or None, not {value!r}")


@dataclass(frozen=True)
class Budget:
    """Spend limits in USD.

    Args:
        max_spend_usd: Refuse a request whose worst case would take the spend past this.
        starting_balance_usd: The credit balance when counting started, if known.
        warn_below_usd: Log a warning when the estimated balance (starting balance minus spend)
            falls below this; needs ``starting_balance_usd``.

    Raises:
        ConfigurationError: A value is negative, or ``warn_below_usd`` is set without a balance.
    """

    max_spend_usd: float | None = None
    starting_balance_usd: float | None = None
    warn_below_usd: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_spend_usd", "starting_balance_usd", "warn_below_usd"):
            _check_amount(name, getattr(self, name))
        if self.warn_below_usd is not None and self.starting_balance_usd is None:
            raise ConfigurationError("Budget.warn_below_usd needs starting_balance_usd (the balance to count down)")


@dataclass(frozen=True, eq=False)
class BudgetToken:
    """One request's reservation against a :class:`BudgetGuard` (settle or release it exactly once)."""

    id: int
    worst_case_usd: float


class BudgetGuard:
    """Refuses requests that could cross a spend budget, counting in-flight worst cases.

    The gateway drives it per request: ``token = guard.reserve(worst_case_cost(...))`` before
    sending (raises :class:`~cerebras_paygo.errors.BudgetExceededError`, nothing sent), then
    ``guard.settle(token, actual_usd)`` on a response, or ``guard.release(token)`` when nothing was
    charged (failed before the server accepted it). One guard may be shared by several clients.

    The guard counts what is settled on it (its own ledger), so a budget covers the calls that
    went through this guard, whatever else records into a shared meter.

    Args:
        budget: The limits; ``Budget()`` only counts.
        meter: Where :meth:`settle_usage` records usage (default: the process-wide meter).
        spent_usd: Spend to start from (e.g. carried over from an earlier run).
    """

    def __init__(
        self, budget: Budget | None = None, meter: SpendMeter | None = None, *, spent_usd: float = 0.0
    ) -> None:
        _check_amount("spent_usd", spent_usd)
        self.budget = budget or Budget()
        self.meter = meter or shared_spend_meter()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._in_flight: dict[int, float] = {}
        self._in_flight_usd = 0.0
        self._spent = float(spent_usd)
        start = self.budget.starting_balance_usd
        self._balance_base = None if start is None else start + self._spent
        self._warned = False

    def __repr__(self) -> str:
        return (
            f"BudgetGuard(budget={self.budget!r}, spent_usd={self.spent_usd:.6f}, "
            f"in_flight_usd={self.in_flight_usd:.6f})"
        )

    @property
    def spent_usd(self) -> float:
        """USD settled so far."""
        return self._spent

    @property
    def in_flight_usd(self) -> float:
        """Worst-case USD of the requests reserved and not yet settled or released."""
        return max(self._in_flight_usd, 0.0) if self._in_flight else 0.0

    @property
    def remaining_budget_usd(self) -> float | None:
        """What ``max_spend_usd`` still allows, in-flight worst cases counted (``None``: no budget)."""
        limit = self.budget.max_spend_usd
        with self._lock:
            return None if limit is None else max(limit - self._spent - self.in_flight_usd, 0.0)

    @property
    def remaining_balance_usd(self) -> float | None:
        """The estimated credit balance (``None`` when the starting balance is unknown)."""
        base = self._balance_base
        return None if base is None else base - self._spent

    def reserve(self, worst_case_usd: float) -> BudgetToken:
        """Book a request's worst-case cost before it is sent.

        Raises:
            BudgetExceededError: spent + in flight + ``worst_case_usd`` would cross
                ``max_spend_usd``; nothing is booked then.
            ConfigurationError: ``worst_case_usd`` is negative or not a number.
        """
        token = self.hold(worst_case_usd)
        if token is None:
            self.refuse(worst_case_usd)
        assert token is not None
        return token

    def hold(self, worst_case_usd: float) -> BudgetToken | None:
        """Like :meth:`reserve`, but ``None`` (nothing booked) when only the worst cases of requests
        in flight stand in the way: once they settle at what they really cost, there may be room.

        Raises:
            BudgetExceededError: even with nothing in flight, ``worst_case_usd`` would cross the budget.
            ConfigurationError: ``worst_case_usd`` is negative or not a number.
        """
        if isinstance(worst_case_usd, bool) or not isinstance(worst_case_usd, (int, float)):
            raise ConfigurationError(f"worst_case_usd must be a number, not {worst_case_usd!r}")
        if not math.isfinite(worst_case_usd) or worst_case_usd < 0:
            raise ConfigurationError(f"worst_case_usd must be a non-negative number, not {worst_case_usd!r}")
        limit = self.budget.max_spend_usd
        with self._lock:
            in_flight = self.in_flight_usd
            if limit is None or self._spent + in_flight + worst_case_usd <= limit + _EPSILON:
                token = BudgetToken(next(self._ids), float(worst_case_usd))
                self._in_flight[token.id] = token.worst_case_usd
                self._in_flight_usd += token.worst_case_usd
                return token
            if in_flight > 0 and self._spent + worst_case_usd <= limit + _EPSILON:
                return None
        self.refuse(worst_case_usd)
        return None  # pragma: no cover - refuse raises

    def refuse(self, worst_case_usd: float) -> NoReturn:
        """Raise the ``BudgetExceededError`` for a request of ``worst_case_usd`` (nothing is booked)."""
        limit = self.budget.max_spend_usd
        with self._lock:
            spent, in_flight = self._spent, self.in_flight_usd
        budget = limit if limit is not None else 0.0
        raise BudgetExceededError(
            f"this request could cost up to ${worst_case_usd:.6f}; ${spent:.6f} spent and ${in_flight:.6f} in flight "
            f"leave ${max(budget - spent - in_flight, 0.0):.6f} of max_spend_usd=${budget:g}; nothing was sent "
            "(lower max_completion_tokens, or raise max_spend_usd)",
            spent_usd=spent + in_flight,
            request_usd=float(worst_case_usd),
            budget_usd=budget,
        )

    def settle(self, token: BudgetToken, actual_usd: float) -> None:
        """The request was answered and cost ``actual_usd``: count it and free its reservation.

        A token already settled or released is ignored (the actual cost is not counted twice).
        """
        if isinstance(actual_usd, bool) or not isinstance(actual_usd, (int, float)) or not math.isfinite(actual_usd):
            raise ConfigurationError(f"actual_usd must be a number, not {actual_usd!r}")
        with self._lock:
            if not self._pop(token):
                logger.debug("budget token %d settled twice; ignored", token.id)
                return
            self._spent += max(float(actual_usd), 0.0)
            message = self._balance_warning()
        if message is not None:
            logger.warning("%s", message)

    def settle_usage(
        self, token: BudgetToken, fingerprint: str, model: str, usage: Usage | None, prices: Prices
    ) -> float:
        """Record ``usage`` in the meter, settle ``token`` at its price, and return that price.

        Without usage (a stream that ended before its usage chunk), the request is counted at its
        worst case, since the server may have charged all of it.
        """
        cost = self.meter.record(fingerprint, model, usage, prices)
        if usage is None:
            cost = token.worst_case_usd
        self.settle(token, cost)
        return cost

    def release(self, token: BudgetToken) -> None:
        """Nothing was charged (the request failed before the server accepted it): free the reservation."""
        with self._lock:
            self._pop(token)

    def set_balance(self, balance_usd: float) -> None:
        """The credit balance is now ``balance_usd`` (e.g. after a top-up); re-arms the low-balance warning."""
        _check_amount("balance_usd", balance_usd)
        with self._lock:
            self._balance_base = float(balance_usd) + self._spent
            warn = self.budget.warn_below_usd
            if warn is not None and balance_usd >= warn:
                self._warned = False
            message = self._balance_warning()
        if message is not None:
            logger.warning("%s", message)

    def _pop(self, token: BudgetToken) -> bool:
        amount = self._in_flight.pop(token.id, None)
        if amount is None:
            return False
        self._in_flight_usd = self._in_flight_usd - amount if self._in_flight else 0.0
        return True

    def _balance_warning(self) -> str | None:
        warn = self.budget.warn_below_usd
        if warn is None or self._balance_base is None or self._warned:
            return None
        remaining = self._balance_base - self._spent
        if remaining >= warn:
            return None
        self._warned = True
        return (
            f"estimated Cerebras credit balance ${remaining:.4f} is below warn_below_usd=${warn:g} "
            f"(${self._spent:.4f} spent); top up in Console -> Billing -> Pay as you go, or turn on auto-recharge"
        )
