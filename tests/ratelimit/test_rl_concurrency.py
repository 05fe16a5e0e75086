"""One ``MemoryLimiter`` hammered from many threads and event loops: totals stay exact."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from cerebras_paygo._ratelimit import MemoryLimiter, RateLimits, Scope

# One microsecond of refill per unit, so levels are exact integers under a frozen clock.
HUGE = RateLimits(requests_per_minute=60_000_000, tokens_per_minute=60_000_000)


def test_many_threads_acquiring_and_settling_keep_totals(limiter: MemoryLimiter, scope: Scope) -> None:
    threads, rounds = 16, 400
    used = [0] * threads
    sent = [0] * threads
    start = threading.Barrier(threads)

    def worker(i: int) -> None:
        rng = random.Random(i)
        start.wait()
        for _ in range(rounds):
            r = limiter.acquire(scope, HUGE, rng.randint(1, 5000))
            roll = rng.random()
            if roll < 0.3:
                limiter.release(r)
            else:
                actual = rng.randint(0, r.tokens)
                limiter.settle(r, actual)
                limiter.settle(r, 0)  # a second settle must change nothing
                used[i] += actual
                sent[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    rows = {row.limit: row for row in limiter.stats(scope)}
    assert rows["tokens_per_minute"].level == 60_000_000 - sum(used)
    assert rows["requests_per_minute"].level == 60_000_000 - sum(sent)
    assert rows["tokens_per_minute"].waiters == 0


def test_threads_with_waits_release_everything(limiter: MemoryLimiter, scope: Scope) -> None:
    limits = RateLimits(requests_per_minute=100, tokens_per_minute=10_000)
    threads, rounds = 8, 200
    waited = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        rng = random.Random(100 + i)
        for _ in range(rounds):
            held = [limiter.acquire(scope, limits, rng.randint(0, 10_000)) for _ in range(4)]
            with lock:
                waited.extend(r.wait_s for r in held)
            rng.shuffle(held)
            for r in held:
                limiter.release(r)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert max(waited) > 0  # the buckets did fill up on the way
    rows = {row.limit: row for row in limiter.stats(scope)}
    assert rows["tokens_per_minute"].level == 10_000  # nothing leaked
    assert rows["requests_per_minute"].level == 100
    assert rows["tokens_per_minute"].waiters == 0


def test_several_event_loops_share_one_limiter(limiter: MemoryLimiter, scope: Scope) -> None:
    loops, tasks, rounds = 4, 20, 25
    totals = [0] * loops

    def run_loop(i: int) -> None:
        async def one(j: int) -> int:
            rng = random.Random(i * 1000 + j)
            used = 0
            for _ in range(rounds):
                r = await limiter.aacquire(scope, HUGE, rng.randint(1, 1000))
                await asyncio.sleep(0)
                actual = rng.randint(0, r.tokens)
                await limiter.asettle(r, actual)
                used += actual
            return used

        async def main() -> int:
            return sum(await asyncio.gather(*(one(j) for j in range(tasks))))

        totals[i] = asyncio.run(main())

    pool = [threading.Thread(target=run_loop, args=(i,)) for i in range(loops)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    rows = {row.limit: row for row in limiter.stats(scope)}
    assert rows["tokens_per_minute"].level == 60_000_000 - sum(totals)
    assert rows["requests_per_minute"].level == 60_000_000 - loops * tasks * rounds


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_reservation_starts_are_first_come_first_served(limiter: MemoryLimiter, scope: Scope, order: str) -> None:
    limits = RateLimits(tokens_per_minute=600)
    sizes = [600, 10, 300, 1, 600, 50]
    if order == "lifo":
        sizes.reverse()
    starts = [limiter.acquire(scope, limits, n).start for n in sizes]
    assert starts == sorted(starts)
