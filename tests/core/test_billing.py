"""Pricing, the spend meter and the budget guard."""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import pytest

from cerebras_paygo._billing import (
    Budget,
    BudgetGuard,
    SpendMeter,
    SpendTotals,
    price_usage,
    shared_spend_meter,
    worst_case_cost,
)
from cerebras_paygo._catalog import Prices, default_catalog
from cerebras_paygo._wire import Usage
from cerebras_paygo.errors import BudgetExceededError, ConfigurationError

GPT_OSS = Prices(input=0.35, output=0.75)
CACHED = Prices(input=1.0, output=2.0, cached_input=0.1)


def usage(prompt: int, completion: int, *, cached: int | None = None, reasoning: int | None = None) -> Usage:
    data: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        data["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        data["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return Usage.model_validate(data)


# --- pricing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prices", "u", "expected"),
    [
        pytest.param(GPT_OSS, usage(1_000_000, 1_000_000), 1.10, id="million-each"),
        pytest.param(GPT_OSS, usage(1000, 500), (1000 * 0.35 + 500 * 0.75) / 1e6, id="small"),
        pytest.param(GPT_OSS, usage(0, 0), 0.0, id="zero"),
        pytest.param(CACHED, usage(1000, 100, cached=400), (600 * 1.0 + 400 * 0.1 + 100 * 2.0) / 1e6, id="cached"),
        pytest.param(CACHED, usage(1000, 100, cached=5000), (1000 * 0.1 + 100 * 2.0) / 1e6, id="cached-over-prompt"),
        pytest.param(GPT_OSS, usage(1000, 100, cached=400), (1000 * 0.35 + 100 * 0.75) / 1e6, id="no-cached-price"),
        pytest.param(
            GPT_OSS, usage(1000, 600, reasoning=500), (1000 * 0.35 + 600 * 0.75) / 1e6, id="reasoning-not-twice"
        ),
        pytest.param(GPT_OSS, None, 0.0, id="no-usage"),
    ],
)
def test_price_usage(prices: Prices, u: Usage | None, expected: float) -> None:
    assert price_usage(prices, u) == pytest.approx(expected)


def test_price_usage_with_catalog_prices() -> None:
    spec = default_catalog().get("gpt-oss-120b", warn=False)
    cost = price_usage(spec.prices, usage(2_000_000, 0))
    assert cost == pytest.approx(2 * spec.prices.input)


def test_worst_case_cost_ignores_the_cache_and_charges_the_whole_completion_budget() -> None:
    assert worst_case_cost(CACHED, 1000, 4000) == pytest.approx((1000 * 1.0 + 4000 * 2.0) / 1e6)
    assert worst_case_cost(GPT_OSS, 0, 0) == 0.0
    assert worst_case_cost(GPT_OSS, -5, -5) == 0.0
    assert worst_case_cost(CACHED, 1000, 4000) >= price_usage(CACHED, usage(1000, 4000, cached=1000))


# --- SpendMeter ---------------------------------------------------------------------------------


def test_meter_records_and_filters() -> None:
    meter = SpendMeter()
    a = meter.record("fp-a", "gpt-oss-120b", usage(1000, 200, cached=100, reasoning=50), GPT_OSS)
    b = meter.record("fp-a", "zai-glm-4.7", usage(500, 100), CACHED)
    c = meter.record("fp-b", "gpt-oss-120b", usage(10, 10), GPT_OSS)
    d = meter.record("fp-b", "gpt-oss-120b", None, GPT_OSS)
    assert d == 0.0
    assert a == pytest.approx(price_usage(GPT_OSS, usage(1000, 200, cached=100)))
    everything = meter.totals()
    assert everything == SpendTotals(
        requests=4,
        input_tokens=1510,
        output_tokens=310,
        cached_tokens=100,
        reasoning_tokens=50,
        cost_usd=pytest.approx(a + b + c),  # type: ignore[arg-type]
    )
    assert meter.totals(fingerprint="fp-a").requests == 2
    assert meter.totals(fingerprint="fp-a").cost_usd == pytest.approx(a + b)
    assert meter.totals(model="gpt-oss-120b").requests == 3
    assert meter.totals(fingerprint="fp-b", model="gpt-oss-120b").input_tokens == 10
    assert meter.totals(fingerprint="nobody") == SpendTotals()
    assert set(meter.snapshot()) == {("fp-a", "gpt-oss-120b"), ("fp-a", "zai-glm-4.7"), ("fp-b", "gpt-oss-120b")}
    assert "requests=4" in repr(meter)
    meter.reset()
    assert meter.totals() == SpendTotals()


def test_meter_is_thread_safe() -> None:
    meter = SpendMeter()
    threads, per_thread = 8, 2000
    barrier = threading.Barrier(threads)

    def worker(i: int) -> None:
        barrier.wait()
        for _ in range(per_thread):
            meter.record(f"fp-{i % 2}", "m", usage(3, 2, cached=1, reasoning=1), GPT_OSS)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    total = meter.totals()
    n = threads * per_thread
    assert (total.requests, total.input_tokens, total.output_tokens) == (n, 3 * n, 2 * n)
    assert (total.cached_tokens, total.reasoning_tokens) == (n, n)
    assert total.cost_usd == pytest.approx(n * price_usage(GPT_OSS, usage(3, 2)))
    assert meter.totals(fingerprint="fp-0").requests == n // 2


def test_shared_meter_is_a_singleton() -> None:
    assert shared_spend_meter() is shared_spend_meter()
    assert isinstance(shared_spend_meter(), SpendMeter)


def test_totals_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SpendTotals().requests = 1  # type: ignore[misc]


# --- Budget -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_spend_usd": -1},
        {"max_spend_usd": float("nan")},
        {"max_spend_usd": "5"},
        {"starting_balance_usd": -0.01},
        {"warn_below_usd": -1, "starting_balance_usd": 5},
        {"warn_below_usd": 1.0},  # no balance to count down from
    ],
)
def test_budget_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Budget(**kwargs)


def test_guard_without_limits_only_counts() -> None:
    guard = BudgetGuard()
    tokens = [guard.reserve(1000.0) for _ in range(5)]
    assert guard.in_flight_usd == pytest.approx(5000.0)
    for token in tokens:
        guard.settle(token, 0.5)
    assert guard.spent_usd == pytest.approx(2.5)
    assert guard.in_flight_usd == 0.0
    assert guard.remaining_budget_usd is None
    assert guard.remaining_balance_usd is None


def test_reserve_refuses_before_crossing_and_books_nothing() -> None:
    guard = BudgetGuard(Budget(max_spend_usd=1.0))
    guard.reserve(0.6)
    with pytest.raises(BudgetExceededError) as info:
        guard.reserve(0.5)
    err = info.value
    assert err.spent_usd == pytest.approx(0.6)  # spent + in flight
    assert err.request_usd == pytest.approx(0.5)
    assert err.budget_usd == 1.0
    assert "nothing was sent" in str(err)
    assert guard.in_flight_usd == pytest.approx(0.6)
    guard.reserve(0.4)  # exactly up to the budget is allowed
    assert guard.remaining_budget_usd == pytest.approx(0.0)


def test_concurrent_in_flight_reservations_count_against_the_budget() -> None:
    guard = BudgetGuard(Budget(max_spend_usd=1.0))
    first = guard.reserve(0.4)
    second = guard.reserve(0.4)
    with pytest.raises(BudgetExceededError):
        guard.reserve(0.4)
    guard.settle(first, 0.1)  # the first cost much less than its worst case
    assert guard.spent_usd == pytest.approx(0.1)
    third = guard.reserve(0.4)  # 0.1 spent + 0.4 + 0.4 in flight = 0.9
    guard.release(second)  # failed before the server accepted it: nothing charged
    assert guard.in_flight_usd == pytest.approx(0.4)
    guard.settle(third, 0.4)
    assert guard.spent_usd == pytest.approx(0.5)
    assert guard.remaining_budget_usd == pytest.approx(0.5)


def test_settle_and_release_are_idempotent() -> None:
    guard = BudgetGuard(Budget(max_spend_usd=10.0))
    token = guard.reserve(1.0)
    guard.settle(token, 0.7)
    guard.settle(token, 0.7)
    guard.release(token)
    assert guard.spent_usd == pytest.approx(0.7)
    assert guard.in_flight_usd == 0.0
    other = guard.reserve(1.0)
    guard.release(other)
    guard.release(other)
    guard.settle(other, 5.0)
    assert guard.spent_usd == pytest.approx(0.7)


def test_float_sums_do_not_refuse_exactly_the_budget() -> None:
    guard = BudgetGuard(Budget(max_spend_usd=0.3))
    for _ in range(3):
        guard.reserve(0.1)  # 0.1 + 0.1 + 0.1 == 0.30000000000000004
    with pytest.raises(BudgetExceededError):
        guard.reserve(0.001)


def test_spent_usd_carries_over() -> None:
    guard = BudgetGuard(Budget(max_spend_usd=1.0), spent_usd=0.9)
    with pytest.raises(BudgetExceededError):
        guard.reserve(0.2)
    guard.reserve(0.1)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "1", True])
def test_reserve_rejects_bad_amounts(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        BudgetGuard(Budget(max_spend_usd=1.0)).reserve(bad)


def test_settle_rejects_non_numbers_and_clamps_negatives() -> None:
    guard = BudgetGuard()
    token = guard.reserve(1.0)
    with pytest.raises(ConfigurationError):
        guard.settle(token, float("nan"))
    guard.settle(token, -3.0)
    assert guard.spent_usd == 0.0


def test_budget_holds_under_thread_contention() -> None:
    guard = BudgetGuard(Budget(max_spend_usd=10.0))
    threads, tries = 32, 50
    barrier = threading.Barrier(threads)
    granted: list[object] = []
    refused = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal refused
        barrier.wait()
        for _ in range(tries):
            try:
                token = guard.reserve(0.3)
            except BudgetExceededError:
                with lock:
                    refused += 1
            else:
                with lock:
                    granted.append(token)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert len(granted) == 33  # floor(10 / 0.3)
    assert refused == threads * tries - 33
    assert guard.in_flight_usd == pytest.approx(9.9)


def test_settle_usage_records_in_the_meter_and_settles() -> None:
    meter = SpendMeter()
    guard = BudgetGuard(Budget(max_spend_usd=1.0), meter)
    token = guard.reserve(worst_case_cost(GPT_OSS, 1000, 1000))
    cost = guard.settle_usage(token, "fp", "gpt-oss-120b", usage(1000, 10), GPT_OSS)
    assert cost == pytest.approx(price_usage(GPT_OSS, usage(1000, 10)))
    assert guard.spent_usd == pytest.approx(cost)
    assert meter.totals().cost_usd == pytest.approx(cost)
    token = guard.reserve(0.25)
    assert guard.settle_usage(token, "fp", "gpt-oss-120b", None, GPT_OSS) == 0.25  # unknown: worst case
    assert guard.spent_usd == pytest.approx(cost + 0.25)
    assert meter.totals().requests == 2


def test_guard_defaults_to_the_shared_meter() -> None:
    assert BudgetGuard().meter is shared_spend_meter()


# --- low balance warnings ---------------------------------------------------------------------


def balance_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cerebras_paygo.billing" and r.levelno == logging.WARNING]


def test_warns_once_when_the_estimated_balance_falls_below_the_threshold(caplog: pytest.LogCaptureFixture) -> None:
    guard = BudgetGuard(Budget(starting_balance_usd=1.0, warn_below_usd=0.5))
    with caplog.at_level(logging.DEBUG, logger="cerebras_paygo.billing"):
        guard.settle(guard.reserve(0.3), 0.3)
        assert balance_warnings(caplog) == []
        assert guard.remaining_balance_usd == pytest.approx(0.7)
        guard.settle(guard.reserve(0.3), 0.3)  # balance 0.4 < 0.5: warn
        assert len(balance_warnings(caplog)) == 1
        guard.settle(guard.reserve(0.1), 0.1)  # still below: no second warning
        guard.settle(guard.reserve(0.1), 0.1)
        assert len(balance_warnings(caplog)) == 1
    message = balance_warnings(caplog)[0].getMessage()
    assert "0.4000" in message
    assert "warn_below_usd" in message
    assert "auto-recharge" in message


def test_a_top_up_rearms_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    guard = BudgetGuard(Budget(starting_balance_usd=1.0, warn_below_usd=0.5))
    with caplog.at_level(logging.WARNING, logger="cerebras_paygo.billing"):
        guard.settle(guard.reserve(0.6), 0.6)
        assert len(balance_warnings(caplog)) == 1
        guard.set_balance(2.0)  # auto-recharge landed
        assert guard.remaining_balance_usd == pytest.approx(2.0)
        guard.settle(guard.reserve(1.0), 1.0)
        assert len(balance_warnings(caplog)) == 1
        guard.settle(guard.reserve(0.6), 0.6)  # 0.4 left: the second crossing warns again
        assert len(balance_warnings(caplog)) == 2
        guard.set_balance(0.3)  # still under the threshold: the same crossing, no new warning
        assert len(balance_warnings(caplog)) == 2
        guard.set_balance(5.0)
        guard.set_balance(0.2)  # told of a balance that crossed the threshold: warns at once
        assert len(balance_warnings(caplog)) == 3


def test_a_starting_balance_below_the_threshold_warns_on_the_first_settle(caplog: pytest.LogCaptureFixture) -> None:
    guard = BudgetGuard(Budget(starting_balance_usd=0.1, warn_below_usd=0.5))
    with caplog.at_level(logging.WARNING, logger="cerebras_paygo.billing"):
        guard.settle(guard.reserve(0.0), 0.0)
    assert len(balance_warnings(caplog)) == 1


def test_guard_repr_is_readable() -> None:
    text = repr(BudgetGuard(Budget(max_spend_usd=2.0)))
    assert text.startswith("BudgetGuard(budget=Budget(max_spend_usd=2.0")
