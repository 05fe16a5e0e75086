"""What the core does for ``Cerebras`` over real HTTP against the emulator: one request per 429
(no nested retries), concurrency under a small quota without a 429, the context cap before any
request, 402 ridden out or raised, budget and retirement checks, broken streams."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole

from cerebras_paygo import (
    AuthenticationError,
    BudgetExceededError,
    ContextWindowExceededError,
    ModelRetiredError,
    PaymentRequiredError,
    StreamInterruptedError,
)
from cerebras_paygo._payment import PaymentPolicy
from cerebras_paygo.emulator import AutoRecharge, OrgConfig, count_prompt
from llama_index_cerebras import Cerebras
from tests.llama_index.helpers import PATHS, llm_for, run_chat


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def _requests(emulator: Any) -> int:
    return int(emulator.stats()["requests"])


# --- 429 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_one_429_costs_one_extra_request(emulator: Any, path: str) -> None:
    emulator.set_faults(rate_limit_next=1)
    response = await run_chat(llm_for(emulator), path, _user("hello"))
    assert response.message.content
    assert emulator.stats()["statuses"] == {"429": 1, "200": 1}
    assert response.additional_kwargs["attempts"] == 2


@pytest.mark.parametrize("path", ["chat", "astream_chat"])
async def test_a_429_storm_costs_exactly_one_extra_request_per_429(emulator: Any, path: str) -> None:
    emulator.set_faults(rate_limit_next=3)
    response = await run_chat(llm_for(emulator, max_retries=3), path, _user("hello"))
    assert response.message.content
    stats = emulator.stats()
    assert stats["statuses"] == {"429": 3, "200": 1}, "no retry layer on top of the core's: 3 429s, 4 requests"
    assert stats["requests"] == 4
    assert response.additional_kwargs["attempts"] == 4


async def test_100_concurrent_achat_under_a_small_quota_see_no_429(emulator: Any) -> None:
    # 90% of what the 100 calls reserve (prompt as the server counts it + max_tokens): a bit more
    # than a minute's quota goes through (the real gpt-oss template is ~75 tokens with the
    # [tokenizer] extra, ~15 by the emulator's own counter without it).
    body = {"model": "gpt-oss-120b", "messages": [{"role": "user", "content": "Say a word about number 50."}],
            "reasoning_effort": "low"}  # fmt: skip
    tokens_per_minute = int(0.9 * 100 * (count_prompt(body) + 16))
    emulator.configure(limits={"paygo/gpt-oss-120b": {"tokens_per_minute": tokens_per_minute}})
    # What a user knows of their org's quota; the headers teach it too, but only after the first
    # answer, and a hundred requests go out at once.
    llm = llm_for(emulator, max_tokens=16, reasoning_effort="low", rate_limits={"tokens_per_minute": tokens_per_minute})
    started = time.monotonic()
    responses = await asyncio.gather(*(llm.achat(_user(f"Say a word about number {i}.")) for i in range(100)))
    elapsed = time.monotonic() - started

    stats = emulator.stats()
    assert stats["rate_limited"] == 0, stats["statuses"]
    assert stats["statuses"] == {"200": 100}
    assert all(r.additional_kwargs["attempts"] == 1 for r in responses)
    assert stats["tokens_used"] > tokens_per_minute, "more than a minute's quota went through"
    assert sum(r.additional_kwargs["waited_s"] for r in responses) > 0, "the limiter held requests back"
    assert elapsed < 60


# --- context window ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PATHS, "complete", "astream_complete"])
async def test_free_tier_over_the_cap_fails_before_any_request(emulator: Any, path: str) -> None:
    llm = llm_for(emulator, free=True, max_tokens=1024)
    assert llm.metadata.context_window == 8192
    # Over the cap by a margin the estimator's calibration cannot erase.
    prompt = "lorem ipsum dolor sit amet " * 6000
    with pytest.raises(ContextWindowExceededError) as info:
        if path == "complete":
            llm.complete(prompt)
        elif path == "astream_complete":
            [r async for r in await llm.astream_complete(prompt)]
        else:
            await run_chat(llm, path, _user(prompt))
    assert info.value.local is True
    assert _requests(emulator) == 0


def test_trim_history_drops_old_turns(emulator: Any) -> None:
    llm = llm_for(emulator, free=True, context_overflow="trim_history", max_tokens=512)
    history = [ChatMessage(role=MessageRole.SYSTEM, content="Be brief.")]
    for i in range(3):
        history += [
            ChatMessage(role=MessageRole.USER, content=f"question {i}: " + "filler text " * 4000),
            ChatMessage(role=MessageRole.ASSISTANT, content=f"answer {i}"),
        ]
    history.append(ChatMessage(role=MessageRole.USER, content="And the last question?"))
    response = llm.chat(history)
    assert response.message.content
    assert response.additional_kwargs["dropped_messages"] == 6
    assert emulator.stats()["statuses"] == {"200": 1}


# --- 402 ---------------------------------------------------------------------------------------


async def test_402_with_auto_recharge_is_ridden_out(emulator: Any) -> None:
    emulator.configure(
        orgs=[
            OrgConfig(
                name=emulator.paygo_org,
                tier="paygo",
                balance_usd=1.0,
                auto_recharge=AutoRecharge(threshold_usd=5.0, amount_usd=20.0, delay_s=0.6),
            ),
            *[org for org in emulator.config.orgs if org.name != emulator.paygo_org],
        ]
    )
    emulator.set_faults(payment_required_s=math.inf)
    hook_calls: list[Any] = []
    llm = llm_for(
        emulator,
        payment_policy=PaymentPolicy(max_wait=10.0, probe_interval=0.2, on_payment_required=hook_calls.append),
    )
    responses = await asyncio.gather(*(llm.achat(_user(f"hello {i} after the recharge")) for i in range(5)))
    assert all(r.message.content for r in responses)
    assert emulator.stats()["payment_required"] >= 1
    assert max(r.additional_kwargs["waited_s"] for r in responses) > 0
    assert len(hook_calls) == 1, "the hook runs once per outage, not once per caller"
    assert "csk-" not in repr(hook_calls[0])


@pytest.mark.parametrize("path", PATHS)
async def test_402_without_credit_raises_after_max_wait(emulator: Any, path: str) -> None:
    emulator.set_faults(payment_required_s=math.inf)
    llm = llm_for(emulator, payment_policy=PaymentPolicy(max_wait=0.4, probe_interval=0.1))
    with pytest.raises(PaymentRequiredError) as info:
        await run_chat(llm, path, _user("hi"))
    assert info.value.status_code == 402
    assert "csk-" not in str(info.value)


# --- checks before sending, broken streams --------------------------------------------------------


def test_retired_model_fails_before_any_request(emulator: Any) -> None:
    llm = llm_for(emulator, model="llama3.1-8b")
    with pytest.raises(ModelRetiredError) as info:
        llm.chat(_user("hi"))
    assert info.value.replacement == "gpt-oss-120b"
    assert _requests(emulator) == 0


def test_budget_refuses_before_sending(emulator: Any) -> None:
    llm = llm_for(emulator, max_spend_usd=1e-7)
    with pytest.raises(BudgetExceededError):
        llm.complete("hello")
    assert _requests(emulator) == 0


@pytest.mark.parametrize("path", ["stream_chat", "astream_chat"])
async def test_a_stream_broken_after_content_is_a_typed_error_and_not_retried(emulator: Any, path: str) -> None:
    emulator.set_faults(drop_after_chunks=4)
    with pytest.raises(StreamInterruptedError) as info:
        await run_chat(llm_for(emulator), path, _user("tell me a story"))
    assert info.value.delivered_chunks > 0
    assert _requests(emulator) == 1


def test_stopping_a_stream_early_releases_it(emulator: Any) -> None:
    llm = llm_for(emulator, max_tokens=512)
    stream = llm.stream_chat(_user("tell me a long story about otters"))
    first = next(stream)
    assert first.delta is not None
    stream.close()
    assert llm.chat(_user("hello")).message.content


async def test_a_wrong_key_fails_once_and_never_shows(emulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "csk-wrong-but-secret-999"
    wrong = Cerebras(base_url=emulator.base_url, api_key=secret, max_tokens=16)
    with pytest.raises(AuthenticationError) as info:
        await wrong.achat(_user("hello"))
    assert _requests(emulator) == 1, "a 401 is not retried"
    for text in (str(info.value), repr(info.value), repr(wrong), wrong.to_json(), caplog.text):
        assert secret not in text
