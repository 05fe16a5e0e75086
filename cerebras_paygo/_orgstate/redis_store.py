"""The payment circuits, budget ledgers and spend meter of a fleet, in Redis.

Layout. Per key fingerprint (never the key), two hashes and a sorted set that share one Redis
Cluster hash tag, ``{<fingerprint>}``, so every script touches one slot:

- ``{prefix}:pc:{<fp>}``: the 402 circuit (open, known, outage start, next probe, probe slot and
  its token, closed at, outage count);
- ``{prefix}:spend:{<fp>}``: the budget ledger (spent, in flight, one field per hold) and the spend
  meter (``m:<stat>:<model>``: requests, tokens, nano-USD);
- ``{prefix}:spend:{<fp>}:holds``: hold ids by lease expiry, so the holds of a process that died
  before settling leave the books.

Scripts. ``lua/*.lua`` ship in the package; each is ``lib.lua`` (plus ``ledger_lib.lua`` for the
ledger) and one step, registered once per client (EVALSHA, reloaded on NOSCRIPT). Each step is one
round trip and reads the time from Redis ``TIME``, so machines with skewed clocks agree; times go
to and from the caller's clock as ages. Money is integer nano-USD (exact in Lua's doubles up to
9 million USD). Every write renews the key's TTL (``ttl``), so abandoned keys disappear.

The memory stores next to the fronts (``MemoryCircuitStore`` in ``_payment``, ``MemoryLedger`` and
``MemorySpendStore`` in ``_billing``) are the readable reference of the same steps.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from cerebras_paygo._billing import HoldReply, HoldStatus, SpendTotals
from cerebras_paygo._payment import (
    FIRST_ANSWER_POLL,
    PROBE_POLL,
    CircuitView,
    GateKind,
    GateReply,
    PaymentReply,
)
from cerebras_paygo._redis_loops import LoopClients
from cerebras_paygo.errors import BackendUnavailableError, ConfigurationError

__all__ = [
    "AsyncRedisOrgState",
    "LedgerView",
    "RedisOrgState",
    "lua_source",
]

logger = logging.getLogger("cerebras_paygo.shared")

US = 1_000_000
NANO = 1_000_000_000
_MIN_WAIT_US = 1_000
STEPS = (
    "circuit_gate",
    "circuit_success",
    "circuit_payment",
    "circuit_probe_done",
    "circuit_read",
    "spend_record",
    "ledger_hold",
    "ledger_close",
    "ledger_read",
)
_KINDS: dict[int, GateKind] = {1: "send", 2: "probe", 3: "wait", 4: "fail"}
_HOLD: dict[int, HoldStatus] = {1: "held", 2: "wait", 3: "refused"}
_STATS = ("requests", "input", "output", "cached", "reasoning", "cost")
_TAG = re.compile(r"\{([^}]*)\}")


def lua_source(step: str) -> str:
    """The script of one step: ``lib.lua`` (and ``ledger_lib.lua``), then ``<step>.lua``."""
    folder = resources.files("cerebras_paygo._orgstate").joinpath("lua")
    parts = ["lib.lua", "ledger_lib.lua", f"{step}.lua"] if step.startswith("ledger") else ["lib.lua", f"{step}.lua"]
    return "\n".join(folder.joinpath(name).read_text("utf-8") for name in parts)


def _us(seconds: float) -> int:
    return max(0, round(seconds * US))


def _nano(usd: float) -> int:
    return round(usd * NANO)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_redis_error(exc: BaseException) -> bool:
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis is installed whenever a client exists
        return False
    return isinstance(exc, (RedisError, OSError, asyncio.TimeoutError))


def _backend_error(exc: Exception, step: str) -> BackendUnavailableError:
    return BackendUnavailableError(f"redis shared-state backend failed in {step}: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class LedgerView:
    """One fingerprint's spend in Redis: the budget ledger and the meter's totals per model."""

    spent_usd: float
    in_flight_usd: float
    holds: int
    models: dict[str, SpendTotals] = field(default_factory=dict)


class _Codec:
    """Key names, script arguments and replies; no I/O."""

    def __init__(self, *, prefix: str, ttl: float, hold_lease: float) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"the Redis key prefix must be non-empty without braces, not {prefix!r}")
        if not ttl > 0 or not hold_lease > 0:
            raise ConfigurationError("ttl and hold_lease must be positive seconds")
        self.prefix = prefix
        self.ttl_ms = max(1, round(ttl * 1000))
        self.lease_us = _us(hold_lease)
        #: Added to Redis TIME inside the scripts (microseconds): for tests only.
        self.time_offset_us = 0

    # keys
    def circuit_key(self, fingerprint: str) -> str:
        return f"{self.prefix}:pc:{{{fingerprint}}}"

    def spend_keys(self, fingerprint: str) -> list[str]:
        key = f"{self.prefix}:spend:{{{fingerprint}}}"
        return [key, f"{key}:holds"]

    @property
    def circuit_pattern(self) -> str:
        return f"{self.prefix}:pc:{{*}}"

    @property
    def spend_pattern(self) -> str:
        return f"{self.prefix}:spend:{{*}}"

    @staticmethod
    def fingerprint_of(key: Any) -> str:
        match = _TAG.search(_text(key))
        return match.group(1) if match else ""

    # circuit
    def gate_args(self, max_wait: float, probe_interval: float, probe_lease: float) -> list[Any]:
        return [
            self.time_offset_us,
            _us(max_wait),
            _us(probe_interval),
            _us(probe_lease),
            _us(FIRST_ANSWER_POLL),
            _us(PROBE_POLL),
            _MIN_WAIT_US,
            self.ttl_ms,
        ]

    @staticmethod
    def gate_reply(now: float, reply: Sequence[Any]) -> GateReply:
        age = int(reply[2])
        return GateReply(
            kind=_KINDS[int(reply[0])],
            wait_s=int(reply[1]) / US,
            outage_started=None if age < 0 else now - age / US,
            token=int(reply[3]),
            reclaimed=int(reply[4]) == 1,
        )

    @staticmethod
    def _age(now: float, at: float | None) -> int:
        return -1 if at is None else _us(now - at)

    def success_args(self, now: float, probe: bool, token: int, sent_at: float | None) -> list[Any]:
        return [self.time_offset_us, int(probe), token, self._age(now, sent_at), self.ttl_ms]

    @staticmethod
    def success_reply(reply: Any) -> float | None:
        lasted = int(reply)
        return None if lasted < 0 else lasted / US

    def payment_args(
        self, now: float, probe: bool, token: int, sent_at: float | None, probe_interval: float
    ) -> list[Any]:
        return [self.time_offset_us, int(probe), token, self._age(now, sent_at), _us(probe_interval), self.ttl_ms]

    @staticmethod
    def payment_reply(reply: Sequence[Any]) -> PaymentReply:
        return PaymentReply(opened=int(reply[0]) == 1, open=int(reply[1]) == 1, outage=int(reply[2]))

    @staticmethod
    def view(now: float, reply: Sequence[Any]) -> CircuitView:
        if int(reply[0]) == 0:
            return CircuitView("unknown")
        server_now = int(reply[1])
        values = [_text(v) for v in reply[2:9]]
        is_open, known = values[0] == "1", values[1] == "1"

        def local(raw: str) -> float | None:
            return None if not raw else now - (server_now - int(raw)) / US

        return CircuitView(
            state="open" if is_open else "closed" if known else "unknown",
            outage_started=local(values[2]) if is_open else None,
            next_probe_at=local(values[3]) if is_open else None,
            probe_started=local(values[4]),
            closed_at=local(values[5]),
            outages=int(values[6] or 0),
        )

    # spend
    def record_args(self, model: str, entry: SpendTotals) -> list[Any]:
        return [
            self.time_offset_us,
            model,
            entry.requests,
            entry.input_tokens,
            entry.output_tokens,
            entry.cached_tokens,
            entry.reasoning_tokens,
            _nano(entry.cost_usd),
            self.ttl_ms,
        ]

    def hold_args(self, amount_usd: float, limit_usd: float | None, add_spent_usd: float) -> list[Any]:
        limit = -1 if limit_usd is None else _nano(limit_usd)
        return [self.time_offset_us, _nano(amount_usd), limit, self.lease_us, self.ttl_ms, _nano(add_spent_usd)]

    @staticmethod
    def hold_reply(fingerprint: str, reply: Sequence[Any]) -> HoldReply:
        if int(reply[4]):
            logger.warning(
                "budget of key %s: %d hold(s) whose lease ran out (their process died?) left the books",
                fingerprint,
                int(reply[4]),
            )
        return HoldReply(_HOLD[int(reply[0])], int(reply[1]), int(reply[2]) / NANO, int(reply[3]) / NANO)

    def close_args(self, hold_id: int, actual_usd: float | None, add_spent_usd: float) -> list[Any]:
        actual = -1 if actual_usd is None else _nano(max(actual_usd, 0.0))
        return [self.time_offset_us, hold_id, actual, self.ttl_ms, _nano(add_spent_usd)]

    @staticmethod
    def books(reply: Sequence[Any]) -> tuple[float, float]:
        return int(reply[0]) / NANO, int(reply[1]) / NANO

    @staticmethod
    def ledger_view(reply: Sequence[Any]) -> LedgerView:
        if int(reply[0]) == 0:
            return LedgerView(0.0, 0.0, 0)
        stats: dict[str, dict[str, int]] = {}
        items = list(reply[4:])
        for name, value in zip(items[0::2], items[1::2], strict=True):
            _, stat, model = _text(name).split(":", 2)
            stats.setdefault(model, {})[stat] = int(value)
        models = {
            model: SpendTotals(
                requests=v.get("requests", 0),
                input_tokens=v.get("input", 0),
                output_tokens=v.get("output", 0),
                cached_tokens=v.get("cached", 0),
                reasoning_tokens=v.get("reasoning", 0),
                cost_usd=v.get("cost", 0) / NANO,
            )
            for model, v in stats.items()
        }
        return LedgerView(int(reply[1]) / NANO, int(reply[2]) / NANO, int(reply[3]), models)


# --- sync ------------------------------------------------------------------------------------------


class RedisOrgState:
    """Circuits, ledgers and the spend meter of every key, over one sync redis-py client
    (``redis.Redis`` or ``redis.cluster.RedisCluster``).

    Args:
        client: the client (set its socket timeouts; ``cerebras_paygo._shared`` does).
        prefix: the first part of every key name (no braces).
        ttl: seconds a key outlives its last write (spend totals and ledgers are kept that long).
        hold_lease: seconds a budget hold may stay open before it is presumed lost (its process
            died) and leaves the books; a settle after that still counts the cost.
    """

    def __init__(
        self, client: Any, *, prefix: str = "cerebras_paygo", ttl: float = 7 * 86400.0, hold_lease: float = 900.0
    ) -> None:
        self.codec = _Codec(prefix=prefix, ttl=ttl, hold_lease=hold_lease)
        self.client = client
        self._scripts = {step: client.register_script(lua_source(step)) for step in STEPS}

    def __repr__(self) -> str:
        return f"RedisOrgState(prefix={self.codec.prefix!r})"

    def eval(self, step: str, keys: list[Any], args: list[Any]) -> Any:
        try:
            return self._scripts[step](keys=keys, args=args)
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, step) from exc
            raise

    def circuit_store(self, fingerprint: str) -> RedisCircuitStore:
        return RedisCircuitStore(self, fingerprint)

    def ledger(self, fingerprint: str) -> RedisLedger:
        return RedisLedger(self, fingerprint)

    def spend_store(self) -> RedisSpendStore:
        return RedisSpendStore(self)

    def _scan(self, pattern: str) -> list[Any]:
        try:
            return list(self.client.scan_iter(match=pattern, count=500))
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, "scan") from exc
            raise

    def circuits(self, now: float) -> dict[str, CircuitView]:
        """Every key fingerprint's circuit (times on the caller's clock, read at ``now``)."""
        out = {}
        for key in self._scan(self.codec.circuit_pattern):
            reply = self.eval("circuit_read", [key], [self.codec.time_offset_us])
            out[self.codec.fingerprint_of(key)] = self.codec.view(now, reply)
        return out

    def ledgers(self) -> dict[str, LedgerView]:
        """Every key fingerprint's spend: ledger and meter totals."""
        out = {}
        for key in self._scan(self.codec.spend_pattern):
            fp = self.codec.fingerprint_of(key)
            reply = self.eval("ledger_read", self.codec.spend_keys(fp), [self.codec.time_offset_us])
            out[fp] = self.codec.ledger_view(reply)
        return out

    def reset(self) -> None:
        """Delete every circuit, ledger and meter key under the prefix (for every process)."""
        try:
            for pattern in (self.codec.circuit_pattern, self.codec.spend_pattern, self.codec.spend_pattern + ":holds"):
                for key in self._scan(pattern):
                    self.client.delete(key)
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, "reset") from exc
            raise


class RedisCircuitStore:
    """``CircuitStore`` of one key fingerprint in Redis (shared by every process)."""

    def __init__(self, org: RedisOrgState, fingerprint: str) -> None:
        self.org, self.fingerprint = org, fingerprint
        self._keys = [org.codec.circuit_key(fingerprint)]

    def __repr__(self) -> str:
        return f"RedisCircuitStore({self.org.codec.prefix!r}, {self.fingerprint!r})"

    def gate(self, now: float, *, max_wait: float, probe_interval: float, probe_lease: float) -> GateReply:
        c = self.org.codec
        return c.gate_reply(
            now, self.org.eval("circuit_gate", self._keys, c.gate_args(max_wait, probe_interval, probe_lease))
        )

    def success(self, now: float, *, probe: bool, token: int, sent_at: float | None) -> float | None:
        c = self.org.codec
        return c.success_reply(self.org.eval("circuit_success", self._keys, c.success_args(now, probe, token, sent_at)))

    def payment_required(
        self, now: float, *, probe: bool, token: int, sent_at: float | None, probe_interval: float
    ) -> PaymentReply:
        c = self.org.codec
        args = c.payment_args(now, probe, token, sent_at, probe_interval)
        return c.payment_reply(self.org.eval("circuit_payment", self._keys, args))

    def probe_done(self, now: float, *, token: int) -> None:
        self.org.eval("circuit_probe_done", self._keys, [self.org.codec.time_offset_us, token])

    def read(self, now: float) -> CircuitView:
        return self.org.codec.view(now, self.org.eval("circuit_read", self._keys, [self.org.codec.time_offset_us]))

    def reset(self) -> None:
        try:
            self.org.client.delete(self._keys[0])
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, "reset") from exc
            raise


class RedisLedger:
    """``Ledger`` of one key fingerprint's budget in Redis (shared by every process on the key)."""

    def __init__(self, org: RedisOrgState, fingerprint: str) -> None:
        self.org, self.fingerprint = org, fingerprint
        self._keys = org.codec.spend_keys(fingerprint)

    def __repr__(self) -> str:
        return f"RedisLedger({self.org.codec.prefix!r}, {self.fingerprint!r})"

    def hold(self, amount_usd: float, limit_usd: float | None, *, add_spent_usd: float = 0.0) -> HoldReply:
        args = self.org.codec.hold_args(amount_usd, limit_usd, add_spent_usd)
        return self.org.codec.hold_reply(self.fingerprint, self.org.eval("ledger_hold", self._keys, args))

    def close(self, hold_id: int, actual_usd: float | None, *, add_spent_usd: float = 0.0) -> tuple[float, float]:
        args = self.org.codec.close_args(hold_id, actual_usd, add_spent_usd)
        return self.org.codec.books(self.org.eval("ledger_close", self._keys, args))

    def read(self) -> tuple[float, float]:
        view = self.view()
        return view.spent_usd, view.in_flight_usd

    def view(self) -> LedgerView:
        return self.org.codec.ledger_view(self.org.eval("ledger_read", self._keys, [self.org.codec.time_offset_us]))


class RedisSpendStore:
    """``SpendStore``: the meter's totals per (fingerprint, model) in Redis."""

    def __init__(self, org: RedisOrgState) -> None:
        self.org = org

    def __repr__(self) -> str:
        return f"RedisSpendStore({self.org.codec.prefix!r})"

    def record(self, fingerprint: str, model: str, entry: SpendTotals) -> None:
        c = self.org.codec
        self.org.eval("spend_record", c.spend_keys(fingerprint)[:1], c.record_args(model, entry))

    def snapshot(self) -> dict[tuple[str, str], SpendTotals]:
        return {(fp, model): t for fp, view in self.org.ledgers().items() for model, t in view.models.items()}

    def reset(self) -> None:
        """Forget the meter's totals (the budget ledgers stay)."""
        try:
            for key in self.org._scan(self.org.codec.spend_pattern):
                fields = [f for f in self.org.client.hkeys(key) if _text(f).startswith("m:")]
                if fields:
                    self.org.client.hdel(key, *fields)
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, "reset") from exc
            raise


# --- asyncio ---------------------------------------------------------------------------------------


class AsyncRedisOrgState:
    """``RedisOrgState`` over ``redis.asyncio`` (same scripts, same keys, awaited).

    asyncio clients belong to one event loop: with a ``factory`` the state keeps one client per
    running loop; given a client, it uses that one (on its loop).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        prefix: str = "cerebras_paygo",
        ttl: float = 7 * 86400.0,
        hold_lease: float = 900.0,
        factory: Callable[[], Any] | None = None,
    ) -> None:
        if client is None and factory is None:
            raise ConfigurationError("AsyncRedisOrgState needs a redis.asyncio client or a factory")
        self.codec = _Codec(prefix=prefix, ttl=ttl, hold_lease=hold_lease)
        self._factory = factory
        self._clients = LoopClients(
            client, factory, lambda c: {step: c.register_script(lua_source(step)) for step in STEPS}
        )

    def __repr__(self) -> str:
        return f"AsyncRedisOrgState(prefix={self.codec.prefix!r})"

    def _bound(self) -> tuple[Any, dict[str, Any]]:
        return self._clients.get()

    async def eval(self, step: str, keys: list[Any], args: list[Any]) -> Any:
        _, scripts = self._bound()
        try:
            return await scripts[step](keys=keys, args=args)
        except Exception as exc:
            if _is_redis_error(exc):
                raise _backend_error(exc, step) from exc
            raise

    def circuit_store(self, fingerprint: str) -> AsyncRedisCircuitStore:
        return AsyncRedisCircuitStore(self, fingerprint)

    def ledger(self, fingerprint: str) -> AsyncRedisLedger:
        return AsyncRedisLedger(self, fingerprint)

    def spend_store(self) -> AsyncRedisSpendStore:
        return AsyncRedisSpendStore(self)


class AsyncRedisCircuitStore:
    """``RedisCircuitStore`` for event loops."""

    def __init__(self, org: AsyncRedisOrgState, fingerprint: str) -> None:
        self.org, self.fingerprint = org, fingerprint
        self._keys = [org.codec.circuit_key(fingerprint)]

    async def gate(self, now: float, *, max_wait: float, probe_interval: float, probe_lease: float) -> GateReply:
        c = self.org.codec
        args = c.gate_args(max_wait, probe_interval, probe_lease)
        return c.gate_reply(now, await self.org.eval("circuit_gate", self._keys, args))

    async def success(self, now: float, *, probe: bool, token: int, sent_at: float | None) -> float | None:
        c = self.org.codec
        args = c.success_args(now, probe, token, sent_at)
        return c.success_reply(await self.org.eval("circuit_success", self._keys, args))

    async def payment_required(
        self, now: float, *, probe: bool, token: int, sent_at: float | None, probe_interval: float
    ) -> PaymentReply:
        c = self.org.codec
        args = c.payment_args(now, probe, token, sent_at, probe_interval)
        return c.payment_reply(await self.org.eval("circuit_payment", self._keys, args))

    async def probe_done(self, now: float, *, token: int) -> None:
        await self.org.eval("circuit_probe_done", self._keys, [self.org.codec.time_offset_us, token])

    async def read(self, now: float) -> CircuitView:
        reply = await self.org.eval("circuit_read", self._keys, [self.org.codec.time_offset_us])
        return self.org.codec.view(now, reply)


class AsyncRedisLedger:
    """``RedisLedger`` for event loops."""

    def __init__(self, org: AsyncRedisOrgState, fingerprint: str) -> None:
        self.org, self.fingerprint = org, fingerprint
        self._keys = org.codec.spend_keys(fingerprint)

    async def hold(self, amount_usd: float, limit_usd: float | None, *, add_spent_usd: float = 0.0) -> HoldReply:
        args = self.org.codec.hold_args(amount_usd, limit_usd, add_spent_usd)
        return self.org.codec.hold_reply(self.fingerprint, await self.org.eval("ledger_hold", self._keys, args))

    async def close(self, hold_id: int, actual_usd: float | None, *, add_spent_usd: float = 0.0) -> tuple[float, float]:
        args = self.org.codec.close_args(hold_id, actual_usd, add_spent_usd)
        return self.org.codec.books(await self.org.eval("ledger_close", self._keys, args))


class AsyncRedisSpendStore:
    """``RedisSpendStore.record`` for event loops."""

    def __init__(self, org: AsyncRedisOrgState) -> None:
        self.org = org

    async def record(self, fingerprint: str, model: str, entry: SpendTotals) -> None:
        c = self.org.codec
        await self.org.eval("spend_record", c.spend_keys(fingerprint)[:1], c.record_args(model, entry))


def _register_scripts(client: Any) -> dict[str, Any]:
    """Every Lua step of this store, registered once on ``client`` (EVALSHA, NOSCRIPT reload)."""
    return {step: client.register_script(lua_source(step)) for step in STEPS}
