"""``shared_state()``: the state a client shares with every other client on the same backend.

One process, or a fleet. Without Redis (the default) everything is in-process, exactly as before:
the process-wide limiter, payment circuits and spend meter, and one budget ledger per client.
With Redis (``redis_url=``, ``$CEREBRAS_PAYGO_REDIS_URL``, or a ready ``redis=`` client) every
process and machine on that Redis shares:

- the limiter's buckets and its 429 pause (``Limiter`` over ``RedisStorage``);
- each key fingerprint's 402 payment circuit: one probe at a time across all processes, the
  outage seen by all, each process's ``on_payment_required`` hook called once per outage at most;
- the spend meter's totals per (fingerprint, model) and the ``max_spend_usd`` ledger per key
  fingerprint: worst-case holds are booked atomically against the fleet's spent + in flight;
- the token estimator's calibration (``CalibrationFeed``: one stream of observations, about a
  second behind; a worker that starts later replays it).

The states are cached per backend, so all clients of one process on one Redis share one limiter
and one set of circuits. Backend failures follow ``on_backend_error``: ``"local"`` (warn once, use
in-process state, with the limiter's limits and the budget's remaining allowance divided by
``workers``, the number of processes sharing the key) or ``"raise"`` (``BackendUnavailableError``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from cerebras_paygo._billing import Budget, BudgetGuard, Ledger, SpendMeter, SpendStore, shared_spend_meter
from cerebras_paygo._context.feed import CalibrationFeed
from cerebras_paygo._orgstate.fallback import AsyncOnly, BackendErrorPolicy, check_policy
from cerebras_paygo._payment import PaymentCircuit, PaymentPolicy, payment_circuit
from cerebras_paygo._ratelimit import Limiter, shared_limiter
from cerebras_paygo._ratelimit.limiter import _redact
from cerebras_paygo._settings import redis_url_from_env
from cerebras_paygo.errors import ConfigurationError

__all__ = ["BackendErrorPolicy", "SharedState", "reset_shared_states", "shared_state"]

#: Seconds that bound connecting to Redis and each of its replies: a call never hangs on it.
REDIS_TIMEOUT_S = 1.0
DEFAULT_PREFIX = "cerebras_paygo"

BudgetFactory = Callable[[Budget, SpendMeter, str], BudgetGuard]


class CircuitRegistry:
    """The payment circuit of each key fingerprint on one backend (built once per fingerprint)."""

    def __init__(self, make: Callable[[str, PaymentPolicy | None], PaymentCircuit], *, cache: bool = True) -> None:
        self._make = make
        self._cache = cache
        self._lock = threading.Lock()
        self._circuits: dict[str, PaymentCircuit] = {}

    def get(self, fingerprint: str, policy: PaymentPolicy | None = None) -> PaymentCircuit:
        if not self._cache:  # ``payment_circuit`` keeps the process-wide registry itself
            return self._make(fingerprint, policy)
        with self._lock:
            circuit = self._circuits.get(fingerprint)
            if circuit is None:
                circuit = self._circuits[fingerprint] = self._make(fingerprint, policy)
            return circuit

    def clear(self) -> None:
        with self._lock:
            self._circuits.clear()


@dataclass(frozen=True, eq=False)
class SharedState:
    """What clients on one backend share.

    Attributes:
        backend: ``"memory"`` or the Redis URL without its password (``"redis client"`` for a
            ready client).
        limiter: the rate limiter (buckets and 429 pauses).
        circuits: ``circuits.get(fingerprint, policy)`` is the key's payment circuit.
        meter: the spend meter.
        budget_factory: ``budget_factory(budget, meter, fingerprint)`` builds a client's
            ``BudgetGuard`` (on Redis, over the key's shared ledger).
        org: the sync ``RedisOrgState`` (``None`` in memory), for ``cerebras-paygo status``.
        calibration: the ``CalibrationFeed`` that shares the token estimator's calibration
            (``None`` in memory, and with only an asyncio ``redis=`` client).
    """

    backend: str
    limiter: Limiter
    circuits: CircuitRegistry
    meter: SpendMeter
    budget_factory: BudgetFactory
    org: Any = None
    calibration: CalibrationFeed | None = None
    _refs: tuple[Any, ...] = field(default=(), repr=False)

    def circuit(self, fingerprint: str, policy: PaymentPolicy | None = None) -> PaymentCircuit:
        return self.circuits.get(fingerprint, policy)

    def budget(self, budget: Budget, meter: SpendMeter, fingerprint: str) -> BudgetGuard:
        return self.budget_factory(budget, meter, fingerprint)


def _memory_budget(budget: Budget, meter: SpendMeter, fingerprint: str) -> BudgetGuard:
    del fingerprint  # in memory each client keeps its own ledger, as it always has
    return BudgetGuard(budget, meter)


_MEMORY = SharedState(
    backend="memory",
    limiter=shared_limiter(),
    circuits=CircuitRegistry(payment_circuit, cache=False),
    meter=shared_spend_meter(),
    budget_factory=_memory_budget,
)

_lock = threading.Lock()
_states: dict[tuple[Any, ...], SharedState] = {}


def shared_state(
    redis_url: str | None = None,
    redis: Any = None,
    on_backend_error: BackendErrorPolicy = "local",
    workers: int = 1,
    *,
    prefix: str = DEFAULT_PREFIX,
) -> SharedState:
    """The state shared by every client on the same backend (cached: call it freely).

    Args:
        redis_url: ``redis://host:port/db``, ``rediss://`` (TLS), ``redis+cluster://host:port``
            (Redis Cluster) or ``memory://``; default ``$CEREBRAS_PAYGO_REDIS_URL``, else memory.
        redis: a ready client instead: ``redis.Redis``, ``redis.cluster.RedisCluster``,
            ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster`` (its timeouts are
            yours; with an asyncio client only the async methods of a client work).
        on_backend_error: ``"local"`` or ``"raise"`` (see the module docstring).
        workers: how many processes share the key's quota and budget (for the local fallback).
        prefix: the first part of every Redis key (``<prefix>:rl:...``, ``<prefix>:pc:...``,
            ``<prefix>:spend:...``).

    Raises:
        ConfigurationError: both ``redis_url`` and ``redis``, an unknown URL scheme, a bad policy.
    """
    check_policy(on_backend_error, workers)
    if redis_url is not None and redis is not None:
        raise ConfigurationError("pass redis_url= or redis=, not both")
    if redis is None and redis_url is None:
        redis_url = redis_url_from_env()
    if redis is None and (redis_url is None or redis_url.startswith("memory://")):
        return _MEMORY
    if redis is None:
        _require_redis_py(redis_url)
    key: tuple[Any, ...] = (redis_url if redis is None else id(redis), on_backend_error, workers, prefix)
    with _lock:
        state = _states.get(key)
        if state is None:
            if redis is None:
                assert redis_url is not None
                state = _from_url(redis_url, on_backend_error, workers, prefix)
            else:
                state = _from_client(redis, on_backend_error, workers, prefix)
            _states[key] = state
        return state


def _require_redis_py(url: str | None) -> None:
    """A Redis URL (``redis_url=`` or ``$CEREBRAS_PAYGO_REDIS_URL``) needs redis-py: say which extra."""
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            f"a Redis URL ({_redact(url or '')}, from redis_url= or CEREBRAS_PAYGO_REDIS_URL) needs redis-py: "
            "pip install 'cerebras-paygo[redis]' (or unset CEREBRAS_PAYGO_REDIS_URL for in-process state)"
        ) from None


def reset_shared_states() -> None:
    """Forget the cached Redis states (their Redis keys stay; for tests)."""
    with _lock:
        _states.clear()


def _redis_state(
    backend: str,
    limiter: Limiter,
    org: Any,
    aorg: Any,
    on_backend_error: BackendErrorPolicy,
    workers: int,
    refs: tuple[Any, ...],
    calibration: CalibrationFeed | None = None,
) -> SharedState:
    sync_org = org

    def circuit(fingerprint: str, policy: PaymentPolicy | None) -> PaymentCircuit:
        return PaymentCircuit(
            fingerprint,
            policy,
            store=sync_org.circuit_store(fingerprint) if sync_org is not None else None,
            async_store=aorg.circuit_store(fingerprint) if aorg is not None else None,
            on_backend_error=on_backend_error,
        )

    meter = SpendMeter(
        sync_org.spend_store() if sync_org is not None else cast(SpendStore, AsyncOnly("spend meter")),
        async_store=aorg.spend_store() if aorg is not None else None,
        on_backend_error=on_backend_error,
    )

    def budget(limits: Budget, meter: SpendMeter, fingerprint: str) -> BudgetGuard:
        return BudgetGuard(
            limits,
            meter,
            ledger=sync_org.ledger(fingerprint) if sync_org is not None else cast(Ledger, AsyncOnly("budget")),
            async_ledger=aorg.ledger(fingerprint) if aorg is not None else None,
            on_backend_error=on_backend_error,
            workers=workers,
        )

    return SharedState(backend, limiter, CircuitRegistry(circuit), meter, budget, sync_org, calibration, refs)


def _from_url(url: str, on_backend_error: BackendErrorPolicy, workers: int, prefix: str) -> SharedState:
    from cerebras_paygo._orgstate.redis_store import AsyncRedisOrgState, RedisOrgState
    from cerebras_paygo._ratelimit.redis_storage import _async_options, _client_options

    limiter = Limiter.from_url(
        url, prefix=f"{prefix}:rl", timeout=REDIS_TIMEOUT_S, on_backend_error=on_backend_error, workers=workers
    )
    scheme, _, rest = url.partition("://")
    cluster = scheme.endswith("+cluster")
    plain = scheme.removesuffix("+cluster") + "://" + rest

    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster

    factory: Any = redis.cluster.RedisCluster if cluster else redis.Redis
    client = factory.from_url(plain, **_client_options(REDIS_TIMEOUT_S))

    def make_async() -> Any:
        options = _async_options(REDIS_TIMEOUT_S, cluster=cluster)
        if cluster:
            return redis.asyncio.cluster.RedisCluster.from_url(plain, **options)
        return redis.asyncio.Redis.from_url(plain, **options)

    org = RedisOrgState(client, prefix=prefix)
    aorg = AsyncRedisOrgState(factory=make_async, prefix=prefix)
    feed = CalibrationFeed(client, prefix=prefix)
    return _redis_state(_redact(url), limiter, org, aorg, on_backend_error, workers, (), feed)


def _from_client(client: Any, on_backend_error: BackendErrorPolicy, workers: int, prefix: str) -> SharedState:
    from cerebras_paygo._orgstate.redis_store import AsyncRedisOrgState, RedisOrgState

    module = type(client).__module__
    if not module.startswith("redis"):
        raise ConfigurationError(
            "redis= must be a redis-py client (redis.Redis, redis.asyncio.Redis, RedisCluster), "
            f"not {type(client).__name__}"
        )
    limiter = Limiter.from_client(client, prefix=f"{prefix}:rl", on_backend_error=on_backend_error, workers=workers)
    feed = None
    if module.startswith("redis.asyncio"):
        org, aorg = None, AsyncRedisOrgState(client, prefix=prefix)
    else:
        org, aorg = RedisOrgState(client, prefix=prefix), None
        feed = CalibrationFeed(client, prefix=prefix)
    return _redis_state("redis client", limiter, org, aorg, on_backend_error, workers, (client,), feed)
