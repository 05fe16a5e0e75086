"""The 402 policy: a per-key circuit that waits for credit to come back, one probe at a time.

Cerebras answers 402 when the Team org of a key has neither credit nor an active subscription.
Retrying every request would only multiply 402s; raising at once loses the minute auto-recharge
needs. So, per key fingerprint and per process, a :class:`PaymentCircuit`:

- starts **unknown**: until the key's first answer, one caller goes ahead (as a probe) and the
  others wait a round trip, so a batch started on an empty balance (or a wrong key) costs one
  failed request, not one per caller;
- is **closed** while requests succeed: :meth:`~PaymentCircuit.gate` says ``"send"``;
- **opens** on the first 402 (:meth:`~PaymentCircuit.on_payment_required` returns ``True`` exactly
  once per outage, so the ``on_payment_required`` hook runs once, not once per caller);
- while open, lets **exactly one caller at a time** send its request as a probe, at most every
  ``probe_interval`` seconds; every other caller gets ``"wait"`` with a short ``wait_s``;
- closes when a probe succeeds (waiters then get ``"send"``);
- once the outage is older than ``max_wait`` seconds, callers get ``"fail"`` (the gateway raises
  :class:`~cerebras_paygo.errors.PaymentRequiredError` with :func:`payment_required_message`, or
  switches to ``fallback_api_key``) except for the one periodic probe, so the circuit still closes
  when credit returns. ``max_wait=0`` fails at once.

Everything is sans-IO: the caller passes ``now`` (a ``time.monotonic()`` reading); nothing sleeps.
The state sits behind a ``threading.Lock`` held only for O(1) work, so threads and event loops
can share a circuit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import itertools
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from pydantic import SecretStr

from cerebras_paygo._catalog import TIERS, Tier
from cerebras_paygo._orgstate.fallback import BackendErrorPolicy, BackendGuard
from cerebras_paygo.errors import BackendUnavailableError, ConfigurationError

__all__ = [
    "AsyncCircuitStore",
    "CircuitStore",
    "CircuitView",
    "Gate",
    "GateKind",
    "GateReply",
    "MemoryCircuitStore",
    "PaymentCircuit",
    "PaymentHook",
    "PaymentPolicy",
    "PaymentReply",
    "acall_hook",
    "call_hook",
    "payment_circuit",
    "payment_required_message",
    "reset_payment_circuits",
]

logger = logging.getLogger("cerebras_paygo.payment")

GateKind = Literal["send", "probe", "wait", "fail"]

#: While a probe is in flight, waiters look again after at most this many seconds.
PROBE_POLL = 0.5
#: A probe that reports nothing for this long is presumed lost (its caller died) and its slot freed.
PROBE_LEASE = 120.0
#: How often callers waiting for a key's first answer look again (seconds).
FIRST_ANSWER_POLL = 0.02
_MIN_WAIT = 0.001


#: The ``on_payment_required`` hook: called once per outage with the gateway's info mapping
#: (``key_fingerprint``, ``model``, ``base_url``, ``message``, ``request_id``; never the key);
#: sync or async, its return value is ignored.
PaymentHook = Callable[[Any], Any]


@dataclass(frozen=True, repr=False)
class PaymentPolicy:
    """What to do when the key's org has no credit (HTTP 402).

    Args:
        max_wait: Seconds an outage may last before callers fail (0: fail at once). Meant to give
            auto-recharge time to top the balance up.
        probe_interval: Seconds between probes while the circuit is open (must be > 0).
        on_payment_required: Called once per outage (not once per caller) with an info mapping
            (``key_fingerprint``, ``model``, ``base_url``, ``message``, ``request_id``; never the
            key); may be sync or async; its exceptions are logged and swallowed.
        fallback_api_key: A key to continue with once ``max_wait`` has passed (for instance a
            Personal account's free-tier key). Stored as ``SecretStr``; never shown in ``repr``.
        fallback_tier: The tier of ``fallback_api_key`` (``"free"`` by default).

    Raises:
        ConfigurationError: A value is negative, not callable, empty or an unknown tier.
    """

    max_wait: float = 60.0
    probe_interval: float = 5.0
    on_payment_required: PaymentHook | None = None
    fallback_api_key: SecretStr | str | None = None
    fallback_tier: Tier = "free"

    def __post_init__(self) -> None:
        if not _is_number(self.max_wait) or self.max_wait < 0:
            raise ConfigurationError(f"PaymentPolicy.max_wait must be a non-negative number, not {self.max_wait!r}")
        if not _is_number(self.probe_interval) or self.probe_interval <= 0:
            raise ConfigurationError(
                f"PaymentPolicy.probe_interval must be a positive number, not {self.probe_interval!r}"
            )
        if self.on_payment_required is not None and not callable(self.on_payment_required):
            raise ConfigurationError("PaymentPolicy.on_payment_required must be callable or None")
        key = self.fallback_api_key
        if isinstance(key, str):
            key = SecretStr(key)
        if key is not None:
            if not isinstance(key, SecretStr):
                raise ConfigurationError("PaymentPolicy.fallback_api_key must be a str, a SecretStr or None")
            if not key.get_secret_value().strip():
                raise ConfigurationError("PaymentPolicy.fallback_api_key must not be empty")
        object.__setattr__(self, "fallback_api_key", key)
        if self.fallback_tier not in TIERS:
            raise ConfigurationError(f"PaymentPolicy.fallback_tier must be one of {TIERS}, not {self.fallback_tier!r}")

    @property
    def fallback_secret(self) -> SecretStr | None:
        """``fallback_api_key`` as a ``SecretStr`` (``None`` when not set)."""
        key = self.fallback_api_key
        return SecretStr(key) if isinstance(key, str) else key

    def __repr__(self) -> str:
        key = "None" if self.fallback_api_key is None else "SecretStr('**********')"
        return (
            f"PaymentPolicy(max_wait={self.max_wait!r}, probe_interval={self.probe_interval!r}, "
            f"on_payment_required={self.on_payment_required!r}, fallback_api_key={key}, "
            f"fallback_tier={self.fallback_tier!r})"
        )

    __str__ = __repr__


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Gate:
    """The circuit's answer to "may I send now?".

    ``kind`` is ``"send"`` (circuit closed), ``"probe"`` (send; you are the one probe, report the
    outcome with ``on_success``/``on_payment_required``/``on_probe_done``), ``"wait"`` (sleep
    ``wait_s``, then ask again) or ``"fail"`` (the outage outlasted ``max_wait``).
    ``outage_started`` is the ``now`` of the 402 that opened the circuit (``None`` when closed).
    """

    kind: GateKind
    wait_s: float = 0.0
    outage_started: float | None = None


@dataclass(frozen=True, slots=True)
class GateReply:
    """A circuit store's answer to ``gate``: the ``Gate`` plus the probe slot's token.

    Times are on the caller's clock (the ``now`` it passed). ``token`` identifies the probe slot
    when ``kind == "probe"`` (report the probe's end with it); ``reclaimed`` says a probe that never
    reported back lost its slot on the way (its lease ran out).
    """

    kind: GateKind
    wait_s: float = 0.0
    outage_started: float | None = None
    token: int = 0
    reclaimed: bool = False


@dataclass(frozen=True, slots=True)
class PaymentReply:
    """A circuit store's answer to ``payment_required``.

    ``outage`` identifies the current outage (it only grows: a counter in memory, the outage's
    start in Redis time on Redis); ``open`` is the state after the 402; ``opened``: this 402 opened it.
    """

    opened: bool
    open: bool
    outage: int


@dataclass(frozen=True, slots=True)
class CircuitView:
    """What a circuit store holds, for properties, dashboards and ``cerebras-paygo status``.

    Times are on the caller's clock (``None``: not set).
    """

    state: Literal["unknown", "closed", "open"]
    outage_started: float | None = None
    next_probe_at: float | None = None
    probe_started: float | None = None
    closed_at: float | None = None
    outages: int = 0

    @property
    def probe_in_flight(self) -> bool:
        return self.probe_started is not None


class CircuitStore(Protocol):
    """The state of one key's circuit and its atomic steps (one lock hold, or one Redis round trip).

    Every step takes the caller's ``now`` (``time.monotonic()``) and answers on that clock; a
    remote store keeps its own (server) time and converts with ages. Backend failures raise
    ``BackendUnavailableError``.
    """

    def gate(self, now: float, *, max_wait: float, probe_interval: float, probe_lease: float) -> GateReply: ...

    def success(self, now: float, *, probe: bool, token: int, sent_at: float | None) -> float | None:
        """Returns how long the outage lasted when this success closed the circuit, else None."""
        ...

    def payment_required(
        self, now: float, *, probe: bool, token: int, sent_at: float | None, probe_interval: float
    ) -> PaymentReply: ...

    def probe_done(self, now: float, *, token: int) -> None: ...

    def read(self, now: float) -> CircuitView: ...

    def reset(self) -> None: ...


class AsyncCircuitStore(Protocol):
    """``CircuitStore`` for a backend whose I/O is awaited (same semantics)."""

    async def gate(self, now: float, *, max_wait: float, probe_interval: float, probe_lease: float) -> GateReply: ...

    async def success(self, now: float, *, probe: bool, token: int, sent_at: float | None) -> float | None: ...

    async def payment_required(
        self, now: float, *, probe: bool, token: int, sent_at: float | None, probe_interval: float
    ) -> PaymentReply: ...

    async def probe_done(self, now: float, *, token: int) -> None: ...

    async def read(self, now: float) -> CircuitView: ...


class MemoryCircuitStore:
    """The circuit of one key in this process: the readable reference of the state machine.

    ``lua/circuit_*.lua`` (in ``cerebras_paygo._orgstate``) are the same steps over a Redis hash.
    State sits behind a ``threading.Lock`` held only for O(1) work.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = False
        # Until the first answer on this key, nobody knows whether it has credit.
        self._known = False
        self._outage_started: float | None = None
        self._next_probe_at = 0.0
        self._probe_started: float | None = None
        self._probe_token = 0
        self._tokens = itertools.count(1)
        self._closed_at = -math.inf
        self._outages = 0

    def __repr__(self) -> str:
        return "MemoryCircuitStore()"

    def _take_probe(self, now: float) -> int:
        self._probe_started = now
        self._probe_token = next(self._tokens)
        return self._probe_token

    def _free_probe(self, token: int) -> None:
        # Only the holder frees the slot: a prober whose lease ran out must not free its successor's.
        if self._probe_started is not None and token == self._probe_token:
            self._probe_started = None

    def gate(self, now: float, *, max_wait: float, probe_interval: float, probe_lease: float) -> GateReply:
        with self._lock:
            reclaimed = False
            if self._probe_started is not None and now - self._probe_started >= probe_lease:
                self._probe_started = None
                reclaimed = self._open
            if not self._open:
                if self._known:
                    return GateReply("send")
                if self._probe_started is None:
                    return GateReply("probe", 0.0, None, self._take_probe(now))
                return GateReply("wait", FIRST_ANSWER_POLL, None)
            started = self._outage_started if self._outage_started is not None else now
            if self._probe_started is None and now >= self._next_probe_at:
                return GateReply("probe", 0.0, started, self._take_probe(now), reclaimed)
            waited = now - started
            if waited >= max_wait:
                return GateReply("fail", 0.0, started, 0, reclaimed)
            slot = self._next_probe_at - now if self._probe_started is None else min(probe_interval, PROBE_POLL)
            wait_s = min(slot, probe_interval, max_wait - waited)
            return GateReply("wait", max(wait_s, _MIN_WAIT), started, 0, reclaimed)

    def success(self, now: float, *, probe: bool, token: int, sent_at: float | None) -> float | None:
        with self._lock:
            if probe:
                self._free_probe(token)
            self._known = True
            if not self._open:
                return None
            started = self._outage_started if self._outage_started is not None else now
            if not probe and (sent_at is None or sent_at < started):
                return None
            self._open = False
            self._outage_started = None
            self._probe_started = None
            self._closed_at = now
            return now - started

    def payment_required(
        self, now: float, *, probe: bool, token: int, sent_at: float | None, probe_interval: float
    ) -> PaymentReply:
        with self._lock:
            if probe:
                self._free_probe(token)
            self._known = True
            if self._open:
                if probe:
                    self._next_probe_at = now + probe_interval
                return PaymentReply(False, True, self._outages)
            if sent_at is not None and sent_at < self._closed_at:
                return PaymentReply(False, False, self._outages)
            self._open = True
            self._outage_started = now
            self._next_probe_at = now + probe_interval
            self._probe_started = None
            self._outages += 1
            return PaymentReply(True, True, self._outages)

    def probe_done(self, now: float, *, token: int) -> None:
        del now  # the schedule does not change: the probe said nothing about the balance
        with self._lock:
            self._free_probe(token)

    def read(self, now: float) -> CircuitView:
        del now
        with self._lock:
            state: Literal["unknown", "closed", "open"] = (
                "open" if self._open else "closed" if self._known else "unknown"
            )
            return CircuitView(
                state=state,
                outage_started=self._outage_started,
                next_probe_at=self._next_probe_at if self._open else None,
                probe_started=self._probe_started,
                closed_at=None if self._closed_at == -math.inf else self._closed_at,
                outages=self._outages,
            )

    def reset(self) -> None:
        fresh = MemoryCircuitStore()
        with self._lock:
            for name in ("_open", "_known", "_outage_started", "_next_probe_at", "_probe_started", "_probe_token"):
                setattr(self, name, getattr(fresh, name))
            self._closed_at, self._outages = fresh._closed_at, fresh._outages


T = TypeVar("T")


class PaymentCircuit:
    """The 402 state of one key fingerprint: closed or open, with one probe slot.

    Get the process-wide instance with :func:`payment_circuit` (or, shared by every process on a
    Redis, from ``cerebras_paygo._shared.shared_state``). Every method takes ``now``
    (``time.monotonic()``) and returns at once; all of them are thread-safe; the ``a*`` twins await a
    remote store's I/O.

    Args:
        fingerprint: The key's fingerprint (``settings.key_fingerprint``), never the key.
        policy: The default policy for calls that pass none.
        probe_lease: Seconds after which a probe that never reported back is presumed lost.
        store: Where the state lives (default: a ``MemoryCircuitStore``, this process only).
        async_store: The awaitable twin of ``store`` (Redis over ``redis.asyncio``).
        on_backend_error: With a remote store: ``"local"`` (warn once, use this process's own
            circuit until the store answers again) or ``"raise"`` (``BackendUnavailableError``).
    """

    def __init__(
        self,
        fingerprint: str,
        policy: PaymentPolicy | None = None,
        *,
        probe_lease: float = PROBE_LEASE,
        store: CircuitStore | None = None,
        async_store: AsyncCircuitStore | None = None,
        on_backend_error: BackendErrorPolicy = "local",
    ):
        self.fingerprint = fingerprint
        self.policy = policy or PaymentPolicy()
        self.probe_lease = probe_lease
        self._remote = store is not None or async_store is not None
        self._store: CircuitStore | None = store if self._remote else MemoryCircuitStore()
        self._astore = async_store
        self._local = MemoryCircuitStore()
        self._guard = BackendGuard("payment circuit", logger, on_backend_error)
        self._lock = threading.Lock()
        # The probe slot this process holds (one at most: the slot is one for every process).
        self._probe: tuple[object, int] | None = None
        # Per store: the newest outage this process has reported (its hook runs once per outage).
        self._seen: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"PaymentCircuit(fingerprint={self.fingerprint!r}, state={self.state!r}, outages={self.outages})"

    # --- dispatch: the store, or the local fallback ---------------------------------------------

    def _sync_store(self) -> CircuitStore:
        if self._store is None:
            raise ConfigurationError("this payment circuit has only an asyncio Redis client: use the a* methods")
        return self._store

    def _run(self, call: Callable[[Any], T], source: object = None) -> tuple[T, object]:
        if source is self._local or (self._remote and not self._guard.use_backend()):
            return call(self._local), self._local
        store = self._sync_store()
        if not self._remote:
            return call(store), store
        try:
            result = call(store)
        except BackendUnavailableError as exc:
            self._guard.failed(exc)
            return call(self._local), self._local
        self._guard.recovered()
        return result, store

    async def _arun(self, call: Callable[[Any], Any], source: object = None) -> tuple[Any, object]:
        if source is self._local or (self._remote and not self._guard.use_backend()):
            return call(self._local), self._local
        if not self._remote:
            return call(self._sync_store()), self._store
        try:
            if self._astore is not None:
                astore: object = self._astore
                result, where = await call(astore), astore
            else:
                import anyio.to_thread

                store = self._sync_store()
                result, where = await anyio.to_thread.run_sync(call, store), store
        except BackendUnavailableError as exc:
            self._guard.failed(exc)
            return call(self._local), self._local
        self._guard.recovered()
        return result, where

    def _same_source(self, where: object) -> object:
        # The sync and async stores of one backend are one source (one Redis key).
        return self._store if where is self._astore and self._store is not None else where

    # --- gate -----------------------------------------------------------------------------------

    def _gate_call(self, now: float, policy: PaymentPolicy | None) -> Callable[[Any], Any]:
        pol = policy or self.policy
        return lambda s: s.gate(
            now, max_wait=pol.max_wait, probe_interval=pol.probe_interval, probe_lease=self.probe_lease
        )

    def _gated(self, reply: GateReply, where: object) -> Gate:
        if reply.reclaimed:
            logger.warning("payment probe for key %s never reported back; freeing its slot", self.fingerprint)
        if reply.kind == "probe":
            with self._lock:
                self._probe = (self._same_source(where), reply.token)
        return Gate(reply.kind, reply.wait_s, reply.outage_started)

    def gate(self, now: float, *, policy: PaymentPolicy | None = None) -> Gate:
        """May a caller send now? See :class:`Gate`.

        Args:
            now: ``time.monotonic()``.
            policy: This caller's policy (``max_wait``, ``probe_interval``); the circuit's default
                when ``None``. Clients that share a key may pass different policies.
        """
        reply, where = self._run(self._gate_call(now, policy))
        return self._gated(reply, where)

    async def agate(self, now: float, *, policy: PaymentPolicy | None = None) -> Gate:
        """``gate`` for event loops."""
        reply, where = await self._arun(self._gate_call(now, policy))
        return self._gated(reply, where)

    # --- reports --------------------------------------------------------------------------------

    def _probe_of(self, probe: bool) -> tuple[object, int]:
        """The (source, token) a probe's report goes to; the slot is forgotten here."""
        if not probe:
            return None, 0
        with self._lock:
            held, self._probe = self._probe, None
        return held if held is not None else (None, 0)

    def _closed(self, lasted: float | None) -> None:
        if lasted is not None:
            logger.info("credit is back for key %s after %.1f s; payment circuit closed", self.fingerprint, lasted)

    def on_success(self, now: float, *, probe: bool, sent_at: float | None = None) -> None:
        """A request on this key succeeded (call it as soon as a 2xx status arrives).

        A probe's success closes the circuit. A non-probe success closes it only when ``sent_at``
        is given and the request was sent after the outage began; otherwise it may be a request
        admitted before the balance ran out, which proves nothing.
        """
        source, token = self._probe_of(probe)
        lasted, _ = self._run(lambda s: s.success(now, probe=probe, token=token, sent_at=sent_at), source)
        self._closed(lasted)

    async def aon_success(self, now: float, *, probe: bool, sent_at: float | None = None) -> None:
        """``on_success`` for event loops."""
        source, token = self._probe_of(probe)
        lasted, _ = await self._arun(lambda s: s.success(now, probe=probe, token=token, sent_at=sent_at), source)
        self._closed(lasted)

    def _payment_call(
        self, now: float, probe: bool, token: int, sent_at: float | None, policy: PaymentPolicy | None
    ) -> Callable[[Any], Any]:
        interval = (policy or self.policy).probe_interval
        return lambda s: s.payment_required(now, probe=probe, token=token, sent_at=sent_at, probe_interval=interval)

    def _reported(self, reply: PaymentReply, where: object) -> bool:
        if reply.opened:
            logger.warning("402 payment required for key %s: payment circuit open", self.fingerprint)
        if not reply.open:
            return False
        key = id(self._same_source(where))
        with self._lock:
            new = reply.outage > self._seen.get(key, 0)
            if new:
                self._seen[key] = reply.outage
        return new

    def on_payment_required(
        self, now: float, *, probe: bool, sent_at: float | None = None, policy: PaymentPolicy | None = None
    ) -> bool:
        """A request on this key got 402. Returns ``True`` once per outage in this process (call the hook then).

        Opens the circuit if closed. A failed probe frees the probe slot and schedules the next
        probe ``probe_interval`` later. A 402 of a request sent (``sent_at``) before the circuit
        last closed is stale and ignored. With a shared store, another process may have opened the
        outage: this process's first 402 of it still returns ``True``, so every process's hook
        hears of an outage once at most.
        """
        source, token = self._probe_of(probe)
        reply, where = self._run(self._payment_call(now, probe, token, sent_at, policy), source)
        return self._reported(reply, where)

    async def aon_payment_required(
        self, now: float, *, probe: bool, sent_at: float | None = None, policy: PaymentPolicy | None = None
    ) -> bool:
        """``on_payment_required`` for event loops."""
        source, token = self._probe_of(probe)
        reply, where = await self._arun(self._payment_call(now, probe, token, sent_at, policy), source)
        return self._reported(reply, where)

    def on_probe_done(self, now: float) -> None:
        """The probe ended with neither success nor 402 (5xx, timeout, 429, cancellation): free its slot.

        The next caller (of any process) may probe at once; call it from a ``finally`` so a slot is
        never held.
        """
        source, token = self._probe_of(True)
        if token:
            self._run(lambda s: s.probe_done(now, token=token), source)

    async def aon_probe_done(self, now: float) -> None:
        """``on_probe_done`` for event loops."""
        source, token = self._probe_of(True)
        if token:
            await self._arun(lambda s: s.probe_done(now, token=token), source)

    # --- state ----------------------------------------------------------------------------------

    def view(self, now: float | None = None) -> CircuitView:
        """The circuit's state (from the store; the local fallback while it is down)."""
        at = time.monotonic() if now is None else now
        view: CircuitView = self._run(lambda s: s.read(at))[0]
        return view

    async def aview(self, now: float | None = None) -> CircuitView:
        """``view`` for event loops."""
        at = time.monotonic() if now is None else now
        view: CircuitView = (await self._arun(lambda s: s.read(at)))[0]
        return view

    @property
    def state(self) -> Literal["unknown", "closed", "open"]:
        return self.view().state

    @property
    def is_open(self) -> bool:
        return self.view().state == "open"

    @property
    def outage_started(self) -> float | None:
        return self.view().outage_started

    @property
    def outages(self) -> int:
        """How many outages this circuit has seen (opened) so far."""
        return self.view().outages

    @property
    def probe_in_flight(self) -> bool:
        return self.view().probe_in_flight

    @property
    def backend_down(self) -> bool:
        """True while a remote store failed and this process uses its own circuit."""
        return self._guard.down


_registry_lock = threading.Lock()
_circuits: dict[str, PaymentCircuit] = {}


def payment_circuit(fingerprint: str, policy: PaymentPolicy | None = None) -> PaymentCircuit:
    """The process-wide circuit of a key fingerprint (created with ``policy`` as its default)."""
    with _registry_lock:
        circuit = _circuits.get(fingerprint)
        if circuit is None:
            circuit = _circuits[fingerprint] = PaymentCircuit(fingerprint, policy)
        return circuit


def reset_payment_circuits() -> None:
    """Forget every circuit (for tests)."""
    with _registry_lock:
        _circuits.clear()


def payment_required_message(waited_s: float, max_wait: float, fingerprint_hint: str | None = None) -> str:
    """The text of the ``PaymentRequiredError`` raised when credit did not come back in time.

    Args:
        waited_s: Seconds this call waited for credit.
        max_wait: The policy's ``max_wait``.
        fingerprint_hint: The key's fingerprint, to tell keys apart (never the key).
    """
    key = f"API key {fingerprint_hint}" if fingerprint_hint else "this API key"
    if max_wait <= 0:
        waited = "Not waiting for credit (PaymentPolicy.max_wait=0)."
    else:
        waited = f"Waited {waited_s:.1f} s (max_wait={max_wait:g} s) for credit to come back, probing periodically."
    return (
        f"402 Payment Required: the Cerebras org of {key} has no credit balance and no active subscription. "
        f"{waited} "
        "If you just bought credit, check that you use the Team org's API key: a 402 right after buying credit "
        "usually means the request uses your Personal account's key while the credit went to the Team org "
        "(switch to the Team org in the Cerebras Console and create a key there). "
        "To add credit: Cerebras Console -> Billing -> Pay as you go. "
        "Turn on auto-recharge there (a balance threshold and the amount to recharge) so the balance never "
        "reaches zero, and raise PaymentPolicy(max_wait=...) to give a recharge time to land, or set "
        "fallback_api_key=... to continue on another key."
    )


def call_hook(hook: PaymentHook | None, info: Any) -> None:
    """Run the ``on_payment_required`` hook from sync code; never raises.

    An async hook (or one returning an awaitable) runs to completion with ``asyncio.run``, in a
    worker thread when this thread already runs an event loop. Exceptions are logged and swallowed.
    """
    if hook is None:
        return
    try:
        result = hook(info)
        if inspect.isawaitable(result):
            _run_awaitable(result)
    except Exception as exc:
        _log_hook_error(exc, info)


async def acall_hook(hook: PaymentHook | None, info: Any) -> None:
    """Run the ``on_payment_required`` hook from async code; never raises (except cancellation).

    A sync hook runs on the event loop's thread, so keep it short (or make it async); an awaitable
    result is awaited. Exceptions are logged and swallowed.
    """
    if hook is None:
        return
    try:
        result = hook(info)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        _log_hook_error(exc, info)


def _run_awaitable(awaitable: Awaitable[Any]) -> None:
    async def runner() -> None:
        await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(runner())
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cerebras-paygo-hook") as pool:
        pool.submit(asyncio.run, runner()).result()


def _log_hook_error(exc: Exception, info: Any) -> None:
    logger.warning(
        "on_payment_required hook failed for key %s: %s", _fingerprint_of(info), type(exc).__name__, exc_info=exc
    )


def _fingerprint_of(info: Any) -> str:
    if isinstance(info, Mapping):
        value = info.get("key_fingerprint", info.get("fingerprint"))
    else:
        value = getattr(info, "key_fingerprint", getattr(info, "fingerprint", None))
    return str(value) if value is not None else "?"
