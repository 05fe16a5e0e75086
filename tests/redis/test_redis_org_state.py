"""The payment circuit and the budget ledger in Redis behave as the memory reference does (standalone
and cluster), across processes' clocks, with fallback and raise on a dead Redis; ``status`` shows them."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import anyio
import pytest

from cerebras_paygo._billing import Budget, BudgetGuard, MemoryLedger, SpendMeter
from cerebras_paygo._catalog import Prices
from cerebras_paygo._cli.main import main
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._orgstate.redis_store import RedisOrgState
from cerebras_paygo._payment import MemoryCircuitStore, PaymentCircuit, PaymentPolicy
from cerebras_paygo._shared import reset_shared_states, shared_state
from cerebras_paygo._wire import ChatCompletionRequest, Message, Usage
from cerebras_paygo.errors import BackendUnavailableError, BudgetExceededError

pytestmark = pytest.mark.redis

DEAD = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def org(target_url: str) -> Iterator[RedisOrgState]:
    import redis
    import redis.cluster

    cluster = target_url.startswith("redis+cluster://")
    url = target_url.replace("redis+cluster://", "redis://", 1)
    client = (redis.cluster.RedisCluster if cluster else redis.Redis).from_url(url)
    state = RedisOrgState(client, prefix=f"cptest:{uuid.uuid4().hex[:12]}")
    yield state
    state.reset()


def circuits(org: RedisOrgState) -> list[PaymentCircuit]:
    fp = uuid.uuid4().hex[:16]
    # Two processes' views of one Redis circuit, and the memory reference.
    return [
        PaymentCircuit(fp, store=org.circuit_store(fp), on_backend_error="raise"),
        PaymentCircuit(fp, store=org.circuit_store(fp), on_backend_error="raise"),
        PaymentCircuit(fp, store=MemoryCircuitStore()),
    ]


def test_one_probe_at_a_time_for_every_process_and_a_hook_per_process(org: RedisOrgState) -> None:
    a, b, _ = circuits(org)
    policy = PaymentPolicy(max_wait=60, probe_interval=5)
    assert a.gate(0.0, policy=policy).kind == "probe"  # unknown key: one first caller for all
    assert b.gate(0.0, policy=policy).kind == "wait"
    assert a.on_payment_required(0.1, probe=True, sent_at=0.0, policy=policy) is True
    assert b.state == "open" and b.is_open
    gate = b.gate(0.2, policy=policy)
    assert gate.kind == "wait"
    assert 4.8 < gate.wait_s <= 5.0  # Redis TIME, not the fake now: the next probe is 5 s after the 402
    # b learns of the outage from its own 402 (a request it sent earlier): its hook runs too, once.
    assert b.on_payment_required(0.3, probe=False, policy=policy) is True
    assert b.on_payment_required(0.4, probe=False, policy=policy) is False
    assert a.on_payment_required(0.4, probe=False, policy=policy) is False
    assert b.outages == 1


def test_probe_schedule_close_and_reclaim_match_the_memory_reference(org: RedisOrgState) -> None:
    remote, other, memory = circuits(org)
    policy = PaymentPolicy(max_wait=60, probe_interval=0.2)
    for circuit in (remote, memory):
        assert circuit.on_payment_required(0.0, probe=False, policy=policy) is True
    # The Redis circuit runs on Redis TIME: wait for real instead of moving a fake clock.
    import time

    time.sleep(0.25)
    assert remote.gate(time.monotonic(), policy=policy).kind == "probe"
    assert other.gate(time.monotonic(), policy=policy).kind == "wait"  # the slot is taken, fleet-wide
    assert other.probe_in_flight
    remote.on_probe_done(time.monotonic())  # e.g. a 5xx: the slot frees at once
    assert other.gate(time.monotonic(), policy=policy).kind == "probe"
    other.on_success(time.monotonic(), probe=True)
    assert remote.state == "closed"
    assert remote.gate(time.monotonic(), policy=policy).kind == "send"
    assert memory.gate(0.2, policy=policy).kind == "probe"
    memory.on_success(0.3, probe=True)
    assert memory.state == remote.state == "closed"


def test_a_dead_probers_slot_frees_after_its_lease(org: RedisOrgState) -> None:
    fp = uuid.uuid4().hex[:16]
    a = PaymentCircuit(fp, store=org.circuit_store(fp), probe_lease=0.2)
    b = PaymentCircuit(fp, store=org.circuit_store(fp), probe_lease=0.2)
    policy = PaymentPolicy(max_wait=60, probe_interval=0.05)
    a.on_payment_required(0.0, probe=False, policy=policy)
    import time

    time.sleep(0.06)
    assert a.gate(time.monotonic(), policy=policy).kind == "probe"  # then a's process dies
    assert b.gate(time.monotonic(), policy=policy).kind == "wait"
    time.sleep(0.25)
    assert b.gate(time.monotonic(), policy=policy).kind == "probe"


def test_the_ledger_matches_memory_and_is_shared(org: RedisOrgState) -> None:
    fp = uuid.uuid4().hex[:16]
    budget = Budget(max_spend_usd=1.0)
    guards = [BudgetGuard(budget, SpendMeter(), ledger=org.ledger(fp), on_backend_error="raise") for _ in range(2)]
    reference = BudgetGuard(budget, SpendMeter(), ledger=MemoryLedger())
    for guard in (guards[0], reference):
        t1 = guard.hold(0.6)
        assert t1 is not None
        assert guard.hold(0.5) is None  # only the in-flight worst case stands in the way: wait
        with pytest.raises(BudgetExceededError):
            guard.hold(1.5)
        guard.settle(t1, 0.25)
        guard.settle(t1, 0.25)  # twice: ignored
    assert guards[1].spent_usd == pytest.approx(0.25) == reference.spent_usd
    t2 = guards[1].hold(0.7)
    assert t2 is not None
    assert guards[0].in_flight_usd == pytest.approx(0.7)
    assert guards[0].hold(0.1) is None  # the other process's hold counts
    guards[1].release(t2)
    assert guards[0].remaining_budget_usd == pytest.approx(0.75)


def test_holds_of_a_dead_process_leave_the_books_after_their_lease(target_url: str, org: RedisOrgState) -> None:
    dying = RedisOrgState(org.client, prefix=org.codec.prefix, hold_lease=0.1)
    fp = uuid.uuid4().hex[:16]
    guard = BudgetGuard(Budget(max_spend_usd=1.0), SpendMeter(), ledger=dying.ledger(fp))
    assert guard.hold(0.9) is not None  # never settled
    import time

    time.sleep(0.15)
    assert guard.hold(0.9) is not None  # the first hold's lease ran out


def test_the_meter_totals_are_the_fleets(org: RedisOrgState) -> None:
    fp = uuid.uuid4().hex[:16]
    prices = Prices(input=0.35, output=0.75)
    usage = Usage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500)
    meters = [SpendMeter(org.spend_store()) for _ in range(2)]
    for meter in meters:
        meter.record(fp, "gpt-oss-120b", usage, prices)
    totals = meters[0].totals(fp)
    assert totals.requests == 2
    assert totals.input_tokens == 2000
    assert totals.cost_usd == pytest.approx(2 * (1000 * 0.35 + 500 * 0.75) / 1e6)


def test_dead_redis_falls_back_to_local_state_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    reset_shared_states()
    state = shared_state(redis_url=DEAD, workers=4)
    circuit = state.circuit("fp-dead")
    with caplog.at_level(logging.WARNING):
        assert circuit.gate(0.0).kind == "probe"
        assert circuit.on_payment_required(0.1, probe=True) is True
        assert circuit.gate(0.2).kind == "wait"
    assert circuit.backend_down
    assert [r.message for r in caplog.records].count(
        next(r.message for r in caplog.records if "payment circuit backend unavailable" in r.message)
    ) == 1
    guard = state.budget(Budget(max_spend_usd=1.0), state.meter, "fp-dead")
    assert guard.hold(0.2) is not None  # a quarter of the budget for this process...
    assert guard.hold(0.1) is None  # ...so wait for the one in flight
    with pytest.raises(BudgetExceededError):
        guard.hold(0.3)  # more than a quarter: never
    reset_shared_states()


def test_dead_redis_raises_when_asked_to() -> None:
    reset_shared_states()
    state = shared_state(redis_url=DEAD, on_backend_error="raise")
    with pytest.raises(BackendUnavailableError) as info:
        state.circuit("fp-dead").gate(0.0)
    assert "127.0.0.1" not in str(info.value) or "password" not in str(info.value)
    with pytest.raises(BackendUnavailableError):
        anyio.run(state.budget(Budget(max_spend_usd=1.0), state.meter, "fp-dead").ahold, 0.1)
    reset_shared_states()


def test_clients_share_one_state_per_url_and_status_shows_it(
    emulator, target_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # an 80-column terminal
    reset_shared_states()
    one = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, redis_url=target_url, max_spend_usd=5)
    two = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, redis_url=target_url)
    assert one.limiter is two.limiter and one.spend_meter is two.spend_meter
    fp = one.settings.fingerprint
    state = shared_state(redis_url=target_url)
    state.limiter.reset()
    state.org.client.delete(state.org.codec.circuit_key(fp), *state.org.codec.spend_keys(fp))
    request = ChatCompletionRequest(
        model="gpt-oss-120b", messages=[Message(role="user", content="hi")], max_completion_tokens=16
    )
    result = one.chat(request)
    anyio.run(two.achat, request)
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["status", "--redis-url", target_url, "--json"]) == 0
    data = json.loads(out.getvalue())
    assert emulator.api_key not in out.getvalue()
    rows = [b for b in data["buckets"] if b["key_fingerprint"] == fp]
    assert {b["limit"] for b in rows} >= {"tokens_per_minute", "requests_per_minute"}
    circuit = next(c for c in data["circuits"] if c["key_fingerprint"] == fp)
    assert circuit["state"] == "closed"
    spend = next(s for s in data["spend"] if s["key_fingerprint"] == fp)
    assert spend["models"]["gpt-oss-120b"]["requests"] == 2
    assert spend["spent_usd"] == pytest.approx(result.info.cost_usd)  # only `one` has a budget
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["status", "--redis-url", target_url]) == 0
    text = out.getvalue()
    assert fp in text and emulator.api_key not in text
    assert all(len(line) <= 80 for line in text.splitlines()), "the tables fit 80 columns"
    spend_rows = [line.split() for line in text.splitlines() if line.split()[:1] == ["gpt-oss-120b"]]
    assert ["gpt-oss-120b", "2"] in [r[:2] for r in spend_rows], "the spend table's row for the model"
    state.limiter.reset()
    state.org.client.delete(state.org.codec.circuit_key(fp), *state.org.codec.spend_keys(fp))
    reset_shared_states()


def test_the_url_comes_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    import cerebras_paygo._shared
    from cerebras_paygo import _settings

    monkeypatch.setattr(cerebras_paygo._shared, "redis_url_from_env", _settings.redis_url_from_env)
    monkeypatch.setenv("CEREBRAS_PAYGO_REDIS_URL", DEAD)
    reset_shared_states()
    assert shared_state().backend == DEAD
    monkeypatch.delenv("CEREBRAS_PAYGO_REDIS_URL")
    assert shared_state().backend == "memory"
    reset_shared_states()
