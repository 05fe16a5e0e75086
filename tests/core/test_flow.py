"""The call flow as a table: every way an attempt ends -> the lease's fate and the flow's next step.

No sockets and no sleeping: the flow is driven by hand with a fake clock. Shared-state steps run
against the real in-process limiter, circuit, budget and meter (``step.run()``); the I/O steps
(``Send``, ``Relay``) are answered with what a transport would return, or have its error thrown in.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from cerebras_paygo import errors
from cerebras_paygo._billing import Budget, BudgetGuard, SpendMeter
from cerebras_paygo._catalog import default_catalog
from cerebras_paygo._context import TokenEstimator
from cerebras_paygo._flow import SEND_POLL_S, CallConfig, CallFlow
from cerebras_paygo._http import Response
from cerebras_paygo._lease import Lease, Outcome
from cerebras_paygo._payment import PaymentCircuit, PaymentPolicy
from cerebras_paygo._ratelimit import MemoryLimiter, RateLimits, Scope
from cerebras_paygo._retry import RetryPolicy
from cerebras_paygo._settings import Settings
from cerebras_paygo._steps import (
    Acquire,
    CheckCircuit,
    Close,
    ConsumerClosed,
    Credit,
    Emit,
    HoldBudget,
    Pause,
    Relay,
    Relayed,
    Route,
    RunHook,
    Send,
    SendDelay,
    SharedStep,
    Sleep,
    StreamResult,
)
from cerebras_paygo._tier import KeyTier
from cerebras_paygo._wire import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Message,
    RateLimitSnapshot,
    ResponseMeta,
    Usage,
)

MODEL = "gpt-oss-120b"
USAGE = Usage(prompt_tokens=40, completion_tokens=10, total_tokens=50)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """One flow and the real shared state it runs on, driven step by step."""

    flow: CallFlow
    clock: Clock
    limiter: MemoryLimiter
    circuit: PaymentCircuit
    budget: BudgetGuard | None
    meter: SpendMeter
    log: list[Any] = field(default_factory=list)
    step: Any = None
    done: bool = False

    def __post_init__(self) -> None:
        self._gen = self.flow.steps()
        self.step = next(self._gen)

    def _perform(self, step: Any) -> Any:
        if isinstance(step, Sleep):
            self.clock.now += step.seconds
            return None
        if isinstance(step, SharedStep):
            return step.run()
        raise AssertionError(f"the test must answer {step!r}")

    def _perform_current(self) -> None:
        """Perform the current step as a shell does: its outcome goes in, or its error is thrown in."""
        try:
            value = self._perform(self.step)
        except Exception as exc:
            error = exc
            self._advance(lambda: self._gen.throw(error))
        else:
            self._advance(lambda: self._gen.send(value))

    def until(self, *kinds: type) -> Any:
        """Perform steps until the current one is of ``kinds`` (or an I/O step the test answers)."""
        while not isinstance(self.step, kinds):
            if self.done or isinstance(self.step, (Send, Relay, RunHook, Emit)):
                raise AssertionError(f"reached {self.step!r} while waiting for {kinds}")
            self._perform_current()
        return self.step

    def answer(self, value: Any) -> None:
        self._advance(lambda: self._gen.send(value))

    def throw(self, exc: BaseException) -> None:
        """Throw ``exc`` in (as if the current I/O step failed), then perform the lease's ``Close``."""
        self._advance(lambda: self._gen.throw(exc))
        if isinstance(self.step, Close):
            self._perform_current()

    def _advance(self, move: Callable[[], Any]) -> None:
        self.log.append(self.step)
        try:
            self.step = move()
        except StopIteration:
            self.done, self.step = True, None

    def finish(self) -> None:
        """Perform shared steps and sleeps to the end (the flow must not need the test any more)."""
        while not self.done:
            if isinstance(self.step, Emit):
                self.answer(None)
                continue
            self._perform_current()

    @property
    def closes(self) -> list[Close]:
        return [s for s in self.log if isinstance(s, Close)]

    def send_plain(self, usage: Usage | None = USAGE, headers: dict[str, str] | None = None) -> None:
        self.until(Send)
        completion = ChatCompletion.model_validate(
            {
                "id": "c1",
                "model": MODEL,
                "created": 1,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": None if usage is None else usage.model_dump(),
            }
        )
        meta = ResponseMeta.from_headers(200, {"x-request-id": "req-1", **(headers or {})}, now=self.clock.now)
        self.answer(Response(data=completion, meta=meta))


@dataclass
class WireStream:
    """Stands for an open SSE response: the flow only reads how many content chunks it delivered."""

    delivered_chunks: int = 0


def one_tier_route(
    settings: Settings, scope: Scope, limits: RateLimits, circuit: PaymentCircuit, *, fallback: bool = False
) -> Route:
    """A route whose limits are ``limits`` on either tier, on a key of ``settings.tier``."""
    return Route(settings, scope, {"paygo": limits, "free": limits}, circuit, KeyTier(settings.tier), fallback=fallback)


def make(
    *,
    stream: bool = False,
    max_spend_usd: float | None = None,
    limits: RateLimits | None = None,
    retry: RetryPolicy | None = None,
    payment: PaymentPolicy | None = None,
    overflow: str = "raise",
    known_key: bool = True,
    messages: list[Message] | None = None,
    fallback: bool = False,
    max_completion_tokens: int = 100,
) -> Harness:
    clock = Clock()
    policy = payment or PaymentPolicy(max_wait=10.0, probe_interval=1.0)
    limiter = MemoryLimiter(clock=clock, rng=random.Random(0), max_pause_jitter=0.0)
    settings = Settings(api_key=SecretStr("csk-test"), base_url="http://127.0.0.1:9", tier="paygo")
    circuit = PaymentCircuit(settings.fingerprint, policy)
    if known_key:
        circuit.on_success(clock(), probe=False)
    scope = Scope(base_url=settings.base_url, key_fingerprint=settings.fingerprint, model=MODEL)
    route = one_tier_route(
        settings, scope, limits or RateLimits(tokens_per_minute=100_000, requests_per_minute=100), circuit
    )
    backup = None
    if fallback:
        free = Settings(api_key=SecretStr("csk-free"), base_url="http://127.0.0.1:9", tier="free")
        backup = one_tier_route(
            free,
            Scope(base_url=free.base_url, key_fingerprint=free.fingerprint, model=MODEL),
            RateLimits(tokens_per_minute=60_000),
            PaymentCircuit(free.fingerprint, policy),
            fallback=True,
        )
    meter = SpendMeter()
    budget = BudgetGuard(Budget(max_spend_usd=max_spend_usd), meter) if max_spend_usd is not None else None
    config = CallConfig(
        spec=default_catalog().get(MODEL),
        primary=route,
        fallback=backup,
        retry=retry or RetryPolicy(max_retries=2, deadline=None),
        payment=policy,
        overflow=overflow,  # type: ignore[arg-type]
        window=None,
        estimator=TokenEstimator(),
        limiter=limiter,
        meter=meter,
        budget=budget,
        clock=clock,
        rng=lambda: random.Random(7),
    )
    request = ChatCompletionRequest(
        model=MODEL,
        messages=messages or [Message(role="user", content="hello")],
        max_completion_tokens=max_completion_tokens,
    )
    flow = CallFlow(config, request, stream=stream)
    return Harness(flow, clock, limiter, circuit, budget, meter)


def in_use(h: Harness) -> float:
    """Tokens the scope's minute bucket has booked right now (0: everything came back)."""
    [stats] = [s for s in h.limiter.stats() if s.limit == "tokens_per_minute"]
    return stats.capacity - stats.level


def status_error(cls: type[errors.APIStatusError], status: int, headers: dict[str, str] | None = None) -> Any:
    return cls(f"HTTP {status}", status_code=status, headers=headers or {})


def connection_error(*, maybe_admitted: bool, timeout: bool = False) -> errors.APIConnectionError:
    cls = errors.APITimeoutError if timeout else errors.APIConnectionError
    return cls("read timed out" if maybe_admitted else "connection refused", maybe_admitted=maybe_admitted)


# --- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    error: Callable[[], BaseException]
    tokens: str
    budget: str
    next_step: type | None  # None: the error is raised to the caller
    stage: str = "send"  # where the error is thrown in: "send" (in flight) or "queued"


ROWS = [
    Row(
        "429 with retry-after",
        lambda: status_error(errors.APIRateLimitError, 429, {"retry-after": "2"}),
        "release",
        "release",
        Pause,
    ),
    Row("429 without headers", lambda: status_error(errors.APIRateLimitError, 429), "release", "release", Pause),
    Row("500", lambda: status_error(errors.ServerError, 500), "release", "release", Sleep),
    Row("503", lambda: status_error(errors.ServiceUnavailableError, 503), "release", "release", Sleep),
    Row("400", lambda: status_error(errors.BadRequestError, 400), "release", "release", None),
    Row("401", lambda: status_error(errors.AuthenticationError, 401), "release", "release", None),
    Row("connection refused (never left)", lambda: connection_error(maybe_admitted=False), "release", "release", Sleep),
    Row(
        "timeout before admission",
        lambda: connection_error(maybe_admitted=False, timeout=True),
        "release",
        "release",
        Sleep,
    ),
    Row(
        "timeout after admission",
        lambda: connection_error(maybe_admitted=True, timeout=True),
        "keep",
        "worst_case",
        Sleep,
    ),
    Row("cancelled in flight", asyncio.CancelledError, "keep", "worst_case", None),
    Row("keyboard interrupt in flight", KeyboardInterrupt, "keep", "worst_case", None),
    Row("cancelled while queued", asyncio.CancelledError, "release", "release", None, stage="queued"),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_attempt_outcome_table(row: Row) -> None:
    h = make(max_spend_usd=10.0, limits=RateLimits(tokens_per_minute=200, requests_per_minute=100))
    if row.stage == "queued":
        # Fill the bucket so this booking has to wait, then cancel it during its nap.
        h.limiter.acquire(h.flow.config.primary.scope, h.flow.config.primary.limits, 199)
        h.until(Sleep)
        assert h.log and isinstance(h.log[-1], SendDelay)
    else:
        h.until(Send)
    error = row.error()
    if row.next_step is None:
        with pytest.raises(type(error)):
            h.throw(error)
    else:
        h.throw(error)
        assert isinstance(h.step, row.next_step), h.step
    [close] = h.closes
    assert close.fate.tokens == row.tokens
    assert close.fate.budget == row.budget
    assert h.budget is not None
    assert h.budget.in_flight_usd == 0.0  # the hold always comes back
    if row.budget == "worst_case":
        assert h.budget.spent_usd == pytest.approx(close.fate.worst_case_usd)
    else:
        assert h.budget.spent_usd == 0.0


def test_success_settles_to_usage_and_records_spend() -> None:
    h = make(max_spend_usd=1.0)
    h.send_plain(usage=USAGE, headers={"x-ratelimit-remaining-tokens-minute": "99000"})
    h.finish()
    [close] = h.closes
    assert (close.fate.tokens, close.fate.settle_tokens, close.fate.budget) == ("settle", 50, "settle")
    assert close.fate.snapshot is not None  # headers reach the limiter exactly once, in Close
    info = h.flow.info
    assert info is not None and info.attempts == 1 and info.request_id == "req-1"
    assert info.cost_usd == pytest.approx(h.meter.totals().cost_usd) and info.cost_usd > 0
    assert h.budget is not None and h.budget.spent_usd == pytest.approx(info.cost_usd)
    assert h.flow.completion is not None
    metadata = info.as_metadata()
    assert metadata["cost_usd"] == info.cost_usd and metadata["rate_limits"] is not None


def test_success_without_usage_keeps_the_charge() -> None:
    h = make(max_spend_usd=1.0)
    h.send_plain(usage=None)
    h.finish()
    [close] = h.closes
    assert (close.fate.tokens, close.fate.budget) == ("keep", "worst_case")
    assert close.fate.settle_tokens == h.flow._plans["paygo"].reserved_tokens
    assert h.flow.info is not None and h.flow.info.cost_usd == pytest.approx(close.fate.worst_case_usd)


def test_the_order_of_steps_of_a_plain_call() -> None:
    h = make(max_spend_usd=1.0)
    h.send_plain()
    h.finish()
    kinds = [type(s) for s in h.log]
    assert kinds == [CheckCircuit, HoldBudget, Acquire, SendDelay, Send, Credit, Close]


def test_a_stream_holds_its_last_chunk_until_the_lease_is_closed() -> None:
    h = make(stream=True)
    h.until(Send)
    assert h.step.stream is True
    assert h.flow.plan_for(h.flow.config.primary).request.stream_options == {"include_usage": True}
    h.answer(StreamResult(WireStream(delivered_chunks=3), RateLimitSnapshot(), "req-9"))
    assert isinstance(h.log[-1], Send) and isinstance(h.step, Credit)  # credit before the body
    h.until(Relay)
    last = ChatCompletionChunk.model_validate({"id": "c", "model": MODEL, "created": 1, "choices": []})
    h.answer(Relayed(usage=USAGE, last=last))
    h.until(Emit)
    assert h.flow.info is not None  # set before the last chunk reaches the caller
    assert h.step.chunk is last
    [close] = h.closes
    assert close.fate.tokens == "settle"
    h.answer(None)
    assert h.done


@pytest.mark.parametrize(("delivered", "tokens"), [(0, "keep"), (4, "keep")])
def test_cancelled_mid_stream_keeps_the_charge(delivered: int, tokens: str) -> None:
    h = make(stream=True)
    h.until(Send)
    h.answer(StreamResult(WireStream(delivered_chunks=delivered), None, None))
    h.until(Relay)
    with pytest.raises(asyncio.CancelledError):
        h.throw(asyncio.CancelledError())
    [close] = h.closes
    assert close.fate.tokens == tokens
    assert in_use(h) > 0  # the reservation stays charged; the next headers correct it


def test_a_consumer_closing_the_stream_gets_the_lease_closed() -> None:
    h = make(stream=True)
    h.until(Send)
    h.answer(StreamResult(WireStream(delivered_chunks=2), None, None))
    h.until(Relay)
    with pytest.raises(ConsumerClosed):
        h.throw(ConsumerClosed())
    [close] = h.closes
    assert close.fate.tokens == "keep"


def test_a_failure_after_the_stream_opened_closes_it_unread() -> None:
    h = make(stream=True)
    h.until(Send)
    h.answer(StreamResult(WireStream(), None, None))
    assert isinstance(h.step, Credit)
    h._advance(lambda: h._gen.throw(errors.ServerError("the circuit's backend failed", status_code=500)))
    assert isinstance(h.step, Relay) and h.step.discard
    h.answer(Relayed())
    assert isinstance(h.step, Close)


def test_stream_broken_after_content_is_raised_and_kept() -> None:
    h = make(stream=True)
    h.until(Send)
    h.answer(StreamResult(WireStream(delivered_chunks=2), None, None))
    h.until(Relay)
    with pytest.raises(errors.StreamInterruptedError):
        h.throw(errors.StreamInterruptedError("broken", delivered_chunks=2))
    assert h.closes[0].fate.tokens == "keep"


def test_stream_dropped_before_content_is_retried() -> None:
    h = make(stream=True)
    h.until(Send)
    h.answer(StreamResult(WireStream(delivered_chunks=0), None, None))
    h.until(Relay)
    h.throw(connection_error(maybe_admitted=True))
    assert isinstance(h.step, Sleep)  # a backoff, then a second attempt
    assert h.closes[0].fate.tokens == "keep"
    h.until(Send)
    assert h.flow.attempts == 2


def test_429_pauses_for_retry_after_and_retries() -> None:
    h = make()
    h.until(Send)
    h.throw(status_error(errors.APIRateLimitError, 429, {"retry-after": "2"}))
    assert isinstance(h.step, Pause) and h.step.seconds == 2.0
    h.answer(h.step.run())
    # The new booking waits out the pause, then sends.
    h.until(Send)
    assert h.clock.now >= 1002.0
    assert h.flow.retries == 1


def test_429_with_a_reset_header_waits_for_that_window() -> None:
    h = make()
    h.until(Send)
    headers = {"x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "7.5"}
    h.throw(status_error(errors.APIRateLimitError, 429, headers))
    assert isinstance(h.step, Pause) and h.step.seconds == pytest.approx(7.55)
    assert h.closes[0].fate.snapshot is not None


def test_429_past_the_deadline_is_raised() -> None:
    h = make(retry=RetryPolicy(deadline=1.0))
    h.until(Send)
    with pytest.raises(errors.RateLimitError):
        h.throw(status_error(errors.APIRateLimitError, 429, {"retry-after": "5"}))


def test_5xx_beyond_max_retries_is_raised() -> None:
    h = make(retry=RetryPolicy(max_retries=1))
    h.until(Send)
    h.throw(status_error(errors.ServerError, 500))
    h.until(Send)
    with pytest.raises(errors.ServerError):
        h.throw(status_error(errors.ServerError, 500))
    assert h.flow.attempts == 2 and len(h.closes) == 2


def test_402_opens_the_circuit_runs_the_hook_once_and_waits_for_a_probe() -> None:
    calls: list[Any] = []
    h = make(payment=PaymentPolicy(max_wait=30.0, probe_interval=2.0, on_payment_required=calls.append))
    h.until(Send)
    h.throw(status_error(errors.APIPaymentRequiredError, 402))
    [close] = h.closes
    assert (close.fate.tokens, close.fate.circuit) == ("release", "payment")
    assert isinstance(h.step, RunHook) and h.step.info["key_fingerprint"] == h.circuit.fingerprint
    assert "csk-test" not in repr(h.step.info)
    h.answer(None)
    assert h.circuit.is_open
    # The next attempt waits for the probe slot (Sleep), then goes as the probe.
    h.until(Send)
    assert h.clock.now >= 1002.0
    assert h.log[-1].__class__ is SendDelay
    h.send_plain()
    h.finish()
    assert not h.circuit.is_open


def test_402_after_max_wait_raises_a_payment_error_that_had_no_response() -> None:
    h = make(payment=PaymentPolicy(max_wait=3.0, probe_interval=1.0))
    for _ in range(10):
        try:
            h.until(Send)
            h.throw(status_error(errors.APIPaymentRequiredError, 402))
        except errors.PaymentRequiredError as error:
            waited = error.waited
            break
    else:
        raise AssertionError("never gave up")
    assert waited >= 3.0
    assert not h.circuit.probe_in_flight


def test_fallback_key_serves_while_the_primary_has_no_credit() -> None:
    h = make(fallback=True)
    h.until(Send)
    h.throw(status_error(errors.APIPaymentRequiredError, 402))
    h.until(Send)
    assert h.step.route.fallback and h.step.route.tier == "free"
    h.send_plain()
    h.finish()
    assert h.flow.info is not None and h.flow.info.used_fallback_key


def test_first_call_on_a_new_key_is_the_probe_and_frees_it_on_a_non_402() -> None:
    h = make(known_key=False)
    h.until(Send)
    assert h.circuit.probe_in_flight
    h.throw(status_error(errors.ServerError, 500))
    assert not h.circuit.probe_in_flight  # the next caller may probe at once
    assert h.closes[0].fate.circuit == "probe_done"


def test_budget_refusal_on_a_first_call_frees_the_probe_slot() -> None:
    """A budget refusal on a key's first call used to hold the probe slot for 120 s."""
    h = make(known_key=False, max_spend_usd=0.0000001)
    with pytest.raises(errors.BudgetExceededError):
        h.until(Send)
    assert not h.circuit.probe_in_flight
    [close] = h.closes
    assert (close.fate.tokens, close.fate.budget, close.fate.circuit) == ("release", "release", "probe_done")
    assert close.fate.reservation is None


def test_budget_waits_for_in_flight_requests_that_may_free_room() -> None:
    h = make(max_spend_usd=1.0)
    assert h.budget is not None
    blocker = h.budget.reserve(0.99999)  # another call in flight holds nearly all of it
    h.until(Sleep)
    assert isinstance(h.log[-1], HoldBudget)
    h.budget.settle(blocker, 0.0001)  # it cost little: now there is room
    h.until(Send)
    assert h.budget.in_flight_usd > 0


def test_budget_wait_ends_at_the_deadline() -> None:
    h = make(max_spend_usd=1.0, retry=RetryPolicy(deadline=0.2))
    assert h.budget is not None
    h.budget.reserve(0.99999)
    with pytest.raises(errors.BudgetExceededError):
        h.until(Send)


def test_local_limiter_refusal_past_the_deadline_is_raised_and_nothing_is_held() -> None:
    h = make(limits=RateLimits(tokens_per_minute=200), retry=RetryPolicy(deadline=1.0), max_spend_usd=1.0)
    h.limiter.acquire(h.flow.config.primary.scope, h.flow.config.primary.limits, 199)
    with pytest.raises(errors.RateLimitError) as info:
        h.until(Send)
    assert info.value.type == "local_rate_limit"
    assert h.budget is not None and h.budget.in_flight_usd == 0.0


def test_a_queued_booking_naps_in_short_steps() -> None:
    h = make(limits=RateLimits(tokens_per_minute=600))
    h.limiter.acquire(h.flow.config.primary.scope, h.flow.config.primary.limits, 550)
    h.until(Send)
    naps = [s.seconds for s in h.log if isinstance(s, Sleep)]
    assert naps and max(naps) <= SEND_POLL_S
    assert h.flow.waited_s == pytest.approx(sum(naps))


def test_server_context_error_with_raise_policy_is_raised_and_teaches_the_estimator() -> None:
    h = make()
    h.until(Send)
    error = errors.APIContextWindowExceededError(
        "Current length is 140000 while limit is 131072", status_code=400, code="context_length_exceeded"
    )
    with pytest.raises(errors.ContextWindowExceededError):
        h.throw(error)
    assert h.flow.config.estimator.calibration(MODEL).observations == 1


def test_server_context_error_under_trim_plans_again_once() -> None:
    history = [Message(role="user", content=f"turn {i} " + "word " * 400) for i in range(30)]
    h = make(
        overflow="trim_history",
        messages=history,
        max_completion_tokens=1000,
        limits=RateLimits(tokens_per_minute=1_000_000),
    )
    h.until(Send)
    first = h.flow._plans["paygo"]
    error = errors.APIContextWindowExceededError(
        f"Current length is {first.window + 5000} while limit is {first.window}", status_code=400
    )
    h.throw(error)
    h.until(Send)
    second = h.flow._plans["paygo"]
    assert second.window < first.window
    with pytest.raises(errors.ContextWindowExceededError):  # only once
        h.throw(error)


def test_local_context_error_is_raised_before_any_step() -> None:
    huge = [Message(role="user", content="word " * 200_000)]
    with pytest.raises(errors.ContextWindowExceededError) as info:
        make(messages=huge)
    assert info.value.local


def test_lease_closes_once() -> None:
    h = make()
    lease = Lease(route=h.flow.config.primary, plan=h.flow._plans["paygo"], prices=h.flow.prices(h.flow.config.primary))
    lease.close(Outcome())
    with pytest.raises(RuntimeError):
        lease.close(Outcome())


def test_server_context_error_just_over_the_window_keeps_the_room_the_estimator_now_sees() -> None:
    history = [Message(role="user", content=f"turn {i} " + "word " * 400) for i in range(30)]
    h = make(
        overflow="shrink_completion",
        messages=history,
        max_completion_tokens=1000,
        limits=RateLimits(tokens_per_minute=1_000_000),
    )
    h.until(Send)
    first = h.flow._plans["paygo"]
    # The server counted fewer prompt tokens than we estimated: no extra scaling of the room.
    over = errors.APIContextWindowExceededError(
        f"Current length is {first.max_completion_tokens + 10} while limit is {first.window}", status_code=400
    )
    h.throw(over)
    h.until(Send)
    assert h.flow._window_gap["paygo"] >= 32
