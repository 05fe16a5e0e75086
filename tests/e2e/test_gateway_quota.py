"""The shared limiter end to end: many concurrent callers under a small quota, zero 429s."""

from __future__ import annotations

import threading

import anyio
import pytest

from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._ratelimit import RateLimits
from cerebras_paygo._wire import ChatCompletionRequest, Message

# Each request uses ~111 tokens (a 79-token harmony prompt, counted exactly, + 32): the batches below
# need 13-17k tokens, so a 12,000-TPM quota binds for about 10-25 s per test.
TPM = 12_000


def request(i: int) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-oss-120b",
        messages=[Message(role="user", content=f"Summarize item number {i} in a few words.")],
        max_completion_tokens=32,
    )


@pytest.fixture
def small_quota(emulator):
    # Answers always run to max_completion_tokens, so the reservation is mostly used: the quota binds.
    emulator.configure(limits={"paygo/gpt-oss-120b": {"tokens_per_minute": TPM}}, default_completion_tokens=200)
    return emulator


def test_150_concurrent_async_requests_all_succeed_with_zero_429s(small_quota) -> None:
    client = CerebrasClient(
        api_key=small_quota.api_key,
        base_url=small_quota.base_url,
        rate_limits=RateLimits(tokens_per_minute=TPM),
    )
    results = []

    async def one(i: int) -> None:
        results.append(await client.achat(request(i)))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for i in range(150):
                group.start_soon(one, i)
        await client.aclose()

    anyio.run(main)
    stats = small_quota.stats()
    assert len(results) == 150
    assert stats["rate_limited"] == 0
    assert stats["statuses"] == {"200": 150}
    used = sum(r.completion.usage.total_tokens for r in results)
    assert used > TPM  # the quota really bound: some callers had to wait for refill
    assert max(r.info.waited_s for r in results) > 0.5


def test_threads_and_event_loops_share_one_limiter(small_quota) -> None:
    """Sync callers on threads and async callers on another loop draw from the same buckets."""
    limits = RateLimits(tokens_per_minute=TPM)
    sync_client = CerebrasClient(api_key=small_quota.api_key, base_url=small_quota.base_url, rate_limits=limits)
    async_client = CerebrasClient(api_key=small_quota.api_key, base_url=small_quota.base_url, rate_limits=limits)
    done: list[int] = []
    lock = threading.Lock()

    def worker(start: int) -> None:
        for i in range(start, start + 10):
            sync_client.chat(request(i))
            with lock:
                done.append(i)

    async def async_side() -> None:
        async def one(i: int) -> None:
            await async_client.achat(request(i))
            with lock:
                done.append(i)

        async with anyio.create_task_group() as group:
            for i in range(1000, 1080):
                group.start_soon(one, i)

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(6)]
    for t in threads:
        t.start()
    anyio.run(async_side)
    for t in threads:
        t.join()
    assert len(done) == 140
    stats = small_quota.stats()
    assert stats["rate_limited"] == 0
    assert stats["statuses"] == {"200": 140}


def test_limits_learned_from_headers_still_complete_everything(small_quota) -> None:
    """Not told the quota, the client learns it from the headers; 429s are waited out, none lost."""
    client = CerebrasClient(api_key=small_quota.api_key, base_url=small_quota.base_url)
    results = []

    async def one(i: int) -> None:
        results.append(await client.achat(request(i)))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for i in range(120):
                group.start_soon(one, i)

    anyio.run(main)
    stats = small_quota.stats()
    assert len(results) == 120
    assert stats["statuses"]["200"] == 120
    # The first probe request taught the limit before the rest were sent.
    assert stats["rate_limited"] == 0
