"""The 402 payment circuit, policy, message and hooks: fake clock, simulated callers, real threads."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from cerebras_paygo._payment import (
    PROBE_POLL,
    Gate,
    PaymentCircuit,
    PaymentPolicy,
    acall_hook,
    call_hook,
    payment_circuit,
    payment_required_message,
    reset_payment_circuits,
)
from cerebras_paygo.errors import ConfigurationError

SECRET = "csk-very-secret-fallback-key-1234567890"
INFO = {
    "key_fingerprint": "abcd1234abcd1234",
    "model": "gpt-oss-120b",
    "base_url": "https://api.cerebras.ai/v1",
    "message": "Payment required",
    "request_id": "req-1",
}


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    reset_payment_circuits()
    yield
    reset_payment_circuits()


def opened(policy: PaymentPolicy | None = None, now: float = 0.0) -> PaymentCircuit:
    circuit = PaymentCircuit("fp", policy or PaymentPolicy())
    assert circuit.on_payment_required(now, probe=False) is True
    return circuit


# --- PaymentPolicy ------------------------------------------------------------------------------


def test_policy_defaults() -> None:
    policy = PaymentPolicy()
    assert policy.max_wait == 60.0
    assert policy.probe_interval == 5.0
    assert policy.on_payment_required is None
    assert policy.fallback_api_key is None
    assert policy.fallback_secret is None
    assert policy.fallback_tier == "free"


@pytest.mark.parametrize("key", [SECRET, SecretStr(SECRET)])
def test_policy_stores_the_fallback_key_as_secretstr_and_never_shows_it(key: str | SecretStr) -> None:
    policy = PaymentPolicy(fallback_api_key=key)
    assert isinstance(policy.fallback_api_key, SecretStr)
    assert policy.fallback_secret is not None
    assert policy.fallback_secret.get_secret_value() == SECRET
    for text in (repr(policy), str(policy), f"{policy}", repr([policy])):
        assert SECRET not in text
        assert "**********" in text


def test_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PaymentPolicy().max_wait = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_wait": -1},
        {"max_wait": float("nan")},
        {"max_wait": True},
        {"probe_interval": 0},
        {"probe_interval": -5},
        {"probe_interval": "5"},
        {"on_payment_required": "not callable"},
        {"fallback_api_key": ""},
        {"fallback_api_key": "   "},
        {"fallback_api_key": 123},
        {"fallback_tier": "enterprise"},
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        PaymentPolicy(**kwargs)


def test_policy_accepts_paygo_fallback_tier_and_zero_wait() -> None:
    policy = PaymentPolicy(max_wait=0, fallback_api_key=SECRET, fallback_tier="paygo")
    assert policy.fallback_tier == "paygo"
    assert policy.max_wait == 0


# --- circuit: single caller paths ---------------------------------------------------------------


def test_unknown_key_lets_one_caller_ahead_then_everyone_sends() -> None:
    circuit = PaymentCircuit("fp")
    assert circuit.state == "unknown"
    assert circuit.gate(0.0) == Gate("probe", 0.0, None)
    assert [circuit.gate(0.01).kind for _ in range(5)] == ["wait"] * 5
    circuit.on_success(0.1, probe=True, sent_at=0.0)
    assert circuit.gate(0.2) == Gate("send", 0.0, None)
    assert circuit.state == "closed"
    assert not circuit.is_open


def test_unknown_key_probe_error_hands_the_slot_to_the_next_caller() -> None:
    circuit = PaymentCircuit("fp")
    assert circuit.gate(0.0).kind == "probe"
    circuit.on_probe_done(0.1)  # e.g. a 401 or a 5xx: says nothing about credit
    assert circuit.state == "unknown"
    assert circuit.gate(0.1).kind == "probe"


def test_first_answer_402_opens_the_circuit() -> None:
    circuit = PaymentCircuit("fp")
    assert circuit.gate(0.0).kind == "probe"
    assert circuit.on_payment_required(0.1, probe=True, sent_at=0.0) is True
    assert circuit.state == "open"


def test_closed_circuit_says_send() -> None:
    circuit = PaymentCircuit("fp")
    circuit.on_success(0.0, probe=False)
    assert circuit.gate(0.0) == Gate("send", 0.0, None)
    assert circuit.state == "closed"
    assert not circuit.is_open


def test_first_402_opens_and_returns_true_once_per_outage() -> None:
    circuit = PaymentCircuit("fp")
    assert circuit.on_payment_required(1.0, probe=False) is True
    assert circuit.is_open and circuit.state == "open"
    assert circuit.outage_started == 1.0
    # Other callers' 402s during the same outage do not fire the hook again.
    assert [circuit.on_payment_required(1.0 + i, probe=False) for i in range(5)] == [False] * 5
    assert circuit.outage_started == 1.0
    assert circuit.outages == 1


def test_open_circuit_makes_callers_wait_for_the_probe_slot() -> None:
    circuit = opened(PaymentPolicy(max_wait=60, probe_interval=5))
    gate = circuit.gate(1.0)
    assert gate.kind == "wait"
    assert gate.wait_s == pytest.approx(4.0)
    assert gate.outage_started == 0.0
    assert circuit.gate(5.0).kind == "probe"
    assert circuit.probe_in_flight
    # While the probe is in flight others poll at short intervals.
    waiting = circuit.gate(5.1)
    assert waiting.kind == "wait"
    assert waiting.wait_s == pytest.approx(PROBE_POLL)


def test_failed_probe_schedules_the_next_probe() -> None:
    circuit = opened(PaymentPolicy(max_wait=60, probe_interval=5))
    assert circuit.gate(5.0).kind == "probe"
    assert circuit.on_payment_required(6.0, probe=True) is False
    assert not circuit.probe_in_flight
    gate = circuit.gate(6.0)
    assert gate.kind == "wait"
    assert gate.wait_s == pytest.approx(5.0)
    assert circuit.gate(10.9).kind == "wait"
    assert circuit.gate(11.0).kind == "probe"


def test_probe_success_closes_and_waiters_proceed() -> None:
    circuit = opened(PaymentPolicy(max_wait=60, probe_interval=5))
    assert circuit.gate(5.0).kind == "probe"
    assert circuit.gate(5.2).kind == "wait"
    circuit.on_success(5.4, probe=True)
    assert circuit.state == "closed"
    assert circuit.outage_started is None
    assert circuit.gate(5.5) == Gate("send")
    # A new 402 later is a new outage: the hook fires again.
    assert circuit.on_payment_required(100.0, probe=False) is True
    assert circuit.outages == 2
    assert circuit.outage_started == 100.0


def test_wait_is_bounded_by_probe_interval_and_max_wait() -> None:
    circuit = opened(PaymentPolicy(max_wait=3, probe_interval=5))
    gate = circuit.gate(1.0)
    assert gate.kind == "wait"
    assert gate.wait_s == pytest.approx(2.0)  # wakes exactly when max_wait is up
    assert circuit.gate(3.0).kind == "fail"


def test_fail_after_max_wait_but_the_periodic_probe_continues() -> None:
    circuit = opened(PaymentPolicy(max_wait=10, probe_interval=5))
    assert circuit.gate(5.0).kind == "probe"  # caller A probes
    assert circuit.gate(9.9).kind == "wait"
    failed = circuit.gate(10.0)  # caller B: probe busy and the outage is 10 s old
    assert failed == Gate("fail", 0.0, 0.0)
    assert circuit.on_payment_required(10.5, probe=True) is False  # A's probe: still no credit
    assert circuit.gate(12.0).kind == "fail"
    # Long after max_wait, one caller still probes every probe_interval so the circuit can close.
    assert circuit.gate(15.5).kind == "probe"
    assert circuit.gate(15.6).kind == "fail"
    circuit.on_success(15.8, probe=True)
    assert circuit.gate(15.9).kind == "send"


def test_max_wait_zero_fails_fast_at_once() -> None:
    circuit = opened(PaymentPolicy(max_wait=0, probe_interval=5), now=100.0)
    assert circuit.gate(100.0).kind == "fail"
    assert circuit.gate(102.0).kind == "fail"
    assert circuit.gate(105.0).kind == "probe"  # the periodic probe still runs
    assert circuit.gate(105.0).kind == "fail"


def test_probe_ending_with_another_error_frees_the_slot() -> None:
    circuit = opened(PaymentPolicy(max_wait=60, probe_interval=5))
    assert circuit.gate(5.0).kind == "probe"
    assert circuit.gate(5.5).kind == "wait"
    circuit.on_probe_done(6.0)  # e.g. a 503 or a timeout: says nothing about credit
    assert circuit.is_open
    assert circuit.gate(6.0).kind == "probe"  # the next caller may probe at once


def test_lost_probe_is_freed_after_its_lease() -> None:
    circuit = PaymentCircuit("fp", PaymentPolicy(max_wait=1000, probe_interval=5), probe_lease=30.0)
    circuit.on_payment_required(0.0, probe=False)
    assert circuit.gate(5.0).kind == "probe"  # this caller dies without reporting
    assert circuit.gate(34.9).kind == "wait"
    assert circuit.gate(35.0).kind == "probe"


def test_non_probe_success_closes_only_if_sent_during_the_outage() -> None:
    circuit = opened(now=10.0)
    circuit.on_success(11.0, probe=False)  # unknown send time: may predate the outage
    assert circuit.is_open
    circuit.on_success(12.0, probe=False, sent_at=9.0)  # admitted before the balance ran out
    assert circuit.is_open
    circuit.on_success(13.0, probe=False, sent_at=10.5)
    assert not circuit.is_open


def test_stale_402_after_recovery_is_ignored() -> None:
    circuit = opened(now=10.0)
    assert circuit.gate(15.0).kind == "probe"
    circuit.on_success(16.0, probe=True)
    assert circuit.on_payment_required(17.0, probe=False, sent_at=14.0) is False  # sent before the recovery
    assert not circuit.is_open
    assert circuit.on_payment_required(18.0, probe=False, sent_at=16.5) is True  # a real new outage
    assert circuit.outages == 2


def test_success_on_a_closed_circuit_is_a_no_op() -> None:
    circuit = PaymentCircuit("fp")
    circuit.on_success(1.0, probe=False)
    circuit.on_probe_done(1.0)
    assert circuit.gate(1.0) == Gate("send")


def test_per_call_policy_overrides_the_circuit_default() -> None:
    circuit = opened(PaymentPolicy(max_wait=60, probe_interval=5))
    assert circuit.gate(1.0, policy=PaymentPolicy(max_wait=0.5)).kind == "fail"
    assert circuit.gate(1.0).kind == "wait"
    assert circuit.gate(5.0).kind == "probe"
    circuit.on_payment_required(5.0, probe=True, policy=PaymentPolicy(probe_interval=1.0))
    assert circuit.gate(6.0).kind == "probe"


# --- circuit: many simulated callers with a fake clock -------------------------------------------


def simulate(
    *,
    callers: int,
    recharge_at: float,
    policy: PaymentPolicy,
    probe_duration: float = 0.3,
) -> dict[str, Any]:
    """A discrete-event run: callers arrive after the 402 and loop on gate() until send or fail."""
    circuit = PaymentCircuit("fp", policy)
    hooks = int(circuit.on_payment_required(0.0, probe=False))
    events: list[tuple[float, int, int, str]] = []
    seq = 0

    def push(at: float, caller: int, what: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, caller, what))

    for caller in range(callers):
        push(0.001 * caller, caller, "gate")
    active = 0
    max_active = 0
    probes: list[tuple[float, float]] = []
    outcome: dict[int, tuple[str, float]] = {}
    gates = 0
    while events:
        now, _, caller, what = heapq.heappop(events)
        if what == "gate":
            gates += 1
            gate = circuit.gate(now)
            if gate.kind == "send":
                outcome[caller] = ("sent", now)
            elif gate.kind == "fail":
                outcome[caller] = ("failed", now)
            elif gate.kind == "wait":
                assert 0 < gate.wait_s <= policy.probe_interval
                push(now + gate.wait_s, caller, "gate")
            else:
                active += 1
                max_active = max(max_active, active)
                probes.append((now, now + probe_duration))
                push(now + probe_duration, caller, "probe_done")
        else:
            active -= 1
            if now >= recharge_at:
                circuit.on_success(now, probe=True)
                outcome[caller] = ("sent", now)
            else:
                hooks += int(circuit.on_payment_required(now, probe=True))
                push(now, caller, "gate")
        assert gates < 1_000_000, "callers are spinning"
    return {"circuit": circuit, "hooks": hooks, "max_active": max_active, "probes": probes, "outcome": outcome}


@pytest.mark.parametrize("callers", [1, 10, 200])
def test_many_callers_one_probe_at_a_time_until_recharge(callers: int) -> None:
    policy = PaymentPolicy(max_wait=60, probe_interval=5)
    run = simulate(callers=callers, recharge_at=23.0, policy=policy)
    assert run["hooks"] == 1
    assert run["max_active"] == 1
    probes = run["probes"]
    for (_, previous_end), (start, _) in itertools.pairwise(probes):
        assert start >= previous_end + policy.probe_interval - 1e-9
    assert len(probes) == 5  # probes at 5, 10.3, 15.6, 20.9, 26.2 (the last one succeeds)
    outcome = run["outcome"]
    assert len(outcome) == callers
    assert all(kind == "sent" for kind, _ in outcome.values())
    assert all(at >= 23.0 for _, at in outcome.values())
    assert max(at for _, at in outcome.values()) <= probes[-1][1] + PROBE_POLL + 1e-9
    assert run["circuit"].state == "closed"


@pytest.mark.parametrize("callers", [1, 50])
def test_many_callers_fail_once_max_wait_passes(callers: int) -> None:
    policy = PaymentPolicy(max_wait=12, probe_interval=5)
    run = simulate(callers=callers, recharge_at=float("inf"), policy=policy)
    assert run["hooks"] == 1
    assert run["max_active"] == 1
    outcome = run["outcome"]
    assert all(kind == "failed" for kind, _ in outcome.values())
    assert all(12.0 <= at <= 12.0 + policy.probe_interval for _, at in outcome.values())
    assert run["circuit"].is_open


def test_many_callers_max_wait_zero_all_fail_at_arrival() -> None:
    run = simulate(callers=20, recharge_at=float("inf"), policy=PaymentPolicy(max_wait=0))
    assert run["probes"] == []
    assert all(kind == "failed" and at < 0.1 for kind, at in run["outcome"].values())


# --- circuit: real threads ----------------------------------------------------------------------


def test_threads_racing_for_the_probe_slot_get_exactly_one_probe() -> None:
    circuit = PaymentCircuit("fp", PaymentPolicy(max_wait=1e9, probe_interval=5))
    circuit.on_payment_required(0.0, probe=False)
    threads = 32
    for round_ in range(20):
        now = 5.0 * (round_ + 1) + 0.5 * round_
        barrier = threading.Barrier(threads)
        kinds: list[str] = []
        lock = threading.Lock()

        def worker(
            at: float = now, bar: threading.Barrier = barrier, out: list[str] = kinds, mutex: threading.Lock = lock
        ) -> None:
            bar.wait()
            kind = circuit.gate(at).kind
            with mutex:
                out.append(kind)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert sorted(kinds) == ["probe"] + ["wait"] * (threads - 1), round_
        circuit.on_payment_required(now + 0.5, probe=True)


def test_threads_reporting_402_fire_the_hook_once() -> None:
    circuit = PaymentCircuit("fp")
    barrier = threading.Barrier(24)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        fired = circuit.on_payment_required(1.0, probe=False)
        with lock:
            results.append(fired)

    pool = [threading.Thread(target=worker) for _ in range(24)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert results.count(True) == 1


def test_registry_is_process_wide_and_thread_safe() -> None:
    found: list[PaymentCircuit] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        found.append(payment_circuit("shared-fp", PaymentPolicy(max_wait=1)))

    pool = [threading.Thread(target=worker) for _ in range(16)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert len({id(c) for c in found}) == 1
    assert payment_circuit("shared-fp") is found[0]
    assert found[0].policy.max_wait == 1
    assert payment_circuit("other-fp") is not found[0]
    reset_payment_circuits()
    assert payment_circuit("shared-fp") is not found[0]


def test_circuit_repr_shows_only_the_fingerprint() -> None:
    circuit = PaymentCircuit("abcd1234abcd1234", PaymentPolicy(fallback_api_key=SECRET))
    assert "abcd1234abcd1234" in repr(circuit)
    assert SECRET not in repr(circuit)


# --- message ----------------------------------------------------------------------------------


def test_payment_required_message_explains_cause_and_remedy() -> None:
    message = payment_required_message(61.2, 60.0, "abcd1234abcd1234")
    for needle in (
        "402",
        "Team",
        "Personal",
        "Billing",
        "Pay as you go",
        "auto-recharge",
        "threshold",
        "61.2 s",
        "max_wait=60 s",
        "abcd1234abcd1234",
    ):
        assert needle in message, needle


def test_payment_required_message_for_fail_fast() -> None:
    message = payment_required_message(0.0, 0.0)
    assert "max_wait=0" in message
    assert "this API key" in message


# --- hooks ------------------------------------------------------------------------------------


def test_call_hook_sync() -> None:
    seen: list[Any] = []
    call_hook(seen.append, INFO)
    assert seen == [INFO]
    call_hook(None, INFO)


def test_call_hook_runs_an_async_hook_without_a_loop() -> None:
    seen: list[Any] = []

    async def hook(info: Any) -> None:
        await asyncio.sleep(0)
        seen.append(info)

    call_hook(hook, INFO)
    assert seen == [INFO]


async def test_call_hook_from_inside_a_running_loop_uses_a_worker_thread() -> None:
    threads: list[str] = []

    async def hook(info: Any) -> None:
        await asyncio.sleep(0)
        threads.append(threading.current_thread().name)

    call_hook(hook, INFO)  # the sync path, e.g. a sync client used inside async code
    assert len(threads) == 1
    assert threads[0] != threading.current_thread().name


async def test_acall_hook_awaits_async_and_calls_sync_hooks() -> None:
    seen: list[Any] = []

    async def async_hook(info: Any) -> None:
        await asyncio.sleep(0)
        seen.append(("async", info["model"]))

    def sync_hook(info: Any) -> None:
        seen.append(("sync", info["model"]))

    async def later(info: Any) -> None:
        seen.append(("returned-awaitable", info["model"]))

    await acall_hook(async_hook, INFO)
    await acall_hook(sync_hook, INFO)
    await acall_hook(lambda info: later(info), INFO)
    await acall_hook(None, INFO)
    assert seen == [("async", "gpt-oss-120b"), ("sync", "gpt-oss-120b"), ("returned-awaitable", "gpt-oss-120b")]


def test_call_hook_logs_and_swallows_errors_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    def broken(info: Any) -> None:
        raise RuntimeError("hook exploded")

    async def broken_async(info: Any) -> None:
        raise ValueError("async hook exploded")

    with caplog.at_level(logging.DEBUG, logger="cerebras_paygo"):
        call_hook(broken, INFO)
        call_hook(broken_async, INFO)
    records = [r for r in caplog.records if r.name == "cerebras_paygo.payment"]
    assert len(records) == 2
    assert all(r.levelno == logging.WARNING for r in records)
    assert "abcd1234abcd1234" in caplog.text
    assert "RuntimeError" in caplog.text and "ValueError" in caplog.text


def test_hook_error_log_names_the_fingerprint_of_any_info_shape(caplog: pytest.LogCaptureFixture) -> None:
    @dataclasses.dataclass
    class Info:
        key_fingerprint: str

    def broken(info: Any) -> None:
        raise RuntimeError("x")

    with caplog.at_level(logging.WARNING, logger="cerebras_paygo.payment"):
        call_hook(broken, Info("fp-object"))
        call_hook(broken, {"fingerprint": "fp-mapping"})
        call_hook(broken, None)
    assert [r.args[0] for r in caplog.records] == ["fp-object", "fp-mapping", "?"]  # type: ignore[index]


async def test_acall_hook_logs_and_swallows_errors(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(info: Any) -> None:
        raise RuntimeError("nope")

    with caplog.at_level(logging.WARNING, logger="cerebras_paygo.payment"):
        await acall_hook(broken, INFO)
        await acall_hook(lambda info: 1 / 0, INFO)
    assert len(caplog.records) == 2


async def test_acall_hook_lets_cancellation_through() -> None:
    async def slow(info: Any) -> None:
        await asyncio.sleep(10)

    task = asyncio.ensure_future(acall_hook(slow, INFO))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_the_key_never_reaches_logs(caplog: pytest.LogCaptureFixture) -> None:
    policy = PaymentPolicy(max_wait=1, probe_interval=0.5, fallback_api_key=SECRET, on_payment_required=print)
    with caplog.at_level(logging.DEBUG, logger="cerebras_paygo"):
        circuit = payment_circuit("abcd1234abcd1234", policy)
        circuit.on_payment_required(0.0, probe=False)
        circuit.gate(0.5)
        circuit.on_payment_required(0.6, probe=True)
        circuit.gate(200.0)
        circuit.gate(400.0)
        circuit.on_success(401.0, probe=True)
        call_hook(lambda info: (_ for _ in ()).throw(RuntimeError(repr(policy))), INFO)
    assert caplog.records
    assert SECRET not in caplog.text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
