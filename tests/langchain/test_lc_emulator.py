"""ChatCerebras end to end over real HTTP against the emulator: chains, batches under a quota,
402, context limits, reasoning on every path, metadata, and the key kept out of everything."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

import httpx
import pytest
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

from cerebras_paygo import (
    AuthenticationError,
    BudgetExceededError,
    ContextWindowExceededError,
    ModelRetiredError,
    PaymentRequiredError,
    StreamInterruptedError,
)
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._context import TokenEstimator
from cerebras_paygo._payment import PaymentPolicy
from cerebras_paygo.emulator import AutoRecharge, OrgConfig, count_prompt
from langchain_cerebras_paygo import ChatCerebras
from tests.langchain.helpers import PATHS, collect, fresh_key, run_path


def llm_for(emulator: Any, *, free: bool = False, **kwargs: Any) -> ChatCerebras:
    kwargs.setdefault("max_tokens", 256)
    return ChatCerebras(base_url=emulator.base_url, api_key=fresh_key(emulator, free=free), **kwargs)


def chat_requests(emulator: Any) -> int:
    return int(emulator.stats()["requests"])


# --- chains and batches ----------------------------------------------------------------------


async def test_prompt_model_parser_chain(emulator: Any) -> None:
    llm = llm_for(emulator)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You answer in one sentence."), ("human", "Tell me about {topic}")]
    )
    chain = prompt | llm | StrOutputParser()

    text = chain.invoke({"topic": "otters"})
    assert isinstance(text, str) and text
    assert await chain.ainvoke({"topic": "otters"}) == text, "the emulator is deterministic per request"
    streamed = list(chain.stream({"topic": "otters"}))
    assert len(streamed) > 1 and "".join(streamed) == text
    assert "".join([part async for part in chain.astream({"topic": "otters"})]) == text
    assert chain.batch([{"topic": "otters"}, {"topic": "bees"}]) == [text, chain.invoke({"topic": "bees"})]
    assert emulator.stats()["statuses"] == {"200": 7}


async def test_abatch_200_under_a_small_quota_never_sees_a_429(emulator: Any) -> None:
    # 90% of what the batch reserves (prompt as the server counts it + max_tokens, per request):
    # a bit more than a minute's quota must go through. The prompt is the real gpt-oss template
    # (~75 tokens) with the [tokenizer] extra, ~15 by the emulator's own counter without it.
    body = {"model": "gpt-oss-120b", "messages": [{"role": "user", "content": "Say a word about number 100."}],
            "reasoning_effort": "low"}  # fmt: skip
    tokens_per_minute = int(0.9 * 200 * (count_prompt(body) + 12))
    emulator.configure(limits={"paygo/gpt-oss-120b": {"tokens_per_minute": tokens_per_minute}})
    llm = llm_for(
        emulator,
        max_tokens=12,
        reasoning_effort="low",
        # What a user knows of their org's quota; the headers would teach it too, but only after the
        # first answer, and 200 requests go out at once.
        rate_limits={"tokens_per_minute": tokens_per_minute},
    )
    inputs = [f"Say a word about number {i}." for i in range(200)]
    started = time.monotonic()
    results = await llm.abatch(inputs, config={"max_concurrency": 50})
    elapsed = time.monotonic() - started

    stats = emulator.stats()
    assert stats["rate_limited"] == 0, stats["statuses"]
    assert stats["statuses"] == {"200": 200}
    assert len(results) == 200 and all(isinstance(r, AIMessage) for r in results)
    waited = sum(r.response_metadata["waited_s"] for r in results)
    assert waited > 0, "the quota is small enough that the limiter had to hold requests back"
    assert all(r.response_metadata["attempts"] == 1 for r in results)
    used = stats["tokens_used"]
    assert used > tokens_per_minute, "more tokens than one minute's quota went through"
    assert elapsed < 60


def test_batch_threads_share_one_client(emulator: Any) -> None:
    llm = llm_for(emulator)
    results = llm.batch([f"hello {i}" for i in range(8)], config={"max_concurrency": 4})
    assert len({id(llm.cerebras_client)}) == 1
    assert all(r.response_metadata["finish_reason"] for r in results)


# --- 402 -------------------------------------------------------------------------------------


async def test_402_waits_for_auto_recharge(emulator: Any) -> None:
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
    calls: list[Any] = []
    llm = llm_for(
        emulator,
        payment_policy=PaymentPolicy(max_wait=10.0, probe_interval=0.2, on_payment_required=calls.append),
    )
    message = await llm.ainvoke("hello after the recharge")
    assert message.text
    stats = emulator.stats()
    assert stats["payment_required"] >= 1
    assert message.response_metadata["waited_s"] > 0
    assert message.response_metadata["attempts"] >= 2
    assert len(calls) == 1, "the hook runs once per outage"
    assert "csk-" not in repr(calls[0])


@pytest.mark.parametrize("path", PATHS)
async def test_402_without_credit_raises_after_max_wait(emulator: Any, path: str) -> None:
    emulator.set_faults(payment_required_s=math.inf)
    llm = llm_for(emulator, payment_policy=PaymentPolicy(max_wait=0.4, probe_interval=0.1))
    started = time.monotonic()
    with pytest.raises(PaymentRequiredError) as info:
        await run_path(llm, path, "hi")
    assert time.monotonic() - started < 5
    assert info.value.status_code == 402
    assert emulator.stats()["payment_required"] >= 1
    assert "csk-" not in str(info.value)


# --- context window --------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_free_tier_over_the_cap_fails_before_any_request(emulator: Any, path: str) -> None:
    llm = llm_for(emulator, free=True, tier="free", max_tokens=1024)
    assert llm.profile is not None and llm.profile["max_input_tokens"] == 8192
    # Over the cap by a margin the estimator's calibration (a factor of 0.25 to 5) cannot erase.
    prompt = [HumanMessage("lorem ipsum dolor sit amet " * 6000)]
    with pytest.raises(ContextWindowExceededError) as info:
        await run_path(llm, path, prompt)
    assert info.value.local is True
    assert chat_requests(emulator) == 0


def test_trim_history_drops_old_turns_and_says_so(emulator: Any) -> None:
    # A client of its own with a fresh estimator: the process-wide one has been calibrated by the
    # other tests' tiny prompts, and trimming is decided by the estimate.
    client = CerebrasClient(
        base_url=emulator.base_url,
        api_key=fresh_key(emulator, free=True),
        tier="free",
        context_overflow="trim_history",
        estimator=TokenEstimator(),
    )
    llm = ChatCerebras(client=client, max_tokens=512)
    history: list[BaseMessage] = [SystemMessage("Be brief.")]
    for i in range(3):
        # each old turn alone is bigger than the free tier's window, so all of them must go
        history += [HumanMessage(f"question {i}: " + "filler text " * 4200), AIMessage(f"answer {i}")]
    history.append(HumanMessage("And the last question?"))
    assert llm.get_num_tokens_from_messages(history) > 3 * 8192
    message = llm.invoke(history)
    assert message.text
    assert message.response_metadata["dropped_messages"] == 6
    assert emulator.stats()["statuses"] == {"200": 1}


def test_retired_model_fails_before_any_request(emulator: Any) -> None:
    llm = llm_for(emulator, model="llama3.1-8b")
    with pytest.raises(ModelRetiredError) as info:
        llm.invoke("hi")
    assert info.value.replacement == "gpt-oss-120b"
    assert chat_requests(emulator) == 0


# --- reasoning, metadata, usage --------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            self.bodies.append(json.loads(request.content))

    async def acall(self, request: httpx.Request) -> None:
        self(request)


@pytest.mark.parametrize("path", PATHS)
async def test_reasoning_is_the_same_on_every_path_and_goes_back_as_reasoning(emulator: Any, path: str) -> None:
    recorder = _Recorder()
    llm = llm_for(
        emulator,
        reasoning_effort="medium",
        http_client=httpx.Client(event_hooks={"request": [recorder]}),
        http_async_client=httpx.AsyncClient(event_hooks={"request": [recorder.acall]}),
    )

    first: AIMessage = await run_path(llm, path, [HumanMessage("Why is the sky blue?")])
    reasoning = first.additional_kwargs["reasoning_content"]
    assert isinstance(reasoning, str) and reasoning
    assert set(first.additional_kwargs) == {"reasoning_content"}
    blocks = first.content_blocks
    assert blocks[0] == {"type": "reasoning", "reasoning": reasoning}
    assert blocks[1] == {"type": "text", "text": first.text}
    assert first.usage_metadata is not None
    assert first.usage_metadata["output_token_details"]["reasoning"] > 0

    second = await run_path(llm, path, [HumanMessage("Why is the sky blue?"), first, HumanMessage("And at sunset?")])
    assert second.text
    assistant = recorder.bodies[-1]["messages"][1]
    assert assistant == {"role": "assistant", "content": first.text, "reasoning": reasoning}


@pytest.mark.parametrize("path", ["invoke", "stream"])
def test_response_metadata_and_usage(emulator: Any, path: str) -> None:
    llm = llm_for(emulator, model="zai-glm-4.7")
    message = llm.invoke("hello") if path == "invoke" else asyncio.run(collect(llm.stream("hello")))
    meta = message.response_metadata
    assert meta["model_name"] == "zai-glm-4.7"
    assert meta["model_provider"] == "cerebras"
    assert meta["finish_reason"] in ("stop", "length")
    assert meta["system_fingerprint"].startswith("fp_")
    assert meta["time_info"]["total_time"] >= 0
    assert meta["cost_usd"] > 0
    assert meta["attempts"] == 1
    assert meta["tier"] == "paygo"
    assert meta["rate_limits"]["limit"]["tokens-minute"] > 0
    assert meta["rate_limits"]["remaining"]["requests-day"] > 0
    usage = message.usage_metadata
    assert usage is not None
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_token_details"]["cache_read"] >= 0


def test_429_storm_is_waited_out(emulator: Any) -> None:
    emulator.set_faults(rate_limit_next=2)
    message = llm_for(emulator).invoke("hello")
    assert message.text
    assert message.response_metadata["attempts"] == 3
    assert emulator.stats()["rate_limited"] == 2


async def test_astream_events(emulator: Any) -> None:
    llm = llm_for(emulator)
    kinds: list[str] = []
    end_output: Any = None
    async for event in llm.astream_events("hello", version="v2"):
        kinds.append(event["event"])
        if event["event"] == "on_chat_model_end":
            end_output = event["data"]["output"]
    assert kinds[0] == "on_chat_model_start" and kinds[-1] == "on_chat_model_end"
    assert kinds.count("on_chat_model_stream") > 1
    assert end_output.usage_metadata["output_tokens"] > 0


def test_tools_and_structured_output_over_http(emulator: Any) -> None:
    class Weather(BaseModel):
        """Weather in a city."""

        city: str
        unit: str | None = None

    llm = llm_for(emulator)
    call = llm.bind_tools([Weather], tool_choice="Weather").invoke("Weather in 'Oslo'?")
    assert call.tool_calls and call.tool_calls[0]["name"] == "Weather"
    for method in ("json_schema", "function_calling"):
        result = llm.with_structured_output(Weather, method=method).invoke("Weather in 'Oslo'?")  # type: ignore[arg-type]
        assert isinstance(result, Weather)
    raw = llm.with_structured_output(Weather, include_raw=True).invoke("Weather in 'Oslo'?")
    assert isinstance(raw["raw"], AIMessage) and isinstance(raw["parsed"], Weather) and raw["parsing_error"] is None


# --- the key ----------------------------------------------------------------------------------


async def test_the_key_never_shows(emulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    llm = llm_for(emulator)
    key = llm.api_key.get_secret_value() if llm.api_key else ""
    assert key.startswith("csk-lc-")
    message = llm.invoke("hello")
    await collect(llm.astream("hello"))
    texts = [
        repr(llm),
        str(llm),
        dumps(llm),
        repr(llm.cerebras_client),
        repr(message),
        json.dumps(message.response_metadata),
    ]
    wrong = ChatCerebras(base_url=emulator.base_url, api_key="csk-wrong-but-secret-999")
    with pytest.raises(AuthenticationError) as info:
        wrong.invoke("hello")
    texts += [str(info.value), repr(info.value), repr(wrong), caplog.text]
    for text in texts:
        assert key not in text
        assert "csk-wrong-but-secret-999" not in text


# --- more paths through the core ---------------------------------------------------------------


def test_budget_refuses_before_sending(emulator: Any) -> None:
    llm = llm_for(emulator, max_spend_usd=1e-7)
    with pytest.raises(BudgetExceededError):
        llm.invoke("hello")
    assert chat_requests(emulator) == 0


def test_streaming_flag_routes_invoke_through_the_stream(emulator: Any) -> None:
    llm = llm_for(emulator, streaming=True)
    message = llm.invoke("hello")
    assert emulator.stats()["streams"] == 1
    assert message.usage_metadata is not None and message.response_metadata["cost_usd"] > 0
    no_usage = asyncio.run(collect(llm_for(emulator).stream("hello", stream_usage=False)))
    assert no_usage.response_metadata["finish_reason"]


@pytest.mark.parametrize("use_async", [False, True])
async def test_stream_broken_after_content_is_a_typed_error(emulator: Any, use_async: bool) -> None:
    emulator.set_faults(drop_after_chunks=4)
    llm = llm_for(emulator)
    with pytest.raises(StreamInterruptedError) as info:
        await collect(llm.astream("tell me a story") if use_async else llm.stream("tell me a story"))
    assert info.value.delivered_chunks > 0
    assert emulator.stats()["requests"] == 1, "a stream that delivered tokens is not retried"
