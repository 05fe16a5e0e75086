"""Context caps end to end: refuse before sending, trim, shrink, learn from the server's counts."""

from __future__ import annotations

import pytest

from cerebras_paygo import errors
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._context import TokenEstimator
from cerebras_paygo._wire import ChatCompletionRequest, Message

FILLER = "The quick brown fox jumps over the lazy dog near the riverbank at dawn. "


def long_history(turns: int, words_per_turn: int = 400) -> list[Message]:
    messages = [Message(role="system", content="You are a concise assistant.")]
    for i in range(turns):
        messages.append(Message(role="user", content=f"Turn {i}: " + FILLER * (words_per_turn // 14)))
        messages.append(Message(role="assistant", content=f"Noted turn {i}."))
    messages.append(Message(role="user", content="Now summarize what I said in one sentence."))
    return messages


def free_client(emulator, **kwargs: object) -> CerebrasClient:
    return CerebrasClient(api_key=emulator.free_api_key, base_url=emulator.base_url, tier="free", **kwargs)


def test_over_cap_prompt_on_free_tier_raises_before_any_request(emulator) -> None:
    client = free_client(emulator)
    too_long = ChatCompletionRequest(
        model="gpt-oss-120b", messages=[Message(role="user", content=FILLER * 800)], max_completion_tokens=512
    )
    with pytest.raises(errors.ContextWindowExceededError) as info:
        client.chat(too_long)
    err = info.value
    assert err.local
    assert err.limit == 8192
    assert err.current_length is not None
    assert err.current_length > 8192
    assert "trim_history" in str(err)
    with pytest.raises(errors.ContextWindowExceededError):
        list(client.stream(too_long))
    assert emulator.stats()["requests"] == 0


async def test_over_cap_async_paths_raise_before_any_request(emulator) -> None:
    client = free_client(emulator)
    too_long = ChatCompletionRequest(model="gpt-oss-120b", messages=[Message(role="user", content=FILLER * 800)])
    with pytest.raises(errors.ContextWindowExceededError):
        await client.achat(too_long)
    with pytest.raises(errors.ContextWindowExceededError):
        async for _ in client.astream(too_long):
            pass
    assert emulator.stats()["requests"] == 0


def test_same_prompt_fits_paygo_window(emulator) -> None:
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url)
    result = client.chat(
        ChatCompletionRequest(
            model="gpt-oss-120b", messages=[Message(role="user", content=FILLER * 800)], max_completion_tokens=64
        )
    )
    assert result.completion.usage.prompt_tokens > 8192


def test_trim_history_keeps_system_and_last_turn_and_is_accepted(emulator) -> None:
    client = free_client(emulator, context_overflow="trim_history")
    messages = long_history(turns=30)
    result = client.chat(ChatCompletionRequest(model="gpt-oss-120b", messages=messages, max_completion_tokens=256))
    assert result.info.dropped_messages > 0
    assert result.completion.usage.prompt_tokens + 256 <= 8192
    assert emulator.stats()["statuses"] == {"200": 1}


def test_shrink_completion_lowers_max_tokens_to_fit(emulator) -> None:
    client = free_client(emulator, context_overflow="shrink_completion")
    request = ChatCompletionRequest(
        model="gpt-oss-120b", messages=[Message(role="user", content=FILLER * 300)], max_completion_tokens=6000
    )
    result = client.chat(request)
    assert result.info.max_completion_tokens < 6000
    assert result.completion.usage.prompt_tokens + result.info.max_completion_tokens <= 8192
    assert request.max_completion_tokens == 6000  # the caller's request is never changed


def undercounting_estimator() -> TokenEstimator:
    # An exact counter that is wrong (a tokenizer for another model): the server knows better.
    return TokenEstimator(counter=lambda text: len(text) // 12)


def test_server_context_error_maps_and_teaches_the_estimator(emulator) -> None:
    estimator = undercounting_estimator()
    client = free_client(emulator, estimator=estimator)
    request = ChatCompletionRequest(
        model="gpt-oss-120b", messages=[Message(role="user", content=FILLER * 500)], max_completion_tokens=1024
    )
    before = client.estimate_tokens(request)
    with pytest.raises(errors.ContextWindowExceededError) as info:
        client.chat(request)
    err = info.value
    assert not err.local
    assert err.code == "context_length_exceeded"
    assert err.limit == 8192
    assert err.current_length is not None
    assert err.current_length > 8192
    assert client.estimate_tokens(request) > before  # it learned the real length
    assert emulator.stats()["statuses"] == {"400": 1}
    # The next over-long request now fails locally, without a round trip.
    with pytest.raises(errors.ContextWindowExceededError) as again:
        client.chat(request)
    assert again.value.local
    assert emulator.stats()["requests"] == 1


def test_server_context_error_under_trim_history_is_replanned_once(emulator) -> None:
    client = free_client(emulator, estimator=undercounting_estimator(), context_overflow="trim_history")
    result = client.chat(
        ChatCompletionRequest(model="gpt-oss-120b", messages=long_history(turns=30), max_completion_tokens=256)
    )
    assert result.info.dropped_messages > 0
    assert result.info.attempts == 2
    assert result.info.waited_s < 5  # the first (probe) answer freed the key's payment probe slot
    statuses = emulator.stats()["statuses"]
    assert statuses["200"] == 1
    assert statuses.get("400", 0) <= 1


@pytest.mark.parametrize("vocabularies", [True, False], ids=["tokenizer", "heuristic"])
def test_the_band_holds_the_servers_count_and_calibration_tightens_it(emulator, vocabularies: bool) -> None:
    estimator = TokenEstimator(vocabularies=vocabularies)
    exact = vocabularies and estimator.counts_exactly("gpt-oss-120b")
    if vocabularies and not exact:
        pytest.skip("needs the [tokenizer] extra (quicktok-v1)")
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, estimator=estimator)
    errors_rel: list[float] = []
    for i in range(40):
        size = (3, 40, 400, 12, 1500)[i % 5]
        request = ChatCompletionRequest(
            model="gpt-oss-120b",
            messages=[Message(role="user", content=f"Item {i}. " + FILLER * size)],
            max_completion_tokens=16,
        )
        band = estimator.band(request)
        actual = client.chat(request).completion.usage.prompt_tokens
        # a refusal is certain (the low end never above the server's count) ...
        assert band.low <= actual, (i, band, actual)
        if exact:
            assert band == (actual, actual, True)  # ... and with the tokenizer the count is the server's
        errors_rel.append((band.high - actual) / actual)
    first, last = errors_rel[:10], errors_rel[-10:]
    if exact:
        assert max(map(abs, errors_rel)) == 0
    else:
        assert min(errors_rel) >= 0  # the high end (what is reserved) held the true count throughout
        assert sum(last) / len(last) < 0.7 * sum(first) / len(first)  # and calibration brought it closer


def test_a_prompt_the_server_counted_is_refused_locally_next_time_without_the_tokenizer(emulator) -> None:
    # The heuristic's band straddles the window: sent, and the server's count is remembered.
    estimator = TokenEstimator(vocabularies=False)
    client = free_client(emulator, estimator=estimator)
    request = ChatCompletionRequest(
        model="gpt-oss-120b", messages=[Message(role="user", content=FILLER * 500)], max_completion_tokens=512
    )
    band = estimator.band(request)
    assert band.low + 512 <= 8192 < band.high + 512, band  # uncertain: not refused locally
    with pytest.raises(errors.ContextWindowExceededError) as first:
        client.chat(request)
    assert not first.value.local
    real = first.value.current_length - 512
    assert estimator.band(request) == (real, real, True)
    with pytest.raises(errors.ContextWindowExceededError) as again:
        client.chat(request)
    assert again.value.local and again.value.current_length == real + 512
    assert emulator.stats()["requests"] == 1
    # another prompt is not taken for this one
    other = request.model_copy(update={"messages": [Message(role="user", content=FILLER * 499)]})
    assert not estimator.band(other).exact
