"""Pure conversions: LangChain messages -> wire, completions and stream chunks -> LangChain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGenerationChunk

from cerebras_paygo._client import CallInfo
from cerebras_paygo._wire import ChatCompletion, ChatCompletionChunk, RateLimitSnapshot
from langchain_cerebras_paygo._convert import (
    MODEL_PROVIDER,
    StreamAssembler,
    completion_to_result,
    message_to_wire,
    messages_to_wire,
    usage_to_metadata,
)


def _info(**overrides: Any) -> CallInfo:
    values: dict[str, Any] = {
        "model": "gpt-oss-120b",
        "tier": "paygo",
        "rate_limits": RateLimitSnapshot(
            limit={"tokens-minute": 1000}, remaining={"tokens-minute": 900}, reset={"tokens-minute": 12.5}
        ),
        "cost_usd": 0.00123,
        "request_id": "req-1",
        "attempts": 2,
        "waited_s": 0.25,
        "prompt_estimate": 20,
        "max_completion_tokens": 100,
        "dropped_messages": 0,
    }
    values.update(overrides)
    return CallInfo(**values)


def _completion(message: dict[str, Any], **extra: Any) -> ChatCompletion:
    body = {
        "id": "chatcmpl-1",
        "model": "gpt-oss-120b",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 10,
            "total_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
        "time_info": {"queue_time": 0.001, "total_time": 0.01},
    }
    body.update(extra)
    return ChatCompletion.model_validate(body)


def _chunk(
    delta: dict[str, Any] | None = None, *, finish: str | None = None, usage: bool = False
) -> ChatCompletionChunk:
    body: dict[str, Any] = {
        "id": "chatcmpl-2",
        "model": "gpt-oss-120b",
        "system_fingerprint": "fp_2",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
        body["time_info"] = {"total_time": 0.02}
    return ChatCompletionChunk.model_validate(body)


# --- request ---------------------------------------------------------------------------------


def test_roles_and_names() -> None:
    wire = messages_to_wire(
        [
            SystemMessage("be brief"),
            SystemMessage("dev", additional_kwargs={"__openai_role__": "developer"}),
            HumanMessage("hi", name="ana"),
            AIMessage("hello"),
            ToolMessage("40 C", tool_call_id="abc"),
            ChatMessage(role="user", content="again"),
        ]
    )
    payload = [m.model_dump(exclude_none=True) for m in wire]
    assert payload == [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "dev"},
        {"role": "user", "content": "hi", "name": "ana"},
        {"role": "assistant", "content": "hello"},
        {"role": "tool", "content": "40 C", "tool_call_id": "abc"},
        {"role": "user", "content": "again"},
    ]


def test_assistant_tool_calls_and_reasoning_go_back_as_reasoning() -> None:
    message = AIMessage(
        "",
        additional_kwargs={"reasoning_content": "need weather"},
        tool_calls=[{"name": "weather", "args": {"city": "Zürich"}, "id": "27781e665", "type": "tool_call"}],
    )
    wire = message_to_wire(message).model_dump(exclude_none=True)
    assert wire == {
        "role": "assistant",
        "reasoning": "need weather",
        "tool_calls": [
            {
                "id": "27781e665",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Zürich"}'},
            }
        ],
    }
    assert "reasoning_content" not in json.dumps(wire)


def test_v1_content_blocks_are_flattened() -> None:
    message = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "think"},
            {"type": "text", "text": "The answer"},
            {"type": "tool_call", "id": "t1", "name": "f", "args": {}},
        ],
        tool_calls=[{"name": "f", "args": {}, "id": "t1", "type": "tool_call"}],
    )
    wire = message_to_wire(message)
    assert wire.content == "The answer"
    assert wire.reasoning == "think"
    assert wire.tool_calls is not None and wire.tool_calls[0].function.arguments == "{}"


def test_anthropic_style_list_content_with_tool_use() -> None:
    message = AIMessage(
        content=[
            {"type": "text", "text": "some text"},
            {"type": "tool_use", "id": "t1", "name": "magic", "input": {"x": 1}},
        ],
        tool_calls=[{"name": "magic", "args": {"x": 1}, "id": "t1", "type": "tool_call"}],
    )
    wire = message_to_wire(message)
    assert wire.content == "some text"
    assert wire.tool_calls is not None and json.loads(wire.tool_calls[0].function.arguments or "") == {"x": 1}


def test_invalid_tool_call_is_sent_back_verbatim() -> None:
    message = AIMessage(
        "",
        invalid_tool_calls=[{"name": "f", "args": "{not json", "id": "x", "error": "bad", "type": "invalid_tool_call"}],
    )
    wire = message_to_wire(message)
    assert wire.tool_calls is not None and wire.tool_calls[0].function.arguments == "{not json"


def test_user_images_become_parts_and_text_only_lists_a_string() -> None:
    text_only = message_to_wire(HumanMessage(content=[{"type": "text", "text": "a"}, "b"]))
    assert text_only.content == "ab"
    with_image = message_to_wire(
        HumanMessage(
            content=[
                {"type": "text", "text": "describe"},
                {"type": "image", "base64": "AAAA", "mime_type": "image/png"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ]
        )
    )
    assert with_image.content == [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]


def test_tool_message_list_content_is_a_string() -> None:
    wire = message_to_wire(ToolMessage(content=[{"type": "text", "text": "ok"}, {"k": 1}], tool_call_id="1"))
    assert wire.content == 'ok{"k": 1}'


def test_unsupported_messages() -> None:
    with pytest.raises(ValueError, match="FunctionMessage"):
        message_to_wire(FunctionMessage(content="x", name="f"))
    with pytest.raises(ValueError, match="role"):
        message_to_wire(ChatMessage(role="wizard", content="x"))


# --- response --------------------------------------------------------------------------------


def test_completion_text_reasoning_usage_and_metadata() -> None:
    result = completion_to_result(_completion({"content": "Olá!", "reasoning": "Portuguese"}), _info())
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    assert message.content == "Olá!"
    assert message.additional_kwargs == {"reasoning_content": "Portuguese"}
    assert message.usage_metadata == {
        "input_tokens": 20,
        "output_tokens": 10,
        "total_tokens": 30,
        "input_token_details": {"cache_read": 8},
        "output_token_details": {"reasoning": 4},
    }
    meta = message.response_metadata
    assert meta["model_name"] == "gpt-oss-120b"
    assert meta["model_provider"] == MODEL_PROVIDER
    assert meta["finish_reason"] == "stop"
    assert meta["system_fingerprint"] == "fp_1"
    assert meta["id"] == "chatcmpl-1"
    assert meta["time_info"] == {"queue_time": 0.001, "total_time": 0.01}
    assert meta["cost_usd"] == 0.00123
    assert meta["attempts"] == 2
    assert meta["waited_s"] == 0.25
    assert meta["rate_limits"]["remaining"] == {"tokens-minute": 900}
    assert result.llm_output is not None and result.llm_output["token_usage"]["total_tokens"] == 30
    assert message.content_blocks == [
        {"type": "reasoning", "reasoning": "Portuguese"},
        {"type": "text", "text": "Olá!"},
    ]


def test_completion_tool_calls_valid_invalid_and_empty_arguments() -> None:
    completion = _completion(
        {
            "content": None,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "weather", "arguments": '{"location": "Oslo"}'}},
                {"id": "b", "type": "function", "function": {"name": "now", "arguments": ""}},
                {"id": "c", "type": "function", "function": {"name": "bad", "arguments": "{oops"}},
                {"id": "d", "type": "function", "function": {"name": "list", "arguments": "[1]"}},
            ],
        },
    )
    message = completion_to_result(completion).generations[0].message
    assert isinstance(message, AIMessage)
    assert message.content == ""
    assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [
        ("weather", {"location": "Oslo"}, "a"),
        ("now", {}, "b"),
    ]
    assert [c["name"] for c in message.invalid_tool_calls] == ["bad", "list"]
    blocks = message.content_blocks
    assert {"type": "tool_call", "name": "weather", "args": {"location": "Oslo"}, "id": "a"} in blocks


def test_usage_without_details_has_no_detail_keys() -> None:
    completion = _completion({"content": "x"}, usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 0})
    assert completion.usage is not None
    assert usage_to_metadata(completion.usage) == {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}


# --- stream ----------------------------------------------------------------------------------


def _run(items: list[Any]) -> list[ChatGenerationChunk]:
    """Feed chunks as the core hands them over: the call's info (last item) is set with the last chunk."""
    info = items[-1] if items and not isinstance(items[-1], ChatCompletionChunk) else None
    chunks = items[:-1] if info is not None else items
    assembler = StreamAssembler()
    out = [assembler.feed(chunk, info if i == len(chunks) - 1 else None) for i, chunk in enumerate(chunks)]
    if info is not None:
        out.extend(assembler.finish(info))
    return out


def test_stream_exactly_one_chunk_carries_usage_model_and_call_info() -> None:
    chunks = _run(
        [
            _chunk({"role": "assistant"}),
            _chunk({"reasoning": "Think"}),
            _chunk({"content": "Hel"}),
            _chunk({"content": "lo"}),
            _chunk({}),
            _chunk(finish="stop", usage=True),
            _info(),
        ]
    )
    with_usage = [c for c in chunks if c.message.usage_metadata]  # type: ignore[attr-defined]
    assert len(with_usage) == 1
    assert len([c for c in chunks if "model_name" in c.message.response_metadata]) == 1
    assert chunks[-1] is with_usage[0]
    full = chunks[0].message
    for chunk in chunks[1:]:
        full = full + chunk.message  # type: ignore[assignment]
    assert isinstance(full, AIMessageChunk)
    assert full.content == "Hello"
    assert full.additional_kwargs == {"reasoning_content": "Think"}
    assert full.usage_metadata == {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16}
    meta = full.response_metadata
    assert meta["model_name"] == "gpt-oss-120b"
    assert meta["model_provider"] == MODEL_PROVIDER
    assert meta["finish_reason"] == "stop"
    assert meta["system_fingerprint"] == "fp_2"
    assert meta["cost_usd"] == 0.00123
    assert meta["time_info"] == {"total_time": 0.02}
    assert full.content_blocks[0] == {"type": "reasoning", "reasoning": "Think"}


def test_stream_usage_after_finish_reason_merges_without_doubling_strings() -> None:
    finish = _chunk(finish="stop")
    usage_only = ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-2",
            "model": "gpt-oss-120b",
            "system_fingerprint": "fp_2",
            "choices": [],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )
    chunks = _run([_chunk({"content": "x"}), finish, usage_only, _info()])
    assert len(chunks) == 3
    assert len([c for c in chunks if "model_name" in c.message.response_metadata]) == 1
    full = chunks[0].message + chunks[1].message + chunks[2].message
    meta = full.response_metadata
    assert meta["model_name"] == "gpt-oss-120b"
    assert meta["system_fingerprint"] == "fp_2"


def test_stream_without_call_info_still_flushes_terminal_chunk() -> None:
    chunks = _run([_chunk({"content": "x"}), _chunk(finish="length", usage=True)])
    assert chunks[-1].message.response_metadata["finish_reason"] == "length"


def test_stream_call_info_without_terminal_chunk_names_the_model() -> None:
    chunks = _run([_chunk({"content": "x"}), _info()])
    assert chunks[-1].message.response_metadata["model_name"] == "gpt-oss-120b"


def test_stream_tool_call_chunks_whole_and_fragmented() -> None:
    whole = _run(
        [
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "27781e665",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"location": "Florence"}'},
                        }
                    ]
                }
            ),
            _chunk(finish="tool_calls", usage=True),
            _info(),
        ]
    )
    fragmented = _run(
        [
            _chunk({"tool_calls": [{"index": 0, "id": "t1", "function": {"name": "weather", "arguments": ""}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location"'}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Florence"}'}}]}),
            _chunk({"tool_calls": [{"index": 1, "id": "t2", "function": {"name": "now", "arguments": ""}}]}),
            _chunk(finish="tool_calls", usage=True),
        ]
    )
    for chunks, expected in ((whole, 1), (fragmented, 2)):
        full = chunks[0].message
        for chunk in chunks[1:]:
            full = full + chunk.message  # type: ignore[assignment]
        assert isinstance(full, AIMessageChunk)
        assert len(full.tool_calls) == expected
        assert full.tool_calls[0]["name"] == "weather"
        assert full.tool_calls[0]["args"] == {"location": "Florence"}
    assert whole[0].message.tool_call_chunks[0]["id"] == "27781e665"  # type: ignore[attr-defined]
