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
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr

from cerebras_paygo._catalog import TIERS, Tier
from cerebras_paygo.errors import ConfigurationError

__all__ = [
    "Gate",
    "GateKind",
    "PaymentCircuit",
    "PaymentHook",
    "PaymentPolicy",
    "acall_hook",
    "call_hook",
    "payment_circuit",
    "payment_required_message",
    "reset_payment_circuits",
]

logger = logging.getLogger("cerebras_paygo.payment")

GateKind = Literal["send", "probe", "wait", "fail", "rejected"]

#: While a probe is in flight, waiters look again after at most this many seconds.
PROBE_POLL = 0.5
#: A probe that reports nothing for this long is presumed lost (its caller died) and its slot freed.
PROBE_LEASE = 120.0
#: How often callers waiting for a key's first answer look again (seconds).
FIRST_ANSWER_POLL = 0.02
#: How long a key the server rejected (401) stays rejected in this process before one request may
#: try it again (a revoked key stays revoked; a key fixed on the server side gets a new chance).
REJECTED_FOR = 300.0
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
    ``"rejected"``: the server answered this key with 401; ``error`` is a copy of that
    ``AuthenticationError`` to raise without sending.
    """

    kind: GateKind
    wait_s: float = 0.0
    outage_started: float | None = None
    error: Exception | None = None


class PaymentCircuit:
    """The 402 state of one key fingerprint: closed or open, with one probe slot.

    Get the process-wide instance with :func:`payment_circuit`. Every method takes ``now``
    (``time.monotonic()``) and returns at once; all of them are thread-safe.

    Args:
        fingerprint: The key's fingerprint (``settings.key_fingerprint``), never the key.
        policy: The default policy for calls that pass none.
        probe_lease: Seconds after which a probe that never reported back is presumed lost.
    """

    def __init__(self, fingerprint: str, policy: PaymentPolicy | None = None, *, probe_lease: float = PROBE_LEASE):
        self.fingerprint = fingerprint
        self.policy = policy or PaymentPolicy()
        self.probe_lease = probe_lease
        self._lock = threading.Lock()
        self._open = False
        # Until the first answer on this key, nobody knows whether it has credit.
        self._known = False
        self._outage_started: float | None = None
        self._next_probe_at = 0.0
        self._probe_started: float | None = None
        self._closed_at = -math.inf
        self._outages = 0
        # A 401: (when, the error's class, args and attributes), to raise copies of it.
        self._rejected: tuple[float, type[Exception], tuple[Any, ...], dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"PaymentCircuit(fingerprint={self.fingerprint!r}, state={self.state!r}, outages={self._outages})"

    @property
    def state(self) -> Literal["unknown", "closed", "open"]:
        if self._open:
            return "open"
        return "closed" if self._known else "unknown"

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def outage_started(self) -> float | None:
        return self._outage_started

    @property
    def outages(self) -> int:
        """How many outages this circuit has seen (opened) so far."""
        return self._outages

    @property
    def probe_in_flight(self) -> bool:
        return self._probe_started is not None

    def gate(self, now: float, *, policy: PaymentPolicy | None = None) -> Gate:
        """May a caller send now? See :class:`Gate`.

        Args:
            now: ``time.monotonic()``.
            policy: This caller's policy (``max_wait``, ``probe_interval``); the circuit's default
                when ``None``. Clients that share a key may pass different policies.
        """
        pol = policy or self.policy
        with self._lock:
            if self._rejected is not None:
                at, cls, args, state = self._rejected
                if now - at < REJECTED_FOR:
                    error = cls.__new__(cls, *args)
                    error.args = args
                    error.__dict__.update(state)
                    return Gate("rejected", 0.0, None, error)
                self._rejected = None
                self._known = False
            if not self._open:
                if self._known:
                    return Gate("send")
                if self._probe_started is not None and now - self._probe_started >= self.probe_lease:
                    self._probe_started = None
                if self._probe_started is None:
                    self._probe_started = now
                    return Gate("probe", 0.0, None)
                return Gate("wait", FIRST_ANSWER_POLL, None)
            started = self._outage_started if self._outage_started is not None else now
            if self._probe_started is not None and now - self._probe_started >= self.probe_lease:
                logger.warning("payment probe for key %s never reported back; freeing its slot", self.fingerprint)
                self._probe_started = None
            if self._probe_started is None and now >= self._next_probe_at:
                self._probe_started = now
                return Gate("probe", 0.0, started)
            waited = now - started
            if waited >= pol.max_wait:
                return Gate("fail", 0.0, started)
            slot = self._next_probe_at - now if self._probe_started is None else min(pol.probe_interval, PROBE_POLL)
            wait_s = min(slot, pol.probe_interval, pol.max_wait - waited)
            return Gate("wait", max(wait_s, _MIN_WAIT), started)

    def on_success(self, now: float, *, probe: bool, sent_at: float | None = None) -> None:
        """A request on this key succeeded (call it as soon as a 2xx status arrives).

        A probe's success closes the circuit. A non-probe success closes it only when ``sent_at``
        is given and the request was sent after the outage began; otherwise it may be a request
        admitted before the balance ran out, which proves nothing.
        """
        with self._lock:
            if probe:
                self._probe_started = None
            self._known = True
            if not self._open:
                return
            started = self._outage_started if self._outage_started is not None else now
            if not probe and (sent_at is None or sent_at < started):
                return
            self._open = False
            self._outage_started = None
            self._probe_started = None
            self._closed_at = now
        logger.info("credit is back for key %s after %.1f s; payment circuit closed", self.fingerprint, now - started)

    def on_payment_required(
        self, now: float, *, probe: bool, sent_at: float | None = None, policy: PaymentPolicy | None = None
    ) -> bool:
        """A request on this key got 402. Returns ``True`` exactly once per outage (call the hook then).

        Opens the circuit if closed. A failed probe frees the probe slot and schedules the next
        probe ``probe_interval`` later. A 402 of a request sent (``sent_at``) before the circuit
        last closed is stale and ignored.
        """
        interval = (policy or self.policy).probe_interval
        with self._lock:
            if probe:
                self._probe_started = None
            self._known = True
            if self._open:
                if probe:
                    self._next_probe_at = now + interval
                return False
            if sent_at is not None and sent_at < self._closed_at:
                return False
            self._open = True
            self._outage_started = now
            self._next_probe_at = now + interval
            self._probe_started = None
            self._outages += 1
        logger.warning("402 payment required for key %s: payment circuit open", self.fingerprint)
        return True

    def on_rejected(self, now: float, error: Exception) -> None:
        """The server rejected this key (401): every caller fails at once with a copy of ``error``,
        without sending, for ``REJECTED_FOR`` seconds. Waiters for the key's first answer see it too."""
        with self._lock:
            self._rejected = (now, type(error), error.args, dict(error.__dict__))
        logger.warning("401 for key %s: later calls on it fail without sending", self.fingerprint)

    def on_probe_done(self, now: float) -> None:
        """The probe ended with neither success nor 402 (5xx, timeout, 429, cancellation): free its slot.

        The next caller may probe at once; call it from a ``finally`` so a slot is never held.
        """
        del now  # the schedule does not change: the probe said nothing about the balance
        with self._lock:
            self._probe_started = None


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
