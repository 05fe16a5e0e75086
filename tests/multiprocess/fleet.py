"""A fleet of worker processes (multiprocessing spawn) on one key against one emulator.

``run_fleet`` starts ``workers`` processes; each builds its own ``CerebrasClient`` (through Redis
when ``redis_url`` is given, else memory only), waits for the start signal, sends its requests
(async tasks or threads) and reports what happened. Used by the tests and by
``benchmarks/multiprocess.py``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MODEL = "gpt-oss-120b"
LIMIT_SCOPE = f"paygo/{MODEL}"
#: Every test and benchmark run gets its own key, so its fingerprint (and its Redis keys) are new.
KEY_PREFIX = "csk-fleet-"


def new_key() -> str:
    return KEY_PREFIX + uuid.uuid4().hex


@dataclass(frozen=True)
class WorkerSpec:
    base_url: str
    api_key: str
    redis_url: str | None
    requests: int
    concurrency: int
    mode: str = "async"  # "async" (asyncio tasks) or "threads"
    max_tokens: int = 32
    tpm: int | None = None
    max_spend_usd: float | None = None
    max_wait: float = 30.0
    probe_interval: float = 0.5
    deadline: float | None = 120.0


@dataclass
class WorkerReport:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    hook_calls: int = 0
    cost_usd: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    pid: int = 0


def _client(spec: WorkerSpec, hook_calls: list[dict[str, Any]]) -> Any:
    from cerebras_paygo._client import CerebrasClient
    from cerebras_paygo._payment import PaymentPolicy
    from cerebras_paygo._ratelimit import RateLimits

    return CerebrasClient(
        api_key=spec.api_key,
        base_url=spec.base_url,
        redis_url=spec.redis_url or "memory://",
        rate_limits=RateLimits(tokens_per_minute=spec.tpm) if spec.tpm else None,
        max_spend_usd=spec.max_spend_usd,
        deadline=spec.deadline,
        payment_policy=PaymentPolicy(
            max_wait=spec.max_wait, probe_interval=spec.probe_interval, on_payment_required=hook_calls.append
        ),
    )


def _request(i: int, spec: WorkerSpec) -> Any:
    from cerebras_paygo._wire import ChatCompletionRequest, Message

    return ChatCompletionRequest(
        model=MODEL,
        messages=[Message(role="user", content=f"Summarize item number {i} of process {os.getpid()} in a few words.")],
        max_completion_tokens=spec.max_tokens,
    )


def worker(spec: WorkerSpec, ready: Any, go: Any, out: Any) -> None:
    """Child process body: build the client, signal ready, wait for go, run, report."""
    from cerebras_paygo.errors import CerebrasError

    hooks: list[dict[str, Any]] = []
    client = _client(spec, hooks)
    report = WorkerReport(pid=os.getpid())
    lock = threading.Lock()
    ready.put(os.getpid())
    go.wait(60)
    report.started = time.time()

    def record(result: Any, error: BaseException | None) -> None:
        with lock:
            if error is None:
                report.ok += 1
                report.cost_usd += result.info.cost_usd
            else:
                report.errors[type(error).__name__] += 1

    if spec.mode == "async":

        async def main() -> None:
            gate = asyncio.Semaphore(spec.concurrency)

            async def one(i: int) -> None:
                async with gate:
                    try:
                        record(await client.achat(_request(i, spec)), None)
                    except CerebrasError as exc:
                        record(None, exc)

            await asyncio.gather(*(one(i) for i in range(spec.requests)))

        asyncio.run(main())
    else:
        counter = iter(range(spec.requests))

        def loop() -> None:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    record(client.chat(_request(i, spec)), None)
                except CerebrasError as exc:
                    record(None, exc)

        threads = [threading.Thread(target=loop) for _ in range(spec.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    report.finished = time.time()
    report.hook_calls = len(hooks)
    out.put(report)


def run_fleet(
    specs: list[WorkerSpec], timeout: float = 300.0, on_ready: Callable[[], object] | None = None
) -> tuple[list[WorkerReport], float]:
    """Run one process per spec, started together; returns their reports and the wall time (s).
    ``on_ready`` runs once every process is ready, just before they start (e.g. to open an outage
    whose clock must not run while the processes import)."""
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    procs = [ctx.Process(target=worker, args=(spec, ready, go, out), daemon=True) for spec in specs]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=120)
        if on_ready is not None:
            on_ready()
        started = time.time()
        go.set()
        reports = [out.get(timeout=timeout) for _ in procs]
        wall = max(r.finished for r in reports) - started
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    return reports, wall


def emulator_config(api_key: str, *, tpm: int | None = None, completion_tokens: int = 200, **changes: Any) -> Any:
    """The emulator's config: ``api_key`` on the default paygo org, an optional TPM quota."""
    from cerebras_paygo.emulator.config import PAYGO_ORG, EmulatorConfig

    config = EmulatorConfig()
    keys = {**config.keys, api_key: PAYGO_ORG}
    limits = {LIMIT_SCOPE: {"tokens_per_minute": tpm}} if tpm else {}
    return config.updated(keys=keys, limits=limits, default_completion_tokens=completion_tokens, **changes)


def reset_redis(url: str, api_key: str) -> None:
    """Delete the Redis state of ``api_key`` (its limiter scopes, circuit, ledger and meter)."""
    from cerebras_paygo._settings import key_fingerprint
    from cerebras_paygo._shared import shared_state

    state = shared_state(redis_url=url, on_backend_error="raise")
    fp = key_fingerprint(api_key)
    for row in state.limiter.stats():
        if row.scope.key_fingerprint == fp:
            state.limiter.reset(row.scope)
    client = state.org.client
    client.delete(state.org.codec.circuit_key(fp))
    for key in state.org.codec.spend_keys(fp):
        client.delete(key)
