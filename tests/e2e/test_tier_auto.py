"""``tier="auto"`` (the default): the key's tier is learned from the server, end to end on the emulator.

A free key used with PayGo's window and prices fails long prompts on the server and books PayGo
costs; a PayGo key used with the free window is refused prompts that fit. ``auto`` plans with PayGo's
window until the first answer's rate-limit headers (or a context error's limit) tell the tier.
"""

from __future__ import annotations

import asyncio

import pytest

from cerebras_paygo import errors
from cerebras_paygo._catalog import default_catalog
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._tier import KeyTier, tier_from_headers
from cerebras_paygo._wire import ChatCompletionRequest, Message, RateLimitSnapshot
from tests.context.corpus import sized_text

SPEC = default_catalog().get("gpt-oss-120b")


def _request(text: str = "Say hello.", **extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="gpt-oss-120b", messages=[Message(role="user", content=text)], **extra)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ({"requests-day": 14_400, "tokens-minute": 60_000}, "free"),  # the free tier's daily cap
        ({"tokens-day": 1_000_000}, "free"),
        ({"requests-day": 1_000_000_000, "tokens-minute": 1_000_000}, "paygo"),  # PayGo: "no cap"
        ({"requests-day": 1_000_000_000, "tokens-day": 5_000_000_000}, "paygo"),
        ({"tokens-minute": 60_000}, None),  # per-minute limits vary per organisation: no verdict
        ({}, None),
    ],
)
def test_the_tier_the_headers_show(limit: dict[str, int], expected: str | None) -> None:
    assert tier_from_headers(RateLimitSnapshot(limit=limit)) == expected
    assert tier_from_headers(None) is None


def test_a_configured_tier_is_never_relearned() -> None:
    tier = KeyTier("paygo")
    assert not tier.learn_from_headers(RateLimitSnapshot(limit={"requests-day": 14_400}))
    assert not tier.learn_from_context_limit(SPEC, 8192)
    assert tier.known == "paygo"
    auto = KeyTier("auto")
    assert auto.known is None and auto.planning == "paygo"
    assert not auto.learn_from_context_limit(SPEC, 50_000)  # neither tier's window: no verdict
    assert auto.learn_from_context_limit(SPEC, SPEC.window("free"))
    assert auto.known == "free" and not auto.learn("paygo")  # learned once


def test_a_free_key_is_learned_from_the_first_answer(emulator) -> None:
    client = CerebrasClient(api_key=emulator.free_api_key, base_url=emulator.base_url)
    assert client.settings.tier == "auto" and client.key_tier.known is None
    first = client.chat(_request())
    assert client.key_tier.known == "free" and client.tier == "free"
    # Planned before the tier was known: a default completion that fits the free window too, and
    # (learned on its answer) the first call already costs nothing.
    assert first.info.tier == "free" and first.info.cost_usd == 0.0
    assert first.info.max_completion_tokens + first.info.prompt_estimate <= SPEC.window("free")
    second = client.chat(_request())
    assert second.info.max_completion_tokens == SPEC.default_completion("free")
    assert second.info.cost_usd == 0.0
    assert emulator.stats()["statuses"] == {"200": 2}
    assert "auto:free" in repr(client)


def test_a_paygo_key_is_learned_and_keeps_its_window(emulator) -> None:
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url)
    client.chat(_request(max_completion_tokens=16))
    assert client.key_tier.known == "paygo"
    # A 20,000-token prompt fits PayGo's window: sent and answered, never refused for the free one.
    long = _request(sized_text("prose", 20_000, lambda t: len(t) // 4), max_completion_tokens=64)
    result = client.chat(long)
    assert result.completion.usage is not None and result.completion.usage.prompt_tokens > 8192
    assert result.info.cost_usd > 0


def test_a_free_keys_first_long_prompt_teaches_the_tier_and_is_trimmed(emulator) -> None:
    """The first request goes out unknown with a prompt too long for the free window; the server's
    context error (and its headers) teach the free tier, and the call is planned again for it."""
    client = CerebrasClient(api_key=emulator.free_api_key, base_url=emulator.base_url, context_overflow="trim_history")
    old = [Message(role="user", content=sized_text("prose", 7_500, lambda t: len(t) // 4))]
    old.append(Message(role="assistant", content="Noted."))
    request = ChatCompletionRequest(
        model="gpt-oss-120b", messages=[*old, Message(role="user", content="Say hello.")], max_completion_tokens=2048
    )
    result = client.chat(request)
    assert client.key_tier.known == "free"
    assert result.info.attempts == 2 and result.info.dropped_messages == 2
    assert emulator.stats()["statuses"] == {"400": 1, "200": 1}


def test_under_raise_the_free_windows_local_error_follows_the_servers(emulator) -> None:
    client = CerebrasClient(api_key=emulator.free_api_key, base_url=emulator.base_url)
    request = _request(sized_text("prose", 9_000, lambda t: len(t) // 4), max_completion_tokens=512)
    with pytest.raises(errors.ContextWindowExceededError) as info:
        client.chat(request)
    assert info.value.local and info.value.limit == SPEC.window("free")  # planned again, refused here
    assert client.key_tier.known == "free"
    assert emulator.stats()["requests"] == 1
    with pytest.raises(errors.ContextWindowExceededError) as again:
        client.chat(request)
    assert again.value.local and emulator.stats()["requests"] == 1  # known now: refused before sending


def test_async_learns_the_same(emulator) -> None:
    async def main() -> str | None:
        client = CerebrasClient(api_key=emulator.free_api_key, base_url=emulator.base_url)
        try:
            stream = client.astream(_request(max_completion_tokens=32))
            _ = [chunk async for chunk in stream]
            assert stream.info.tier == "free"
            return client.key_tier.known
        finally:
            await client.aclose()

    assert asyncio.run(main()) == "free"


def test_an_unknown_tier_setting_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.ConfigurationError, match="tier must be one of"):
        CerebrasClient(api_key="k", tier="pro")
    monkeypatch.setenv("CEREBRAS_TIER", "Auto")
    assert CerebrasClient(api_key="k").settings.tier == "auto"
    monkeypatch.setenv("CEREBRAS_TIER", "gold")
    with pytest.raises(errors.ConfigurationError, match="CEREBRAS_TIER"):
        CerebrasClient(api_key="k")
