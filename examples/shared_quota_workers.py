"""Several worker processes on one key: one quota for all of them through Redis.

Run it as is::

    CEREBRAS_PAYGO_REDIS_URL=redis://localhost:6379/0 python examples/shared_quota_workers.py

Cerebras counts tokens per minute per organisation, not per process. Four processes (a gunicorn or
Celery pool, say) that each keep their own limiter each believe the whole quota is theirs, and the
server refuses what they send together beyond it (429, waited out and retried). Pointed at one Redis
(``redis_url=`` or ``CEREBRAS_PAYGO_REDIS_URL``), they book from one bucket and the server refuses
nothing. This script runs the same work both ways on the embedded emulator, which counts the 429s
(``pip install "cerebras-paygo[langchain,redis]"``, or ``[emulator,redis]``); without
``CEREBRAS_PAYGO_REDIS_URL`` it runs the first way only and says how to run the second. With
``CEREBRAS_API_KEY`` set it sends to the real API instead (a few cents' worth at most), where only
your own client-side numbers are shown.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._wire import ChatCompletionRequest, Message

MODEL = os.environ.get("CEREBRAS_MODEL", "gpt-oss-120b")
WORKERS = 4
REQUESTS = 8  # per worker, all at once
MAX_TOKENS = 700
#: The emulator's quota: the 32 requests book about 24,000 tokens at once (prompt + max_completion_tokens).
TPM = 20000
DEADLINE_S = 15.0


def worker(options: dict[str, Any], redis_url: str, index: int, start: Any, results: Any) -> None:
    """One worker process: its own CerebrasClient on the shared key, ``REQUESTS`` calls at once."""

    async def run() -> dict[str, Any]:
        # deadline: a call may take 15 s in all; one that would have to wait out a 429 until the
        # quota's minute resets fails with RateLimitError instead (without a deadline it waits).
        async with CerebrasClient(redis_url=redis_url, workers=WORKERS, deadline=DEADLINE_S, **options) as client:
            request = ChatCompletionRequest(
                model=MODEL,
                messages=[Message(role="user", content=f"Worker {index}: name one use of a token bucket.")],
                max_completion_tokens=MAX_TOKENS,
            )
            start.wait()  # every worker ready: they send together, as a busy server's workers do
            outcomes = await asyncio.gather(*(client.achat(request) for _ in range(REQUESTS)), return_exceptions=True)
        answers = [o for o in outcomes if not isinstance(o, BaseException)]
        failed = [type(o).__name__ for o in outcomes if isinstance(o, BaseException)]
        return {"answered": len(answers), "failed": failed}

    try:
        results.put(asyncio.run(run()))
    except BaseException as exc:  # report it rather than leave the parent waiting
        results.put({"answered": 0, "failed": [f"{type(exc).__name__}: {exc}"] * REQUESTS})
        raise


def run_fleet(options: dict[str, Any], redis_url: str) -> tuple[list[dict[str, Any]], float]:
    ctx = multiprocessing.get_context("spawn")  # fresh processes, as a server's workers are
    start, results = ctx.Barrier(WORKERS + 1), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(options, redis_url, i, start, results)) for i in range(WORKERS)]
    for proc in procs:
        proc.start()
    start.wait()
    started = time.monotonic()
    reports = [results.get(timeout=300) for _ in procs]
    wall = time.monotonic() - started
    for proc in procs:
        proc.join()
    return reports, wall


@contextmanager
def connection() -> Iterator[tuple[dict[str, Any], Any]]:
    """``(client options, emulator or None)``: the real API when CEREBRAS_API_KEY is set, else the emulator."""
    if os.environ.get("CEREBRAS_API_KEY"):
        print("Using the Cerebras API (CEREBRAS_API_KEY is set): your org's own limits apply")
        yield {}, None
        return
    from cerebras_paygo.emulator import EmulatorConfig, EmulatorServer, FaultConfig

    # 0.3 s per answer: the requests are in flight together, as on a real server.
    config = EmulatorConfig(limits={"*": {"tokens_per_minute": TPM}}, faults=FaultConfig(latency_s=0.3))
    with EmulatorServer(config) as server:
        print(f"CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator at {server.base_url}")
        print(f"(a quota of {TPM:,} tokens per minute for the key; the client is told the same)")
        options = {"api_key": server.api_key, "base_url": server.base_url, "rate_limits": {"tokens_per_minute": TPM}}
        yield options, server


def report(label: str, reports: list[dict[str, Any]], wall: float, emulator: Any) -> None:
    answered = sum(r["answered"] for r in reports)
    failed = [name for r in reports for name in r["failed"]]
    line = f"   {answered} of {WORKERS * REQUESTS} answered in {wall:.1f} s"
    if failed:
        line += f"; {len(failed)} failed ({', '.join(sorted(set(failed)))}: the quota resets too late for the deadline)"
    print(line)
    if emulator is not None:
        print(f"   the server refused {emulator.state.stats()['rate_limited']} request(s) with 429 ({label})")


def main() -> None:
    redis_url = os.environ.get("CEREBRAS_PAYGO_REDIS_URL", "")
    with connection() as (options, emulator):
        print(
            f"\n1. {WORKERS} processes x {REQUESTS} requests, each process with its own limiter (redis_url='memory://')"
        )
        reports, wall = run_fleet(options, "memory://")
        report("each process thought the whole quota was its own", reports, wall, emulator)

        print(f"\n2. The same {WORKERS} processes, sharing one limiter through Redis")
        if not redis_url:
            print("   CEREBRAS_PAYGO_REDIS_URL is not set, so this part is skipped. To run it, start a Redis")
            print("   (e.g. `docker run -p 6379:6379 redis`) and run again with")
            print("   CEREBRAS_PAYGO_REDIS_URL=redis://localhost:6379/0. Every process given that URL")
            print("   (redis_url=... or the variable) books from one bucket per key and model, shares the 429")
            print("   pause, the 402 circuit and the spend budget; the server then refuses nothing.")
        else:
            if emulator is not None:
                emulator.state.reset()  # a full quota again on the server, and fresh counts
            reports, wall = run_fleet(options, redis_url)
            report("one bucket for the fleet", reports, wall, emulator)
    print("\nDone.")


if __name__ == "__main__":
    main()
