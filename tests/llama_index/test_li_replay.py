"""Replay of real Cerebras traffic through ``Cerebras`` (an httpx ``MockTransport`` in the core client).

Each recorded conversation (``tests/fixtures/captures``) is replayed turn by turn through ``chat``
(plain recordings) or ``stream_chat`` (streamed ones), sync and async: the recorded bytes are
served, and the response must carry the recorded text, tool calls and usage. The second turn is
built the LlamaIndex way, from the first response's message plus ``role=TOOL`` results, and must
go out as the recorded request did.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.tools import FunctionTool

from cerebras_paygo._client import CerebrasClient
from llama_index_cerebras import Cerebras
from tests.fixtures.captures import NAMES, Interaction, load

_keys = itertools.count()


def _expected(turn: Interaction) -> dict[str, Any]:
    """Text, tool calls and usage read straight from the recorded bytes (independent of our code)."""
    if not turn.content_type.startswith("text/event-stream"):
        body = json.loads(turn.body)
        message = body["choices"][0]["message"]
        calls = [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        ]
        return {"text": message.get("content") or "", "calls": calls, "usage": body["usage"]}
    text, calls, usage = "", [], None
    for line in turn.body.decode("utf-8").splitlines():
        if not line.startswith("data: ") or line.strip() == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        for choice in event["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls") or []:
                calls.append((call["id"], call["function"]["name"], json.loads(call["function"]["arguments"])))
        usage = event.get("usage") or usage
    return {"text": text, "calls": calls, "usage": usage}


class Replay:
    """Serves the recorded responses in order and keeps what was sent."""

    def __init__(self, turns: list[Interaction]) -> None:
        self.turns = turns
        self.sent: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        turn = self.turns[len(self.sent)]
        self.sent.append(json.loads(request.content))
        self.headers.append(request.headers)
        return httpx.Response(turn.status, content=turn.body, headers={"content-type": turn.content_type})


def _llm(replay: Replay) -> Cerebras:
    transport = httpx.MockTransport(replay)
    client = CerebrasClient(
        api_key=f"csk-replay-li-{next(_keys)}",  # a scope of its own in the process-wide limiter
        base_url="http://127.0.0.1:1/v1",
        rate_limits={"requests_per_minute": 10_000, "tokens_per_minute": 100_000_000},
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    return Cerebras(client=client, model="gpt-oss-120b", max_tokens=4000)


def _tools(recorded: list[dict[str, Any]]) -> list[FunctionTool]:
    """FunctionTools with the recorded names and descriptions (their bodies are never run)."""
    tools = []
    for spec in recorded:
        function = spec["function"]
        tools.append(
            FunctionTool.from_defaults(
                fn=lambda **kwargs: "", name=function["name"], description=function["description"]
            )
        )
    return tools


def _history(recorded: list[dict[str, Any]]) -> list[ChatMessage]:
    return [
        ChatMessage(role=MessageRole(m["role"]), content=m["content"])
        for m in recorded
        if m["role"] in ("system", "user")
    ]


async def _call(
    llm: Cerebras, messages: list[ChatMessage], tools: list[FunctionTool], *, stream: bool, use_async: bool
) -> ChatResponse:
    kwargs: dict[str, Any] = {"allow_parallel_tool_calls": True}
    if not stream:
        if tools:
            if use_async:
                return await llm.achat_with_tools(tools, chat_history=messages, **kwargs)
            return llm.chat_with_tools(tools, chat_history=messages, **kwargs)
        return await llm.achat(messages) if use_async else llm.chat(messages)
    if tools:
        if use_async:
            responses = [r async for r in await llm.astream_chat_with_tools(tools, chat_history=messages, **kwargs)]
        else:
            responses = list(llm.stream_chat_with_tools(tools, chat_history=messages, **kwargs))
    elif use_async:
        responses = [r async for r in await llm.astream_chat(messages)]
    else:
        responses = list(llm.stream_chat(messages))
    assert sum("total_tokens" in r.additional_kwargs for r in responses) == 1, "exactly one response carries usage"
    assert "".join(r.delta or "" for r in responses) == responses[-1].message.content
    return responses[-1]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("name", NAMES)
async def test_replay(name: str, use_async: bool) -> None:
    turns = load(name)
    replay = Replay(turns)
    llm = _llm(replay)
    first = turns[0].request
    stream = bool(first.get("stream"))
    tools = _tools(first.get("tools") or [])
    messages = _history(first["messages"])
    previous: ChatResponse | None = None

    for index, turn in enumerate(turns):
        if previous is not None:
            # The next turn as LlamaIndex builds it: the previous message, then the tool results.
            results = [
                ChatMessage(
                    role=MessageRole.TOOL, content=m["content"], additional_kwargs={"tool_call_id": m["tool_call_id"]}
                )
                for m in turn.request["messages"]
                if m["role"] == "tool"
            ]
            messages = [*messages, previous.message, *results]
        response = await _call(llm, messages, tools, stream=stream, use_async=use_async)
        previous = response

        sent = replay.sent[index]
        assert sent["messages"] == turn.request["messages"], "the conversation goes out as recorded"
        assert sent["model"] == "gpt-oss-120b"
        assert sent["max_completion_tokens"] == turn.request["max_tokens"] and "max_tokens" not in sent
        assert bool(sent.get("stream")) is stream
        assert sent.get("stream_options") == turn.request.get("stream_options")
        assert sent.get("tool_choice") == turn.request.get("tool_choice")
        assert [t["function"]["name"] for t in sent.get("tools") or []] == [
            t["function"]["name"] for t in turn.request.get("tools") or []
        ]

        expected = _expected(turn)
        assert response.message.content == expected["text"]
        calls = llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
        assert [(c.tool_id, c.tool_name, c.tool_kwargs) for c in calls] == expected["calls"]
        usage = expected["usage"]
        extra = response.additional_kwargs
        assert (extra["prompt_tokens"], extra["completion_tokens"], extra["total_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
            usage["total_tokens"],
        )
        assert extra["cached_tokens"] == usage["prompt_tokens_details"]["cached_tokens"]
        assert extra["finish_reason"] == ("tool_calls" if expected["calls"] else "stop")
        assert extra["attempts"] == 1 and extra["cost_usd"] > 0
        assert response.raw is not None and response.raw["model"] == "qwen-3-coder-480b"

    for headers in replay.headers:
        assert headers["authorization"].startswith("Bearer csk-replay-li-")
        assert headers["x-cerebras-3rd-party-integration"] == "cerebras-paygo"
    assert len(replay.sent) == len(turns)
