"""The shells, over real HTTP to the emulator: cancellation while queued, in flight and mid-stream,
streams closed early or dropped, and that every reservation, hold and probe slot comes back."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from cerebras_paygo import CerebrasClient, RateLimits, errors
from cerebras_paygo._ratelimit import shared_limiter
from cerebras_paygo._wire import ChatCompletionRequest, Message

MODEL = "gpt-oss-120b"


def request(text: str = "Tell me a long story.", **kwargs: object) -> ChatCompletionRequest:
    kwargs.setdefault("max_completion_tokens", 200)
    return ChatCompletionRequest(model=MODEL, messages=[Message(role="user", content=text)], **kwargs)


def make_client(emulator, **kwargs: object) -> CerebrasClient:
    return CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, **kwargs)


def tokens_in_use(client: CerebrasClient) -> float:
    """Tokens the minute bucket of the client's key has booked right now."""
    rows = [s for s in shared_limiter().stats() if s.limit == "tokens_per_minute"]
    return sum(s.capacity - s.level for s in rows)


def waiters() -> int:
    return sum(s.waiters for s in shared_limiter().stats() if s.limit == "tokens_per_minute")


async def test_cancelled_while_queued_releases_everything_and_sends_nothing(emulator) -> None:
    client = make_client(emulator, rate_limits=RateLimits(tokens_per_minute=1000), max_spend_usd=1.0)
    scope_limits = RateLimits(tokens_per_minute=1000)
    spec = client.spec(MODEL)
    primary, _ = client.routes(spec)
    shared_limiter().acquire(primary.scope, scope_limits, 990)  # someone else holds the minute
    booked_at = time.monotonic()
    task = asyncio.create_task(client.achat(request("hi", max_completion_tokens=100)))
    await asyncio.sleep(0.3)
    assert waiters() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waiters() == 0
    assert emulator.stats()["requests"] == 0
    assert client.budget_guard is not None and client.budget_guard.in_flight_usd == 0.0
    # 990 less the refill since the booking (1,000 TPM: 16.7 a second; the first call in a process
    # also loads the tokenizer's vocabulary meanwhile, about half a second).
    refilled = 1000 / 60 * (time.monotonic() - booked_at)
    assert 990 - refilled - 1 <= tokens_in_use(client) <= 990


async def test_cancelled_in_flight_keeps_the_charge(emulator) -> None:
    emulator.set_faults(slow_first_byte_s=2.0)
    client = make_client(emulator, max_spend_usd=1.0, rate_limits=RateLimits(tokens_per_minute=6000))
    task = asyncio.create_task(client.achat(request(max_completion_tokens=300)))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The server may have admitted it: the reservation stays charged, the budget counts the worst case.
    assert tokens_in_use(client) >= 250  # 6,000 TPM refills 100 tokens a second
    assert client.budget_guard is not None
    assert client.budget_guard.in_flight_usd == 0.0 and client.budget_guard.spent_usd > 0


async def test_async_stream_closed_early_settles_at_once(emulator) -> None:
    client = make_client(emulator, max_spend_usd=1.0)
    stream = client.astream(request())
    async for _ in stream:
        break
    await stream.aclose()
    assert client.budget_guard is not None and client.budget_guard.in_flight_usd == 0.0
    assert emulator.stats()["requests"] == 1
    with pytest.raises(RuntimeError):
        _ = stream.info


async def test_async_stream_cancelled_mid_stream(emulator) -> None:
    emulator.set_faults(tokens_per_second=50)
    client = make_client(emulator, max_spend_usd=1.0, rate_limits=RateLimits(tokens_per_minute=6000))
    got: list[object] = []

    async def consume() -> None:
        async with client.astream(request()) as stream:
            async for chunk in stream:
                got.append(chunk)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got
    assert client.budget_guard is not None and client.budget_guard.in_flight_usd == 0.0
    assert tokens_in_use(client) >= 150  # delivered and unknown usage: kept


def test_sync_stream_closed_by_the_context_manager(emulator) -> None:
    client = make_client(emulator, max_spend_usd=1.0)
    with client.stream(request()) as stream:
        next(iter(stream))
    assert client.budget_guard is not None and client.budget_guard.in_flight_usd == 0.0
    assert "ended" not in repr(stream)


def test_sync_stream_dropped_without_closing_is_closed_when_collected(emulator) -> None:
    client = make_client(emulator, max_spend_usd=1.0)
    stream = client.stream(request())
    next(iter(stream))
    del stream
    gc.collect()
    assert client.budget_guard is not None and client.budget_guard.in_flight_usd == 0.0


def test_stream_info_is_set_when_the_last_chunk_arrives(emulator) -> None:
    client = make_client(emulator)
    stream = client.stream(request("hi", max_completion_tokens=32))
    seen_done = []
    for _ in stream:
        seen_done.append(stream.done)
    assert seen_done[-1] and not any(seen_done[:-1])
    assert stream.info.cost_usd > 0 and "ended" in repr(stream)


def test_payment_hook_runs_from_the_sync_shell(emulator) -> None:
    from cerebras_paygo import PaymentPolicy

    calls: list[dict[str, object]] = []
    emulator.set_faults(payment_required_s=0.5)
    client = make_client(
        emulator, payment_policy=PaymentPolicy(max_wait=5, probe_interval=0.2, on_payment_required=calls.append)
    )
    result = client.chat(request("hi", max_completion_tokens=8))
    assert result.info.attempts >= 2
    assert len(calls) == 1


async def test_payment_hook_runs_from_the_async_shell(emulator) -> None:
    from cerebras_paygo import PaymentPolicy

    calls: list[dict[str, object]] = []

    async def hook(info: dict[str, object]) -> None:
        calls.append(info)

    emulator.set_faults(payment_required_s=0.5)
    client = make_client(
        emulator, payment_policy=PaymentPolicy(max_wait=5, probe_interval=0.2, on_payment_required=hook)
    )
    result = await client.achat(request("hi", max_completion_tokens=8))
    assert result.info.attempts >= 2
    assert len(calls) == 1


def test_errors_reach_the_caller_typed(emulator) -> None:
    emulator.set_faults(error_rate=1.0, error_status=500)
    with pytest.raises(errors.ServerError):
        make_client(emulator, max_retries=0).chat(request("hi"))


async def test_async_stream_info_and_429_pause(emulator) -> None:
    emulator.set_faults(rate_limit_next=1)
    client = make_client(emulator)
    stream = client.astream(request("hi", max_completion_tokens=32))
    assert "open" in repr(stream) and not stream.done
    chunks = [chunk async for chunk in stream]
    assert chunks and stream.done and "ended" in repr(stream)
    assert stream.info.attempts == 2  # one 429, paused, then sent again
    assert emulator.stats()["rate_limited"] == 1


async def test_async_budget_refusal_holds_nothing(emulator) -> None:
    client = make_client(emulator, max_spend_usd=0.0000001)
    with pytest.raises(errors.BudgetExceededError):
        await client.achat(request("hi"))
    assert emulator.stats()["requests"] == 0
    assert client.budget_guard is not None and client.budget_guard.in_flight_usd == 0.0


async def test_async_budget_wait_ends_at_the_deadline_with_a_refusal(emulator) -> None:
    client = make_client(emulator, max_spend_usd=0.001, deadline=0.3)
    assert client.budget_guard is not None
    blocker = client.budget_guard.reserve(0.00099)  # another call in flight holds nearly all of it
    with pytest.raises(errors.BudgetExceededError):
        await client.achat(request("hi", max_completion_tokens=64))
    assert emulator.stats()["requests"] == 0
    client.budget_guard.release(blocker)
    assert client.budget_guard.in_flight_usd == 0.0


def test_sync_stream_hands_each_chunk_over_as_it_arrives(emulator) -> None:
    """Only a chunk that may be the last (finish reason, usage) waits for the call to close: the
    first chunk reaches the caller when it arrives, not one token later (at 5 tokens/s, 200 ms)."""
    emulator.set_faults(tokens_per_second=5)
    client = make_client(emulator)
    with client.stream(request("hi", max_completion_tokens=3)) as warm:
        list(warm)
    began = time.perf_counter()
    with client.stream(request("hi", max_completion_tokens=3)) as stream:
        seen = []
        for chunk in stream:
            seen.append((time.perf_counter() - began, chunk, stream.done))
    first_at = seen[0][0]
    assert first_at < 0.12, f"the first chunk was held back until the next arrived ({first_at:.3f} s)"
    _, last, done_at_last = seen[-1]
    assert last.usage is not None and done_at_last, "the last chunk still arrives with info set"
    assert stream.info.request_id


async def test_async_stream_hands_each_chunk_over_as_it_arrives(emulator) -> None:
    emulator.set_faults(tokens_per_second=5)
    client = make_client(emulator)
    async with client.astream(request("hi", max_completion_tokens=3)) as warm:
        async for _ in warm:
            pass
    began = time.perf_counter()
    seen = []
    async with client.astream(request("hi", max_completion_tokens=3)) as stream:
        async for chunk in stream:
            seen.append((time.perf_counter() - began, chunk, stream.done))
    assert seen[0][0] < 0.12, f"the first chunk was held back until the next arrived ({seen[0][0]:.3f} s)"
    assert seen[-1][1].usage is not None and seen[-1][2]
