"""Multi-process benchmark (issue 12): 4 worker processes on one key under one TPM quota, through
Redis vs memory only.

Run ``python benchmarks/multiprocess.py`` (options: ``--workers W``, ``--requests N`` per worker,
``--concurrency C`` per worker, ``--tpm T``, ``--redis-url URL`` (default
``$CEREBRAS_PAYGO_REDIS_URL``), ``--no-write``). One emulator (``EmulatorServer``, real HTTP on
loopback) enforces ``T`` tokens per minute; ``W`` processes (multiprocessing spawn, asyncio
``CerebrasClient.achat``) each send ``N`` requests with ``max_completion_tokens=32`` (answers run
to the cap, so every request uses its whole reservation) and ``rate_limits=RateLimits(tpm=T)``:

1. through Redis: ``redis_url=...``: one shared bucket for the fleet;
2. memory only: each process has its own bucket of ``T``.

Ideal time: ``max(0, (tokens_used - T) / (T / 60)) + L``, a full bucket then ``T / 60`` tokens per
second, ``L`` one request's unloaded latency (median of 10). Target through Redis: 0 x 429, every
request succeeds, wall / ideal <= 1.10. The table goes into the ``<!-- multiprocess -->`` section
of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _markdown import replace_section  # noqa: E402

from cerebras_paygo.emulator.server import EmulatorServer  # noqa: E402
from tests.multiprocess.fleet import WorkerSpec, emulator_config, new_key, reset_redis, run_fleet  # noqa: E402

BEGIN = "<!-- multiprocess -->"
END = "<!-- /multiprocess -->"
TARGET = 1.10


def floor_latency(samples: int = 10) -> float:
    from cerebras_paygo._client import CerebrasClient
    from cerebras_paygo._wire import ChatCompletionRequest, Message

    key = new_key()
    with EmulatorServer(emulator_config(key)) as server:
        client = CerebrasClient(api_key=key, base_url=server.base_url, redis_url="memory://")
        request = ChatCompletionRequest(
            model="gpt-oss-120b", messages=[Message(role="user", content="hi")], max_completion_tokens=32
        )
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            client.chat(request)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(label: str, args: argparse.Namespace, redis_url: str | None, floor: float) -> dict[str, object]:
    key = new_key()
    with EmulatorServer(emulator_config(key, tpm=args.tpm)) as server:
        specs = [
            WorkerSpec(
                server.base_url, key, redis_url, requests=args.requests, concurrency=args.concurrency, tpm=args.tpm
            )
            for _ in range(args.workers)
        ]
        reports, wall = run_fleet(specs, timeout=900)
        stats = server.state.stats()
    if redis_url:
        reset_redis(redis_url, key)
    used = int(stats["tokens_used"])
    ideal = max(0.0, (used - args.tpm) / (args.tpm / 60)) + floor
    return {
        "label": label,
        "ok": sum(r.ok for r in reports),
        "failed": sum(sum(r.errors.values()) for r in reports),
        "rate_limited": int(stats["rate_limited"]),
        "http": int(stats["requests"]),
        "tokens": used,
        "wall": wall,
        "ideal": ideal,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--tpm", type=int, default=6_000)
    parser.add_argument("--redis-url", default=os.environ.get("CEREBRAS_PAYGO_REDIS_URL"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not args.redis_url:
        parser.error("needs --redis-url or CEREBRAS_PAYGO_REDIS_URL")
    floor = floor_latency()
    rows = [run("through Redis", args, args.redis_url, floor), run("memory only", args, None, floor)]
    total = args.workers * args.requests
    lines = [
        "| contender | ok | failed | server 429s | HTTP requests | tokens used | wall s | ideal s | wall / ideal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['ok']}/{total} | {r['failed']} | {r['rate_limited']} | {r['http']} | "
            f"{r['tokens']:,} | {r['wall']:.1f} | {r['ideal']:.1f} | {r['wall'] / r['ideal']:.2f} |"  # type: ignore[operator]
        )
    table = "\n".join(lines)
    print(table)
    redis_row = rows[0]
    met = (
        redis_row["rate_limited"] == 0 and redis_row["failed"] == 0 and redis_row["wall"] / redis_row["ideal"] <= TARGET
    )  # type: ignore[operator]
    print(f"target (through Redis: 0 x 429, no failure, wall/ideal <= {TARGET}): {'met' if met else 'NOT met'}")
    if not args.no_write:
        command = "python benchmarks/multiprocess.py " + shlex.join(
            [
                f"--workers={args.workers}",
                f"--requests={args.requests}",
                f"--concurrency={args.concurrency}",
                f"--tpm={args.tpm}",
            ]
        )
        section = "\n".join(
            [
                BEGIN,
                "## Several processes on one key (issue 12)",
                "",
                f"`{command}` (Redis: `$CEREBRAS_PAYGO_REDIS_URL`), {dt.date.today().isoformat()}, "
                f"Python {platform.python_version()}, {platform.machine()}.",
                "",
                f"{args.workers} worker processes (multiprocessing spawn, asyncio `CerebrasClient.achat`, "
                f"{args.concurrency} at once each) send {args.requests} requests each "
                f"(`max_completion_tokens=32`, answers run to the cap) with `rate_limits=RateLimits(tokens_per_minute="
                f"{args.tpm})` to one emulator that enforces {args.tpm:,} tokens per minute. Ideal: "
                f"`max(0, (tokens used - T) / (T / 60)) + L`, L = {floor * 1000:.0f} ms (one unloaded request). "
                f"Target through Redis: 0 x 429, no failure, wall / ideal <= {TARGET}: "
                f"**{'met' if met else 'not met'}**.",
                "",
                table,
                "",
                "Memory only, each process believes the whole quota is its own: the server refuses what the "
                "fleet sends beyond it, and the processes wait out the 429s.",
                END,
            ]
        )
        replace_section(ROOT / "BENCHMARKS.md", BEGIN, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
