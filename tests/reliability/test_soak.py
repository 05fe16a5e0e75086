"""A soak test (issue 13): about two thousand calls across ``asyncio.run`` loops, threads, cancellations and
faults, then open files, threads, memory and the limiter's reservations are back where they started.

The bulk goes through the in-process emulator (``httpx.ASGITransport``: no socket, fast); a part goes
over real HTTP on loopback, from fresh event loops and from threads. It runs in well under a minute.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading
import tracemalloc

import httpx
import pytest

from cerebras_paygo import CerebrasClient, ChatCompletionRequest, Message, PaymentPolicy, errors, shared_limiter
from cerebras_paygo.emulator import EmulatorConfig
from cerebras_paygo.emulator.pytest_plugin import AsgiEmulatorHandle

MODEL = "gpt-oss-120b"
ROOMY = {"*": {"tokens_per_minute": 10**12, "requests_per_minute": 10**9, "requests_per_day": 10**12}}


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def request(i: int) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model=MODEL, messages=[Message(role="user", content=f"Item {i}: say hi.")], max_completion_tokens=16
    )


def waiters() -> int:
    return sum(row.waiters for row in shared_limiter().stats())


def test_soak_leaves_nothing_behind(emulator) -> None:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count open files")
    gc.collect()
    files_before, threads_before = open_files(), threading.active_count()
    tracemalloc.start()
    memory_before = tracemalloc.get_traced_memory()[0]
    rng = random.Random(13)

    # 1. In process: 1,500 async calls at concurrency 50, a tenth cancelled, under 503s and 429s.
    asgi = AsgiEmulatorHandle(EmulatorConfig(limits=ROOMY))
    policy = PaymentPolicy(max_wait=5, probe_interval=0.05)

    async def in_process() -> tuple[int, int, int]:
        http = httpx.AsyncClient(transport=asgi.transport)
        client = CerebrasClient(
            api_key=asgi.api_key,
            base_url="http://127.0.0.1:1/v1",  # the ASGI transport answers; nothing listens there
            async_http_client=http,
            max_retries=3,
            payment_policy=policy,
            max_spend_usd=100.0,
        )
        ok = failed = cancelled = 0
        gate = asyncio.Semaphore(50)

        async def one(i: int) -> None:
            nonlocal ok, failed
            async with gate:
                if i % 200 == 0:
                    asgi.set_faults(unavailable_next=2)
                if i % 500 == 0:
                    asgi.set_faults(rate_limit_next=1)
                try:
                    if i % 7 == 0:
                        async with client.astream(request(i)) as stream:
                            async for _ in stream:
                                break  # closed early
                    else:
                        await client.achat(request(i))
                except errors.CerebrasError:
                    failed += 1
                else:
                    ok += 1

        tasks = [asyncio.create_task(one(i)) for i in range(1500)]
        for task in rng.sample(tasks, 150):
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                cancelled += 1
        assert client.budget_guard is not None
        assert client.budget_guard.in_flight_usd == pytest.approx(0.0, abs=1e-9)
        await client.aclose()
        await http.aclose()
        return ok, failed, cancelled

    ok, failed, cancelled = asyncio.run(in_process())
    assert ok + failed + cancelled == 1500
    assert ok >= 1250 and cancelled > 0

    # 2. Loopback: one client over 25 asyncio.run() loops and 4 threads, with streams left early.
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, max_spend_usd=100.0)

    async def loop_calls(n: int) -> None:
        for i in range(n):
            if i % 3 == 0:
                async with client.astream(request(i)) as stream:
                    async for _ in stream:
                        break
            else:
                await client.achat(request(i))

    for _ in range(25):
        asyncio.run(loop_calls(4))

    def thread_calls() -> None:
        for i in range(25):
            if i % 4 == 0:
                with client.stream(request(i)) as stream:
                    next(iter(stream))
            else:
                client.chat(request(i))

    threads = [threading.Thread(target=thread_calls) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert client.budget_guard is not None
    assert client.budget_guard.in_flight_usd == pytest.approx(0.0, abs=1e-9)

    # Everything is back.
    gc.collect()
    memory_after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert waiters() == 0
    assert threading.active_count() <= threads_before
    assert open_files() <= files_before + 3, (files_before, open_files())
    growth_mb = (memory_after - memory_before) / 2**20
    assert growth_mb < 25, f"{growth_mb:.1f} MB still allocated after the soak"
