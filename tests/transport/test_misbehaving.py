"""Transport and AsyncTransport against a server that misbehaves on purpose (real HTTP on loopback).

Every answer must come back as a model or a typed ``CerebrasError`` (issue 13). Each test's
docstring names the defect it pins and what the code before this change did.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cerebras_paygo import AsyncTransport, Transport, errors
from cerebras_paygo._retry import RetryPolicy, next_action
from cerebras_paygo._settings import Settings
from cerebras_paygo._wire import ChatCompletionChunk
from tests.fixtures.misbehaving_server import (
    COMPLETION,
    MisbehavingServer,
    bad_number_headers,
    dropped_after_headers,
    empty_redirect,
    hang,
    html_page,
    json_act,
    pings_forever,
    sse_act,
    trickle,
    truncated_json,
)

KEY = "csk-misbehaving-test-0123456789abcdef01"
PAYLOAD = {"model": "gpt-oss-120b", "messages": [{"role": "user", "content": "hi"}]}
MODES = ["sync", "async"]


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    srv = MisbehavingServer().start()
    yield srv
    srv.stop()


def settings(server: MisbehavingServer, timeout: float | httpx.Timeout | None = None) -> Settings:
    return Settings(api_key=KEY, base_url=server.base_url, timeout=timeout)


def chat(mode: str, server: MisbehavingServer, *, timeout: Any = None, deadline_in: float | None = None) -> Any:
    """One ``chat`` call through the sync or the async transport; returns the Response or raises."""
    config = settings(server, timeout)
    if mode == "sync":
        with Transport(config) as transport:
            deadline = None if deadline_in is None else time.monotonic() + deadline_in
            return transport.chat(PAYLOAD, deadline=deadline)

    async def run() -> Any:
        async with AsyncTransport(config) as transport:
            deadline = None if deadline_in is None else time.monotonic() + deadline_in
            return await transport.chat(PAYLOAD, deadline=deadline)

    return asyncio.run(run())


def stream(
    mode: str,
    server: MisbehavingServer,
    *,
    timeout: Any = None,
    deadline_in: float | None = None,
    first_token_in: float | None = None,
    seen: list[ChatCompletionChunk] | None = None,
) -> list[ChatCompletionChunk]:
    """Open and drain one stream; chunks are appended to ``seen`` as they arrive."""
    config = settings(server, timeout)
    chunks = seen if seen is not None else []

    def bounds() -> dict[str, float | None]:
        now = time.monotonic()
        return {
            "deadline": None if deadline_in is None else now + deadline_in,
            "first_token_deadline": None if first_token_in is None else now + first_token_in,
        }

    if mode == "sync":
        with Transport(config) as transport, transport.stream_chat(PAYLOAD, **bounds()) as response:
            chunks.extend(response)
        return chunks

    async def run() -> None:
        async with AsyncTransport(config) as transport, transport.stream_chat(PAYLOAD, **bounds()) as response:
            async for chunk in response:
                chunks.append(chunk)

    asyncio.run(run())
    return chunks


def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, **extra}],
    }


def data(payload: Any) -> bytes:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()


def assert_retried_with_backoff(error: errors.CerebrasError) -> None:
    action = next_action(RetryPolicy(), error, attempt=0, elapsed=0.0, delivered=False, rng=_Half())
    assert action.kind == "backoff", action


class _Half:
    def uniform(self, a: float, b: float, /) -> float:
        return (a + b) / 2


# --- malformed 2xx / 3xx bodies (defect 2) ----------------------------------------------------

MALFORMED_BODIES = [
    pytest.param(truncated_json(), id="truncated-json"),
    pytest.param(html_page(), id="html"),
    pytest.param(json_act({"foo": 1}), id="wrong-shape"),
    pytest.param(json_act({**COMPLETION, "choices": []}), id="no-choices"),
    pytest.param(
        json_act({**COMPLETION, "choices": [{"index": 0, "message": None, "finish_reason": "stop"}]}), id="null-message"
    ),
    pytest.param(json_act([1, 2]), id="json-array"),
    pytest.param(json_act(b""), id="empty-200"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("act", MALFORMED_BODIES)
def test_malformed_completion_body_is_typed_and_retryable(server: MisbehavingServer, mode: str, act: Any) -> None:
    """Issue 13 defect 2: a 2xx body that is not a completion.

    Before: ``pydantic_core.ValidationError`` escaped from ``ChatCompletion.model_validate_json``
    (and ``choices: []`` passed, to fail later with ``IndexError`` in the callers).
    """
    server.push(act)
    with pytest.raises(errors.MalformedResponseError) as info:
        chat(mode, server)
    error = info.value
    assert isinstance(error, errors.APIStatusError)  # it had a response
    assert error.status_code == 200 and error.meta.status_code == 200
    assert error.maybe_admitted is True  # a 2xx ran on the server: keep its quota charge
    assert error.delivered_chunks == 0
    assert_retried_with_backoff(error)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_empty_redirect_is_typed_and_not_admitted(server: MisbehavingServer, mode: str, status: int) -> None:
    """Issue 13 defect 2: a 3xx with an empty body.

    Before: ``ValidationError`` (``Invalid JSON: EOF``) from parsing the empty body as a completion.
    """
    server.push(empty_redirect(status))
    with pytest.raises(errors.MalformedResponseError) as info:
        chat(mode, server)
    error = info.value
    assert error.status_code == status
    assert error.maybe_admitted is False  # answered in front of the API
    assert "elsewhere.invalid" in error.message
    assert_retried_with_backoff(error)


@pytest.mark.parametrize("mode", MODES)
def test_redirect_on_a_stream_is_typed(server: MisbehavingServer, mode: str) -> None:
    """Issue 13 defect 2 (stream): a 307 when opening a stream.

    Before: httpx-sse raised ``SSEError`` (a transport error): mapped to a connection error that
    said nothing of the redirect.
    """
    server.push(empty_redirect(307))
    with pytest.raises(errors.MalformedResponseError) as info:
        stream(mode, server)
    assert info.value.status_code == 307


@pytest.mark.parametrize("mode", MODES)
def test_html_on_a_stream_is_typed(server: MisbehavingServer, mode: str) -> None:
    """Issue 13 defect 2 (stream): a 200 text/html page where an event stream was asked for.

    Before: ``APIConnectionError`` from httpx-sse's content-type check, though the server answered.
    """
    server.push(html_page())
    with pytest.raises(errors.MalformedResponseError) as info:
        stream(mode, server)
    assert "text/html" in info.value.message
    assert info.value.maybe_admitted is True


WRONG_SHAPE_EVENTS = [
    pytest.param(b"data: [1,2]\n\n", id="array"),
    pytest.param(b"data: 42\n\n", id="number"),
    pytest.param(data({"choices": "x"}), id="choices-string"),
    pytest.param(data(chunk({"content": 5})), id="content-number"),
    pytest.param(b'data: {"choices": [\n\n', id="truncated"),
    pytest.param(b"data: <html>\n\n", id="not-json"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("line", WRONG_SHAPE_EVENTS)
def test_wrong_shape_sse_event_before_content(server: MisbehavingServer, mode: str, line: bytes) -> None:
    """Issue 13 defect 2 (stream): an SSE ``data:`` line that is JSON of the wrong shape.

    Before: ``pydantic_core.ValidationError`` from ``ChatCompletionChunk.model_validate`` (a
    non-JSON line was an ``APIConnectionError``, though the server had answered).
    """
    server.push(sse_act(data(chunk({"role": "assistant"})), line, data(chunk({"content": "never"}))))
    seen: list[ChatCompletionChunk] = []
    with pytest.raises(errors.MalformedResponseError) as info:
        stream(mode, server, seen=seen)
    assert len(seen) == 1  # the role chunk, no content
    assert info.value.delivered_chunks == 0
    assert_retried_with_backoff(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_wrong_shape_sse_event_after_content_is_not_retried(server: MisbehavingServer, mode: str) -> None:
    """Issue 13 defect 2 (stream, after tokens): the error says how much was delivered and is final."""
    server.push(sse_act(data(chunk({"content": "Hel"})), data(chunk({"content": 5}))))
    with pytest.raises(errors.MalformedResponseError) as info:
        stream(mode, server)
    assert info.value.delivered_chunks == 1
    action = next_action(RetryPolicy(), info.value, attempt=0, elapsed=0.0, delivered=False, rng=_Half())
    assert action.kind == "raise"


@pytest.mark.parametrize("mode", MODES)
def test_truncated_last_event_at_eof_is_not_dropped(server: MisbehavingServer, mode: str) -> None:
    """A stream that ends cleanly inside an event: the cut event is parsed (and rejected), not lost.

    Before: httpx-sse dropped an event without its blank line, so the stream looked complete.
    """
    server.push(sse_act(data(chunk({"content": "Hi"}))[:-2], b'\ndata: {"id": "c", "choi'))
    with pytest.raises(errors.MalformedResponseError):
        stream(mode, server)


# --- odd rate-limit headers (defect 5) ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", ["inf", "1e400", "-inf", "nan", "abc", "-5", "1" * 400])
def test_unusable_rate_limit_header_values_are_ignored(server: MisbehavingServer, mode: str, value: str) -> None:
    """Issue 13 defect 5: ``x-ratelimit-*: inf`` or ``1e400`` crashed every call.

    Before: ``OverflowError: cannot convert float infinity to integer`` from
    ``RateLimitSnapshot.from_headers`` on every response carrying such a header.
    """
    headers = [*bad_number_headers(value), ("x-ratelimit-remaining-tokens-hour", "77"), ("x-request-id", "req-odd")]
    server.push(json_act(COMPLETION, headers=headers))
    response = chat(mode, server)
    assert response.data.choices[0].message.content == "hi"
    assert response.rate_limits.remaining == {"tokens-hour": 77}
    assert response.rate_limits.limit == {} and response.rate_limits.reset == {}
    assert response.meta.retry_after is None
    assert response.request_id == "req-odd"


@pytest.mark.parametrize("mode", MODES)
def test_odd_headers_on_a_429_still_give_a_typed_error(server: MisbehavingServer, mode: str) -> None:
    """Issue 13 defect 5 on the error path: the 429 is still an APIRateLimitError with a usable meta."""
    odd = [(name, value) for name, value in bad_number_headers("1e400") if name != "retry-after"]
    headers = [*odd, ("retry-after", "2")]  # retry-after-ms: 1e400 is unusable, so retry-after counts
    server.push(
        json_act(
            {"message": "Tokens per minute limit exceeded", "code": "token_quota_exceeded"}, status=429, headers=headers
        )
    )
    with pytest.raises(errors.APIRateLimitError) as info:
        chat(mode, server)
    assert info.value.retry_after == pytest.approx(2.0)
    assert info.value.meta.rate_limits.empty


# --- a dropped connection ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_connection_dropped_after_headers(server: MisbehavingServer, mode: str) -> None:
    """Headers promise a body, then the socket is reset: a connection error, maybe admitted
    (the request had been written)."""
    server.push(dropped_after_headers())
    with pytest.raises(errors.APIConnectionError) as info:
        chat(mode, server)
    assert not isinstance(info.value, errors.APIStatusError)
    assert info.value.maybe_admitted is True
    assert_retried_with_backoff(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_stream_dropped_after_headers(server: MisbehavingServer, mode: str) -> None:
    server.push(dropped_after_headers("text/event-stream"))
    with pytest.raises(errors.APIConnectionError) as info:
        stream(mode, server)
    assert info.value.maybe_admitted is True


# --- deadlines bound the whole response (defect 6) --------------------------------------------


def elapsed_of(fn: Any) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(errors.CerebrasError) as info:
        fn()
    return info.value, time.monotonic() - started


@pytest.mark.parametrize("mode", MODES)
def test_trickling_body_is_bounded_by_the_deadline(server: MisbehavingServer, mode: str) -> None:
    """Issue 13 defect 6: a body sent one byte every 0.3 s, timeout=1, deadline=2.

    Before: no deadline existed and httpx's read timeout restarts with every byte, so the call
    returned only after the whole body (79 s for a real completion; about 60 s for this one).
    """
    server.push(trickle(json.dumps(COMPLETION).encode(), 0.3))
    error, took = elapsed_of(lambda: chat(mode, server, timeout=1.0, deadline_in=2.0))
    assert isinstance(error, errors.APITimeoutError)
    assert error.bound == "deadline" and "deadline" in error.message
    assert error.maybe_admitted is True  # the request was written: the server may have counted it
    assert 1.9 <= took < 3.5


@pytest.mark.parametrize("mode", MODES)
def test_endless_ping_comments_are_bounded_by_the_deadline(server: MisbehavingServer, mode: str) -> None:
    """Issue 13 defect 6: an SSE stream of ``: ping`` comments ran forever.

    Before: httpx-sse swallows comments inside its iterator, the per-read timeout never fires
    (a ping arrives every 50 ms), so iteration never returned.
    """
    server.push(pings_forever(0.05, first=[data(chunk({"role": "assistant"}))]))
    error, took = elapsed_of(lambda: stream(mode, server, timeout=1.0, deadline_in=1.5))
    assert isinstance(error, errors.APITimeoutError) and not isinstance(error, errors.StreamInterruptedError)
    assert error.bound == "deadline"
    assert 1.4 <= took < 3.0


@pytest.mark.parametrize("mode", MODES)
def test_first_token_deadline_trips_before_the_deadline(server: MisbehavingServer, mode: str) -> None:
    """Issue 13 defect 6: no content, only keep-alives; the first-token bound names itself."""
    server.push(pings_forever(0.05, first=[data(chunk({"role": "assistant"}))]))
    error, took = elapsed_of(lambda: stream(mode, server, deadline_in=30.0, first_token_in=0.8))
    assert isinstance(error, errors.APITimeoutError)
    assert error.bound == "first_token_deadline" and "first_token_deadline" in error.message
    assert 0.7 <= took < 2.5


@pytest.mark.parametrize("mode", MODES)
def test_deadline_after_content_is_a_stream_timeout(server: MisbehavingServer, mode: str) -> None:
    """Once tokens were delivered the first-token bound is met; the deadline still ends the stream,
    as a StreamTimeoutError (an APITimeoutError and a StreamInterruptedError: never retried)."""
    server.push(pings_forever(0.05, first=[data(chunk({"content": "Hel"}))]))
    seen: list[ChatCompletionChunk] = []
    error, took = elapsed_of(lambda: stream(mode, server, deadline_in=1.2, first_token_in=0.5, seen=seen))
    assert isinstance(error, errors.StreamTimeoutError)
    assert isinstance(error, errors.APITimeoutError) and isinstance(error, errors.StreamInterruptedError)
    assert error.bound == "deadline" and error.delivered_chunks == 1
    assert [c.choices[0].delta.content for c in seen] == ["Hel"]
    assert 1.1 <= took < 2.5
    assert next_action(RetryPolicy(), error, attempt=0, elapsed=0, delivered=False, rng=_Half()).kind == "raise"


@pytest.mark.parametrize("mode", MODES)
def test_silent_server_is_bounded_by_the_deadline_not_the_timeout(server: MisbehavingServer, mode: str) -> None:
    """Headers never come and the 60 s read timeout is far away: the deadline (1 s) ends the call."""
    server.push(hang())
    error, took = elapsed_of(lambda: chat(mode, server, timeout=60.0, deadline_in=1.0))
    assert isinstance(error, errors.APITimeoutError) and error.bound == "deadline"
    assert error.maybe_admitted is True
    assert 0.9 <= took < 2.5


@pytest.mark.parametrize("mode", MODES)
def test_silent_body_is_bounded_by_the_deadline(server: MisbehavingServer, mode: str) -> None:
    """Headers and one byte, then nothing for 30 s: the deadline ends the call, sync included."""
    server.push(trickle(b'{"id": "x"}', 30.0))
    error, took = elapsed_of(lambda: chat(mode, server, timeout=60.0, deadline_in=1.0))
    assert isinstance(error, errors.APITimeoutError) and error.bound == "deadline"
    assert 0.9 <= took < 2.5


@pytest.mark.parametrize("mode", MODES)
def test_per_operation_timeout_is_still_httpx_s(server: MisbehavingServer, mode: str) -> None:
    """Without a deadline, ``timeout`` keeps its meaning: the silence between two reads."""
    server.push(hang())
    error, took = elapsed_of(lambda: chat(mode, server, timeout=0.5))
    assert isinstance(error, errors.APITimeoutError) and error.bound == "timeout"
    assert error.maybe_admitted is True
    assert took < 2.0


@pytest.mark.parametrize("mode", MODES)
def test_a_passed_deadline_sends_nothing(server: MisbehavingServer, mode: str) -> None:
    error, _ = elapsed_of(lambda: chat(mode, server, deadline_in=-0.1))
    assert isinstance(error, errors.APITimeoutError) and error.bound == "deadline"
    assert error.maybe_admitted is False
    assert server.received == []


@pytest.mark.parametrize("mode", MODES)
def test_a_deadline_that_is_not_a_number_is_a_configuration_error(server: MisbehavingServer, mode: str) -> None:
    with pytest.raises(errors.ConfigurationError):
        if mode == "sync":
            Transport(settings(server)).chat(PAYLOAD, deadline=float("nan"))
        else:
            asyncio.run(AsyncTransport(settings(server)).chat(PAYLOAD, deadline=float("inf")))
    assert server.received == []


@pytest.mark.parametrize("mode", MODES)
def test_the_deadline_leaves_a_normal_answer_alone(server: MisbehavingServer, mode: str) -> None:
    server.push(json_act(COMPLETION), sse_act(data(chunk({"content": "Hi"})), data(chunk({}, finish_reason="stop"))))
    assert chat(mode, server, deadline_in=5.0).data.choices[0].message.content == "hi"
    chunks = stream(mode, server, deadline_in=5.0, first_token_in=5.0)
    assert [c.choices[0].delta.content for c in chunks] == ["Hi", None]


# --- maybe_admitted on connection errors --------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused_was_certainly_not_admitted(mode: str) -> None:
    config = Settings(api_key=KEY, base_url="http://127.0.0.1:9/v1")

    def call() -> Any:
        if mode == "sync":
            return Transport(config).chat(PAYLOAD)
        return asyncio.run(AsyncTransport(config).chat(PAYLOAD))

    with pytest.raises(errors.APIConnectionError) as info:
        call()
    assert info.value.maybe_admitted is False
    assert_retried_with_backoff(info.value)


# --- timeout settings (defect 6) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "timeout",
    [0, 0.0, -1, float("nan"), float("inf"), httpx.Timeout(0), httpx.Timeout(5.0, read=0), httpx.Timeout(5.0, pool=-1)],
)
def test_zero_negative_or_infinite_timeout_is_refused_before_any_request(
    server: MisbehavingServer, timeout: Any
) -> None:
    """Issue 13 defect 6: ``httpx.Timeout(0)`` gave a misleading APIConnectionError on every call.

    Before: ``Settings`` accepted any ``httpx.Timeout`` (and ``nan``/``inf`` as numbers); the request
    then failed inside httpx with a ConnectTimeout mapped to a connection error.
    """
    with pytest.raises(errors.ConfigurationError, match="timeout"):
        settings(server, timeout)
    assert server.received == []


def test_no_timeout_at_all_is_still_allowed(server: MisbehavingServer) -> None:
    assert settings(server, httpx.Timeout(None)).timeout.read is None
