"""Defects 2, 5 and 6 of issue 13, end to end: the transport's typed answers reach the caller of the
core client and of both adapters (a misbehaving loopback server, real sockets).

Defect 2 (malformed responses). Measured on the original 7c375f3 (``max_retries=0``):
``ChatCerebras.invoke`` on ``choices: []`` -> ``IndexError``, on truncated JSON and on HTML ->
pydantic ``ValidationError``; ``stream`` on a wrong-shape chunk -> ``ValidationError``; LlamaIndex
``chat`` on ``choices: []`` returned an empty answer without a word. main (the transport's
``MalformedResponseError``) fixed them; this pins the adapter half: every one a ``CerebrasError``.

Defect 5 (``x-ratelimit-*: inf`` / ``1e400``). The original: ``OverflowError`` out of ``invoke``;
main's header parser ignores them. Pinned through ``CerebrasClient`` and ``ChatCerebras``: the call
succeeds and the limiter keeps finite buckets.

Defect 6 (``deadline`` over a trickling body / endless ``: ping`` stream). The original had no
``deadline`` option on ``ChatCerebras``; with ``timeout=1`` a 40-byte body trickled one byte every
0.3 s kept ``invoke`` busy 11.7 s (httpx's read timeout restarts at every byte). main bounds the
response at the transport; pinned here: with ``deadline=2, timeout=1`` every entry point of the
core and both adapters raises ``APITimeoutError`` within 2.5 s.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage

from cerebras_paygo import CerebrasClient
from cerebras_paygo._ratelimit import shared_limiter
from cerebras_paygo._wire import ChatCompletionRequest, Message
from cerebras_paygo.errors import APITimeoutError, CerebrasError, MalformedResponseError
from langchain_cerebras_paygo import ChatCerebras
from llama_index_cerebras import Cerebras
from tests.fixtures.misbehaving_server import (
    COMPLETION,
    Act,
    MisbehavingServer,
    bad_number_headers,
    html_page,
    json_act,
    pings_forever,
    sse_act,
    trickle,
    truncated_json,
)

KEY = "csk-misbehaving-reliability-0123456789abcd"
MODEL = "gpt-oss-120b"
USER = [ChatMessage(role="user", content="hi")]


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    srv = MisbehavingServer().start()
    yield srv
    srv.stop()


def _request() -> ChatCompletionRequest:
    return ChatCompletionRequest(model=MODEL, messages=[Message(role="user", content="hi")], max_completion_tokens=50)


def _options(server: MisbehavingServer, **extra: Any) -> dict[str, Any]:
    return {"api_key": KEY, "base_url": server.base_url, **extra}


# -- defect 2: malformed answers are typed, in every entry point --------------------------------

NO_CHOICES = {**COMPLETION, "choices": []}
MALFORMED_BODIES: dict[str, Callable[[], Act]] = {
    "choices: []": lambda: json_act(NO_CHOICES),
    "truncated JSON": truncated_json,
    "HTML": html_page,
}
MALFORMED_STREAMS: dict[str, Callable[[], Act]] = {
    "chunk of the wrong shape": lambda: sse_act(b'data: {"choices": "nope"}\n\n', b"data: [DONE]\n\n"),
    "not JSON": lambda: sse_act(b"data: {not json\n\n", b"data: [DONE]\n\n"),
    "HTML instead of a stream": html_page,
}


def _entry_points(server: MisbehavingServer) -> dict[str, Callable[[], Any]]:
    lc = ChatCerebras(model=MODEL, max_retries=0, **_options(server))
    li = Cerebras(model=MODEL, max_retries=0, **_options(server))
    return {
        "langchain.invoke": lambda: lc.invoke("hi"),
        "langchain.ainvoke": lambda: asyncio.run(lc.ainvoke("hi")),
        "llama_index.chat": lambda: li.chat(USER),
        "llama_index.achat": lambda: asyncio.run(li.achat(USER)),
    }


def _stream_points(server: MisbehavingServer) -> dict[str, Callable[[], Any]]:
    lc = ChatCerebras(model=MODEL, max_retries=0, **_options(server))
    li = Cerebras(model=MODEL, max_retries=0, **_options(server))

    async def lc_astream() -> None:
        async for _ in lc.astream("hi"):
            pass

    async def li_astream() -> None:
        async for _ in await li.astream_chat(USER):
            pass

    return {
        "langchain.stream": lambda: list(lc.stream("hi")),
        "langchain.astream": lambda: asyncio.run(lc_astream()),
        "llama_index.stream_chat": lambda: list(li.stream_chat(USER)),
        "llama_index.astream_chat": lambda: asyncio.run(li_astream()),
    }


@pytest.mark.parametrize("body", list(MALFORMED_BODIES))
@pytest.mark.parametrize("entry", ["langchain.invoke", "langchain.ainvoke", "llama_index.chat", "llama_index.achat"])
def test_malformed_body_is_a_typed_error(server: MisbehavingServer, body: str, entry: str) -> None:
    server.push(MALFORMED_BODIES[body]())
    with pytest.raises(CerebrasError) as info:
        _entry_points(server)[entry]()
    assert isinstance(info.value, MalformedResponseError), repr(info.value)
    assert len(server.received) == 1


@pytest.mark.parametrize("body", list(MALFORMED_STREAMS))
@pytest.mark.parametrize(
    "entry", ["langchain.stream", "langchain.astream", "llama_index.stream_chat", "llama_index.astream_chat"]
)
def test_malformed_stream_is_a_typed_error(server: MisbehavingServer, body: str, entry: str) -> None:
    server.push(MALFORMED_STREAMS[body]())
    with pytest.raises(CerebrasError) as info:
        _stream_points(server)[entry]()
    assert isinstance(info.value, MalformedResponseError), repr(info.value)


# -- defect 5: absurd rate-limit numbers ----------------------------------------------------------


@pytest.mark.parametrize("values", [("inf", "1e400"), ("-inf", "nan"), ("1e400", "99999999999999999999999")])
def test_absurd_rate_limit_headers_are_ignored_end_to_end(server: MisbehavingServer, values: tuple[str, ...]) -> None:
    headers = bad_number_headers(*values)
    server.push(json_act(COMPLETION, headers=headers), json_act(COMPLETION, headers=headers))
    result = CerebrasClient(**_options(server)).chat(_request())
    assert result.completion.choices[0].message.content == "hi"
    message = ChatCerebras(model=MODEL, **_options(server)).invoke("hi")
    assert message.content == "hi"
    for row in shared_limiter().stats():  # a huge integer is a (silly) limit; inf and 1e400 are none
        assert math.isfinite(row.level) and math.isfinite(row.capacity)


# -- defect 6: the deadline bounds trickles and endless pings ------------------------------------

BODY = json.dumps(COMPLETION).encode()
DEADLINE, TIMEOUT, BOUND = 2.0, 1.0, 2.5


def _timed(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        call()
    return time.monotonic() - started


def _slow(server: MisbehavingServer, stream: bool) -> None:
    # Enough acts for any retry the deadline still allows.
    for _ in range(3):
        server.push(pings_forever(0.2) if stream else trickle(BODY, 0.3))


def _core_calls(server: MisbehavingServer) -> dict[str, Callable[[], Any]]:
    client = CerebrasClient(deadline=DEADLINE, timeout=TIMEOUT, **_options(server))

    async def astream() -> None:
        async for _ in client.astream(_request()):
            pass

    return {
        "core.chat": lambda: client.chat(_request()),
        "core.achat": lambda: asyncio.run(client.achat(_request())),
        "core.stream": lambda: list(client.stream(_request())),
        "core.astream": lambda: asyncio.run(astream()),
    }


def _adapter_calls(server: MisbehavingServer) -> dict[str, Callable[[], Any]]:
    lc = ChatCerebras(model=MODEL, deadline=DEADLINE, timeout=TIMEOUT, **_options(server))
    li = Cerebras(model=MODEL, deadline=DEADLINE, timeout=TIMEOUT, **_options(server))

    async def lc_astream() -> None:
        async for _ in lc.astream("hi"):
            pass

    return {
        "langchain.invoke": lambda: lc.invoke("hi"),
        "langchain.ainvoke": lambda: asyncio.run(lc.ainvoke("hi")),
        "langchain.stream": lambda: list(lc.stream("hi")),
        "langchain.astream": lambda: asyncio.run(lc_astream()),
        "llama_index.chat": lambda: li.chat(USER),
        "llama_index.achat": lambda: asyncio.run(li.achat(USER)),
        "llama_index.stream_chat": lambda: list(li.stream_chat(USER)),
    }


CORE = ["core.chat", "core.achat", "core.stream", "core.astream"]
ADAPTERS = [
    "langchain.invoke",
    "langchain.ainvoke",
    "langchain.stream",
    "langchain.astream",
    "llama_index.chat",
    "llama_index.achat",
    "llama_index.stream_chat",
]


@pytest.mark.parametrize("entry", CORE + ADAPTERS)
def test_deadline_bounds_a_trickle_or_an_endless_ping_stream(server: MisbehavingServer, entry: str) -> None:
    stream = "stream" in entry
    _slow(server, stream)
    calls = _core_calls(server) if entry in CORE else _adapter_calls(server)
    elapsed = _timed(calls[entry])
    assert elapsed < BOUND, f"{entry} took {elapsed:.2f}s"
    assert elapsed > TIMEOUT * 0.9  # it did wait for the body, then gave up


# -- usage after the finish reason (OpenAI's order): both held for the call's info, in order ------


def _usage_after_finish() -> Act:
    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": MODEL, "choices": choices}
        return b"data: " + json.dumps({**body, **extra}).encode() + b"\n\n"

    return sse_act(
        event([{"index": 0, "delta": {"role": "assistant"}}]),
        event([{"index": 0, "delta": {"content": "Hi"}}]),
        event([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
        event([], usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}),
        b"data: [DONE]\n\n",
    )


def test_sync_stream_with_usage_after_the_finish_reason(server: MisbehavingServer) -> None:
    server.push(_usage_after_finish())
    client = CerebrasClient(**_options(server))
    with client.stream(_request()) as stream:
        seen = [(chunk, stream.done) for chunk in stream]
    assert [c.choices[0].finish_reason if c.choices else "usage" for c, _ in seen] == [None, None, "stop", "usage"]
    assert [done for _, done in seen] == [False, False, False, True], "only the last arrives with info set"
    assert stream.info.attempts == 1 and seen[-1][0].usage is not None


async def test_async_stream_with_usage_after_the_finish_reason(server: MisbehavingServer) -> None:
    server.push(_usage_after_finish())
    client = CerebrasClient(**_options(server))
    seen = []
    async with client.astream(_request()) as stream:
        async for chunk in stream:
            seen.append((chunk, stream.done))
    assert [c.choices[0].finish_reason if c.choices else "usage" for c, _ in seen] == [None, None, "stop", "usage"]
    assert [done for _, done in seen] == [False, False, False, True]
    assert seen[-1][0].usage is not None and seen[-1][0].usage.total_tokens == 6
