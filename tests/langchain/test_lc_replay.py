"""Replay of real Cerebras traffic through ChatCerebras (httpx ``MockTransport`` in the core client).

Each recorded conversation is replayed turn by turn: the recorded response bytes are served, and
the result must carry the recorded text, tool calls and usage. The request ChatCerebras sends must
match the recorded one (messages, tools, tool_choice, stream options), including the second turn
that LangChain builds from the first turn's ``AIMessage`` plus ``ToolMessage``\\ s.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_cerebras_paygo import ChatCerebras

_SHARED = Path(__file__).resolve().parents[3] / "shared" / "captures"
_LOCAL = Path(__file__).resolve().parents[1] / "fixtures" / "captures"


def _capture_files() -> list[Path]:
    """The shared recordings (``../shared/captures``), else the copy under ``tests/fixtures``."""
    for root in (_SHARED, _LOCAL):
        files = sorted(root.rglob("*.yaml")) if root.is_dir() else []
        if files:
            return files
    return []


CAPTURES = _capture_files()
_keys = itertools.count()


@dataclass
class Turn:
    request: dict[str, Any]
    body: bytes
    content_type: str


def _turns(path: Path) -> list[Turn]:
    data = yaml.safe_load(path.read_text("utf-8"))
    return [
        Turn(
            request=json.loads(item["request"]["body"]),
            body=item["response"]["body"].encode("utf-8"),
            content_type=(item["response"].get("headers", {}).get("Content-Type") or ["application/json"])[0],
        )
        for item in data["interactions"]
    ]


def _expected(turn: Turn) -> dict[str, Any]:
    """Text, tool calls and usage read straight from the recorded bytes (independent of our code)."""
    if not turn.content_type.startswith("text/event-stream"):
        body = json.loads(turn.body)
        message = body["choices"][0]["message"]
        calls = [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        ]
        return {"text": message.get("content") or "", "calls": calls, "usage": body["usage"], "model": body["model"]}
    text, calls, usage, model = "", [], None, ""
    for line in turn.body.decode("utf-8").splitlines():
        if not line.startswith("data: ") or line.strip() == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        model = event["model"]
        for choice in event["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls") or []:
                calls.append((call["id"], call["function"]["name"], json.loads(call["function"]["arguments"])))
        usage = event.get("usage") or usage
    return {"text": text, "calls": calls, "usage": usage, "model": model}


class Replay:
    """Serves the recorded responses in order and keeps what was sent."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = turns
        self.sent: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        turn = self.turns[len(self.sent)]
        self.sent.append(json.loads(request.content))
        self.headers.append(request.headers)
        return httpx.Response(200, content=turn.body, headers={"content-type": turn.content_type})


def _llm(replay: Replay) -> ChatCerebras:
    transport = httpx.MockTransport(replay)
    return ChatCerebras(
        model="gpt-oss-120b",
        api_key=f"csk-replay-{next(_keys)}",  # a scope of its own in the process-wide limiter
        max_tokens=4000,
        rate_limits={"requests_per_minute": 10_000, "tokens_per_minute": 100_000_000},
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
    )


def _history(recorded: list[dict[str, Any]]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for m in recorded:
        if m["role"] == "system":
            out.append(SystemMessage(m["content"]))
        elif m["role"] == "user":
            out.append(HumanMessage(m["content"]))
    return out


async def _call(llm: Any, messages: list[BaseMessage], *, stream: bool, use_async: bool) -> AIMessage:
    if not stream:
        return await llm.ainvoke(messages) if use_async else llm.invoke(messages)
    full: AIMessageChunk | None = None
    usage_chunks = 0
    if use_async:
        async for chunk in llm.astream(messages):
            usage_chunks += bool(chunk.usage_metadata)
            full = chunk if full is None else full + chunk
    else:
        for chunk in llm.stream(messages):
            usage_chunks += bool(chunk.usage_metadata)
            full = chunk if full is None else full + chunk
    assert usage_chunks == 1, "exactly one chunk carries usage"
    assert full is not None
    return full


def _comparable(payload: dict[str, Any]) -> dict[str, Any]:
    keys = ("messages", "tools", "tool_choice", "stream_options")
    return {**{k: payload[k] for k in keys if k in payload}, "stream": bool(payload.get("stream"))}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
async def test_replay(path: Path, use_async: bool) -> None:
    turns = _turns(path)
    replay = Replay(turns)
    llm = _llm(replay)
    first = turns[0].request
    stream = bool(first.get("stream"))
    runnable: Any = llm
    if first.get("tools"):
        runnable = llm.bind_tools(first["tools"], tool_choice=first.get("tool_choice"))
    messages = _history(first["messages"])
    result: AIMessage | None = None

    for index, turn in enumerate(turns):
        if result is not None:
            # The next turn as LangChain builds it: the previous AIMessage, then the tool results.
            recorded_results = [m for m in turn.request["messages"] if m["role"] == "tool"]
            messages = [
                *messages,
                result,
                *(ToolMessage(m["content"], tool_call_id=m["tool_call_id"]) for m in recorded_results),
            ]
        result = await _call(runnable, messages, stream=stream, use_async=use_async)
        sent = replay.sent[index]
        assert _comparable(sent) == _comparable(turn.request)
        assert sent["model"] == "gpt-oss-120b"
        assert sent["max_completion_tokens"] == turn.request["max_tokens"]
        assert "max_tokens" not in sent

        expected = _expected(turn)
        assert result.text == expected["text"]
        assert [(c["id"], c["name"], c["args"]) for c in result.tool_calls] == expected["calls"]
        assert not result.invalid_tool_calls
        usage = expected["usage"]
        assert result.usage_metadata == {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
            "input_token_details": {"cache_read": usage["prompt_tokens_details"]["cached_tokens"]},
        }
        meta = result.response_metadata
        assert meta["model_name"] == expected["model"]
        assert meta["finish_reason"] == ("tool_calls" if expected["calls"] else "stop")
        assert meta["model_provider"] == "cerebras"
        assert meta["attempts"] == 1
        assert meta["cost_usd"] > 0
        assert meta["time_info"]["total_time"] > 0
        blocks = result.content_blocks
        assert [b["type"] for b in blocks] == (["text"] if expected["text"] else []) + ["tool_call"] * len(
            expected["calls"]
        )

    for headers in replay.headers:
        assert headers["authorization"].startswith("Bearer csk-replay-")
        assert headers["x-cerebras-3rd-party-integration"] == "langchain-cerebras-paygo"
    assert len(replay.sent) == len(turns)


def test_captures_found() -> None:
    assert {p.stem for p in CAPTURES} >= {"simple", "simple_streaming", "tool", "tool_streaming"}
