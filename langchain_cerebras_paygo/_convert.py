"""Pure conversions between LangChain messages and the Cerebras wire models.

Nothing here does I/O: ``ChatCerebras`` calls these from its sync and async paths alike, so a
message, a completion or a stream chunk means the same thing on all four of them.

* ``messages_to_wire``: LangChain messages -> request ``Message``\\ s (reasoning goes back in the
  assistant's ``reasoning`` field, never ``reasoning_content``, which Cerebras rejects).
* ``completion_to_result``: a ``ChatCompletion`` (+ the gateway's ``CallInfo``) -> ``ChatResult``.
* ``StreamAssembler``: the core's stream chunks (the last with the call's ``CallInfo``) -> ``ChatGenerationChunk``\\ s,
  with usage, ``model_name`` and the call's metadata on exactly one chunk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import content as types
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.block_translators import register_translator
from langchain_core.messages.block_translators.openai import convert_to_openai_data_block
from langchain_core.messages.content import is_data_content_block
from langchain_core.messages.tool import invalid_tool_call, tool_call_chunk
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from cerebras_paygo._options import usage_counts
from cerebras_paygo._wire import (
    ChatCompletion,
    ChatCompletionChunk,
    FunctionCall,
    Message,
    ResponseMessage,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from cerebras_paygo import CallInfo

__all__ = [
    "MODEL_PROVIDER",
    "StreamAssembler",
    "call_info_metadata",
    "completion_to_result",
    "message_to_wire",
    "messages_to_wire",
    "usage_to_metadata",
]

#: ``response_metadata["model_provider"]``: selects the content-block translator registered at the
#: end of this module (the ``"openai"`` one would drop the reasoning).
MODEL_PROVIDER = "cerebras"

_Role = Literal["system", "developer", "user", "assistant", "tool"]
_ROLE_OF_CHAT_MESSAGE: dict[str, _Role] = {
    "system": "system",
    "developer": "developer",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "tool": "tool",
}

# Content blocks that are carried elsewhere on the wire (tool calls, reasoning) or are not text.
_NON_TEXT_ASSISTANT_BLOCKS = frozenset(
    {"tool_use", "tool_call", "tool_call_chunk", "invalid_tool_call", "reasoning", "thinking", "redacted_thinking"}
)


# --- request ---------------------------------------------------------------------------------


def messages_to_wire(messages: Sequence[BaseMessage]) -> list[Message]:
    """Convert a conversation to request messages."""
    return [message_to_wire(message) for message in messages]


def message_to_wire(message: BaseMessage) -> Message:
    """One LangChain message as Cerebras expects it.

    Raises:
        ValueError: for a message type the chat completions API has no role for.
    """
    name = message.name or None
    if isinstance(message, HumanMessage):
        return Message(role="user", content=_user_content(message.content), name=name)
    if isinstance(message, SystemMessage):
        developer = message.additional_kwargs.get("__openai_role__") == "developer"
        return Message(role="developer" if developer else "system", content=_flat_text(message.content), name=name)
    if isinstance(message, AIMessage):
        return _assistant_to_wire(message)
    if isinstance(message, ToolMessage):
        return Message(role="tool", content=_tool_content(message.content), tool_call_id=message.tool_call_id)
    if isinstance(message, ChatMessage):
        chat_role = _ROLE_OF_CHAT_MESSAGE.get(message.role.lower())
        if chat_role is None:
            raise ValueError(f"unsupported chat message role {message.role!r}")
        if chat_role == "user":
            return Message(role="user", content=_user_content(message.content), name=name)
        return Message(role=chat_role, content=_flat_text(message.content), name=name)
    if isinstance(message, FunctionMessage):
        raise ValueError(
            "FunctionMessage (legacy OpenAI function calling) is not supported; use ToolMessage with a tool_call_id"
        )
    raise ValueError(f"unsupported message type {type(message).__name__}")


def _assistant_to_wire(message: AIMessage) -> Message:
    reasoning = _reasoning_of(message)
    tool_calls = [
        ToolCall(
            id=call.get("id") or "",
            function=FunctionCall(name=call["name"], arguments=json.dumps(call["args"], ensure_ascii=False)),
        )
        for call in message.tool_calls
    ]
    tool_calls += [
        ToolCall(id=call.get("id") or "", function=FunctionCall(name=call.get("name") or "", arguments=call["args"]))
        for call in message.invalid_tool_calls
    ]
    if not tool_calls and isinstance(raw := message.additional_kwargs.get("tool_calls"), list):
        tool_calls = [ToolCall.model_validate(call) for call in raw]
    text = _flat_text(message.content, skip=_NON_TEXT_ASSISTANT_BLOCKS)
    return Message(
        role="assistant",
        # An assistant turn that only calls tools goes without content, as Cerebras itself records it.
        content=text if text or not tool_calls else None,
        name=message.name or None,
        tool_calls=tool_calls or None,
        reasoning=reasoning,
    )


def _reasoning_of(message: AIMessage) -> str | None:
    """The reasoning of an earlier assistant turn, from ``additional_kwargs`` or v1 content blocks."""
    value = message.additional_kwargs.get("reasoning_content")
    if isinstance(value, str) and value:
        return value
    if isinstance(message.content, list):
        parts = [
            str(block.get("reasoning") or block.get("thinking") or "")
            for block in message.content
            if isinstance(block, dict) and block.get("type") in ("reasoning", "thinking")
        ]
        text = "".join(parts)
        if text:
            return text
    return None


def _flat_text(content: str | list[str | dict[str, Any]], *, skip: frozenset[str] = frozenset()) -> str:
    """Text of a message's content, its text blocks joined (as ``BaseMessage.text`` joins them)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict):
            kind = block.get("type")
            if kind in skip:
                continue
            if kind == "text" or (kind is None and "text" in block):
                parts.append(str(block.get("text", "")))
    return "".join(parts)


def _tool_content(content: str | list[str | dict[str, Any]]) -> str:
    """A tool result as a string: text blocks joined, anything else as JSON."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(json.dumps(block, ensure_ascii=False, default=str))
    return "".join(parts)


def _user_content(content: str | list[str | dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A user turn: a string, or OpenAI-style parts when it carries images or files."""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
        elif isinstance(block, dict):
            kind = block.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": str(block.get("text", ""))})
            elif kind == "image_url":
                parts.append({"type": "image_url", "image_url": block["image_url"]})
            elif is_data_content_block(block):
                parts.append(convert_to_openai_data_block(block))
            else:
                parts.append(dict(block))
    if all(part.get("type") == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


# --- response --------------------------------------------------------------------------------


def usage_to_metadata(usage: Usage) -> UsageMetadata:
    """Cerebras ``usage`` -> LangChain ``UsageMetadata`` with cache-read and reasoning details."""
    counts = usage_counts(usage)
    metadata: dict[str, Any] = {
        "input_tokens": counts.input_tokens,
        "output_tokens": counts.output_tokens,
        "total_tokens": counts.total_tokens,
    }
    if counts.cached_tokens is not None:
        metadata["input_token_details"] = InputTokenDetails(cache_read=counts.cached_tokens)
    if counts.reasoning_tokens is not None:
        metadata["output_token_details"] = OutputTokenDetails(reasoning=counts.reasoning_tokens)
    # langchain-core >= 1.8 spells NotRequired with typing (3.11+), which mypy's 3.10 target reads as
    # required keys: build the TypedDicts as plain dicts.
    return cast(UsageMetadata, metadata)


def call_info_metadata(info: CallInfo) -> dict[str, Any]:
    """What the gateway saw of one call (cost, rate-limit snapshot, attempts, waits), for ``response_metadata``."""
    return dict(info.as_metadata())


def _parse_tool_calls(raw_calls: Sequence[ToolCall]) -> tuple[list[Any], list[Any]]:
    tool_calls: list[Any] = []
    invalid: list[Any] = []
    for raw in raw_calls:
        raw_dict = raw.model_dump(exclude_none=True)
        raw_dict.setdefault("function", {}).setdefault("arguments", "")
        raw_dict["function"].setdefault("name", "")
        try:
            parsed = parse_tool_call(raw_dict, return_id=True)
        except Exception as exc:  # any parse failure makes an invalid tool call
            invalid.append(make_invalid_tool_call(raw_dict, str(exc)))
            continue
        if parsed is not None:
            if not isinstance(parsed.get("args"), dict):
                invalid.append(
                    invalid_tool_call(
                        name=raw_dict["function"]["name"],
                        args=raw_dict["function"]["arguments"],
                        id=raw.id,
                        error="tool call arguments are not a JSON object",
                    )
                )
                continue
            tool_calls.append(parsed)
    return tool_calls, invalid


def _ai_message(message: ResponseMessage, completion: ChatCompletion, metadata: dict[str, Any]) -> AIMessage:
    additional_kwargs: dict[str, Any] = {}
    if message.reasoning:
        additional_kwargs["reasoning_content"] = message.reasoning
    tool_calls, invalid = _parse_tool_calls(message.tool_calls or [])
    return AIMessage(
        content=message.content or "",
        additional_kwargs=additional_kwargs,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage_to_metadata(completion.usage) if completion.usage else None,
        response_metadata=metadata,
        id=completion.id or None,
    )


def _completion_metadata(completion: ChatCompletion) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "model_name": completion.model,
        "model_provider": MODEL_PROVIDER,
        "system_fingerprint": completion.system_fingerprint,
        "id": completion.id or None,
    }
    if completion.service_tier is not None:
        metadata["service_tier"] = completion.service_tier
    if completion.time_info is not None:
        metadata["time_info"] = completion.time_info.model_dump(exclude_none=True)
    return metadata


def completion_to_result(completion: ChatCompletion, info: CallInfo | None = None) -> ChatResult:
    """A completion (and what the gateway saw of the call) as a LangChain ``ChatResult``."""
    base = _completion_metadata(completion)
    if info is not None:
        base.update(call_info_metadata(info))
    generations = []
    for choice in completion.choices:
        metadata = {**base, "finish_reason": choice.finish_reason}
        if choice.logprobs is not None:
            metadata["logprobs"] = choice.logprobs
        generations.append(ChatGeneration(message=_ai_message(choice.message, completion, metadata)))
    llm_output: dict[str, Any] = {"model_name": completion.model, "system_fingerprint": completion.system_fingerprint}
    if completion.usage is not None:
        llm_output["token_usage"] = completion.usage.model_dump(exclude_none=True)
    return ChatResult(generations=generations, llm_output=llm_output)


# --- stream ----------------------------------------------------------------------------------


def _chunk_message(chunk: ChatCompletionChunk) -> tuple[AIMessageChunk, bool]:
    """A wire chunk as an ``AIMessageChunk``; the flag says whether it is a terminal chunk.

    Terminal chunks (``finish_reason`` or ``usage``) carry the response metadata.
    """
    content = ""
    additional_kwargs: dict[str, Any] = {}
    tool_call_chunks: list[Any] = []
    metadata: dict[str, Any] = {"model_provider": MODEL_PROVIDER}
    finish_reason: str | None = None
    for choice in chunk.choices:
        if choice.index != 0:
            continue
        delta = choice.delta
        content = delta.content or ""
        if delta.reasoning:
            additional_kwargs["reasoning_content"] = delta.reasoning
        for part in delta.tool_calls or []:
            function = part.function
            tool_call_chunks.append(
                tool_call_chunk(
                    name=function.name if function else None,
                    args=function.arguments if function else None,
                    id=part.id,
                    index=part.index,
                )
            )
        if choice.logprobs is not None:
            metadata["logprobs"] = choice.logprobs
        finish_reason = choice.finish_reason
    terminal = finish_reason is not None or chunk.usage is not None
    if terminal:
        metadata["model_name"] = chunk.model
        metadata["system_fingerprint"] = chunk.system_fingerprint
        if finish_reason is not None:
            metadata["finish_reason"] = finish_reason
        if chunk.time_info is not None:
            metadata["time_info"] = chunk.time_info.model_dump(exclude_none=True)
    message = AIMessageChunk(
        content=content,
        additional_kwargs=additional_kwargs,
        tool_call_chunks=tool_call_chunks,
        usage_metadata=usage_to_metadata(chunk.usage) if chunk.usage is not None else None,
        response_metadata=metadata,
        id=chunk.id or None,
    )
    return message, terminal


class StreamAssembler:
    """Turns the core's stream chunks into ``ChatGenerationChunk``\\ s; shared by sync and async.

    Feed every chunk with the stream's ``info`` as it is when the chunk arrives: the core hands the
    last chunk over once the call has ended, with ``info`` set, so that chunk carries usage,
    ``model_name`` and the call's cost and rate-limit snapshot. ``stream_usage=False`` leaves
    ``usage_metadata`` out (the core still reads the usage, to settle the quota and the spend).
    """

    __slots__ = ("_finished", "_saw_model", "_usage")

    def __init__(self, *, usage: bool = True) -> None:
        self._usage = usage
        self._saw_model = False
        self._finished = False

    def feed(self, chunk: ChatCompletionChunk, info: CallInfo | None) -> ChatGenerationChunk:
        message, terminal = _chunk_message(chunk)
        if terminal:
            if self._saw_model:
                # A second terminal chunk (usage after finish_reason): strings would concatenate.
                for key in ("model_name", "system_fingerprint"):
                    message.response_metadata.pop(key, None)
            self._saw_model = True
        if not self._usage:
            message.usage_metadata = None
        if info is not None:
            self._finish_into(message, info)
        return ChatGenerationChunk(message=message)

    def finish(self, info: CallInfo) -> list[ChatGenerationChunk]:
        """The call's info as a chunk of its own, unless the last chunk already carried it."""
        if self._finished:
            return []
        message = AIMessageChunk(content="", response_metadata={"model_provider": MODEL_PROVIDER})
        self._finish_into(message, info)
        return [ChatGenerationChunk(message=message)]

    def _finish_into(self, message: AIMessageChunk, info: CallInfo) -> None:
        self._finished = True
        message.response_metadata.update(call_info_metadata(info))
        if not self._saw_model:
            message.response_metadata["model_name"] = info.model
            self._saw_model = True


# --- content blocks (langchain-core v1) ------------------------------------------------------


def _leading_blocks(message: AIMessage) -> list[types.ContentBlock]:
    if not isinstance(message.content, str):
        # List content was not produced by us (user-built history); use core's best-effort parser.
        raise NotImplementedError
    blocks: list[types.ContentBlock] = []
    reasoning = message.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append(cast(types.ReasoningContentBlock, {"type": "reasoning", "reasoning": reasoning}))
    if message.content:
        blocks.append(cast(types.TextContentBlock, {"type": "text", "text": message.content}))
    return blocks


def _call_blocks(message: AIMessage) -> list[types.ContentBlock]:
    blocks: list[types.ContentBlock] = [
        cast(types.ToolCall, {"type": "tool_call", "id": call.get("id"), "name": call["name"], "args": call["args"]})
        for call in message.tool_calls
    ]
    blocks.extend(
        cast(
            types.InvalidToolCall,
            {
                "type": "invalid_tool_call",
                "id": call.get("id"),
                "name": call.get("name"),
                "args": call.get("args"),
                "error": call.get("error"),
            },
        )
        for call in message.invalid_tool_calls
    )
    return blocks


def translate_content(message: AIMessage) -> list[types.ContentBlock]:
    """Standard content blocks of a ChatCerebras message: reasoning, text, tool calls."""
    return _leading_blocks(message) + _call_blocks(message)


def translate_content_chunk(chunk: AIMessageChunk) -> list[types.ContentBlock]:
    """Standard content blocks of a stream chunk.

    Tool-call chunks get ``"lc_tc_<n>"`` indexes: langchain-core numbers the other blocks of a v1
    stream ``0, 1, ...`` by position, and a tool call's own index 0 would otherwise merge into
    the reasoning or text block 0 when the stream is aggregated.
    """
    blocks = _leading_blocks(chunk)
    if chunk.chunk_position == "last":
        return blocks + _call_blocks(chunk)
    for part in chunk.tool_call_chunks:
        block = cast(
            types.ToolCallChunk,
            {"type": "tool_call_chunk", "id": part.get("id"), "name": part.get("name"), "args": part.get("args")},
        )
        if (index := part.get("index")) is not None:
            block["index"] = f"lc_tc_{index}"
        blocks.append(block)
    return blocks


register_translator(MODEL_PROVIDER, translate_content, translate_content_chunk)
