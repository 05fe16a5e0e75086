"""The Redis backend across threads, processes, clocks and outages (standalone and cluster)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cerebras_paygo._ratelimit import Limiter, RateLimits, Reservation, Scope
from cerebras_paygo._ratelimit.gcra import US
from cerebras_paygo._wire import RateLimitSnapshot
from cerebras_paygo.errors import BackendUnavailableError, RateLimitError

pytestmark = pytest.mark.redis

SCOPE = Scope("https://api.cerebras.ai/v1", "fp0123456789", "gpt-oss-120b")
RPM = RateLimits(requests_per_minute=60)  # one request per second refills


#: Between two attempts of a contender: the bucket of 60 then lasts ~40 ms, not the ~3 ms of 7
#: contenders hammering, so both kinds get some of it whichever starts a few ms first.
_PACE_S = 0.005


def _grab(url: str, prefix: str, seconds: float, ready: Any, go: Any, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Child process: once every contender is ready, acquire with max_wait=0 for ``seconds``;
    report the grant times."""
    limiter = Limiter.from_url(url, prefix=prefix)
    ready.put(True)
    go.wait(60)
    granted = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            limiter.acquire(SCOPE, RPM, 0, max_wait=0)
            granted.append(time.time())
        except RateLimitError:
            pass
        time.sleep(_PACE_S)
    out.put(granted)


def test_threads_and_processes_never_get_more_than_capacity(target_url: str, prefix: str) -> None:
    started = time.time()
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    ready: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    go = ctx.Event()
    procs = [ctx.Process(target=_grab, args=(target_url, prefix, 1.5, ready, go, out)) for _ in range(3)]
    for p in procs:
        p.start()
    limiter = Limiter.from_url(target_url, prefix=prefix)
    # Spawning a child takes about a second (more on a loaded machine): start everyone together,
    # or the threads empty the bucket before a child sends its first acquire.
    thread_grants: list[float] = []
    lock = threading.Lock()
    threads_go = threading.Event()

    def worker() -> None:
        threads_go.wait(60)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            try:
                limiter.acquire(SCOPE, RPM, 0, max_wait=0)
                with lock:
                    thread_grants.append(time.time())
            except RateLimitError:
                pass
            time.sleep(_PACE_S)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in procs:
        ready.get(timeout=60)
    go.set()
    threads_go.set()
    for t in threads:
        t.join()
    child_grants = [g for _ in procs for g in out.get(timeout=60)]
    for p in procs:
        p.join()
    elapsed = time.time() - started
    total = len(thread_grants) + len(child_grants)
    # A full bucket of 60, plus one per second of refill while they hammered (spawn time included).
    assert 60 <= total <= 60 + int(elapsed) + 1
    assert thread_grants and child_grants  # both kinds of contender got some


def test_settle_and_release_across_limiters(target_url: str, prefix: str) -> None:
    a = Limiter.from_url(target_url, prefix=prefix)
    b = Limiter.from_url(target_url, prefix=prefix)
    limits = RateLimits(tokens_per_minute=6000)
    head = a.acquire(SCOPE, limits, 6000)
    queued = b.acquire(SCOPE, limits, 3000)
    assert queued.wait_s == pytest.approx(30.0, abs=0.1)
    a.settle(head, 600)  # another process' refund reaches this process' queued booking
    assert b.send_delay(queued) == 0.0
    later = b.acquire(SCOPE, limits, 3000)
    assert later.wait_s == pytest.approx(6.0, abs=0.1)
    b.release(later)
    assert {r.limit: r.level for r in a.stats(SCOPE)}["tokens_per_minute"] == pytest.approx(2400, abs=10)


def test_idle_scope_key_expires(target_url: str, prefix: str) -> None:
    import redis
    import redis.cluster

    limiter = Limiter.from_url(target_url, prefix=prefix, idle_ttl=0.3)
    limiter.acquire(SCOPE, RateLimits(tokens_per_minute=60_000_000), 10)  # 10 us of refill
    storage = limiter._storage
    key = storage.codec.key(SCOPE)  # type: ignore[union-attr]
    assert SCOPE.key_fingerprint in key and key.startswith(prefix + ":{")
    client = storage.client  # type: ignore[union-attr]
    assert isinstance(client, (redis.Redis, redis.cluster.RedisCluster))
    assert client.exists(key) == 1
    assert 0 < client.pttl(key) <= 400
    time.sleep(0.6)
    assert client.exists(key) == 0


def _hold_and_die(url: str, prefix: str, ready: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    """Child: book a waiting reservation (lease 0.5 s), then wait to be killed."""
    limiter = Limiter.from_url(url, prefix=prefix, lease=0.5)
    limiter.acquire(SCOPE, RateLimits(tokens_per_minute=6000), 3000)
    ready.set()
    time.sleep(60)


def test_reservations_of_a_killed_process_are_reclaimed_after_the_lease(target_url: str, prefix: str) -> None:
    limits = RateLimits(tokens_per_minute=6000)
    me = Limiter.from_url(target_url, prefix=prefix, lease=0.5)
    me.acquire(SCOPE, limits, 6000)  # the bucket is empty: the child's booking waits 30 s
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=_hold_and_die, args=(target_url, prefix, ready))
    child.start()
    assert ready.wait(60)
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join()
    behind = me.acquire(SCOPE, limits, 600)
    assert 34.0 < behind.wait_s <= 36.0  # queued behind the dead booking (36 s less the spawn time)
    assert me.stats(SCOPE)[0].waiters == 2
    # 30 s later (the dead booking's start) plus its 0.5 s lease, seen through the scripts' clock:
    for storage in (me._storage, me._astorage):
        storage.codec.time_offset_us = 31 * US  # type: ignore[union-attr]
    rows = me.stats(SCOPE)
    assert rows[0].waiters == 0
    # Reclaimed: its 3000 tokens returned, and the booking behind it moved 30 s earlier.
    assert me.send_delay(behind) == 0.0
    assert rows[0].level == pytest.approx(6000 - 6000 - 600 + 3100, abs=250)  # + real seconds of refill
    assert rows[0].level > 0  # without the reclaim it would be 3100 - 3600 < 0


def _shift_clock(limiter: Limiter, seconds: float) -> None:
    """Move the scripts' clock (Redis TIME + offset) ``seconds`` ahead of now."""
    for storage in (limiter._storage, limiter._astorage):
        storage.codec.time_offset_us = int(seconds * US)  # type: ignore[union-attr]


def _level(limiter: Limiter) -> float:
    return {r.limit: r.level for r in limiter.stats(SCOPE)}["tokens_per_minute"]


def _one_waiting(target_url: str, prefix: str, **options: Any) -> tuple[Limiter, RateLimits, Reservation]:
    """A limiter (lease 0.5 s) whose 6,000-TPM bucket is empty, and a 3,000-token booking due in 30 s."""
    limits = RateLimits(tokens_per_minute=6000)
    limiter = Limiter.from_url(target_url, prefix=prefix, lease=0.5, **options)
    limiter.acquire(SCOPE, limits, 6000)
    return limiter, limits, limiter.acquire(SCOPE, limits, 3000)


def test_a_reclaimed_reservation_is_booked_again_not_sent_uncounted(
    target_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    me, _, slow = _one_waiting(target_url, prefix)  # its holder stalls past the lease
    _shift_clock(me, 31)
    before = _level(me)  # the read reclaims it: its 3000 tokens are back
    caplog.set_level(logging.WARNING, logger="cerebras_paygo.ratelimit")
    assert me.send_delay(slow) == 0.0  # 3,100 tokens refilled: the new booking starts at once
    assert "reclaimed" in caplog.text
    # Booked again: the request the holder now sends is counted, so it cannot overbook the quota.
    assert _level(me) == pytest.approx(before - 3000, abs=5)
    me.settle(slow, 10)
    assert _level(me) == pytest.approx(before - 10, abs=5)


async def test_a_reclaimed_reservation_is_booked_again_by_the_async_limiter(target_url: str, prefix: str) -> None:
    limits = RateLimits(tokens_per_minute=6000)
    me = Limiter.from_url(target_url, prefix=prefix, lease=0.5)
    await me.aacquire(SCOPE, limits, 6000)
    slow = await me.aacquire(SCOPE, limits, 3000)
    first_seq = slow.ticket.seq
    _shift_clock(me, 31)
    before = _level(me)
    assert await me.asend_delay(slow) == 0.0
    assert slow.ticket.seq != first_seq and not slow.ticket.reclaimed  # a new booking, counted
    assert _level(me) == pytest.approx(before - 3000, abs=5)
    await me.arelease(slow)
    assert _level(me) == pytest.approx(before, abs=5)


def test_a_booking_moved_later_by_a_header_sync_keeps_its_lease(
    target_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    me, limits, queued = _one_waiting(target_url, prefix)
    _shift_clock(me, 25)
    # The server counted 25 s of refill less than the bucket assumed: the queue moves 25 s later.
    me.apply_headers(SCOPE, limits, RateLimitSnapshot(remaining={"tokens-minute": 0}, received_at=me.clock()))
    caplog.set_level(logging.WARNING, logger="cerebras_paygo.ratelimit")
    _shift_clock(me, 31)  # past its first start + lease, before its new start: its holder is alive
    assert me.send_delay(queued) == pytest.approx(24.0, abs=0.5)
    assert me.stats(SCOPE)[0].waiters == 1
    assert "reclaimed" not in caplog.text
    _shift_clock(me, 56)  # its new start + lease passed with no word from it: presumed dead
    assert me.stats(SCOPE)[0].waiters == 0


def test_a_booking_held_by_a_pause_keeps_its_lease(
    target_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    me, _, queued = _one_waiting(target_url, prefix, max_pause_jitter=0.0)
    me.pause(SCOPE, 60.0)  # a 429: nothing starts for 60 s
    caplog.set_level(logging.WARNING, logger="cerebras_paygo.ratelimit")
    _shift_clock(me, 31)
    assert me.send_delay(queued) == pytest.approx(29.0, abs=0.5)
    assert _level(me) == pytest.approx(6000 - 6000 - 3000 + 3100, abs=5)  # still booked (31 s of refill)
    assert "reclaimed" not in caplog.text
    _shift_clock(me, 61)  # the pause ended, plus its lease, with no word from it: presumed dead
    assert _level(me) == pytest.approx(6000, abs=5)  # its 3000 tokens are back (and the bucket refilled)


@pytest.mark.parametrize("skew", [30.0, -30.0])
def test_clock_comes_from_redis_not_the_machine(target_url: str, prefix: str, skew: float) -> None:
    limits = RateLimits(tokens_per_minute=6000)
    honest = Limiter.from_url(target_url, prefix=prefix)
    skewed = Limiter.from_url(target_url, prefix=prefix, clock=lambda: time.monotonic() + skew)
    honest.acquire(SCOPE, limits, 6000)
    r = skewed.acquire(SCOPE, limits, 3000)
    assert r.wait_s == pytest.approx(30.0, abs=0.1)  # neither 30 - skew nor 30 + skew
    assert r.start == pytest.approx(skewed.clock() + 30.0, abs=0.1)
    assert skewed.send_delay(r) == pytest.approx(30.0, abs=0.1)
    skewed.apply_headers(SCOPE, limits, RateLimitSnapshot(remaining={"tokens-minute": 0}, received_at=skewed.clock()))
    (row,) = honest.stats(SCOPE)
    assert row.last_sync == pytest.approx(honest.clock(), abs=0.1)  # "just now" on either clock
    assert row.level == pytest.approx(-3000, abs=10)


def test_key_names_and_values_never_hold_the_api_key(target_url: str, prefix: str) -> None:
    from cerebras_paygo._settings import key_fingerprint

    secret = "csk-never-in-redis-42"
    scope = Scope("https://api.cerebras.ai/v1", key_fingerprint(secret), "m")
    limiter = Limiter.from_url(target_url, prefix=prefix)
    limiter.acquire(scope, RPM, 0)
    storage = limiter._storage
    client = storage.client  # type: ignore[union-attr]
    key = storage.codec.key(scope)  # type: ignore[union-attr]
    dump = repr(client.hgetall(key))
    assert secret not in key and secret not in dump
    assert key_fingerprint(secret) in key


# --- a Redis of our own, stopped mid-run -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def own_redis() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    procs = [_start_redis(port)]
    yield port, procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_falls_back_to_local_limits_and_returns(
    own_redis: tuple[int, list[subprocess.Popen[bytes]]], caplog: pytest.LogCaptureFixture
) -> None:
    port, procs = own_redis
    url = f"redis://127.0.0.1:{port}/0"
    # request_margin=0: the exact burst of 10 // 2 (the margin is tested in tests/reliability).
    limiter = Limiter.from_url(url, workers=2, probe_interval=0.3, timeout=0.3, request_margin=0)
    limits = RateLimits(requests_per_minute=10)
    first = limiter.acquire(SCOPE, limits, 0)
    assert first.ticket.source is limiter._storage
    procs[0].kill()
    procs[0].wait()
    caplog.set_level(logging.WARNING, logger="cerebras_paygo.ratelimit")
    t0 = time.monotonic()
    local = [limiter.acquire(SCOPE, limits, 0, max_wait=0) for _ in range(5)]  # 10 // 2 workers
    assert time.monotonic() - t0 < 2.0  # bounded by the timeout, no hang
    assert all(r.ticket.source is limiter._local for r in local)
    with pytest.raises(RateLimitError):
        limiter.acquire(SCOPE, limits, 0, max_wait=0)
    assert "unavailable" in caplog.text
    assert sum(1 for rec in caplog.records if "unavailable" in rec.getMessage()) == 1  # warned once
    limiter.settle(first, 0)  # a booking of the dead backend: dropped, no error
    limiter.release(local[0])  # a local booking goes back to the local storage
    procs.append(_start_redis(port))
    time.sleep(0.35)
    back = limiter.acquire(SCOPE, limits, 0)
    assert back.ticket.source is limiter._storage
    assert "back" in caplog.text
    import redis

    assert redis.Redis(port=port).exists(limiter._storage.codec.key(SCOPE)) == 1  # type: ignore[union-attr]


def test_raise_mode_gives_a_typed_error_chained_to_the_driver(
    own_redis: tuple[int, list[subprocess.Popen[bytes]]],
) -> None:
    import redis

    port, procs = own_redis
    limiter = Limiter.from_url(f"redis://:s3cret@127.0.0.1:{port}/0", on_backend_error="raise", timeout=0.3)
    procs[0].kill()
    procs[0].wait()
    with pytest.raises(BackendUnavailableError) as info:
        limiter.acquire(SCOPE, RPM, 0)
    assert isinstance(info.value.__cause__, redis.RedisError)
    assert "s3cret" not in str(info.value)


async def test_async_fallback(own_redis: tuple[int, list[subprocess.Popen[bytes]]]) -> None:
    port, procs = own_redis
    limiter = Limiter.from_url(f"redis://127.0.0.1:{port}/0", probe_interval=60, timeout=0.3)
    r = await limiter.aacquire(SCOPE, RPM, 0)
    assert r.ticket.source is limiter._astorage
    procs[0].kill()
    procs[0].wait()
    r2 = await limiter.aacquire(SCOPE, RPM, 0)
    assert r2.ticket.source is limiter._local
    await limiter.asettle(r2, 0)
