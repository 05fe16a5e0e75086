"""How the limiter's cost grows with its queue: µs per acquire / settle / release / cancel at 1 to
10,000 waiters, memory and Redis side by side, plus Redis round trips per call.

    python benchmarks/limiter_scaling.py [--redis-url redis://127.0.0.1:6379/15] [--reps N] [--no-write]
                                         [--baseline REV]

For each queue length n: book n waiters on an emptied scope (1,000 requests/day, 1M TPM), then time, one
call at a time with ``perf_counter_ns``, ``reps`` operations that keep the queue at n:

- acquire: one more booking at the tail (it waits behind the n);
- settle: a started booking refunds unused tokens, moving all n queued bookings earlier;
- release: a started booking that never reached the server returns everything;
- cancel: a waiter in the middle of the queue is released (the n-1 others stay);

each followed by an untimed operation restoring n. ``--baseline REV`` also runs the in-memory
numbers of the limiter at git revision REV (a worktree in a temp dir) for a before/after column.
Round trips are counted with redis-py's connection ``send_command`` calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _markdown import replace_section

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- limiter-scaling -->"
END = "<!-- /limiter-scaling -->"
SIZES = (1, 100, 1_000, 10_000)
OPS = ("acquire", "settle", "release", "cancel")


def measure(make: Callable[[], Any], sizes: tuple[int, ...], reps: int) -> dict[tuple[str, int], float]:
    """Median µs per operation for each (operation, queue length)."""
    from cerebras_paygo._ratelimit import RateLimits, Scope

    # 1,000 requests per day: the queue waits on a bucket that refills negligibly during a run.
    limits = RateLimits(requests_per_day=1_000, tokens_per_minute=1_000_000)
    clock = time.perf_counter_ns
    out: dict[tuple[str, int], float] = {}
    for n in sizes:
        limiter = make()
        scope = Scope("https://bench", "fp", f"m{n}")
        limiter.reset(scope)
        # Empty the bucket (1,000 requests start at once), then queue n bookings that wait.
        burst = [limiter.acquire(scope, limits, 1_000) for _ in range(1_000)]
        queue = [limiter.acquire(scope, limits, 1_000) for _ in range(n)]
        assert queue[0].wait_s > 0 and len(burst) == 1_000
        samples: dict[str, list[int]] = {op: [] for op in OPS}
        for _ in range(reps):
            t0 = clock()
            extra = limiter.acquire(scope, limits, 1_000)
            samples["acquire"].append(clock() - t0)
            limiter.release(extra)
            # A started booking (the head of the queue is sent): settle it, refill the queue.
            head = queue.pop(0)
            t0 = clock()
            limiter.settle(head, 100)
            samples["settle"].append(clock() - t0)
            queue.append(limiter.acquire(scope, limits, 1_000))
            head = queue.pop(0)
            t0 = clock()
            limiter.release(head)
            samples["release"].append(clock() - t0)
            queue.append(limiter.acquire(scope, limits, 1_000))
            mid = queue.pop(len(queue) // 2)
            t0 = clock()
            limiter.release(mid)
            samples["cancel"].append(clock() - t0)
            queue.append(limiter.acquire(scope, limits, 1_000))
        for op in OPS:
            out[(op, n)] = statistics.median(samples[op]) / 1000
        limiter.reset(scope)
    return out


def round_trips(url: str, reps: int) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Round trips and µs per acquire+settle pair: Redis against memory (no queue, the common case)."""
    import redis.connection

    from cerebras_paygo._ratelimit import Limiter, MemoryLimiter, RateLimits, Scope

    limits = RateLimits(requests_per_minute=10**9, tokens_per_minute=10**12)
    scope = Scope("https://bench", "fp", "pair")
    sent = [0]
    original = redis.connection.AbstractConnection.send_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return original(self, *args, **kwargs)

    redis_lim = Limiter.from_url(url, prefix=f"bench:{uuid.uuid4().hex[:8]}")
    mem = MemoryLimiter()
    res: dict[str, dict[str, float]] = {}
    for name, lim in (("memory", mem), ("redis", redis_lim)):
        for _ in range(50):
            lim.settle(lim.acquire(scope, limits, 1000), 100)
        counts: dict[str, int] = {"acquire": 0, "settle": 0, "send_delay": 0}
        times: dict[str, list[int]] = {k: [] for k in counts}
        redis.connection.AbstractConnection.send_command = counting  # type: ignore[method-assign]
        try:
            for _ in range(reps):
                sent[0] = 0
                t0 = time.perf_counter_ns()
                r = lim.acquire(scope, limits, 1000)
                times["acquire"].append(time.perf_counter_ns() - t0)
                counts["acquire"] += sent[0]
                sent[0] = 0
                t0 = time.perf_counter_ns()
                lim.send_delay(r)
                times["send_delay"].append(time.perf_counter_ns() - t0)
                counts["send_delay"] += sent[0]
                sent[0] = 0
                t0 = time.perf_counter_ns()
                lim.settle(r, 100)
                times["settle"].append(time.perf_counter_ns() - t0)
                counts["settle"] += sent[0]
        finally:
            redis.connection.AbstractConnection.send_command = original  # type: ignore[method-assign]
        res[name] = {f"{k} us": statistics.median(v) / 1000 for k, v in times.items()}
        res[name].update({f"{k} rt": counts[k] / reps for k in counts})
    redis_lim.reset()
    return res["memory"], res["redis"], {}


def baseline(rev: str, sizes: tuple[int, ...], reps: int) -> dict[tuple[str, int], float]:
    """The in-memory numbers of the limiter at ``rev`` (run in a temporary git worktree)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True, capture_output=True
        )
        try:
            code = (
                f"import sys, json; sys.path.insert(0, {str(tree)!r})\n"
                f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
                "from limiter_scaling import measure\n"
                "from cerebras_paygo._ratelimit import MemoryLimiter\n"
                f"r = measure(MemoryLimiter, {sizes!r}, {reps})\n"
                "print(json.dumps([[k[0], k[1], v] for k, v in r.items()]))\n"
            )
            env = {**os.environ, "PYTHONPATH": str(tree)}
            out = subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd=tree
            )
            import json

            return {(op, n): v for op, n, v in json.loads(out.stdout)}
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("CEREBRAS_PAYGO_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--baseline", default=None, help="git revision of the old limiter to compare with")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)

    from cerebras_paygo._ratelimit import Limiter, MemoryLimiter

    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    mem = measure(MemoryLimiter, SIZES, args.reps)
    print("memory", mem, flush=True)
    red = measure(lambda: Limiter.from_url(args.redis_url, prefix=prefix), SIZES, args.reps)
    print("redis", red, flush=True)
    old = baseline(args.baseline, SIZES, args.reps) if args.baseline else None
    if old:
        print("baseline", old, flush=True)
    pair_mem, pair_redis, _ = round_trips(args.redis_url, args.reps * 5)

    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "python benchmarks/limiter_scaling.py" + (f" --baseline {args.baseline}" if args.baseline else "")
    lines = [
        BEGIN,
        "## Limiter scaling: cost per call against the number of waiters (issues 12, 15)",
        "",
        f"`{cmd}` ({when}; Python {platform.python_version()}, {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs; Redis on loopback at `{args.redis_url.split('@')[-1]}`; "
        f"median of {args.reps} timed calls per cell, µs). "
        "A scope of 1,000 requests/day + 1M TPM, emptied, holds n waiting "
        "bookings; settle and release are of a started booking (its refund moves all n), cancel releases "
        "the waiter in the middle (only the later half moves).",
        "",
    ]
    header = "| operation | backend | " + " | ".join(f"{n:,} waiters" for n in SIZES) + " |"
    lines += [header, "|---|---|" + "---:|" * len(SIZES)]
    for op in OPS:
        if old:
            lines.append(
                f"| {op} | memory, before ({args.baseline}) | "
                + " | ".join(f"{old[(op, n)]:.1f}" for n in SIZES)
                + " |"
            )
        lines.append(f"| {op} | memory | " + " | ".join(f"{mem[(op, n)]:.1f}" for n in SIZES) + " |")
        lines.append(f"| {op} | redis | " + " | ".join(f"{red[(op, n)]:.1f}" for n in SIZES) + " |")
    lines += [
        "",
        "Per call with no queue (the common case), Redis against memory: round trips "
        "(redis-py commands sent) and median µs.",
        "",
        "| call | memory µs | redis µs | redis / memory | redis round trips |",
        "|---|---:|---:|---:|---:|",
    ]
    for call in ("acquire", "send_delay", "settle"):
        m, r = pair_mem[f"{call} us"], pair_redis[f"{call} us"]
        lines.append(f"| {call} | {m:.1f} | {r:.1f} | {r / m:.0f}x | {pair_redis[f'{call} rt']:.2f} |")
    total_m = sum(pair_mem[f"{c} us"] for c in ("acquire", "settle"))
    total_r = sum(pair_redis[f"{c} us"] for c in ("acquire", "settle"))
    lines += [
        f"| acquire + settle | {total_m:.1f} | {total_r:.1f} | {total_r / total_m:.0f}x | "
        f"{pair_redis['acquire rt'] + pair_redis['settle rt']:.2f} |",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        replace_section(args.output, BEGIN, END, section)
        print(f"updated {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
