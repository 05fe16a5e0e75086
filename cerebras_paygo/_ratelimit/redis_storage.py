"""``RedisStorage`` / ``AsyncRedisStorage``: the limiter's buckets in Redis, one Lua script per step.

Layout. All buckets of one scope (base URL, key fingerprint, model) live in ONE hash,
``{prefix}:{<fingerprint>:<hash of base URL and model>}``; the braces are a Redis Cluster hash tag,
so every script touches one slot. Key names and values carry the key's fingerprint, never the key.

Scripts. ``lua/*.lua`` ship in the package; each is ``lib.lua`` + one step, registered once per
client with ``register_script`` (EVALSHA; redis-py reloads on NOSCRIPT). Every step is one round
trip, reads the time from Redis ``TIME`` (machines with skewed clocks agree) and works in integer
microseconds, like ``gcra`` (the readable reference). Waiter state is O(log n) per step: Fenwick
trees for refunds, head pointers for expiry (see ``gcra``).

Leases. A booking granted with a wait holds a lease: ``lease`` seconds past its start as it is
when the lease is checked (a header sync or a 429 pause moves a start later after booking, and a
holder still waiting its turn is alive). A holder that has not called ``send_delay`` (which marks
the booking started) nor settled or released it by then is presumed dead before sending: the next
step on the scope reclaims it (releases its request and tokens and moves the queue behind it
earlier). If the holder was only stalled, its next ``send_delay`` logs the reclaim and the limiter
books it again at the back of the queue, so what it sends is counted. Bookings that started
(granted with no wait, or ``send_delay`` returned 0) keep their charge, since their request may
have reached the server, and need no lease.

Expiry. Every write sets the key's TTL to the time until its state no longer matters (buckets
full again, pause over, leases done) plus ``idle_ttl``, so abandoned scopes disappear.

The sync and asyncio classes share ``_Codec`` (arguments and replies); they differ only in the
client call.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from cerebras_paygo._ratelimit.base import BucketStats, Scope, Ticket
from cerebras_paygo._ratelimit.gcra import PAUSE, US, max_wait_error, to_us, too_large_error
from cerebras_paygo._ratelimit.limits import HEADER_LIMIT_NAMES, LIMIT_WINDOWS, RateLimits
from cerebras_paygo._redis_loops import LoopClients
from cerebras_paygo._wire import RateLimitSnapshot
from cerebras_paygo.errors import BackendUnavailableError, ConfigurationError

__all__ = ["AsyncRedisStorage", "RedisStorage"]

logger = logging.getLogger("cerebras_paygo.ratelimit")

NAMES: tuple[str, ...] = tuple(LIMIT_WINDOWS)
_INDEX = {name: i for i, name in enumerate(NAMES)}
_WINDOW_US = [round(window * US) for _, window in LIMIT_WINDOWS.values()]
STEPS = ("reserve", "close", "delay", "headers", "pause", "read")


def lua_source(step: str) -> str:
    """The script of one step: ``lib.lua`` then ``<step>.lua`` (package files)."""
    folder = resources.files("cerebras_paygo._ratelimit").joinpath("lua")
    return folder.joinpath("lib.lua").read_text("utf-8") + "\n" + folder.joinpath(f"{step}.lua").read_text("utf-8")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _backend_error(exc: Exception, step: str) -> BackendUnavailableError:
    return BackendUnavailableError(f"redis rate limit backend failed in {step}: {type(exc).__name__}: {exc}")


class _Codec:
    """Arguments and replies of the scripts; no I/O."""

    def __init__(self, *, prefix: str, lease: float, idle_ttl: float) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"the Redis key prefix must be non-empty without braces, not {prefix!r}")
        if not lease > 0 or not idle_ttl > 0:
            raise ConfigurationError("lease and idle_ttl must be positive seconds")
        self.prefix = prefix
        self.lease_us = to_us(lease)
        self.idle_ms = max(1, round(idle_ttl * 1000))
        #: Added to Redis TIME inside the scripts (microseconds): for tests and benchmarks only.
        self.time_offset_us = 0

    def key(self, scope: Scope) -> str:
        where = hashlib.sha256(f"{scope.base_url}|{scope.model}".encode()).hexdigest()[:16]
        return f"{self.prefix}:{{{scope.key_fingerprint}:{where}}}"

    @property
    def pattern(self) -> str:
        return f"{self.prefix}:{{*"

    def _limits(self, limits: RateLimits) -> list[int]:
        return [getattr(limits, name) or 0 for name in NAMES]

    def reserve_args(
        self, scope: Scope, limits: RateLimits, tokens: int, max_wait_us: int | None, jitter: float, margin_us: int = 0
    ) -> list[Any]:
        return [
            self.time_offset_us,
            tokens,
            -1 if max_wait_us is None else max_wait_us,
            repr(jitter),
            self.lease_us,
            self.idle_ms,
            scope.base_url,
            scope.key_fingerprint,
            scope.model,
            *self._limits(limits),
            margin_us,
        ]

    def ticket(
        self, reply: Sequence[Any], tokens: int, jitter: float, max_wait_us: int | None, source: object
    ) -> Ticket:
        status = int(reply[0])
        if status == 1:
            raise too_large_error(NAMES[int(reply[1]) - 1], int(reply[2]), int(reply[3]))
        binding_code = int(reply[1] if status == 2 else reply[3])
        binding = None if binding_code == 0 else PAUSE if binding_code == 7 else NAMES[binding_code - 1]
        if status == 2:
            raise max_wait_error(binding, int(reply[2]), max_wait_us or 0)
        seq, wait, mask = int(reply[1]), int(reply[2]), int(reply[4])
        names = tuple(name for i, name in enumerate(NAMES) if mask >> i & 1)
        return Ticket(seq, names, tokens, 1, wait, binding, jitter, started=wait <= 0, source=source, data=mask)

    def close_args(self, ticket: Ticket, actual_tokens: int | None) -> list[Any]:
        return [
            self.time_offset_us,
            ticket.seq,
            ticket.tokens,
            -1 if actual_tokens is None else actual_tokens,
            1 if ticket.started else 0,
            ticket.data,
            self.idle_ms,
        ]

    def delay_args(self, ticket: Ticket) -> list[Any]:
        return [self.time_offset_us, ticket.seq, repr(ticket.jitter), 1 if ticket.started else 0]

    def delay_result(self, scope: Scope, ticket: Ticket, reply: Sequence[Any]) -> int:
        delay, state = int(reply[0]), int(reply[1])
        if state == 1 and not ticket.started:
            logger.warning(
                "rate limit: a reservation of %s was reclaimed (its lease of %.1fs expired) before it was sent",
                scope,
                self.lease_us / US,
            )
        if state == 1:
            # Not "started": nothing is left to undo; the limiter books it again before it is sent.
            ticket.reclaimed = True
            return max(0, delay)
        if delay <= 0:
            ticket.started = True
        return max(0, delay)

    def headers_args(
        self, scope: Scope, limits: RateLimits, snapshot: RateLimitSnapshot, age_us: int, in_flight: int | None
    ) -> list[Any]:
        header_limit = [0] * 6
        remaining = [-1] * 6
        for key, value in snapshot.limit.items():
            name = HEADER_LIMIT_NAMES.get(key)
            if name is not None and value > 0:
                header_limit[_INDEX[name]] = value
        for key, value in snapshot.remaining.items():
            name = HEADER_LIMIT_NAMES.get(key)
            if name is not None:
                remaining[_INDEX[name]] = max(0, value) if value >= 0 else 0
        return [
            self.time_offset_us,
            age_us,
            -1 if in_flight is None else max(0, in_flight),
            self.idle_ms,
            scope.base_url,
            scope.key_fingerprint,
            scope.model,
            *self._limits(limits),
            *header_limit,
            *remaining,
        ]

    @staticmethod
    def headers_result(reply: Sequence[Any]) -> tuple[RateLimits, bool]:
        effective = {name: int(v) for name, v in zip(NAMES, reply[1:], strict=True) if int(v) > 0}
        return RateLimits(**effective), int(reply[0]) == 1

    def pause_args(self, scope: Scope, duration_us: int, jitter_us: int) -> list[Any]:
        return [
            self.time_offset_us,
            duration_us,
            jitter_us,
            self.idle_ms,
            scope.base_url,
            scope.key_fingerprint,
            scope.model,
        ]

    @staticmethod
    def pause_left(reply: Sequence[Any]) -> int:
        if int(reply[0]) == 0:
            return 0
        return max(0, int(reply[2]) - int(reply[1]))

    @staticmethod
    def stats(scope: Scope | None, reply: Sequence[Any], local_now: float) -> list[BucketStats]:
        if int(reply[0]) == 0:
            return []
        now, blocked, waiters = int(reply[1]), int(reply[2]), int(reply[3])
        if scope is None:
            scope = Scope(_text(reply[4]), _text(reply[5]), _text(reply[6]))
        paused = max(0, blocked - now) / US
        rows = []
        for i, name in enumerate(NAMES):
            limit_s, tat_s, synced_s = (_text(v) for v in reply[7 + 3 * i : 10 + 3 * i])
            if not limit_s or not tat_s:
                continue
            limit, tat = int(limit_s), int(tat_s)
            used = tat - now
            level = float(limit) if used <= 0 else limit - used * limit / _WINDOW_US[i]
            last_sync = None if not synced_s else local_now - (now - int(synced_s)) / US
            rows.append(BucketStats(scope, name, level, limit, waiters, last_sync, paused))
        return rows


def _client_options(timeout: float) -> dict[str, Any]:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One immediate retry (a pooled connection may be stale after a Redis restart), no backoff
    # sleeps, and bounded connect and read times: a request never hangs on an unreachable Redis.
    return {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),
    }


class RedisStorage:
    """Bucket state in Redis for ``Limiter`` (sync clients: ``redis.Redis``, ``redis.cluster.RedisCluster``).

    Args:
        client: a redis-py client (its socket timeouts are yours; ``from_url`` sets them).
        prefix: the first part of every key name (no braces).
        lease: seconds after its start a waiting booking's holder has to send it (see the module doc).
        idle_ttl: seconds a scope's key outlives the last moment its state matters.
    """

    def __init__(self, client: Any, *, prefix: str = "cerebras_paygo:rl", lease: float = 30.0, idle_ttl: float = 600.0):
        self.codec = _Codec(prefix=prefix, lease=lease, idle_ttl=idle_ttl)
        self.client = client
        self.clock: Callable[[], float] | None = None
        self._scripts = {step: client.register_script(lua_source(step)) for step in STEPS}

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 1.0, cluster: bool = False, **options: Any) -> RedisStorage:
        import redis
        import redis.cluster

        factory = redis.cluster.RedisCluster if cluster else redis.Redis
        return cls(factory.from_url(url, **_client_options(timeout)), **options)

    def __repr__(self) -> str:
        return f"RedisStorage(prefix={self.codec.prefix!r})"

    def _eval(self, step: str, scope: Scope, args: list[Any]) -> Any:
        try:
            return self._scripts[step](keys=[self.codec.key(scope)], args=args)
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, step) from exc
            raise

    def reserve(
        self,
        scope: Scope,
        limits: RateLimits,
        tokens: int,
        *,
        max_wait_us: int | None,
        jitter: float,
        margin_us: int = 0,
    ) -> Ticket:
        args = self.codec.reserve_args(scope, limits, tokens, max_wait_us, jitter, margin_us)
        reply = self._eval("reserve", scope, args)
        return self.codec.ticket(reply, tokens, jitter, max_wait_us, self)

    def close(self, scope: Scope, ticket: Ticket, actual_tokens: int | None) -> bool:
        return int(self._eval("close", scope, self.codec.close_args(ticket, actual_tokens))) == 1

    def delay(self, scope: Scope, ticket: Ticket) -> int:
        return self.codec.delay_result(scope, ticket, self._eval("delay", scope, self.codec.delay_args(ticket)))

    def apply_headers(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        age_us: int,
        in_flight_tokens: int | None,
    ) -> tuple[RateLimits, bool]:
        args = self.codec.headers_args(scope, limits, snapshot, age_us, in_flight_tokens)
        return self.codec.headers_result(self._eval("headers", scope, args))

    def pause(self, scope: Scope, duration_us: int, jitter_us: int) -> None:
        self._eval("pause", scope, self.codec.pause_args(scope, duration_us, jitter_us))

    def pause_remaining(self, scope: Scope) -> int:
        return self.codec.pause_left(self._eval("read", scope, [self.codec.time_offset_us]))

    def _keys(self) -> list[Any]:
        try:
            return list(self.client.scan_iter(match=self.codec.pattern, count=500))
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, "scan") from exc
            raise

    def stats(self, scope: Scope | None, local_now: float) -> list[BucketStats]:
        if scope is not None:
            return self.codec.stats(scope, self._eval("read", scope, [self.codec.time_offset_us]), local_now)
        rows: list[BucketStats] = []
        for key in self._keys():
            try:
                reply = self._scripts["read"](keys=[key], args=[self.codec.time_offset_us])
            except Exception as exc:
                if _is_redis_error(exc):
                    raise _backend_error(exc, "read") from exc
                raise
            rows.extend(self.codec.stats(None, reply, local_now))
        return rows

    def reset(self, scope: Scope | None) -> None:
        keys = [self.codec.key(scope)] if scope is not None else self._keys()
        try:
            for key in keys:
                self.client.delete(key)
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, "reset") from exc
            raise


class AsyncRedisStorage:
    """``RedisStorage`` for ``redis.asyncio`` clients (same scripts, same keys, awaited).

    asyncio clients belong to one event loop: built ``from_url``, the storage keeps one client per
    running loop; given a client, it uses that one (on its loop).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        prefix: str = "cerebras_paygo:rl",
        lease: float = 30.0,
        idle_ttl: float = 600.0,
        factory: Callable[[], Any] | None = None,
    ) -> None:
        if client is None and factory is None:
            raise ConfigurationError("AsyncRedisStorage needs a redis.asyncio client or a factory")
        self.codec = _Codec(prefix=prefix, lease=lease, idle_ttl=idle_ttl)
        self.clock: Callable[[], float] | None = None
        self._client = client
        self._factory = factory
        self._clients = LoopClients(
            client, factory, lambda c: {step: c.register_script(lua_source(step)) for step in STEPS}
        )

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 1.0, cluster: bool = False, **options: Any) -> AsyncRedisStorage:
        import redis.asyncio
        import redis.asyncio.cluster

        def make() -> Any:
            if cluster:
                return redis.asyncio.cluster.RedisCluster.from_url(url, **_async_options(timeout, cluster=True))
            return redis.asyncio.Redis.from_url(url, **_async_options(timeout, cluster=False))

        return cls(factory=make, **options)

    def __repr__(self) -> str:
        return f"AsyncRedisStorage(prefix={self.codec.prefix!r})"

    def _bound(self) -> tuple[Any, dict[str, Any]]:
        return self._clients.get()

    async def _eval(self, step: str, scope: Scope | None, args: list[Any], key: Any = None) -> Any:
        _, scripts = self._bound()
        try:
            return await scripts[step](keys=[key if scope is None else self.codec.key(scope)], args=args)
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, step) from exc
            raise

    async def reserve(
        self,
        scope: Scope,
        limits: RateLimits,
        tokens: int,
        *,
        max_wait_us: int | None,
        jitter: float,
        margin_us: int = 0,
    ) -> Ticket:
        args = self.codec.reserve_args(scope, limits, tokens, max_wait_us, jitter, margin_us)
        reply = await self._eval("reserve", scope, args)
        return self.codec.ticket(reply, tokens, jitter, max_wait_us, self)

    async def close(self, scope: Scope, ticket: Ticket, actual_tokens: int | None) -> bool:
        return int(await self._eval("close", scope, self.codec.close_args(ticket, actual_tokens))) == 1

    async def delay(self, scope: Scope, ticket: Ticket) -> int:
        reply = await self._eval("delay", scope, self.codec.delay_args(ticket))
        return self.codec.delay_result(scope, ticket, reply)

    async def apply_headers(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        age_us: int,
        in_flight_tokens: int | None,
    ) -> tuple[RateLimits, bool]:
        args = self.codec.headers_args(scope, limits, snapshot, age_us, in_flight_tokens)
        return self.codec.headers_result(await self._eval("headers", scope, args))

    async def pause(self, scope: Scope, duration_us: int, jitter_us: int) -> None:
        await self._eval("pause", scope, self.codec.pause_args(scope, duration_us, jitter_us))

    async def pause_remaining(self, scope: Scope) -> int:
        return self.codec.pause_left(await self._eval("read", scope, [self.codec.time_offset_us]))

    async def stats(self, scope: Scope | None, local_now: float) -> list[BucketStats]:
        if scope is not None:
            return self.codec.stats(scope, await self._eval("read", scope, [self.codec.time_offset_us]), local_now)
        client, _ = self._bound()
        rows: list[BucketStats] = []
        try:
            keys = [key async for key in client.scan_iter(match=self.codec.pattern, count=500)]
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, "scan") from exc
            raise
        for key in keys:
            rows.extend(
                self.codec.stats(None, await self._eval("read", None, [self.codec.time_offset_us], key), local_now)
            )
        return rows

    async def reset(self, scope: Scope | None) -> None:
        client, _ = self._bound()
        try:
            if scope is not None:
                await client.delete(self.codec.key(scope))
                return
            async for key in client.scan_iter(match=self.codec.pattern, count=500):
                await client.delete(key)
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, "reset") from exc
            raise


def _async_options(timeout: float, *, cluster: bool) -> dict[str, Any]:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),
    }
    return options


def _is_redis_error(exc: BaseException) -> bool:
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis is installed whenever a client exists
        return False
    return isinstance(exc, (RedisError, OSError, asyncio.TimeoutError))


def _register_scripts(client: Any) -> dict[str, Any]:
    """Every Lua step of this store, registered once on ``client`` (EVALSHA, NOSCRIPT reload)."""
    return {step: client.register_script(lua_source(step)) for step in STEPS}
