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
from typing import Literal, NoReturn, Protocol, cast

from cerebras_paygo._catalog import Prices
from cerebras_paygo._orgstate.fallback import BackendErrorPolicy, BackendGuard, check_policy
from cerebras_paygo._wire import Usage
from cerebras_paygo.errors import BackendUnavailableError, BudgetExceededError, ConfigurationError

__all__ = [
    "AsyncLedger",
    "AsyncSpendStore",
    "Budget",
    "BudgetGuard",
    "BudgetToken",
    "HoldReply",
    "Ledger",
    "MemoryLedger",
    "MemorySpendStore",
    "SpendMeter",
    "SpendStore",
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


class SpendStore(Protocol):
    """Where a ``SpendMeter`` keeps its totals (``MemorySpendStore``, or Redis for a fleet)."""

    def record(self, fingerprint: str, model: str, entry: SpendTotals) -> None: ...

    def snapshot(self) -> dict[tuple[str, str], SpendTotals]: ...

    def reset(self) -> None: ...


class AsyncSpendStore(Protocol):
    """``SpendStore`` for a backend whose I/O is awaited."""

    async def record(self, fingerprint: str, model: str, entry: SpendTotals) -> None: ...


class MemorySpendStore:
    """Totals per (key fingerprint, model) in this process, behind a ``threading.Lock``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], SpendTotals] = {}

    def __repr__(self) -> str:
        return "MemorySpendStore()"

    def record(self, fingerprint: str, model: str, entry: SpendTotals) -> None:
        key = (fingerprint, model)
        with self._lock:
            previous = self._totals.get(key)
            self._totals[key] = entry if previous is None else previous + entry

    def snapshot(self) -> dict[tuple[str, str], SpendTotals]:
        with self._lock:
            return dict(self._totals)

    def reset(self) -> None:
        with self._lock:
            self._totals.clear()


def _entry(usage: Usage | None, cost: float) -> SpendTotals:
    return SpendTotals(
        requests=1,
        input_tokens=max(usage.prompt_tokens, 0) if usage else 0,
        output_tokens=max(usage.completion_tokens, 0) if usage else 0,
        cached_tokens=max(usage.cached_tokens, 0) if usage else 0,
        reasoning_tokens=max(usage.reasoning_tokens, 0) if usage else 0,
        cost_usd=cost,
    )


class SpendMeter:
    """Thread-safe running totals per (key fingerprint, model).

    Keys appear only as fingerprints (``settings.key_fingerprint``), never in clear.

    Args:
        store: where the totals live (default: a ``MemorySpendStore``, this process only; a Redis
            store makes them the fleet's).
        async_store: the awaitable twin of ``store`` for ``arecord``.
        on_backend_error: with a remote store, ``"local"`` (warn once; record into this process's
            own totals until the store answers again) or ``"raise"`` (``BackendUnavailableError``).
    """

    def __init__(
        self,
        store: SpendStore | None = None,
        *,
        async_store: AsyncSpendStore | None = None,
        on_backend_error: BackendErrorPolicy = "local",
    ) -> None:
        self._remote = store is not None
        self._store: SpendStore = store if store is not None else MemorySpendStore()
        self._astore = async_store
        self._local = MemorySpendStore()
        self._guard = BackendGuard("spend meter", logger, on_backend_error)

    def _record_local(self, fingerprint: str, model: str, entry: SpendTotals) -> None:
        self._local.record(fingerprint, model, entry)

    def record(self, fingerprint: str, model: str, usage: Usage | None, prices: Prices) -> float:
        """Add one completed request; returns its USD cost (``usage=None`` counts the request only)."""
        cost = price_usage(prices, usage)
        entry = _entry(usage, cost)
        if not self._remote:
            self._store.record(fingerprint, model, entry)
        elif not self._guard.use_backend():
            self._record_local(fingerprint, model, entry)
        else:
            try:
                self._store.record(fingerprint, model, entry)
            except BackendUnavailableError as exc:
                self._guard.failed(exc)
                self._record_local(fingerprint, model, entry)
            else:
                self._guard.recovered()
        return cost

    async def arecord(self, fingerprint: str, model: str, usage: Usage | None, prices: Prices) -> float:
        """``record`` for event loops (awaits a remote store)."""
        if not self._remote or self._astore is None:
            if self._remote:
                import anyio.to_thread

                return await anyio.to_thread.run_sync(self.record, fingerprint, model, usage, prices)
            return self.record(fingerprint, model, usage, prices)
        cost = price_usage(prices, usage)
        entry = _entry(usage, cost)
        if not self._guard.use_backend():
            self._record_local(fingerprint, model, entry)
            return cost
        try:
            await self._astore.record(fingerprint, model, entry)
        except BackendUnavailableError as exc:
            self._guard.failed(exc)
            self._record_local(fingerprint, model, entry)
        else:
            self._guard.recovered()
        return cost

    def totals(self, fingerprint: str | None = None, model: str | None = None) -> SpendTotals:
        """The sum over every pair matching ``fingerprint`` and ``model`` (``None`` matches all)."""
        total = SpendTotals()
        for (fp, mdl), value in self.snapshot().items():
            if (fingerprint is None or fp == fingerprint) and (model is None or mdl == model):
                total = total + value
        return total

    def snapshot(self) -> dict[tuple[str, str], SpendTotals]:
        """Every (fingerprint, model) pair and its totals (with a remote store: the fleet's, plus
        what this process recorded locally while the store was down)."""
        if not self._remote:
            return self._store.snapshot()
        merged = self._local.snapshot()
        try:
            shared = self._store.snapshot()
        except BackendUnavailableError as exc:
            self._guard.failed(exc)
            return merged
        for key, value in shared.items():
            merged[key] = value + merged[key] if key in merged else value
        return merged

    def reset(self) -> None:
        """Forget every total (with a remote store: the fleet's, for every process)."""
        self._local.reset()
        self._store.reset()

    def __repr__(self) -> str:
        if self._remote:
            return f"SpendMeter({self._store!r})"
        total = self.totals()
        return f"SpendMeter(pairs={len(self.snapshot())}, requests={total.requests}, cost_usd={total.cost_usd:.6f})"


_shared_meter = SpendMeter()


def shared_spend_meter() -> SpendMeter:
    """The process-wide memory meter every client without Redis records into."""
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


HoldStatus = Literal["held", "wait", "refused"]


@dataclass(frozen=True, slots=True)
class HoldReply:
    """A ledger's answer to ``hold``: ``held`` (``id`` set), ``wait`` (only in-flight worst cases
    stand in the way) or ``refused``; with the books as they were (USD)."""

    status: HoldStatus
    id: int
    spent_usd: float
    in_flight_usd: float


class Ledger(Protocol):
    """A budget's books: what was spent and the worst cases in flight; every step atomic."""

    def hold(self, amount_usd: float, limit_usd: float | None, *, add_spent_usd: float = 0.0) -> HoldReply:
        """Book ``amount_usd`` if spent + in flight + it fits ``limit_usd``; ``add_spent_usd`` (spend
        settled elsewhere, e.g. on local books while this ledger was unreachable) is counted first."""
        ...

    def close(self, hold_id: int, actual_usd: float | None, *, add_spent_usd: float = 0.0) -> tuple[float, float]:
        """Settle at ``actual_usd`` (None: release); returns (spent, in flight)."""
        ...

    def read(self) -> tuple[float, float]:
        """(spent, in flight)."""
        ...


class AsyncLedger(Protocol):
    """``Ledger`` for a backend whose I/O is awaited."""

    async def hold(self, amount_usd: float, limit_usd: float | None, *, add_spent_usd: float = 0.0) -> HoldReply: ...

    async def close(
        self, hold_id: int, actual_usd: float | None, *, add_spent_usd: float = 0.0
    ) -> tuple[float, float]: ...


class MemoryLedger:
    """The books of one budget in this process: the readable reference (``lua/ledger_*.lua`` are the
    same steps in Redis). A ``threading.Lock`` is held for O(1) work."""

    def __init__(self, spent_usd: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._in_flight: dict[int, float] = {}
        self._in_flight_usd = 0.0
        self._spent = float(spent_usd)

    def __repr__(self) -> str:
        return "MemoryLedger()"

    def _flight(self) -> float:
        return max(self._in_flight_usd, 0.0) if self._in_flight else 0.0

    def hold(self, amount_usd: float, limit_usd: float | None, *, add_spent_usd: float = 0.0) -> HoldReply:
        with self._lock:
            self._spent += max(add_spent_usd, 0.0)
            spent, in_flight = self._spent, self._flight()
            if limit_usd is None or spent + in_flight + amount_usd <= limit_usd + _EPSILON:
                hold_id = next(self._ids)
                self._in_flight[hold_id] = amount_usd
                self._in_flight_usd += amount_usd
                return HoldReply("held", hold_id, spent, self._flight())
            if in_flight > 0 and spent + amount_usd <= limit_usd + _EPSILON:
                return HoldReply("wait", 0, spent, in_flight)
            return HoldReply("refused", 0, spent, in_flight)

    def close(self, hold_id: int, actual_usd: float | None, *, add_spent_usd: float = 0.0) -> tuple[float, float]:
        with self._lock:
            self._spent += max(add_spent_usd, 0.0)
            amount = self._in_flight.pop(hold_id, None)
            if amount is not None:
                self._in_flight_usd = self._in_flight_usd - amount if self._in_flight else 0.0
            if actual_usd is not None:
                self._spent += max(actual_usd, 0.0)
            return self._spent, self._flight()

    def read(self) -> tuple[float, float]:
        with self._lock:
            return self._spent, self._flight()


class BudgetGuard:
    """Refuses requests that could cross a spend budget, counting in-flight worst cases.

    The gateway drives it per request: ``token = guard.reserve(worst_case_cost(...))`` before
    sending (raises :class:`~cerebras_paygo.errors.BudgetExceededError`, nothing sent), then
    ``guard.settle(token, actual_usd)`` on a response, or ``guard.release(token)`` when nothing was
    charged (failed before the server accepted it). One guard may be shared by several clients.

    The guard counts what is settled on its ledger, so a budget covers the calls that went through
    this guard (with a Redis ledger: through every guard of every process on the same ledger key,
    i.e. the same API key), whatever else records into a shared meter.

    Args:
        budget: The limits; ``Budget()`` only counts.
        meter: Where :meth:`settle_usage` records usage (default: the process-wide meter).
        spent_usd: Spend to start from (e.g. carried over from an earlier run; memory ledger only).
        ledger: Where the books live (default: a ``MemoryLedger``, this guard only).
        async_ledger: The awaitable twin of ``ledger`` (the ``a*`` methods).
        on_backend_error: With a remote ledger, ``"local"`` (warn once, then book on local books
            allowing ``1 / workers`` of what the shared books had left) or ``"raise"``.
        workers: How many processes share the budget (for the local fallback).
    """

    def __init__(
        self,
        budget: Budget | None = None,
        meter: SpendMeter | None = None,
        *,
        spent_usd: float = 0.0,
        ledger: Ledger | None = None,
        async_ledger: AsyncLedger | None = None,
        on_backend_error: BackendErrorPolicy = "local",
        workers: int = 1,
    ) -> None:
        _check_amount("spent_usd", spent_usd)
        check_policy(on_backend_error, workers)
        self.budget = budget or Budget()
        self.meter = meter or shared_spend_meter()
        self._remote = ledger is not None
        self._ledger: Ledger = ledger if ledger is not None else MemoryLedger(spent_usd)
        self._aledger = async_ledger
        self._guard = BackendGuard("budget", logger, on_backend_error)
        self._workers = workers
        self._local = MemoryLedger()
        self._lock = threading.Lock()
        # Open tokens and the books that hold them (the remote ledger, or the local fallback).
        self._open: dict[BudgetToken, object] = {}
        # The shared books as last seen, and what was settled locally while they were unreachable
        # (added to the shared books on the next successful step).
        self._last = (float(spent_usd), 0.0)
        self._unsynced = 0.0
        start = self.budget.starting_balance_usd
        self._balance_start = start
        self._spent_base: float | None = float(spent_usd) if not self._remote else None
        self._warned = False

    def __repr__(self) -> str:
        return (
            f"BudgetGuard(budget={self.budget!r}, spent_usd={self.spent_usd:.6f}, "
            f"in_flight_usd={self.in_flight_usd:.6f})"
        )

    # --- the books ------------------------------------------------------------------------------

    def _books(self) -> tuple[float, float]:
        if not self._remote:
            return self._ledger.read()
        if self._guard.use_backend():
            try:
                books = self._ledger.read()
            except BackendUnavailableError as exc:
                self._guard.failed(exc)
            else:
                self._guard.recovered()
                self._seen(books)
                return books[0] + self._unsynced, books[1] + self._local.read()[1]
        spent, flight = self._last
        local_spent, local_flight = self._local.read()
        return spent + local_spent, flight + local_flight

    def _seen(self, books: tuple[float, float]) -> None:
        with self._lock:
            self._last = books
            if self._spent_base is None:
                self._spent_base = books[0]

    @property
    def spent_usd(self) -> float:
        """USD settled so far."""
        return self._books()[0]

    @property
    def in_flight_usd(self) -> float:
        """Worst-case USD of the requests reserved and not yet settled or released."""
        return self._books()[1]

    @property
    def remaining_budget_usd(self) -> float | None:
        """What ``max_spend_usd`` still allows, in-flight worst cases counted (``None``: no budget)."""
        limit = self.budget.max_spend_usd
        if limit is None:
            return None
        spent, flight = self._books()
        return max(limit - spent - flight, 0.0)

    @property
    def remaining_balance_usd(self) -> float | None:
        """The estimated credit balance (``None`` when the starting balance is unknown)."""
        if self._balance_start is None:
            return None
        spent = self._books()[0]
        base = self._spent_base if self._spent_base is not None else spent
        return self._balance_start - (spent - base)

    # --- hold -----------------------------------------------------------------------------------

    @staticmethod
    def _check_worst_case(worst_case_usd: float) -> None:
        if isinstance(worst_case_usd, bool) or not isinstance(worst_case_usd, (int, float)):
            raise ConfigurationError(f"worst_case_usd must be a number, not {worst_case_usd!r}")
        if not math.isfinite(worst_case_usd) or worst_case_usd < 0:
            raise ConfigurationError(f"worst_case_usd must be a non-negative number, not {worst_case_usd!r}")

    def _local_limit(self) -> float | None:
        """While the shared books are unreachable: this process's share of what they had left."""
        limit = self.budget.max_spend_usd
        if limit is None:
            return None
        spent, flight = self._last
        return max(limit - spent - flight, 0.0) / self._workers

    def _held(self, reply: HoldReply, worst_case_usd: float, source: object) -> BudgetToken | None:
        if reply.status == "held":
            token = BudgetToken(reply.id, float(worst_case_usd))
            with self._lock:
                self._open[token] = source
            return token
        if reply.status == "wait":
            return None
        self.refuse(worst_case_usd, books=(reply.spent_usd, reply.in_flight_usd))
        return None  # pragma: no cover - refuse raises

    def _take_unsynced(self) -> float:
        with self._lock:
            value, self._unsynced = self._unsynced, 0.0
        return value

    def _give_back_unsynced(self, value: float) -> None:
        with self._lock:
            self._unsynced += value

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
        self._check_worst_case(worst_case_usd)
        amount = float(worst_case_usd)
        limit = self.budget.max_spend_usd
        if not self._remote:
            return self._held(self._ledger.hold(amount, limit), amount, self._ledger)
        if self._guard.use_backend():
            unsynced = self._take_unsynced()
            try:
                reply = self._ledger.hold(amount, limit, add_spent_usd=unsynced)
            except BackendUnavailableError as exc:
                self._give_back_unsynced(unsynced)
                self._guard.failed(exc)
            else:
                self._guard.recovered()
                self._seen((reply.spent_usd, reply.in_flight_usd))
                return self._held(reply, amount, self._ledger)
        return self._held(self._local.hold(amount, self._local_limit()), amount, self._local)

    async def ahold(self, worst_case_usd: float) -> BudgetToken | None:
        """``hold`` for event loops (awaits a remote ledger)."""
        if not self._remote:
            return self.hold(worst_case_usd)
        if self._aledger is None:
            import anyio.to_thread

            return await anyio.to_thread.run_sync(self.hold, worst_case_usd)
        self._check_worst_case(worst_case_usd)
        amount = float(worst_case_usd)
        limit = self.budget.max_spend_usd
        if self._guard.use_backend():
            unsynced = self._take_unsynced()
            try:
                reply = await self._aledger.hold(amount, limit, add_spent_usd=unsynced)
            except BackendUnavailableError as exc:
                self._give_back_unsynced(unsynced)
                self._guard.failed(exc)
            else:
                self._guard.recovered()
                self._seen((reply.spent_usd, reply.in_flight_usd))
                return self._held(reply, amount, self._ledger)
        return self._held(self._local.hold(amount, self._local_limit()), amount, self._local)

    async def areserve(self, worst_case_usd: float) -> BudgetToken:
        """``reserve`` for event loops: awaits a remote ledger, and the refusal reads no store."""
        token = await self.ahold(worst_case_usd)
        if token is None:
            self.refuse(worst_case_usd, books=self._known_books())
        return token

    def _known_books(self) -> tuple[float, float]:
        """Spent and in flight as last seen, without I/O (in memory: read now)."""
        if not self._remote:
            return self._ledger.read()
        spent, flight = self._last
        local_spent, local_flight = self._local.read()
        return spent + local_spent + self._unsynced, flight + local_flight

    def refuse(self, worst_case_usd: float, *, books: tuple[float, float] | None = None) -> NoReturn:
        """Raise the ``BudgetExceededError`` for a request of ``worst_case_usd`` (nothing is booked)."""
        limit = self.budget.max_spend_usd
        spent, in_flight = books if books is not None else self._books()
        budget = limit if limit is not None else 0.0
        raise BudgetExceededError(
            f"this request could cost up to ${worst_case_usd:.6f}; ${spent:.6f} spent and ${in_flight:.6f} in flight "
            f"leave ${max(budget - spent - in_flight, 0.0):.6f} of max_spend_usd=${budget:g}; nothing was sent "
            "(lower max_completion_tokens, or raise max_spend_usd)",
            spent_usd=spent + in_flight,
            request_usd=float(worst_case_usd),
            budget_usd=budget,
        )

    # --- settle / release -----------------------------------------------------------------------

    def _claim(self, token: BudgetToken) -> object | None:
        with self._lock:
            return self._open.pop(token, None)

    def _closed_books(self, source: object, books: tuple[float, float]) -> None:
        if source is self._ledger and self._remote:
            self._seen(books)
        self._warn_if_low()

    def _close(self, token: BudgetToken, actual_usd: float | None) -> None:
        source = self._claim(token)
        if source is None:
            logger.debug("budget token %d closed twice; ignored", token.id)
            return
        if source is self._local or not self._remote:
            books = cast(Ledger, source).close(token.id, actual_usd)
            if source is self._local and actual_usd:
                self._give_back_unsynced(max(actual_usd, 0.0))
            self._closed_books(source, books)
            return
        unsynced = self._take_unsynced()
        try:
            books = self._ledger.close(token.id, actual_usd, add_spent_usd=unsynced)
        except BackendUnavailableError as exc:
            self._give_back_unsynced(unsynced + max(actual_usd or 0.0, 0.0))
            self._guard.failed(exc)
            return
        self._guard.recovered()
        self._closed_books(source, books)

    async def _aclose(self, token: BudgetToken, actual_usd: float | None) -> None:
        if not self._remote or self._aledger is None:
            if self._remote:
                import anyio.to_thread

                await anyio.to_thread.run_sync(self._close, token, actual_usd)
            else:
                self._close(token, actual_usd)
            return
        source = self._claim(token)
        if source is None:
            logger.debug("budget token %d closed twice; ignored", token.id)
            return
        if source is self._local:
            books = self._local.close(token.id, actual_usd)
            if actual_usd:
                self._give_back_unsynced(max(actual_usd, 0.0))
            self._closed_books(source, books)
            return
        unsynced = self._take_unsynced()
        try:
            books = await self._aledger.close(token.id, actual_usd, add_spent_usd=unsynced)
        except BackendUnavailableError as exc:
            self._give_back_unsynced(unsynced + max(actual_usd or 0.0, 0.0))
            self._guard.failed(exc)
            return
        self._guard.recovered()
        self._closed_books(source, books)

    @staticmethod
    def _check_actual(actual_usd: float) -> None:
        if isinstance(actual_usd, bool) or not isinstance(actual_usd, (int, float)) or not math.isfinite(actual_usd):
            raise ConfigurationError(f"actual_usd must be a number, not {actual_usd!r}")

    def settle(self, token: BudgetToken, actual_usd: float) -> None:
        """The request was answered and cost ``actual_usd``: count it and free its reservation.

        A token already settled or released is ignored (the actual cost is not counted twice).
        """
        self._check_actual(actual_usd)
        self._close(token, max(float(actual_usd), 0.0))

    async def asettle(self, token: BudgetToken, actual_usd: float) -> None:
        """``settle`` for event loops."""
        self._check_actual(actual_usd)
        await self._aclose(token, max(float(actual_usd), 0.0))

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
        self._close(token, None)

    async def arelease(self, token: BudgetToken) -> None:
        """``release`` for event loops."""
        await self._aclose(token, None)

    # --- balance --------------------------------------------------------------------------------

    def set_balance(self, balance_usd: float) -> None:
        """The credit balance is now ``balance_usd`` (e.g. after a top-up); re-arms the low-balance warning."""
        _check_amount("balance_usd", balance_usd)
        spent = self._books()[0]
        with self._lock:
            self._balance_start = float(balance_usd)
            self._spent_base = spent
            warn = self.budget.warn_below_usd
            if warn is not None and balance_usd >= warn:
                self._warned = False
        self._warn_if_low(spent)

    def _warn_if_low(self, spent: float | None = None) -> None:
        warn = self.budget.warn_below_usd
        if warn is None or self._balance_start is None or self._warned:
            return
        if spent is None:
            spent = self._books()[0] if not self._remote else self._last[0] + self._unsynced
        base = self._spent_base if self._spent_base is not None else spent
        remaining = self._balance_start - (spent - base)
        with self._lock:
            if remaining >= warn or self._warned:
                return
            self._warned = True
        logger.warning(
            "estimated Cerebras credit balance $%.4f is below warn_below_usd=$%g ($%.4f spent); top up in "
            "Console -> Billing -> Pay as you go, or turn on auto-recharge",
            remaining,
            warn,
            spent - base,
        )
