"""Exactly one retry layer, end to end: what is retried, what is not, and the budget guard."""

from __future__ import annotations

import pytest

from cerebras_paygo import errors
from cerebras_paygo._client import CallInfo, CerebrasClient
from cerebras_paygo._wire import ChatCompletionRequest, Message


def request(text: str = "Name a color.", **kwargs: object) -> ChatCompletionRequest:
    kwargs.setdefault("max_completion_tokens", 64)
    return ChatCompletionRequest(model="gpt-oss-120b", messages=[Message(role="user", content=text)], **kwargs)


def make_client(emulator, **kwargs: object) -> CerebrasClient:
    return CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, **kwargs)


def test_503_burst_is_retried_with_backoff(emulator) -> None:
    emulator.set_faults(unavailable_next=2)
    result = make_client(emulator).chat(request())
    assert result.info.attempts == 3
    assert emulator.stats()["statuses"] == {"503": 2, "200": 1}


def test_5xx_beyond_max_retries_raises_the_typed_error(emulator) -> None:
    emulator.set_faults(error_rate=1.0, error_status=500)
    with pytest.raises(errors.ServerError):
        make_client(emulator, max_retries=1).chat(request())
    assert emulator.stats()["statuses"] == {"500": 2}


def test_one_429_is_one_extra_request_not_twelve(emulator) -> None:
    emulator.set_faults(rate_limit_next=1)
    result = make_client(emulator).chat(request())
    assert result.info.attempts == 2
    assert emulator.stats()["statuses"] == {"429": 1, "200": 1}


def test_429_storm_is_waited_out(emulator) -> None:
    emulator.set_faults(rate_limit_next=3)
    result = make_client(emulator, max_retries=0).chat(request())  # 429s are waited, not counted
    assert result.info.attempts == 4
    assert emulator.stats()["rate_limited"] == 3


@pytest.mark.parametrize(
    ("make_request", "error"),
    [
        (lambda: request(min_p=0.1), errors.BadRequestError),  # unsupported field -> wrong_api_format
        (
            lambda: ChatCompletionRequest(
                model="gpt-oss-120b",
                messages=[Message(role="assistant", content="x", reasoning_content="no")],  # type: ignore[call-arg]
                max_completion_tokens=16,
            ),
            errors.BadRequestError,
        ),
    ],
)
def test_4xx_raises_at_once_without_retry(emulator, make_request, error) -> None:
    with pytest.raises(error) as info:
        make_client(emulator).chat(make_request())
    assert info.value.code == "wrong_api_format"
    assert emulator.stats()["requests"] == 1


def test_wrong_key_is_not_retried(emulator) -> None:
    client = CerebrasClient(api_key="csk-wrong", base_url=emulator.base_url)
    with pytest.raises(errors.AuthenticationError):
        client.chat(request())
    assert emulator.stats()["requests"] == 1


def test_stream_broken_after_content_is_not_retried(emulator) -> None:
    emulator.set_faults(drop_after_chunks=3, drop_next=1)
    client = make_client(emulator)
    seen: list[str] = []
    with pytest.raises(errors.StreamInterruptedError) as info:
        for item in client.stream(request("Tell me a long story.", max_completion_tokens=200)):
            seen.extend(c.delta.content or c.delta.reasoning or "" for c in item.choices)
    assert info.value.delivered_chunks >= 1
    assert "".join(seen)
    assert emulator.stats()["requests"] == 1


def test_stream_dropped_before_content_is_retried(emulator) -> None:
    emulator.set_faults(drop_after_chunks=0, drop_next=1)
    stream = make_client(emulator).stream(request())
    assert list(stream)
    assert isinstance(stream.info, CallInfo)
    assert stream.info.attempts == 2
    assert emulator.stats()["requests"] == 2


async def test_async_stream_broken_after_content_is_not_retried(emulator) -> None:
    emulator.set_faults(drop_after_chunks=3, drop_next=1)
    client = make_client(emulator)
    with pytest.raises(errors.StreamInterruptedError):
        async for _ in client.astream(request("Tell me a long story.", max_completion_tokens=200)):
            pass
    assert emulator.stats()["requests"] == 1


def test_deadline_bounds_a_storm(emulator) -> None:
    emulator.set_faults(unavailable_next=50)
    client = make_client(emulator, max_retries=50, deadline=1.0)
    with pytest.raises(errors.ServiceUnavailableError):
        client.chat(request())
    assert emulator.stats()["requests"] < 10


def test_budget_stops_a_run_before_it_crosses_the_limit(emulator) -> None:
    budget = 0.0005
    client = make_client(emulator, max_spend_usd=budget)
    spent = 0.0
    refused = None
    for i in range(500):
        try:
            spent += client.chat(request(f"Question {i}", max_completion_tokens=256)).info.cost_usd
        except errors.BudgetExceededError as exc:
            refused = exc
            break
    assert refused is not None
    assert spent <= budget
    assert refused.spent_usd + refused.request_usd > budget
    sent = emulator.stats()["requests"]
    assert sent == i  # the refused request never left the process
    assert emulator.stats()["models"]["gpt-oss-120b"]["cost_usd"] == pytest.approx(spent, rel=1e-6)
