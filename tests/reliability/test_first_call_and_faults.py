"""Defect 8 of issue 13 and the fault matrix.

Defect 8 (the first call on a new key held every other caller until it ended). A key's payment
circuit starts "unknown": one request goes first, the others wait for its answer. The original
learned "this key has credit" at the end of that first call, so behind a slow first *stream* 20
``ainvoke``s waited 6.5 s, until its last chunk. The flow now credits the key at the first 2xx
status (a ``Credit`` step right after ``Send``), so the others start as soon as the stream opens.

The fault matrix: both adapters x sync/async x call/stream against the emulator's faults; every
call returns a result or raises a typed ``CerebrasError``, and nothing stays held afterwards
(limiter waiters, budget holds, the payment probe slot).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage

from cerebras_paygo import PaymentPolicy, errors, shared_limiter
from cerebras_paygo._payment import payment_circuit
from langchain_cerebras_paygo import ChatCerebras
from llama_index_cerebras import Cerebras

MODEL = "gpt-oss-120b"


async def test_a_slow_first_stream_does_not_hold_the_other_callers(emulator) -> None:
    emulator.set_faults(tokens_per_second=40)  # a 200-token answer streams for ~5 s
    llm = ChatCerebras(model=MODEL, api_key=emulator.api_key, base_url=emulator.base_url, max_tokens=200)
    quick = ChatCerebras(model=MODEL, api_key=emulator.api_key, base_url=emulator.base_url, max_tokens=4)
    started = time.perf_counter()
    first_done: list[float] = []

    async def slow_stream() -> None:
        async for _ in llm.astream("Tell me a long story."):
            pass
        first_done.append(time.perf_counter() - started)

    stream_task = asyncio.create_task(slow_stream())
    await asyncio.sleep(0.3)  # the stream is open (its 2xx arrived); its body keeps trickling
    others_started = time.perf_counter() - started
    quick_done: list[float] = []

    async def one() -> None:
        await quick.ainvoke("Say hi.")
        quick_done.append(time.perf_counter() - started)

    await asyncio.gather(*(one() for _ in range(20)))
    await stream_task
    assert len(quick_done) == 20
    # The 20 finished long before the stream's last chunk (the original: all after it).
    assert max(quick_done) < first_done[0] - 1.0, (others_started, max(quick_done), first_done)


def _nothing_held(llm: Any) -> None:
    client = llm.cerebras_client
    assert all(row.waiters == 0 for row in shared_limiter().stats())
    if client.budget_guard is not None:
        assert client.budget_guard.in_flight_usd == pytest.approx(0.0, abs=1e-12)
    assert not payment_circuit(client.settings.fingerprint).probe_in_flight


FAULTS: dict[str, dict[str, Any]] = {
    "503 burst": {"unavailable_next": 2},
    "429 storm": {"rate_limit_next": 2},
    "dropped before content": {"drop_after_chunks": 0, "drop_next": 1},
    "dropped after content": {"drop_after_chunks": 4, "drop_next": 1},
    "402 then credit": {"payment_required_s": 0.6},
    "500s beyond retries": {"error_rate": 1.0, "error_status": 500},
}


def _langchain(emulator: Any) -> Any:
    policy = PaymentPolicy(max_wait=10, probe_interval=0.2)
    return ChatCerebras(
        model=MODEL,
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        max_tokens=32,
        max_retries=2,
        max_spend_usd=1.0,
        payment_policy=policy,
    )


def _llama_index(emulator: Any) -> Any:
    policy = PaymentPolicy(max_wait=10, probe_interval=0.2)
    return Cerebras(
        model=MODEL,
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        max_tokens=32,
        max_retries=2,
        max_spend_usd=1.0,
        payment_policy=policy,
    )


def _calls(kind: str) -> dict[str, Callable[[Any], Any]]:
    if kind == "langchain":
        return {
            "call": lambda llm: llm.invoke("Tell me a story."),
            "stream": lambda llm: list(llm.stream("Tell me a story.")),
            "acall": lambda llm: asyncio.run(llm.ainvoke("Tell me a story.")),
            "astream": lambda llm: asyncio.run(_collect(llm.astream("Tell me a story."))),
        }
    message = [ChatMessage(role="user", content="Tell me a story.")]
    return {
        "call": lambda llm: llm.chat(message),
        "stream": lambda llm: list(llm.stream_chat(message)),
        "acall": lambda llm: asyncio.run(llm.achat(message)),
        "astream": lambda llm: asyncio.run(_acollect(llm, message)),
    }


async def _collect(items: Any) -> list[Any]:
    return [item async for item in items]


async def _acollect(llm: Any, message: list[ChatMessage]) -> list[Any]:
    return [item async for item in await llm.astream_chat(message)]


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("path", ["call", "stream", "acall", "astream"])
@pytest.mark.parametrize("kind", ["langchain", "llama-index"])
def test_fault_matrix(emulator, kind: str, path: str, fault: str) -> None:
    llm = _langchain(emulator) if kind == "langchain" else _llama_index(emulator)
    llm.cerebras_client  # noqa: B018 - build the client before the fault so the key is known
    emulator.set_faults(**FAULTS[fault])
    try:
        result = _calls(kind)[path](llm)
    except errors.CerebrasError as exc:
        outcome: Any = exc
    else:
        outcome = result
    expect_error = fault == "500s beyond retries" or (fault == "dropped after content" and "stream" in path)
    if expect_error:
        assert isinstance(outcome, errors.CerebrasError), outcome
        expected = errors.StreamInterruptedError if fault == "dropped after content" else errors.ServerError
        assert isinstance(outcome, expected), type(outcome)
    else:
        assert not isinstance(outcome, BaseException), repr(outcome)
    _nothing_held(llm)
