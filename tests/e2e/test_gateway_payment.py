"""402 Payment Required end to end: ride out auto-recharge without a storm, fail clearly, fall back."""

from __future__ import annotations

import math
import time

import anyio
import pytest

from cerebras_paygo import errors
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._payment import PaymentPolicy
from cerebras_paygo._wire import ChatCompletionRequest, Message


def request(text: str = "Give me one fun fact.", **kwargs: object) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-oss-120b", messages=[Message(role="user", content=text)], max_completion_tokens=32, **kwargs
    )


def with_recharge(emulator, delay_s: float) -> None:
    orgs = []
    for org in emulator.config.orgs:
        data = org.model_dump()
        if org.name == emulator.paygo_org:
            data["auto_recharge"] = {"threshold_usd": 5.0, "amount_usd": 20.0, "delay_s": delay_s}
        orgs.append(data)
    emulator.configure(orgs=orgs)


def run_concurrently(client: CerebrasClient, n: int) -> tuple[list, list[BaseException]]:
    results: list = []
    failures: list[BaseException] = []

    async def one(i: int) -> None:
        try:
            results.append(await client.achat(request(f"Fact number {i}, please.")))
        except errors.CerebrasError as exc:
            failures.append(exc)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for i in range(n):
                group.start_soon(one, i)

    anyio.run(main)
    return results, failures


def test_auto_recharge_outage_200_callers_all_succeed_with_a_handful_of_402s(emulator) -> None:
    with_recharge(emulator, delay_s=2.0)
    emulator.set_faults(payment_required_s=math.inf)  # 402 until the recharge lands
    calls: list[dict] = []
    policy = PaymentPolicy(max_wait=30.0, probe_interval=0.5, on_payment_required=calls.append)
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, payment_policy=policy)
    started = time.monotonic()
    results, failures = run_concurrently(client, 200)
    elapsed = time.monotonic() - started
    stats = emulator.stats()
    assert failures == []
    assert len(results) == 200
    assert stats["statuses"]["200"] == 200
    assert 1 <= stats["payment_required"] <= 8  # probes, not hundreds
    assert elapsed >= 1.5  # they really waited for the credit
    assert len(calls) == 1  # the hook ran once for the outage
    assert calls[0]["key_fingerprint"] == client.settings.fingerprint
    assert emulator.api_key not in repr(calls[0])


def test_without_recharge_every_caller_gets_payment_required_after_max_wait(emulator) -> None:
    emulator.set_faults(payment_required_s=math.inf)
    policy = PaymentPolicy(max_wait=1.0, probe_interval=0.3)
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, payment_policy=policy)
    started = time.monotonic()
    results, failures = run_concurrently(client, 30)
    elapsed = time.monotonic() - started
    assert results == []
    assert len(failures) == 30
    assert all(isinstance(f, errors.PaymentRequiredError) for f in failures)
    message = str(failures[0])
    assert "Team" in message
    assert "Personal" in message
    assert "auto-recharge" in message.lower()
    assert 1.0 <= elapsed < 5.0
    assert max(f.waited for f in failures) >= 1.0
    assert emulator.stats()["payment_required"] <= 6


def test_max_wait_zero_fails_fast_with_one_request(emulator) -> None:
    emulator.set_faults(payment_required_s=math.inf)
    client = CerebrasClient(
        api_key=emulator.api_key, base_url=emulator.base_url, payment_policy=PaymentPolicy(max_wait=0)
    )
    _, failures = run_concurrently(client, 10)
    assert len(failures) == 10
    assert emulator.stats()["payment_required"] == 1


def test_fallback_key_serves_during_the_outage_under_free_tier_limits_and_cap(emulator) -> None:
    emulator.set_faults(payment_required_s=math.inf, payment_required_orgs=[emulator.paygo_org])
    calls: list[dict] = []
    policy = PaymentPolicy(
        max_wait=30.0, probe_interval=0.5, on_payment_required=calls.append, fallback_api_key=emulator.free_api_key
    )
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, payment_policy=policy)
    first = client.chat(request())  # the first answer is a 402; the call continues on the free key
    assert first.info.used_fallback_key
    assert first.info.tier == "free"
    assert first.info.cost_usd == 0.0
    second = client.chat(request())
    assert second.info.used_fallback_key
    assert len(calls) == 1
    # The free tier's 8,192-token cap applies while on the fallback key: refused before sending.
    sent_before = emulator.stats()["requests"]
    with pytest.raises(errors.ContextWindowExceededError) as info:
        client.chat(request("word " * 12000))
    assert info.value.local
    assert info.value.limit == 8192
    assert emulator.stats()["requests"] - sent_before <= 1  # at most the primary key's probe
    # Credit returns: the primary key's probe succeeds and calls go back to it.
    emulator.set_faults(payment_required_s=None)
    emulator.set_balance(emulator.paygo_org, 50.0)
    deadline = time.monotonic() + 5
    result = client.chat(request())
    while result.info.used_fallback_key and time.monotonic() < deadline:
        time.sleep(0.2)
        result = client.chat(request())
    assert not result.info.used_fallback_key
    assert result.info.tier == "paygo"
    assert result.info.cost_usd > 0


def test_hook_runs_once_per_outage_and_async_hooks_are_awaited(emulator) -> None:
    with_recharge(emulator, delay_s=0.5)
    seen: list[str] = []

    async def hook(info: dict) -> None:
        seen.append(info["model"])

    policy = PaymentPolicy(max_wait=10.0, probe_interval=0.2, on_payment_required=hook)
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, payment_policy=policy)
    for _ in range(2):
        emulator.set_faults(payment_required_s=math.inf)
        _, failures = run_concurrently(client, 20)
        assert failures == []
    assert seen == ["gpt-oss-120b", "gpt-oss-120b"]
