"""CerebrasClient end to end over real HTTP against the emulator: the paths every adapter relies on."""

from __future__ import annotations

import json
import logging

import pytest

from cerebras_paygo import errors
from cerebras_paygo._client import CallInfo, CerebrasClient
from cerebras_paygo._ratelimit import shared_limiter
from cerebras_paygo._streaming import StreamAccumulator
from cerebras_paygo._wire import ChatCompletionChunk, ChatCompletionRequest, Message


def request(text: str = "Say hello in three words.", **kwargs: object) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="gpt-oss-120b", messages=[Message(role="user", content=text)], **kwargs)


@pytest.fixture
def client(emulator) -> CerebrasClient:
    return CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url)


def test_chat_books_settles_and_prices(emulator, client: CerebrasClient) -> None:
    result = client.chat(request(max_completion_tokens=64))
    message = result.completion.choices[0].message
    assert message.content
    usage = result.completion.usage
    assert usage is not None
    assert usage.total_tokens > 0
    info = result.info
    assert info.cost_usd == pytest.approx(usage.prompt_tokens * 0.35e-6 + usage.completion_tokens * 0.75e-6)
    assert info.rate_limits is not None
    assert info.rate_limits.limit["tokens-minute"] == 1_000_000
    assert info.max_completion_tokens == 64
    assert info.attempts == 1
    sent = emulator.stats()
    assert sent["requests"] == 1
    assert sent["tokens_used"] == usage.total_tokens
    # The reservation (estimate + 64) was settled to the real usage: the limiter holds no more.
    assert info.prompt_estimate + 64 > usage.total_tokens
    (tpm,) = [s for s in shared_limiter().stats() if s.limit == "tokens_per_minute"]
    assert 0 <= tpm.capacity - tpm.level <= usage.total_tokens


def test_default_max_completion_tokens_is_sent_not_the_model_maximum(emulator, client: CerebrasClient) -> None:
    spec = client.spec("gpt-oss-120b")
    # tier="auto", nothing heard yet: the default is lowered to fit the free window as well.
    first = client.chat(request())
    assert first.info.max_completion_tokens == spec.window("free") - first.info.prompt_estimate
    # The first answer's headers showed PayGo (no daily cap): the PayGo default from then on.
    assert client.key_tier.known == "paygo"
    result = client.chat(request())
    assert result.info.max_completion_tokens == spec.default_completion("paygo")
    assert emulator.stats()["tokens_admitted"] < 131072


async def test_achat(emulator, client: CerebrasClient) -> None:
    result = await client.achat(request(max_completion_tokens=64))
    assert result.completion.choices[0].message.content
    assert result.info.cost_usd > 0
    await client.aclose()


def _collect(items: list[ChatCompletionChunk], info: CallInfo) -> tuple[StreamAccumulator, CallInfo]:
    assert isinstance(info, CallInfo)
    acc = StreamAccumulator()
    for item in items:
        assert isinstance(item, ChatCompletionChunk)
        acc.add(item)
    return acc, info


def test_stream_yields_chunks_then_call_info(emulator, client: CerebrasClient) -> None:
    stream = client.stream(request(max_completion_tokens=64))
    acc, info = _collect(list(stream), stream.info)
    assert acc.chunks > 2
    assert acc.usage is not None
    assert "".join(acc.content)
    assert info.cost_usd > 0
    assert info.rate_limits is not None


async def test_astream_yields_chunks_then_call_info(emulator, client: CerebrasClient) -> None:
    stream = client.astream(request(max_completion_tokens=64))
    items = [item async for item in stream]
    acc, info = _collect(items, stream.info)
    assert acc.usage is not None
    assert info.attempts == 1


def test_tool_call_round_trip(emulator, client: CerebrasClient) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    first = client.chat(request('What is the weather in "Oslo"? Use get_weather.', tools=tools, tool_choice="required"))
    call = first.completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments or "{}")
    follow = ChatCompletionRequest(
        model="gpt-oss-120b",
        tools=tools,
        messages=[
            Message(role="user", content="What is the weather in Oslo?"),
            Message(role="assistant", tool_calls=[call]),
            Message(role="tool", tool_call_id=call.id, content="12 C and rain"),
        ],
    )
    second = client.chat(follow)
    assert second.completion.choices[0].message.content


def test_retired_model_raises_before_any_request(emulator, client: CerebrasClient) -> None:
    with pytest.raises(errors.ModelRetiredError) as info:
        client.chat(ChatCompletionRequest(model="llama3.1-8b", messages=[Message(role="user", content="hi")]))
    assert info.value.replacement == "gpt-oss-120b"
    assert emulator.stats()["requests"] == 0


def test_missing_key_raises_before_any_request(emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEREBRAS_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", emulator.api_key)  # never used, even when it would work
    client = CerebrasClient(base_url=emulator.base_url)
    with pytest.raises(errors.MissingAPIKeyError):
        client.chat(request())
    assert emulator.stats()["requests"] == 0


def test_negative_max_tokens_is_a_local_error(emulator, client: CerebrasClient) -> None:
    with pytest.raises(errors.ConfigurationError):
        client.chat(request(max_completion_tokens=-5))
    assert emulator.stats()["requests"] == 0


def test_wrong_key_fails_once_for_a_concurrent_batch(emulator) -> None:
    import anyio

    client = CerebrasClient(api_key="csk-not-a-real-key", base_url=emulator.base_url)
    failures: list[BaseException] = []

    async def one() -> None:
        try:
            await client.achat(request(max_completion_tokens=16))
        except errors.AuthenticationError as exc:
            failures.append(exc)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(one)

    anyio.run(main)
    assert len(failures) == 20
    # The first 401 rejects the key: the callers waiting for its first answer fail without sending.
    assert emulator.stats()["statuses"] == {"401": 1}
    assert len({str(f) for f in failures}) == 1


def test_key_never_in_logs_or_errors(emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url)
    client.chat(request(max_completion_tokens=16))
    list(client.stream(request(max_completion_tokens=16)))
    bad = CerebrasClient(api_key="csk-wrong-key-abcdefghijklmnopqrstuvwxyz", base_url=emulator.base_url)
    with pytest.raises(errors.AuthenticationError) as info:
        bad.chat(request())
    for text in (caplog.text, repr(client), str(info.value), repr(info.value.__dict__)):
        assert emulator.api_key not in text
        assert "csk-wrong-key-abcdefghijklmnopqrstuvwxyz" not in text


def test_one_client_serves_successive_event_loops(emulator, client: CerebrasClient) -> None:
    """Scripts call asyncio.run() more than once; connections of a closed loop must not be reused."""
    import asyncio

    for _ in range(3):
        result = asyncio.run(client.achat(request(max_completion_tokens=64)))
        assert result.completion.choices[0].message.content
    assert emulator.stats()["statuses"] == {"200": 3}
