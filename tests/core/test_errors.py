"""The exception tree: local refusals are not APIStatusError; server errors carry their ResponseMeta."""

from __future__ import annotations

import email.utils

import pytest

from cerebras_paygo import errors
from cerebras_paygo._wire import ResponseMeta
from cerebras_paygo.errors import (
    APIContextWindowExceededError,
    APIModelNotFoundError,
    APIPaymentRequiredError,
    APIRateLimitError,
    APIStatusError,
    ContextWindowExceededError,
    LocalContextWindowExceededError,
    LocalPaymentRequiredError,
    LocalRateLimitError,
    ModelNotFoundError,
    ModelRetiredError,
    PaymentRequiredError,
    RateLimitError,
    error_from_response,
)

LOCAL = [
    (LocalRateLimitError("local rate limit", quota="tokens", retry_after=3.0), RateLimitError),
    (LocalPaymentRequiredError("still no credit", waited=600.0), PaymentRequiredError),
    (LocalContextWindowExceededError("Current length is 9000 while limit is 8192"), ContextWindowExceededError),
    (ModelRetiredError("retired", model="llama-3.3-70b", replacement="gpt-oss-120b"), ModelNotFoundError),
]


@pytest.mark.parametrize(("error", "concept"), LOCAL)
def test_local_refusals_are_caught_by_their_concept_but_not_as_status_errors(
    error: errors.CerebrasError, concept: type
) -> None:
    assert isinstance(error, concept)
    assert not isinstance(error, APIStatusError)
    assert error.status_code is None
    with pytest.raises(concept):
        raise error
    with pytest.raises(errors.CerebrasError):
        try:
            raise error
        except APIStatusError:  # must not catch a refusal that never had a response
            pytest.fail("a local refusal was caught as an APIStatusError")


SERVER = [
    (429, {"message": "Tokens per minute limit exceeded", "code": "token_quota_exceeded"}, APIRateLimitError,
     RateLimitError),
    (402, {"message": "Payment required", "code": "payment_required"}, APIPaymentRequiredError, PaymentRequiredError),
    (400, {"message": "Current length is 42328 while limit is 40000", "code": "context_length_exceeded"},
     APIContextWindowExceededError, ContextWindowExceededError),
    (404, {"message": "Model x does not exist", "code": "model_not_found"}, APIModelNotFoundError, ModelNotFoundError),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "cls", "concept"), SERVER)
def test_server_errors_are_both_status_errors_and_their_concept(
    status: int, body: dict[str, str], cls: type, concept: type
) -> None:
    error = error_from_response(status, body, {"X-Request-Id": "req-9", "x-ratelimit-remaining-tokens-minute": "5"})
    assert type(error) is cls
    assert isinstance(error, APIStatusError) and isinstance(error, concept)
    assert error.status_code == status
    assert error.request_id == "req-9"
    assert error.meta.status_code == status
    assert error.meta.rate_limits.remaining == {"tokens-minute": 5}
    assert error.headers["x-request-id"] == "req-9"  # lowercase names


def test_local_context_error_keeps_local_true_and_server_one_false() -> None:
    assert LocalContextWindowExceededError("x", current_length=9000, limit=8192).local is True
    server = error_from_response(400, {"message": "Current length is 10 while limit is 5"})
    assert isinstance(server, ContextWindowExceededError) and server.local is False
    assert (server.current_length, server.limit) == (10, 5)


def test_server_429_fills_retry_after_from_its_headers() -> None:
    """Before: RateLimitError.retry_after was always None for a server 429."""
    error = error_from_response(429, {"message": "quota"}, {"retry-after-ms": "1500"})
    assert isinstance(error, APIRateLimitError)
    assert error.retry_after == pytest.approx(1.5)
    assert error_from_response(429, {"message": "quota"}, {"retry-after": "600"}).retry_after is None
    assert error_from_response(429, {"message": "q"}, {"retry-after": "1"}, retry_after=4.0).retry_after == 4.0


def test_error_keeps_the_meta_it_was_given() -> None:
    meta = ResponseMeta.from_headers(503, {"x-should-retry": "false", "cf-ray": "ray-1"})
    error = error_from_response(503, None, meta=meta)
    assert error.meta is meta
    assert error.request_id == "ray-1"
    assert error.meta.should_retry is False


def test_body_status_code_that_is_a_bool_is_ignored() -> None:
    assert error_from_response(503, {"message": "x", "status_code": True}).status_code == 503


def test_huge_lengths_in_a_context_message_do_not_raise() -> None:
    message = "Current length is " + "9" * 5000 + " while limit is 5"
    error = error_from_response(400, {"message": message, "code": "context_length_exceeded"})
    assert isinstance(error, APIContextWindowExceededError)
    assert error.current_length is None


def test_connection_errors_say_whether_the_request_may_have_been_admitted() -> None:
    assert errors.APIConnectionError("x").maybe_admitted is True  # the safe side when nobody says
    assert errors.APIConnectionError("x", maybe_admitted=False).maybe_admitted is False
    timeout = errors.StreamTimeoutError("late", bound="deadline", delivered_chunks=2)
    assert isinstance(timeout, errors.APITimeoutError) and isinstance(timeout, errors.StreamInterruptedError)
    assert (timeout.bound, timeout.delivered_chunks) == ("deadline", 2)


def test_every_public_error_is_exported() -> None:
    import cerebras_paygo

    for name in errors.__all__:
        assert getattr(cerebras_paygo, name) is getattr(errors, name)


# --- ResponseMeta --------------------------------------------------------------------------------

NOW, WALL = 100.0, 1_800_000_000.0


def test_response_meta_from_raw_one_pass() -> None:
    raw = [
        (b"X-RateLimit-Limit-Tokens-Minute", b"60000"),
        (b"x-ratelimit-remaining-tokens-minute", b"59000.9"),
        (b"x-ratelimit-reset-tokens-minute", b"11.38"),
        (b"x-ratelimit-reset-requests-day", b"inf"),
        (b"Set-Cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"X-Should-Retry", b" TRUE "),
        (b"cf-ray", b"ray-7"),
        (b"Retry-After", email.utils.formatdate(WALL + 30, usegmt=True).encode()),
    ]
    meta = ResponseMeta.from_raw(200, raw, now=NOW, wall=WALL)
    assert meta.status_code == 200
    assert meta.rate_limits.limit == {"tokens-minute": 60000}
    assert meta.rate_limits.remaining == {"tokens-minute": 59000}
    assert meta.rate_limits.reset == {"tokens-minute": 11.38}
    assert meta.rate_limits.received_at == NOW == meta.received_at
    assert meta.headers["set-cookie"] == "a=1, b=2"
    assert meta.should_retry is True
    assert meta.request_id == "ray-7"
    assert meta.retry_after == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "abc", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "1e400", "retry-after": "3"}, 3.0),
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": "121"}, None),
        ({"retry-after": "0"}, None),
        ({"retry-after": "1e400"}, None),
        ({"retry-after": "Mon, 99 Foo 2020 99:99:99 GMT"}, None),
        ({}, None),
    ],
)
def test_response_meta_retry_after(headers: dict[str, str], expected: float | None) -> None:
    value = ResponseMeta.from_headers(429, headers, now=NOW, wall=WALL).retry_after
    assert value == (None if expected is None else pytest.approx(expected))


def test_response_meta_is_frozen_and_slotted() -> None:
    meta = ResponseMeta(status_code=200)
    with pytest.raises(AttributeError):
        meta.status_code = 500  # type: ignore[misc]
    assert not hasattr(meta, "__dict__")
    assert meta.rate_limits.empty and meta.request_id is None and meta.should_retry is None
