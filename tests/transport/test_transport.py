"""The transport over real loopback HTTP: what it sends, what it parses, how failures map."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from cerebras_paygo import AsyncTransport, Transport, errors
from cerebras_paygo._settings import Settings
from cerebras_paygo._streaming import StreamAccumulator
from cerebras_paygo._wire import ChatCompletionChunk
from tests.fixtures import captures
from tests.fixtures.scripted_server import Scripted, ScriptedServer, sse

KEY = "csk-transport-test-0123456789abcdef0123"
RL_HEADERS = {
    "x-ratelimit-limit-requests-day": "14400",
    "x-ratelimit-limit-tokens-minute": "60000",
    "x-ratelimit-remaining-requests-day": "14399",
    "x-ratelimit-remaining-tokens-minute": "59000",
    "x-ratelimit-reset-requests-day": "33011.382867097855",
    "x-ratelimit-reset-tokens-minute": "11.382867097854614",
    "x-request-id": "req-123",
}
PAYLOAD = {"model": "gpt-oss-120b", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def transport(server: ScriptedServer) -> Iterator[Transport]:
    t = Transport(Settings(api_key=KEY, base_url=server.base_url))
    yield t
    t.close()


def chunk(delta: dict, **extra: object) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-oss-120b",
        "choices": [{"index": 0, "delta": delta, **extra}],
    }


FINAL = {
    **chunk({}, finish_reason="stop"),
    "usage": {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
    "time_info": {"queue_time": 0.001, "total_time": 0.01, "created": 1.5},
}


def test_plain_capture_parses_and_request_headers(server: ScriptedServer, transport: Transport) -> None:
    interaction = captures.load("simple")[0]
    server.push(Scripted(body=interaction.body, headers=RL_HEADERS))
    response = transport.chat(interaction.request)
    completion = response.data
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.total_tokens > 0
    sent = server.received[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["user-agent"].startswith("cerebras-paygo/")
    assert sent.headers["x-cerebras-3rd-party-integration"] == "cerebras-paygo"
    assert sent.body["stream"] is False
    assert response.request_id == "req-123"


def test_rate_limit_headers_parsed(server: ScriptedServer, transport: Transport) -> None:
    server.push(Scripted(body=captures.load("simple")[0].body, headers=RL_HEADERS))
    snapshot = transport.chat(PAYLOAD).rate_limits
    assert snapshot.limit == {"requests-day": 14400, "tokens-minute": 60000}
    assert snapshot.remaining == {"requests-day": 14399, "tokens-minute": 59000}
    assert snapshot.reset["tokens-minute"] == pytest.approx(11.382867097854614)
    assert snapshot.reset["requests-day"] == pytest.approx(33011.382867097855)


@pytest.mark.parametrize("name", ["simple_streaming", "tool_streaming", "multi_tool_streaming"])
@pytest.mark.parametrize("done", [False, True])
def test_stream_captures_replay(server: ScriptedServer, transport: Transport, name: str, done: bool) -> None:
    for interaction in captures.load(name):
        parts = [p + b"\n\n" for p in interaction.body.split(b"\n\n") if p.strip()]
        if done:
            parts.append(b"data: [DONE]\n\n")
        server.push(Scripted(body=parts, content_type=interaction.content_type, headers=RL_HEADERS))
        acc = StreamAccumulator()
        with transport.stream_chat(interaction.request) as stream:
            for item in stream:
                acc.add(item)
            assert stream.rate_limits is not None and stream.rate_limits.remaining["tokens-minute"] == 59000
        result = acc.result()
        assert acc.usage is not None and acc.usage.total_tokens > 0
        assert acc.time_info is not None and isinstance(acc.time_info.created, float)
        expected_finish = "tool_calls" if result.choices[0].message.tool_calls else "stop"
        assert result.choices[0].finish_reason == expected_finish
        for call in result.choices[0].message.tool_calls or []:
            assert len(call.id) == 9
            json.loads(call.function.arguments or "")


def test_reasoning_and_split_tool_call_arguments(server: ScriptedServer, transport: Transport) -> None:
    server.push(
        Scripted(
            content_type="text/event-stream; charset=utf-8",
            body=sse(
                chunk({"role": "assistant"}),
                chunk({"reasoning": "Need the "}),
                chunk({"reasoning": "weather."}),
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "abc123def",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"ci'},
                            }
                        ]
                    }
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Os'}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'lo"}'}}]}),
                {**FINAL, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
                done=True,
            ),
        )
    )
    acc = StreamAccumulator()
    with transport.stream_chat(PAYLOAD) as stream:
        for item in stream:
            acc.add(item)
    message = acc.result().choices[0].message
    assert message.reasoning == "Need the weather."
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "get_weather"
    assert json.loads(message.tool_calls[0].function.arguments or "") == {"city": "Oslo"}


ERROR_CASES = [
    (
        400,
        {
            "message": "body.min_p: property 'body.min_p' is unsupported",
            "type": "invalid_request_error",
            "param": "validation_error",
            "code": "wrong_api_format",
        },
        errors.BadRequestError,
    ),
    (
        400,
        {
            "message": "Please reduce the length of the messages or completion. Current length is 42328 while limit "
            "is 40000",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
        errors.APIContextWindowExceededError,
    ),
    (
        401,
        {"message": "Wrong API Key", "type": "invalid_request_error", "param": "api_key", "code": "wrong_api_key"},
        errors.AuthenticationError,
    ),
    (
        402,
        {
            "message": "Payment required to access this resource. Visit your billing tab.",
            "type": "payment_required_error",
            "param": "quota",
            "code": "payment_required",
        },
        errors.APIPaymentRequiredError,
    ),
    (403, {"detail": "Not authenticated"}, errors.PermissionDeniedError),
    (
        404,
        {
            "message": "Model foo does not exist or you do not have access to it.",
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        },
        errors.APIModelNotFoundError,
    ),
    (422, {"detail": [{"loc": ["body"], "msg": "bad", "type": "value_error"}]}, errors.UnprocessableEntityError),
    (
        429,
        {
            "message": "Tokens per minute limit exceeded - too many tokens processed.",
            "type": "too_many_tokens_error",
            "param": "quota",
            "code": "token_quota_exceeded",
        },
        errors.APIRateLimitError,
    ),
    (500, {"message": "internal"}, errors.ServerError),
    (503, "<html>Service Unavailable</html>", errors.ServiceUnavailableError),
]


@pytest.mark.parametrize(("status", "body", "cls"), ERROR_CASES)
def test_error_status_maps_to_class(
    server: ScriptedServer, transport: Transport, status: int, body: object, cls: type
) -> None:
    raw = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
    server.push(Scripted(status=status, body=raw, headers=RL_HEADERS))
    with pytest.raises(cls) as info:
        transport.chat(PAYLOAD)
    err = info.value
    assert type(err) is cls
    assert isinstance(err, errors.APIStatusError)
    assert err.meta.status_code == status
    assert err.meta.rate_limits.remaining["tokens-minute"] == 59000
    assert err.status_code == status
    assert err.request_id == "req-123"
    assert err.headers["x-ratelimit-remaining-tokens-minute"] == "59000"
    if isinstance(body, dict) and "code" in body:
        assert err.code == body["code"]
        assert err.param == body["param"]
        assert err.message == body["message"]
    if cls is errors.APIContextWindowExceededError:
        assert isinstance(err, errors.ContextWindowExceededError) and not err.local
        assert (err.current_length, err.limit) == (42328, 40000)
    if cls is errors.APIRateLimitError:
        assert isinstance(err, errors.RateLimitError)
        assert err.quota == "tokens"


def test_error_status_on_stream_open(server: ScriptedServer, transport: Transport) -> None:
    body = {
        "message": "Requests per minute limit exceeded - too many requests sent.",
        "type": "too_many_requests_error",
        "param": "quota",
        "code": "request_quota_exceeded",
    }
    server.push(Scripted(status=429, body=json.dumps(body).encode()))
    with pytest.raises(errors.RateLimitError) as info, transport.stream_chat(PAYLOAD):
        pass
    assert info.value.quota == "requests"


def test_mid_stream_error_event(server: ScriptedServer, transport: Transport) -> None:
    error_event = {
        "error": {
            "message": "Tokens per minute limit exceeded - too many tokens processed.",
            "type": "too_many_tokens_error",
            "param": "quota",
            "code": "token_quota_exceeded",
        },
        "status_code": 429,
    }
    server.push(
        Scripted(
            content_type="text/event-stream",
            body=sse(chunk({"role": "assistant"}), chunk({"content": "Hel"}), error_event),
        )
    )
    seen: list[ChatCompletionChunk] = []
    with pytest.raises(errors.RateLimitError), transport.stream_chat(PAYLOAD) as stream:
        seen.extend(stream)
    assert [c.choices[0].delta.content for c in seen] == [None, "Hel"]


def test_connection_dropped_mid_stream_after_content(server: ScriptedServer, transport: Transport) -> None:
    parts = sse(chunk({"role": "assistant"}), chunk({"content": "Hello"}), chunk({"content": " world"}), FINAL)
    server.push(Scripted(content_type="text/event-stream", body=parts, drop_after=2))
    with pytest.raises(errors.StreamInterruptedError) as info, transport.stream_chat(PAYLOAD) as stream:
        for _ in stream:
            pass
    assert info.value.delivered_chunks == 1


def test_connection_dropped_before_content_is_a_connection_error(server: ScriptedServer, transport: Transport) -> None:
    parts = sse(chunk({"role": "assistant"}), chunk({"content": "Hello"}), FINAL)
    server.push(Scripted(content_type="text/event-stream", body=parts, drop_after=1))
    with pytest.raises(errors.APIConnectionError) as info, transport.stream_chat(PAYLOAD) as stream:
        for _ in stream:
            pass
    assert not isinstance(info.value, errors.StreamInterruptedError)


def test_connection_refused_maps_to_connection_error() -> None:
    transport = Transport(Settings(api_key=KEY, base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(errors.APIConnectionError):
        transport.chat(PAYLOAD)


def test_models_endpoint(server: ScriptedServer, transport: Transport) -> None:
    server.push(
        Scripted(
            body=json.dumps(
                {
                    "object": "list",
                    "data": [
                        {"id": "gpt-oss-120b", "object": "model", "created": 1, "owned_by": "OpenAI", "new_field": 1}
                    ],
                }
            ).encode()
        )
    )
    models = transport.list_models().data
    assert [m.id for m in models.data] == ["gpt-oss-120b"]
    assert server.received[0].path == "/v1/models"


async def test_async_transport_plain_and_stream(server: ScriptedServer) -> None:
    interaction = captures.load("simple")[0]
    server.push(Scripted(body=interaction.body, headers=RL_HEADERS))
    stream_capture = captures.load("simple_streaming")[0]
    parts = [p + b"\n\n" for p in stream_capture.body.split(b"\n\n") if p.strip()]
    server.push(Scripted(body=parts, content_type="text/event-stream; charset=utf-8"))
    async with AsyncTransport(Settings(api_key=KEY, base_url=server.base_url)) as transport:
        response = await transport.chat(interaction.request)
        assert response.data.choices[0].message.content
        acc = StreamAccumulator()
        async with transport.stream_chat(stream_capture.request) as stream:
            async for item in stream:
                acc.add(item)
    assert acc.result().choices[0].message.content == "Oi!"


def test_key_never_leaks(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(api_key=KEY, base_url=server.base_url)
    transport = Transport(settings)
    server.push(Scripted(status=401, body=b'{"message":"Wrong API Key","code":"wrong_api_key"}'))
    with pytest.raises(errors.AuthenticationError) as info:
        transport.chat(PAYLOAD)
    texts = [
        repr(settings),
        str(settings),
        repr(info.value),
        str(info.value),
        repr(info.value.__dict__),
        settings.model_dump_json(),
        caplog.text,
    ]
    for text in texts:
        assert KEY not in text
    assert settings.fingerprint not in KEY


def test_missing_key_raises_before_any_request(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEREBRAS_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-should-never-be-used")
    settings = Settings.from_env(base_url=server.base_url)
    with pytest.raises(errors.MissingAPIKeyError):
        Transport(settings).chat(PAYLOAD)
    assert server.received == []


def test_the_pools_the_package_builds_share_one_tls_context() -> None:
    """httpx loads the CA bundle into a new context per client (~820 KiB RSS and ~20 ms each here);
    every pool built by the package uses one (a client of your own keeps its own)."""
    import ssl

    import httpx

    from cerebras_paygo._async.transport import AsyncTransport
    from cerebras_paygo._http import shared_ssl_context
    from cerebras_paygo._options import ClientOptions
    from cerebras_paygo._settings import Settings
    from cerebras_paygo._sync.transport import Transport

    def context_of(client: httpx.Client | httpx.AsyncClient) -> ssl.SSLContext:
        return client._transport._pool._ssl_context  # type: ignore[union-attr]

    shared = shared_ssl_context()
    assert isinstance(shared, ssl.SSLContext) and shared.verify_mode == ssl.CERT_REQUIRED
    first = Transport(Settings(api_key="csk-a"))
    second = AsyncTransport(Settings(api_key="csk-b"))
    proxied = ClientOptions(api_key="csk-c", proxy="http://127.0.0.1:3128").build()
    assert context_of(first.client) is shared and context_of(second.client) is shared
    assert context_of(proxied._http_client) is shared
    own = httpx.Client()
    assert context_of(Transport(Settings(api_key="csk-d"), own).client) is not shared
