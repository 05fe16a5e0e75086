"""Quota benchmark (issue 5): N chat requests at concurrency C under a tokens-per-minute quota.

Run ``python benchmarks/quota.py`` (options: ``--scenario full-use|reserve-heavy|both``,
``--requests N``, ``--concurrency C``, ``--tpm T``, ``--max-tokens M``, ``--quick``,
``--time-cap S``, ``--contenders 1,2,3,4``, ``--no-write``). Each contender runs against its own
fresh emulator (``cerebras_paygo.emulator.EmulatorServer``, started in this process on loopback,
real HTTP) that enforces ``T`` tokens per minute, with fresh process-wide state (shared limiter,
payment circuits, token estimator). The table is printed and written into the
``<!-- quota -->`` section of ``BENCHMARKS.md`` (other sections are left alone; ``--quick`` and
``--no-write`` only print).

Contenders:

1. ``cerebras-paygo`` ``CerebrasClient.achat`` with ``rate_limits=RateLimits(tokens_per_minute=T)``.
2. ``cerebras-paygo`` ``CerebrasClient.achat`` with no limits given (learns them from the headers).
3. ``openai.AsyncOpenAI`` with its defaults (``max_retries=2``, exponential backoff): what
   langchain-cerebras and llama-index-llms-cerebras do underneath.
4. ``openai.AsyncOpenAI`` behind LangChain's ``InMemoryRateLimiter`` (requests only) set to
   ``T / 60 / reservation`` requests per second, the reservation being the average of
   ``prompt tokens + max_completion_tokens`` (the server's own count): the rate that fits the
   quota if every request used its whole reservation. ``max_bucket_size`` is the quota's burst in
   requests (``T / reservation``) so no credit is lost to rounding; the bucket starts empty, as
   LangChain's does.

Scenarios:

- ``full-use`` (default): ``max_completion_tokens=32`` and the emulator's natural answer length
  200 tokens, so every answer uses its whole reservation and the quota binds.
- ``reserve-heavy``: ``max_completion_tokens=1024`` but answers of about 60 tokens (emulator
  ``default_completion_tokens=20``, plus its reasoning), under a larger quota: the reservation is
  ~13x what is used, and the server refunds the rest. Throughput can follow used tokens only if
  refunded tokens go to the callers that are waiting.

Ideal time: the least time the quota allows for the tokens the server counted,
``max(0, (tokens_used - T) / (T / 60)) + L``: a full bucket of ``T`` at the start, then ``T / 60``
tokens per second, plus ``L``, one request's unloaded latency (the median of 20 sequential
requests against a fresh emulator with no binding quota, measured once per scenario), because
the last request still has to be served once its tokens are there. ``tokens_used`` is the
emulator's ``prompt + completion`` total of each contender's run.

Targets for contender 1: zero 429s, every request succeeds, wall / ideal <= 1.05. The exit
status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
from _markdown import read_section, replace_section
from _state import in_process_state
from langchain_core.rate_limiters import InMemoryRateLimiter

from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._context import shared_estimator
from cerebras_paygo._payment import reset_payment_circuits
from cerebras_paygo._ratelimit import RateLimits, shared_limiter
from cerebras_paygo._wire import ChatCompletionRequest, Message
from cerebras_paygo.emulator.config import EmulatorConfig
from cerebras_paygo.emulator.server import EmulatorServer
from cerebras_paygo.emulator.tokens import count_prompt

MODEL = "gpt-oss-120b"
LIMIT_SCOPE = f"paygo/{MODEL}"
BEGIN = "<!-- quota -->"
END = "<!-- /quota -->"
ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.05
FLOOR_SAMPLES = 20


@dataclass(frozen=True)
class Scenario:
    name: str
    requests: int
    concurrency: int
    tpm: int
    max_tokens: int
    completion_tokens: int
    """The emulator's ``default_completion_tokens`` (natural answer length, before the cap)."""
    blurb: str
    time_cap: float
    """Seconds per contender before its unfinished requests are cancelled."""
    outage_s: float = 0.0
    """A 402 window at the start: paygo balances count as zero for this many seconds."""


# Sized for about 50 s of quota each: the emulator counts the harmony chat template, so a request's
# prompt is ~70 tokens (100 full-use requests use ~11,100 tokens: 51 s at 6,000 TPM).
SCENARIOS = {
    "full-use": Scenario(
        "full-use",
        requests=100,
        concurrency=50,
        tpm=6_000,
        max_tokens=32,
        completion_tokens=200,
        blurb="every answer runs to `max_completion_tokens`, so each request uses its whole reservation",
        time_cap=150.0,
    ),
    "reserve-heavy": Scenario(
        "reserve-heavy",
        requests=800,
        concurrency=50,
        tpm=60_000,
        max_tokens=1_024,
        completion_tokens=20,
        blurb="`max_completion_tokens=1024` but answers of ~60 tokens: the reservation is ~13x what is used",
        time_cap=90.0,
    ),
}
SCENARIOS["outage"] = Scenario(
    "outage",
    requests=100,
    concurrency=25,
    tpm=10_000_000,
    max_tokens=32,
    completion_tokens=20,
    blurb="no quota binds; for the first 4 s every request gets 402 Payment Required (no credit), then credit is back",
    time_cap=60.0,
    outage_s=4.0,
)
QUICK = {
    "outage": {"requests": 50, "concurrency": 20, "time_cap": 30.0},
    "full-use": {"requests": 80, "concurrency": 20, "tpm": 3_000, "time_cap": 30.0},
    "reserve-heavy": {"requests": 300, "concurrency": 20, "tpm": 20_000, "time_cap": 30.0},
}

CONTENDERS = {
    1: "cerebras-paygo, quota given",
    2: "cerebras-paygo, quota learned from headers",
    3: "openai AsyncOpenAI defaults (max_retries=2)",
    4: "openai + LangChain InMemoryRateLimiter",
    5: "ChatCerebras (ours, LangChain) ainvoke, quota learned",
    6: "langchain-cerebras ChatCerebras defaults",
    7: "langchain-cerebras + rate_limiter=InMemoryRateLimiter",
    8: "Cerebras (ours, LlamaIndex) achat, quota learned",
    9: "llama-index-llms-cerebras Cerebras defaults",
}


def prompt(i: int) -> str:
    return f"Summarize item number {i} in a few words."


def body(i: int, max_tokens: int) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt(i)}], "max_completion_tokens": max_tokens}


def paygo_request(i: int, max_tokens: int) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model=MODEL, messages=[Message(role="user", content=prompt(i))], max_completion_tokens=max_tokens
    )


def emulator_config(sc: Scenario, *, quota: bool = True) -> EmulatorConfig:
    limits = {LIMIT_SCOPE: {"tokens_per_minute": sc.tpm}} if quota else {}
    config = EmulatorConfig().updated(limits=limits, default_completion_tokens=sc.completion_tokens)
    if sc.outage_s and quota:
        config = config.updated(faults={"payment_required_s": sc.outage_s})
    return config


def reset_process_state() -> None:
    shared_limiter().reset()
    reset_payment_circuits()
    shared_estimator().reset()


@dataclass
class Result:
    contender: int
    requests: int
    ok: int = 0
    failed: int = 0
    unfinished: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    capped: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    #: Seconds from the start at which each call succeeded (for the plot).
    done_at: list[float] = field(default_factory=list)

    @property
    def rate_limited(self) -> int:
        return int(self.stats.get("rate_limited", 0))

    @property
    def http_requests(self) -> int:
        return int(self.stats.get("requests", 0))

    @property
    def tokens_used(self) -> int:
        return int(self.stats.get("tokens_used", 0))

    def ideal_s(self, tpm: int, floor_s: float) -> float:
        """The ideal time of what the server counted; for a run stopped at the cap, of the whole
        workload (its tokens per finished request times N), so that wall/ideal is a lower bound."""
        used = self.tokens_used
        if self.capped and self.ok:
            used = used * self.requests / self.ok
        return max(0.0, (used - tpm) / (tpm / 60)) + floor_s


async def drive(call: Callable[[int], Awaitable[None]], sc: Scenario, result: Result) -> None:
    """``sc.requests`` calls, at most ``sc.concurrency`` at once, stopped at ``sc.time_cap`` seconds."""
    gate = asyncio.Semaphore(sc.concurrency)

    async def one(i: int) -> None:
        async with gate:
            try:
                await call(i)
            except Exception as exc:  # a lost request, whatever the reason
                result.failed += 1
                result.errors[type(exc).__name__] += 1
            else:
                result.ok += 1
                result.done_at.append(time.perf_counter() - start)

    start = time.perf_counter()
    tasks = [asyncio.create_task(one(i)) for i in range(sc.requests)]
    _, pending = await asyncio.wait(tasks, timeout=sc.time_cap)
    result.wall_s = time.perf_counter() - start
    if pending:
        result.capped = True
        result.unfinished = len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def average_reservation(sc: Scenario) -> float:
    return statistics.fmean(count_prompt(body(i, sc.max_tokens)) + sc.max_tokens for i in range(sc.requests))


async def contender_call(
    number: int, server: EmulatorServer, sc: Scenario, result: Result
) -> tuple[Callable[[int], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """The per-request call of contender ``number`` and its cleanup."""
    if number in (1, 2):
        limits = RateLimits(tokens_per_minute=sc.tpm) if number == 1 else None
        client = CerebrasClient(api_key=server.api_key, base_url=server.base_url, rate_limits=limits)

        async def paygo(i: int) -> None:
            await client.achat(paygo_request(i, sc.max_tokens))

        return paygo, client.aclose
    if number in (5, 6, 7, 8, 9):
        return framework_call(number, server, sc, result)
    oai = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key)
    if number == 3:

        async def plain(i: int) -> None:
            await oai.chat.completions.create(**body(i, sc.max_tokens))

        return plain, oai.close
    reservation = average_reservation(sc)
    rps = sc.tpm / 60 / reservation
    limiter = InMemoryRateLimiter(requests_per_second=rps, max_bucket_size=max(1.0, sc.tpm / reservation))
    result.note = f"{rps:.3g} req/s (reservation {reservation:.0f} tokens)"

    async def limited(i: int) -> None:
        await limiter.aacquire()
        await oai.chat.completions.create(**body(i, sc.max_tokens))

    return limited, oai.close


def _rate_limiter(sc: Scenario, result: Result) -> InMemoryRateLimiter:
    reservation = average_reservation(sc)
    rps = sc.tpm / 60 / reservation
    result.note = f"{rps:.3g} req/s (reservation {reservation:.0f} tokens)"
    return InMemoryRateLimiter(requests_per_second=rps, max_bucket_size=max(1.0, sc.tpm / reservation))


def framework_call(
    number: int, server: EmulatorServer, sc: Scenario, result: Result
) -> tuple[Callable[[int], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """Contenders 5-9: the frameworks' integrations, ours and the official ones, as users build them."""
    import warnings

    if number == 5:
        from langchain_cerebras_paygo import ChatCerebras

        ours = ChatCerebras(model=MODEL, api_key=server.api_key, base_url=server.base_url, max_tokens=sc.max_tokens)

        async def lc_ours(i: int) -> None:
            await ours.ainvoke(prompt(i))

        return lc_ours, ours.aclose
    if number in (6, 7):
        from langchain_cerebras import ChatCerebras as Official

        limiter = _rate_limiter(sc, result) if number == 7 else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            official = Official(
                model=MODEL,
                api_key=server.api_key,
                base_url=server.base_url,
                max_tokens=sc.max_tokens,
                rate_limiter=limiter,
            )

        async def lc_official(i: int) -> None:
            await official.ainvoke(prompt(i))

        async def close_official() -> None:
            # Closed on its own loop: left to the garbage collector, openai's client schedules its
            # close on whatever loop runs then, and fails there ("Event loop is closed").
            client = getattr(official, "root_async_client", None)
            if client is not None:
                await client.close()

        return lc_official, close_official
    from llama_index.core.llms import ChatMessage

    if number == 8:
        from llama_index_cerebras import Cerebras

        li = Cerebras(model=MODEL, api_key=server.api_key, base_url=server.base_url, max_tokens=sc.max_tokens)

        async def li_ours(i: int) -> None:
            await li.achat([ChatMessage(role="user", content=prompt(i))])

        return li_ours, li.aclose
    from llama_index.llms.cerebras import Cerebras as OfficialLLM

    li_official = OfficialLLM(model=MODEL, api_key=server.api_key, api_base=server.base_url, max_tokens=sc.max_tokens)

    async def li_off(i: int) -> None:
        await li_official.achat([ChatMessage(role="user", content=prompt(i))])

    async def close_li_official() -> None:
        client = getattr(li_official, "_aclient", None)
        if client is not None:
            await client.close()

    return li_off, close_li_official


def run_contender(number: int, sc: Scenario) -> Result:
    result = Result(contender=number, requests=sc.requests)
    reset_process_state()
    with EmulatorServer(emulator_config(sc)) as server:

        async def main() -> None:
            call, close = await contender_call(number, server, sc, result)
            try:
                await drive(call, sc, result)
            finally:
                await close()

        asyncio.run(main())
        result.stats = server.state.stats()
    reset_process_state()
    return result


def measure_floor(sc: Scenario) -> float:
    """One request's unloaded latency: median of sequential requests on a fresh, unthrottled emulator."""
    with EmulatorServer(emulator_config(sc, quota=False)) as server:

        async def main() -> list[float]:
            headers = {"authorization": f"Bearer {server.api_key}"}
            samples = []
            async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
                for i in range(FLOOR_SAMPLES + 3):
                    t0 = time.perf_counter()
                    response = await http.post("/chat/completions", json=body(i, sc.max_tokens))
                    response.raise_for_status()
                    if i >= 3:  # warm-up: connection, first-use imports
                        samples.append(time.perf_counter() - t0)
            return samples

        return statistics.median(asyncio.run(main()))


# --- report -----------------------------------------------------------------------------------


def _ratio(r: Result, sc: Scenario, floor_s: float) -> str:
    ratio = r.wall_s / r.ideal_s(sc.tpm, floor_s)
    return f"{'>= ' if r.capped else ''}{ratio:.3f}"


def table(results: list[Result], sc: Scenario, floor_s: float) -> list[str]:
    if sc.outage_s:
        return outage_table(results, sc)
    lines = [
        "| contender | ok | lost | 429s (server) | HTTP requests | tokens used | wall (s) | ideal (s) | wall/ideal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lost = f"{r.failed}" + (f" (+{r.unfinished} unfinished at cap)" if r.unfinished else "")
        wall = f"{r.wall_s:.1f}" + (" (cap)" if r.capped else "")
        lines.append(
            f"| {r.contender}. {CONTENDERS[r.contender]} | {r.ok} | {lost} | {r.rate_limited} | {r.http_requests} "
            f"| {r.tokens_used:,} | {wall} | {r.ideal_s(sc.tpm, floor_s):.1f} | {_ratio(r, sc, floor_s)} |"
        )
    return lines


def outage_table(results: list[Result], sc: Scenario) -> list[str]:
    lines = [
        "| contender | succeeded | failed | 402s (server) | HTTP requests | wall (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        paid = int((r.stats.get("statuses") or {}).get("402", 0))
        lost = f"{r.failed}" + (f" (+{r.unfinished} unfinished at cap)" if r.unfinished else "")
        lines.append(
            f"| {r.contender}. {CONTENDERS[r.contender]} | {r.ok} | {lost} | {paid} | {r.http_requests} "
            f"| {r.wall_s:.1f}{' (cap)' if r.capped else ''} |"
        )
    return lines


def targets(r: Result, sc: Scenario, floor_s: float) -> list[tuple[str, bool, str]]:
    if sc.outage_s:
        paid = int((r.stats.get("statuses") or {}).get("402", 0))
        return [
            ("every request succeeds", r.ok == sc.requests, f"{r.ok}/{sc.requests} succeeded"),
            ("402s a handful, not one per caller", paid <= 10, f"{paid} 402s sent"),
        ]
    ratio = r.wall_s / r.ideal_s(sc.tpm, floor_s)
    return [
        ("zero 429s", r.rate_limited == 0, f"{r.rate_limited} 429s"),
        ("every request succeeds", r.ok == sc.requests, f"{r.ok}/{sc.requests} succeeded"),
        (f"wall/ideal <= {TARGET_RATIO}", ratio <= TARGET_RATIO and not r.capped, f"wall/ideal {ratio:.3f}"),
    ]


def admission_gap_s(r: Result, sc: Scenario) -> float:
    """What the ideal leaves out: the server admits a request only when its whole reservation is in
    the bucket, so the last one waits for ``reservation - used`` more tokens than it ends up using."""
    if not r.ok:
        return 0.0
    return max(0.0, average_reservation(sc) - r.tokens_used / r.ok) / (sc.tpm / 60)


def notes(results: list[Result], sc: Scenario, floor_s: float) -> list[str]:
    out = []
    for r in results:
        bits = []
        gap = admission_gap_s(r, sc)
        if not sc.outage_s and r.contender in (1, 2) and not r.capped and gap > 0.01 * r.ideal_s(sc.tpm, floor_s):
            bits.append(
                f"not in the ideal: the server admits only when a whole reservation "
                f"({average_reservation(sc):.0f} tokens) is in the bucket, while a request uses "
                f"{r.tokens_used / r.ok:.0f}, so even a perfect client finishes >= {gap:.2f} s later; "
                f"against ideal + that, wall is {r.wall_s / (r.ideal_s(sc.tpm, floor_s) + gap):.3f}x"
            )
        if r.errors:
            bits.append("errors: " + ", ".join(f"{n} x{c}" for n, c in r.errors.most_common()))
        if r.note:
            bits.append(r.note)
        if r.capped:
            done = r.ok + r.failed
            rate = done / r.wall_s if r.wall_s else 0.0
            projected = r.requests / rate if rate else float("inf")
            bits.append(
                f"stopped at the time cap with {done}/{r.requests} done; "
                f"at that pace all would take ~{projected:,.0f} s"
            )
        if bits:
            out.append(f"- {r.contender}: " + "; ".join(bits))
    return out


def reading(results: list[Result], sc: Scenario, floor_s: float) -> str:
    by = {r.contender: r for r in results}
    parts = []
    one = by.get(1)
    if one is not None:
        verdict = all(ok for _, ok, _ in targets(one, sc, floor_s))
        parts.append(
            f"With the quota given, cerebras-paygo completed {one.ok}/{sc.requests} requests with "
            f"{one.rate_limited} 429s at {one.wall_s / one.ideal_s(sc.tpm, floor_s):.3f}x the ideal time "
            f"({'all targets met' if verdict else 'targets missed, see above'})"
        )
        gap = admission_gap_s(one, sc)
        missed = [name for name, ok, _ in targets(one, sc, floor_s) if not ok]
        if missed and all(name.startswith("wall/ideal") for name in missed) and gap > 0:
            adjusted = one.wall_s / (one.ideal_s(sc.tpm, floor_s) + gap)
            parts[-1] += (
                f", {adjusted:.3f}x once the {gap:.1f} s the server's admission rule adds "
                "(a whole reservation must be in the bucket) is counted"
            )
        two = by.get(2)
        if two is not None:
            parts[-1] += (
                f"; learning the quota from the headers instead gave {two.rate_limited} 429s, "
                f"{two.failed + two.unfinished} lost and {two.wall_s / two.ideal_s(sc.tpm, floor_s):.3f}x."
            )
        else:
            parts[-1] += "."
    three = by.get(3)
    if three is not None:
        parts.append(
            f"The plain openai client (what langchain-cerebras and llama-index-llms-cerebras run on) sent "
            f"{three.http_requests} HTTP requests for {sc.requests} calls, got {three.rate_limited} 429s and lost "
            f"{three.failed + three.unfinished} requests once its 2 retries ran out."
        )
    if one is not None and one.ok and not one.capped:
        reservation = average_reservation(sc)
        per_request = one.tokens_used / one.ok
        if reservation > 2 * per_request:
            reserved_s = max(0.0, (sc.requests * reservation - sc.tpm) / (sc.tpm / 60))
            parts.append(
                f"Reservations were {reservation / per_request:.1f}x what requests used: had the unused "
                f"part not gone back to waiting callers, the {sc.requests * reservation:,.0f} reserved tokens "
                f"would have needed at least {reserved_s:,.0f} s; contender 1 took {one.wall_s:.1f} s, so its "
                "throughput followed the used tokens."
            )
    four = by.get(4)
    if four is not None:
        finished = four.ok + four.failed
        if four.capped:
            parts.append(
                f"The request-count limiter avoided 429s ({four.rate_limited}) but had finished only "
                f"{finished}/{sc.requests} requests when stopped at {four.wall_s:.0f} s: it must pace for the "
                f"reservation, not for what is used."
            )
        else:
            parts.append(
                f"The request-count limiter got {four.rate_limited} 429s and lost {four.failed} but took "
                f"{four.wall_s / four.ideal_s(sc.tpm, floor_s):.2f}x the ideal time: its bucket starts empty "
                f"and paces every request for its full reservation."
            )
    return " ".join(parts)


def plot(results: list[Result], sc: Scenario, path: Path) -> None:
    """Tokens the server counted (cumulative, by the time each call succeeded) against what the quota
    allows by then (a full bucket of T, then T/60 a second): ours follows the envelope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    horizon = max((r.wall_s for r in results), default=1.0)
    xs = [i * horizon / 200 for i in range(201)]
    ax.plot(xs, [sc.tpm + sc.tpm / 60 * x for x in xs], "k--", linewidth=1.5, label="quota allows (T + T/60 per s)")
    for r in results:
        if not r.done_at:
            continue
        per_call = r.tokens_used / max(1, r.ok)
        times = sorted(r.done_at)
        ax.step(times, [per_call * (i + 1) for i in range(len(times))], where="post", label=CONTENDERS[r.contender])
    ax.set_xlabel("seconds since the batch started")
    ax.set_ylabel("tokens used (cumulative, server count)")
    ax.set_title(f"{sc.requests} requests at concurrency {sc.concurrency}, T = {sc.tpm:,} tokens/minute")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    return f"{platform.system()} {platform.machine()}, nproc {cpus}, Python {platform.python_version()}"


def render_scenario(sc: Scenario, results: list[Result], floor_s: float, command: str, when: str) -> str:
    lines = [
        f"<!-- quota:{sc.name} -->",
        f"### Scenario `{sc.name}`: {sc.requests} requests, concurrency {sc.concurrency}, "
        f"T = {sc.tpm:,} tokens/minute, `max_completion_tokens={sc.max_tokens}`",
        "",
        f"`{command}` ({when}; {machine()}; emulator `default_completion_tokens={sc.completion_tokens}`: "
        f"{sc.blurb}; time cap {sc.time_cap:.0f} s per contender). L = {floor_s * 1000:.1f} ms.",
        "",
        *table(results, sc, floor_s),
        "",
    ]
    one = next((r for r in results if r.contender == 1), None)
    if one is not None:
        checks = "; ".join(
            f"{name}: {'PASS' if ok else 'FAIL'} ({detail})" for name, ok, detail in targets(one, sc, floor_s)
        )
        lines += [f"Targets for contender 1: {checks}.", ""]
    extra = notes(results, sc, floor_s)
    if extra:
        lines += [*extra, ""]
    lines += [outage_reading(results) if sc.outage_s else reading(results, sc, floor_s), f"<!-- /quota:{sc.name} -->"]
    return "\n".join(lines)


def outage_reading(results: list[Result]) -> str:
    parts = []
    for r in results:
        paid = int((r.stats.get("statuses") or {}).get("402", 0))
        parts.append(f"{r.contender}: {r.ok}/{r.requests} succeeded with {paid} 402s sent")
    return (
        "During a 402 outage cerebras-paygo waits for credit with one probe at a time (PaymentPolicy, "
        "default max_wait 60 s), so the batch rides it out; the others fail their callers. " + "; ".join(parts) + "."
    )


HEADER = f"""{BEGIN}
## Quota: N requests under a tokens-per-minute limit, and a 402 outage (issues 5, 15)

`python benchmarks/quota.py [--scenario full-use|reserve-heavy|outage|both|all]`. Every contender gets a fresh
emulator (in process, loopback, real HTTP) enforcing T tokens per minute as a token bucket that
admits on `prompt + max_completion_tokens` and refunds what the answer did not use, and fresh
process-wide state (shared limiter, payment circuits, estimator). Contenders:

1. `CerebrasClient.achat` with `rate_limits=RateLimits(tokens_per_minute=T)` (the quota is known);
2. the same with no limits given (learned from the `x-ratelimit-*` headers);
3. `openai.AsyncOpenAI` with its defaults (`max_retries=2`), which langchain-cerebras and
   llama-index-llms-cerebras use underneath;
4. the same behind LangChain's `InMemoryRateLimiter` at `T / 60 / reservation` requests per second
   (`reservation` = average `prompt + max_completion_tokens`, the server's count; bucket size
   `T / reservation`, starting empty as LangChain's does): the best a request-count limiter can do;
5. our `ChatCerebras.ainvoke` (LangChain) and 8. our LlamaIndex `Cerebras.achat`, limits learned;
6. `langchain-cerebras`' `ChatCerebras` with its defaults and 7. the same with
   `rate_limiter=InMemoryRateLimiter` (as in 4); 9. `llama-index-llms-cerebras`' `Cerebras` defaults.

Scenario `outage`: no quota binds, and every request gets 402 Payment Required for the first 4 s
(the org has no credit), then credit is back: succeeded, failed and the 402s the server sent.

**Ideal time** = `max(0, (tokens_used - T) / (T / 60)) + L`: a full bucket of T at the start, then
T/60 tokens a second for the rest of the tokens the server counted (`tokens_used`, prompt +
completion, per contender), plus L, one request's unloaded latency (median of {FLOOR_SAMPLES}
sequential requests on a fresh emulator without the quota). For a run stopped at the time cap, the
ideal is that of all N requests (its tokens per finished request x N), so wall/ideal is a lower
bound. "lost" = calls that raised. Targets for contender 1: zero 429s, every request succeeds,
wall/ideal <= {TARGET_RATIO}.
"""


def update_benchmarks_md(blocks: dict[str, str], path: Path) -> None:
    """Rewrite our section: the header, then one block per scenario (blocks not re-run are kept)."""
    old = read_section(path, BEGIN, END)
    kept = {}
    for name in SCENARIOS:
        b, e = f"<!-- quota:{name} -->", f"<!-- /quota:{name} -->"
        i, j = old.find(b), old.find(e)
        if i != -1 and j > i:
            kept[name] = old[i : j + len(e)]
    kept.update(blocks)
    section = HEADER + "".join("\n" + kept[name] + "\n" for name in SCENARIOS if name in kept) + END
    replace_section(path, BEGIN, END, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "both", "all"], default="full-use")
    parser.add_argument("--requests", type=int, help="N (default: 100; reserve-heavy 800)")
    parser.add_argument("--concurrency", type=int, help="C (default: 50)")
    parser.add_argument("--tpm", type=int, help="T, tokens per minute (default: 6,000; reserve-heavy 60,000)")
    parser.add_argument("--max-tokens", type=int, help="max_completion_tokens (default: 32; reserve-heavy 1,024)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run (implies --no-write)")
    parser.add_argument(
        "--time-cap",
        type=float,
        help="seconds per contender before the rest is cancelled (150; reserve-heavy 90; quick 30)",
    )
    parser.add_argument(
        "--contenders", default="1,2,3,4,5,6,7,8,9", help=f"comma-separated subset of {sorted(CONTENDERS)}"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--plot",
        type=Path,
        help="write a PNG of tokens used against the quota (the full-use run, or the one scenario run); "
        "a relative path is from the repository root",
    )
    args = parser.parse_args(argv)
    in_process_state()
    plot_path = None if args.plot is None else args.plot if args.plot.is_absolute() else ROOT / args.plot
    names = {"both": ["full-use", "reserve-heavy"], "all": list(SCENARIOS)}.get(args.scenario, [args.scenario])
    numbers = sorted({int(x) for x in args.contenders.split(",") if x.strip()})
    if not numbers or any(n not in CONTENDERS for n in numbers):
        parser.error(f"--contenders takes numbers among {sorted(CONTENDERS)}")
    command = shlex.join(["python", "benchmarks/quota.py", *(sys.argv[1:] if argv is None else argv)])
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks = {}
    for name in names:
        base = SCENARIOS[name]
        changes: dict[str, Any] = dict(QUICK[name]) if args.quick else {}
        for attr in ("requests", "concurrency", "tpm", "max_tokens", "time_cap"):
            value = getattr(args, attr)
            if value is not None:
                changes[attr] = value
        sc = Scenario(**{**base.__dict__, **changes})
        print(
            f"== scenario {sc.name}: N={sc.requests} C={sc.concurrency} T={sc.tpm} "
            f"max_completion_tokens={sc.max_tokens} (emulator default_completion_tokens={sc.completion_tokens})",
            flush=True,
        )
        floor_s = measure_floor(sc)
        print(f"   L (unloaded latency of one request) = {floor_s * 1000:.1f} ms", flush=True)
        results = []
        for number in numbers:
            print(f"   running {number}. {CONTENDERS[number]} ...", end=" ", flush=True)
            r = run_contender(number, sc)
            results.append(r)
            print(f"{r.ok} ok, {r.failed} lost, {r.rate_limited} 429s, {r.wall_s:.1f} s", flush=True)
        if plot_path is not None and not sc.outage_s and (name == "full-use" or len(names) == 1):
            plot(results, sc, plot_path)
            print(f"wrote {plot_path}")
        block = render_scenario(sc, results, floor_s, command, when)
        blocks[name] = block
        print()
        print("ideal = max(0, (tokens_used - T) / (T/60)) + L")
        print(block)
        print()
    if not (args.quick or args.no_write):
        update_benchmarks_md(blocks, args.output)
        print(f"wrote the {BEGIN} section of {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
