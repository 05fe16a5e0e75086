"""Defect 3 of issue 13: a request the server already admitted was refunded when the caller cancelled
or the read timed out, so the local view overstated the quota and the next batch met real 429s (15
in-flight cancellations at 3,000 TPM: 2 server 429s and a 58 s pause; 15 read timeouts: 3 429s).

The lease now keeps the charge of a request that may have been admitted (the next headers correct
it), and the emulator, as the real API appears to, keeps the whole reservation of a request whose
client went away (``EmulatorConfig.keep_charge_on_disconnect``).
"""

from __future__ import annotations

import asyncio

import pytest

from cerebras_paygo import CerebrasClient, ChatCompletionRequest, Message, RateLimits, errors

MODEL = "gpt-oss-120b"
TPM = 3_000


def request(i: int, max_tokens: int = 180) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model=MODEL, messages=[Message(role="user", content=f"Item {i}.")], max_completion_tokens=max_tokens
    )


@pytest.fixture
def quota(emulator):
    # Answers run to max_completion_tokens: an abandoned request costs its whole reservation.
    emulator.configure(limits={f"paygo/{MODEL}": {"tokens_per_minute": TPM}}, default_completion_tokens=400)
    return emulator


async def _batch(client: CerebrasClient) -> None:
    await asyncio.gather(*(client.achat(request(100 + i, 60)) for i in range(4)))


async def test_cancelled_in_flight_requests_keep_their_charge(quota) -> None:
    client = CerebrasClient(
        api_key=quota.api_key, base_url=quota.base_url, rate_limits=RateLimits(tokens_per_minute=TPM), deadline=120
    )
    await client.achat(request(0, 8))  # the key is known: no first-call probe holds the others back
    quota.set_faults(slow_first_byte_s=1.5)
    tasks = [asyncio.create_task(client.achat(request(i))) for i in range(1, 16)]
    await asyncio.sleep(0.6)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert quota.stats()["tokens_admitted"] >= 15 * 180  # all 15 were admitted before they were cancelled
    quota.set_faults(slow_first_byte_s=0.0)
    await _batch(client)
    assert quota.stats()["rate_limited"] == 0


async def test_read_timeouts_keep_their_charge(quota) -> None:
    client = CerebrasClient(
        api_key=quota.api_key,
        base_url=quota.base_url,
        rate_limits=RateLimits(tokens_per_minute=TPM),
        timeout=0.5,
        max_retries=0,
        deadline=120,
    )
    await client.achat(request(0, 8))
    quota.set_faults(slow_first_byte_s=1.5)
    results = await asyncio.gather(*(client.achat(request(i)) for i in range(1, 16)), return_exceptions=True)
    assert all(isinstance(r, errors.APITimeoutError) for r in results), {type(r).__name__ for r in results}
    quota.set_faults(slow_first_byte_s=0.0)
    await _batch(client)
    assert quota.stats()["rate_limited"] == 0
