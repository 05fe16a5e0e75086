"""Table-driven tests of the retry decisions (sans-IO: fake rng, no sleeping)."""

from __future__ import annotations

import dataclasses
import email.utils
import random
from typing import Any

import pytest

from cerebras_paygo import _retry as retry_module
from cerebras_paygo._retry import (
    MAX_RETRY_AFTER,
    RESET_PAD,
    RetryAction,
    RetryPolicy,
    next_action,
    parse_retry_after,
)
from cerebras_paygo._wire import ResponseMeta
from cerebras_paygo.errors import (
    APIConnectionError,
    APITimeoutError,
    BudgetExceededError,
    CerebrasError,
    ConfigurationError,
    ContextWindowExceededError,
    LocalContextWindowExceededError,
    LocalPaymentRequiredError,
    LocalRateLimitError,
    MalformedResponseError,
    MissingAPIKeyError,
    ModelRetiredError,
    RateLimitError,
    RequestTooLargeError,
    StreamInterruptedError,
    error_from_response,
)


class FakeRng:
    """``uniform(a, b)`` returns ``a + fraction * (b - a)`` and records its arguments."""

    def __init__(self, fraction: float = 1.0) -> None:
        self.fraction = fraction
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float, /) -> float:
        self.calls.append((a, b))
        return a + self.fraction * (b - a)


def status(code: int, body: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> CerebrasError:
    return error_from_response(code, body if body is not None else {"message": f"HTTP {code}"}, headers or {}, **kw)


def decide(
    error: BaseException,
    *,
    policy: RetryPolicy | None = None,
    attempt: int = 0,
    elapsed: float = 0.0,
    delivered: bool = False,
    rng: FakeRng | None = None,
) -> RetryAction:
    return next_action(
        policy or RetryPolicy(), error, attempt=attempt, elapsed=elapsed, delivered=delivered, rng=rng or FakeRng()
    )


TOKENS_429 = {
    "message": "Tokens per minute limit exceeded - too many tokens processed.",
    "code": "token_quota_exceeded",
}
REQUESTS_429 = {
    "message": "Requests per minute limit exceeded - too many requests sent.",
    "code": "request_quota_exceeded",
}
QUEUE_429 = {"message": "We're experiencing high traffic right now! Please try again soon.", "code": "queue_exceeded"}


# --- raise at once ----------------------------------------------------------------------------

RAISE_AT_ONCE = [
    pytest.param(status(400, {"message": "bad", "code": "wrong_api_format"}), id="400"),
    pytest.param(
        status(400, {"message": "Current length is 42328 while limit is 40000", "code": "context_length_exceeded"}),
        id="400-context-server",
    ),
    pytest.param(LocalContextWindowExceededError("too long"), id="context-local"),
    pytest.param(ContextWindowExceededError("too long", local=True), id="context-concept"),
    pytest.param(LocalRateLimitError("limiter: over max_wait", quota="tokens", retry_after=2.0), id="429-local"),
    pytest.param(LocalPaymentRequiredError("circuit open past max_wait", waited=600.0), id="402-local"),
    pytest.param(status(401, {"message": "Wrong API Key", "code": "wrong_api_key"}), id="401"),
    pytest.param(status(403, {"detail": "Not authenticated"}), id="403"),
    pytest.param(status(404, {"message": "Model x does not exist", "code": "model_not_found"}), id="404"),
    pytest.param(ModelRetiredError("retired", model="llama-3.3-70b"), id="404-retired-local"),
    pytest.param(status(422, {"detail": [{"loc": ["body"], "msg": "bad"}]}), id="422"),
    pytest.param(status(418), id="418-unknown-4xx"),
    pytest.param(ConfigurationError("bad arg"), id="configuration"),
    pytest.param(MissingAPIKeyError("no key"), id="missing-key"),
    pytest.param(BudgetExceededError("budget", spent_usd=1.0, request_usd=0.5, budget_usd=1.2), id="budget"),
    pytest.param(RequestTooLargeError("big", needed=10, capacity=5, limit_name="tokens_per_minute"), id="too-large"),
    pytest.param(CerebrasError("something else"), id="plain-cerebras-error"),
    pytest.param(RuntimeError("not ours"), id="foreign-exception"),
]


@pytest.mark.parametrize("error", RAISE_AT_ONCE)
def test_not_retryable_errors_raise_at_once(error: BaseException) -> None:
    rng = FakeRng()
    action = decide(error, rng=rng)
    assert action.kind == "raise"
    assert action.delay == 0.0
    assert action.reason
    assert rng.calls == []


# --- backoff ----------------------------------------------------------------------------------

BACKOFF = [
    pytest.param(status(500), id="500"),
    pytest.param(status(502), id="502"),
    pytest.param(status(503), id="503"),
    pytest.param(status(504), id="504"),
    pytest.param(status(408), id="408"),
    pytest.param(status(409), id="409"),
    pytest.param(status(400, {"message": "boom", "status_code": 500}), id="500-from-body-status"),
    pytest.param(APIConnectionError("connection refused"), id="connection"),
    pytest.param(APITimeoutError("read timeout"), id="timeout"),
    pytest.param(MalformedResponseError("truncated JSON", status_code=200), id="malformed-200"),
    pytest.param(MalformedResponseError("empty 307", status_code=307, maybe_admitted=False), id="malformed-307"),
]


@pytest.mark.parametrize("error", BACKOFF)
@pytest.mark.parametrize(
    ("attempt", "cap"),
    [(0, 0.5), (1, 1.0)],
)
def test_retryable_errors_back_off_with_full_jitter(error: BaseException, attempt: int, cap: float) -> None:
    rng = FakeRng(0.5)
    action = decide(error, attempt=attempt, rng=rng)
    assert action.kind == "backoff"
    assert rng.calls == [(0.0, cap)]
    assert action.delay == pytest.approx(cap / 2)


@pytest.mark.parametrize("error", BACKOFF)
def test_retryable_errors_stop_after_max_retries(error: BaseException) -> None:
    assert decide(error, attempt=1).kind == "backoff"
    action = decide(error, attempt=2)
    assert action.kind == "raise"
    assert "max_retries=2" in action.reason


@pytest.mark.parametrize("error", BACKOFF)
def test_after_first_byte_nothing_is_retried(error: BaseException) -> None:
    assert decide(error, delivered=True).kind == "raise"


@pytest.mark.parametrize(
    ("attempt", "cap"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (10, 8.0), (5000, 8.0)],
)
def test_backoff_cap_doubles_up_to_backoff_max(attempt: int, cap: float) -> None:
    rng = FakeRng(1.0)
    action = decide(status(503), policy=RetryPolicy(max_retries=10_000), attempt=attempt, rng=rng)
    assert action.kind == "backoff"
    assert action.delay == pytest.approx(cap)
    assert rng.calls == [(0.0, cap)]


def test_full_jitter_with_a_real_rng_stays_in_range() -> None:
    rng = random.Random(7)
    policy = RetryPolicy(max_retries=100)
    for attempt in range(20):
        action = next_action(policy, status(500), attempt=attempt, elapsed=0.0, delivered=False, rng=rng)
        assert 0.0 <= action.delay <= policy.backoff_cap(attempt)


def test_max_retries_zero_never_backs_off() -> None:
    assert decide(status(503), policy=RetryPolicy(max_retries=0)).kind == "raise"
    assert decide(APIConnectionError("reset"), policy=RetryPolicy(max_retries=0)).kind == "raise"


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "2.5"}, 2.5),
        ({"retry-after": "500"}, 0.25),  # over 120 s: ignored, jittered backoff (fraction 0.5 of 0.5)
        ({"retry-after": "0"}, 0.25),
    ],
)
def test_5xx_honours_retry_after(headers: dict[str, str], delay: float) -> None:
    action = decide(status(503, headers=headers), rng=FakeRng(0.5))
    assert action.kind == "backoff"
    assert action.delay == pytest.approx(delay)


def test_5xx_retry_after_crossing_the_deadline_raises() -> None:
    action = decide(status(503, headers={"retry-after": "30"}), policy=RetryPolicy(deadline=20.0))
    assert action.kind == "raise"
    assert "deadline" in action.reason


# --- delivered / stream interrupted -----------------------------------------------------------

DELIVERED = [
    pytest.param(StreamInterruptedError("broke", delivered_chunks=3), False, id="stream-interrupted"),
    pytest.param(StreamInterruptedError("broke", delivered_chunks=0), False, id="stream-interrupted-0-chunks"),
    pytest.param(APIConnectionError("reset"), True, id="connection-after-first-byte"),
    pytest.param(APITimeoutError("read timeout"), True, id="timeout-after-first-byte"),
    pytest.param(status(500), True, id="500-mid-stream"),
    pytest.param(status(429, TOKENS_429, retry_after=1.0), True, id="429-mid-stream"),
    pytest.param(status(402), True, id="402-mid-stream"),
]


@pytest.mark.parametrize(("error", "delivered"), DELIVERED)
def test_errors_after_content_was_delivered_are_never_retried(error: BaseException, delivered: bool) -> None:
    action = decide(error, delivered=delivered, policy=RetryPolicy(max_retries=5, deadline=600))
    assert action.kind == "raise"
    assert "delivered" in action.reason


# --- 402 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-should-retry": "false"}, {"x-should-retry": "true"}, {"retry-after": "5"}],
)
def test_402_goes_to_the_payment_circuit(headers: dict[str, str]) -> None:
    body = {
        "message": "Payment required to access this resource. Visit your billing tab.",
        "type": "payment_required_error",
        "param": "quota",
        "code": "payment_required",
    }
    action = decide(status(402, body, headers), attempt=50, policy=RetryPolicy(max_retries=0))
    assert action == RetryAction("payment", 0.0, action.reason)
    assert "payment" in action.reason


# --- x-should-retry --------------------------------------------------------------------------

SHOULD_RETRY = [
    pytest.param(status(503, headers={"x-should-retry": "false"}), "raise", id="503-false"),
    pytest.param(status(429, TOKENS_429, {"x-should-retry": "false"}, retry_after=1.0), "raise", id="429-false"),
    pytest.param(status(408, headers={"X-Should-Retry": "False"}), "raise", id="408-false-mixed-case"),
    pytest.param(status(400, headers={"x-should-retry": "true"}), "backoff", id="400-true"),
    pytest.param(status(401, headers={"x-should-retry": "true"}), "backoff", id="401-true"),
    pytest.param(status(404, headers={"x-should-retry": "true"}), "backoff", id="404-true"),
    pytest.param(status(503, headers={"x-should-retry": "true"}), "backoff", id="503-true"),
    pytest.param(status(503, headers={"x-should-retry": "maybe"}), "backoff", id="503-garbage-ignored"),
    pytest.param(status(400, headers={"x-should-retry": "maybe"}), "raise", id="400-garbage-ignored"),
]


@pytest.mark.parametrize(("error", "kind"), SHOULD_RETRY)
def test_x_should_retry_is_honoured(error: BaseException, kind: str) -> None:
    assert decide(error).kind == kind


def test_x_should_retry_true_is_still_bounded_by_max_retries() -> None:
    error = status(400, headers={"x-should-retry": "true"})
    assert decide(error, attempt=1).kind == "backoff"
    assert decide(error, attempt=2).kind == "raise"


# --- 429 ---------------------------------------------------------------------------------------

RATE_LIMITED = [
    pytest.param(status(429, TOKENS_429, retry_after=7.0), 7.0, "retry-after", id="retry_after-attribute"),
    pytest.param(status(429, TOKENS_429, {"retry-after": "4"}), 4.0, "retry-after", id="retry-after-header"),
    pytest.param(status(429, TOKENS_429, {"retry-after-ms": "250"}), 0.25, "retry-after", id="retry-after-ms"),
    pytest.param(
        status(429, TOKENS_429, {"x-ratelimit-reset-tokens-minute": "11.5", "x-ratelimit-reset-requests-day": "30000"}),
        11.5 + RESET_PAD,
        "x-ratelimit-reset-tokens-minute",
        id="tokens-minute-reset",
    ),
    pytest.param(
        status(
            429,
            REQUESTS_429,
            {"x-ratelimit-reset-requests-minute": "21", "x-ratelimit-reset-tokens-minute": "2"},
        ),
        21 + RESET_PAD,
        "x-ratelimit-reset-requests-minute",
        id="requests-minute-reset",
    ),
    pytest.param(
        status(
            429,
            {"message": "Requests per second limit exceeded", "code": "request_quota_exceeded"},
            {"x-ratelimit-reset-requests-minute": "3"},
        ),
        3 + RESET_PAD,
        "x-ratelimit-reset-requests-minute",
        id="requests-per-second-maps-to-minute",
    ),
    pytest.param(
        status(
            429,
            {"message": "Too many requests", "code": "request_quota_exceeded"},
            {
                "x-ratelimit-remaining-requests-day": "0",
                "x-ratelimit-reset-requests-day": "90",
                "x-ratelimit-remaining-requests-minute": "5",
                "x-ratelimit-reset-requests-minute": "10",
            },
        ),
        90 + RESET_PAD,
        "x-ratelimit-reset-requests-day",
        id="requests-day-exhausted",
    ),
    pytest.param(
        status(
            429,
            {"message": "Tokens per day limit exceeded", "code": "token_quota_exceeded"},
            {"x-ratelimit-reset-tokens-minute": "10", "x-ratelimit-reset-tokens-day": "100"},
        ),
        100 + RESET_PAD,
        "x-ratelimit-reset-tokens-day",
        id="tokens-day-from-message",
    ),
    pytest.param(
        status(
            429,
            {"message": "quota"},
            {
                "x-ratelimit-remaining-tokens-minute": "0",
                "x-ratelimit-reset-tokens-minute": "12",
                "x-ratelimit-remaining-requests-day": "100",
                "x-ratelimit-reset-requests-day": "5000",
            },
        ),
        12 + RESET_PAD,
        "x-ratelimit-reset-tokens-minute",
        id="unknown-quota-exhausted-window",
    ),
    pytest.param(
        status(
            429,
            {"message": "quota"},
            {"x-ratelimit-reset-tokens-minute": "12", "x-ratelimit-reset-requests-minute": "40"},
        ),
        40 + RESET_PAD,
        "x-ratelimit-reset-requests-minute",
        id="unknown-quota-longest-minute-reset",
    ),
]


@pytest.mark.parametrize(("error", "delay", "source"), RATE_LIMITED)
def test_429_waits_for_the_advised_time(error: BaseException, delay: float, source: str) -> None:
    rng = FakeRng()
    action = decide(error, rng=rng)
    assert action.kind == "rate_limited"
    assert action.delay == pytest.approx(delay)
    assert source in action.reason
    assert rng.calls == []


NO_HINT_429 = [
    pytest.param(status(429, TOKENS_429), id="no-headers"),
    pytest.param(status(429, QUEUE_429, {"x-ratelimit-reset-tokens-minute": "30"}), id="queue-ignores-resets"),
    pytest.param(status(429, TOKENS_429, {"x-ratelimit-reset-tokens-minute": "0"}), id="zero-reset"),
    pytest.param(status(429, TOKENS_429, {"x-ratelimit-reset-tokens-minute": "soon"}), id="garbage-reset"),
    pytest.param(status(429, TOKENS_429, {"retry-after": "600"}), id="retry-after-too-long"),
]


@pytest.mark.parametrize("error", NO_HINT_429)
@pytest.mark.parametrize(("attempt", "cap"), [(0, 0.5), (2, 2.0), (5, 8.0)])
def test_429_without_a_hint_uses_equal_jitter_backoff(error: BaseException, attempt: int, cap: float) -> None:
    rng = FakeRng(0.0)
    action = decide(error, attempt=attempt, rng=rng)
    assert action.kind == "rate_limited"
    assert action.delay == pytest.approx(cap / 2)  # never an instant retry
    assert rng.calls == [(0.0, cap / 2)]


@pytest.mark.parametrize(
    ("max_retries", "waits"),
    [(0, 6), (2, 6), (6, 6), (9, 9)],
)
def test_429_without_deadline_allows_max_of_max_retries_and_6_waits(max_retries: int, waits: int) -> None:
    policy = RetryPolicy(max_retries=max_retries)
    error = status(429, TOKENS_429, retry_after=1.0)
    kinds = [decide(error, policy=policy, attempt=a).kind for a in range(waits + 2)]
    assert kinds == ["rate_limited"] * waits + ["raise", "raise"]


def test_429_with_deadline_is_bounded_by_the_deadline_not_max_retries() -> None:
    policy = RetryPolicy(max_retries=0, deadline=300.0)
    error = status(429, TOKENS_429, {"x-ratelimit-reset-tokens-minute": "10"})
    assert decide(error, policy=policy, attempt=100, elapsed=100.0).kind == "rate_limited"
    action = decide(error, policy=policy, attempt=100, elapsed=295.0)
    assert action.kind == "raise"
    assert "deadline" in action.reason


def test_429_long_reset_waited_out_only_within_a_deadline() -> None:
    error = status(
        429,
        {"message": "Requests per day limit exceeded", "code": "request_quota_exceeded"},
        {"x-ratelimit-reset-requests-day": "3600"},
    )
    no_deadline = decide(error)
    assert no_deadline.kind == "raise"
    assert "3600" in no_deadline.reason
    assert decide(error, policy=RetryPolicy(deadline=4000.0)).delay == pytest.approx(3600 + RESET_PAD)
    assert decide(error, policy=RetryPolicy(deadline=3000.0)).kind == "raise"


def test_429_exactly_at_the_deadline_still_waits() -> None:
    error = status(429, TOKENS_429, retry_after=5.0)
    assert decide(error, policy=RetryPolicy(deadline=10.0), elapsed=5.0).kind == "rate_limited"
    assert decide(error, policy=RetryPolicy(deadline=10.0), elapsed=5.01).kind == "raise"


def test_deadline_zero_never_waits() -> None:
    policy = RetryPolicy(deadline=0.0)
    assert decide(status(429, TOKENS_429, retry_after=1.0), policy=policy).kind == "raise"
    assert decide(status(503), policy=policy, rng=FakeRng(1.0)).kind == "raise"


def test_backoff_delay_crossing_the_deadline_raises() -> None:
    policy = RetryPolicy(deadline=10.0)
    assert decide(status(503), policy=policy, elapsed=9.8, rng=FakeRng(1.0)).kind == "raise"
    assert decide(status(503), policy=policy, elapsed=9.8, rng=FakeRng(0.1)).kind == "backoff"


def test_rate_limit_error_from_body_status_code_is_waited_out() -> None:
    # An SSE error event before the first chunk carries status_code 429 in the body.
    error = status(200, {"status_code": 429, "message": "Tokens per minute limit exceeded"}, retry_after=2.0)
    assert isinstance(error, RateLimitError)
    assert decide(error).kind == "rate_limited"


# --- parse_retry_after ------------------------------------------------------------------------

NOW = 1_800_000_000.0


def http_date(offset: float) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        (None, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": " 2.75 "}, 2.75),
        ({"Retry-After": "3"}, 3.0),
        ({"RETRY-AFTER-MS": "100"}, 0.1),
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": "120.5"}, None),
        ({"retry-after": "0"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after-ms": "0"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": http_date(30)}, 30.0),
        ({"retry-after": http_date(-30)}, None),
        ({"retry-after": http_date(600)}, None),
        ({"retry-after": http_date(45).replace("GMT", "-0000")}, 45.0),
        ({"retry-after": "Mon, 99 Foo 2020 99:99:99 GMT"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    value = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected, abs=1.0)


def test_parse_retry_after_http_date_uses_the_wall_clock_by_default() -> None:
    import time

    value = parse_retry_after({"retry-after": email.utils.formatdate(time.time() + 60, usegmt=True)})
    assert value is not None
    assert 55 < value <= 61


def test_max_retry_after_is_120_seconds() -> None:
    assert MAX_RETRY_AFTER == 120.0


# --- RetryPolicy ------------------------------------------------------------------------------


def test_policy_defaults_match_the_sdk() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.backoff_base, policy.backoff_max, policy.deadline) == (2, 0.5, 8.0, None)
    assert policy.max_rate_limit_waits == 6
    assert "RetryPolicy(max_retries=2" in repr(policy)


def test_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_retries = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"max_retries": "2"},
        {"backoff_base": -0.1},
        {"backoff_max": -1},
        {"backoff_max": float("nan")},
        {"backoff_base": float("inf")},
        {"deadline": -1.0},
        {"deadline": "10"},
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)


def test_policy_accepts_zeroes() -> None:
    policy = RetryPolicy(max_retries=0, backoff_base=0, backoff_max=0, deadline=0)
    assert decide(status(503), policy=RetryPolicy(max_retries=1, backoff_base=0)).delay == 0.0
    assert policy.deadline == 0


def test_module_docstring_states_the_single_retry_layer() -> None:
    doc = retry_module.__doc__ or ""
    assert "only** retry layer" in doc
    assert "never becomes 12 requests" in doc


def test_one_429_is_one_wait_then_one_request() -> None:
    """Simulate the gateway loop: a single 429 costs exactly one more request, not a storm."""
    policy = RetryPolicy()
    responses: list[BaseException | None] = [status(429, TOKENS_429, {"x-ratelimit-reset-tokens-minute": "1.2"}), None]
    sent = 0
    waited = 0.0
    for attempt in range(20):
        sent += 1
        error = responses[attempt]
        if error is None:
            break
        action = decide(error, policy=policy, attempt=attempt, elapsed=waited)
        assert action.kind == "rate_limited"
        waited += action.delay
    assert sent == 2
    assert waited == pytest.approx(1.2 + RESET_PAD)


# --- headers are read from error.meta, parsed once at the edge ---------------------------------


def test_retry_reads_the_meta_not_the_headers() -> None:
    """The decision uses ``error.meta`` (what the transport parsed), never the raw headers again."""
    meta = ResponseMeta.from_headers(
        429, {"x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "9"}
    )
    error = error_from_response(429, TOKENS_429, meta=meta)
    action = decide(error)
    assert action.kind == "rate_limited"
    assert action.delay == pytest.approx(9 + RESET_PAD)
    stale = error_from_response(503, {"message": "x"}, meta=ResponseMeta(status_code=503, should_retry=False))
    assert decide(stale).kind == "raise"
    hinted = error_from_response(503, {"message": "x"}, meta=ResponseMeta(status_code=503, retry_after=2.5))
    assert decide(hinted, rng=FakeRng(0.0)).delay == pytest.approx(2.5)


def test_odd_rate_limit_headers_on_a_429_fall_back_to_backoff() -> None:
    """Issue 13 defect 5 on the retry path: ``inf`` resets are ignored, not raised."""
    error = status(429, TOKENS_429, {"x-ratelimit-reset-tokens-minute": "inf", "retry-after": "1e400"})
    action = decide(error, rng=FakeRng(0.0))
    assert action.kind == "rate_limited"
    assert "backoff" in action.reason


def test_malformed_answer_after_content_is_not_retried() -> None:
    error = MalformedResponseError("bad chunk", status_code=200, delivered_chunks=2)
    assert decide(error).kind == "raise"


def test_malformed_answer_honours_x_should_retry_false() -> None:
    meta = ResponseMeta(status_code=200, should_retry=False)
    assert decide(MalformedResponseError("bad", status_code=200, meta=meta)).kind == "raise"
