"""Pure conversions between LlamaIndex chat types and the Cerebras wire models.

Nothing here does I/O: ``Cerebras`` calls these from all eight of its methods, so a message, a
completion or a stream chunk means the same thing on every path.

* ``messages_to_wire``: ``ChatMessage``\\ s -> request ``Message``\\ s. Reasoning goes back as the
  assistant's ``reasoning`` field (Cerebras rejects ``reasoning_content``); tool calls come from
  ``ToolCallBlock``\\ s or ``additional_kwargs["tool_calls"]``; tool results are ``role=TOOL`` with
  ``additional_kwargs["tool_call_id"]``.
* ``completion_to_response``: a ``ChatCompletion`` and the core's ``CallInfo`` -> ``ChatResponse``.
* ``StreamFolder``: the core's stream chunks (the last with the call's ``CallInfo``) -> cumulative ``ChatResponse``\\ s,
  the last of which carries usage, cost and the rate-limit snapshot.
* ``tool_selections``: the tool calls of a response as ``ToolSelection``\\ s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    ContentBlock,
    ImageBlock,
    LogProb,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

from cerebras_paygo._options import assistant_message, usage_counts
from cerebras_paygo._streaming import StreamAccumulator
from cerebras_paygo._tools import api_tool_choice
from cerebras_paygo._wire import ChatCompletion, ChatCompletionChunk, FunctionCall, Message, ToolCall, Usage
from cerebras_paygo.errors import ConfigurationError

if TYPE_CHECKING:
    from cerebras_paygo import CallInfo

__all__ = [
    "StreamFolder",
    "completion_to_response",
    "message_to_wire",
    "messages_to_wire",
    "tool_choice_for",
    "tool_selections",
    "usage_kwargs",
]

_WireRole = Literal["system", "developer", "user", "assistant", "tool"]
_ROLES: dict[MessageRole, _WireRole] = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "developer",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.CHATBOT: "assistant",
    MessageRole.MODEL: "assistant",
    MessageRole.TOOL: "tool",
    MessageRole.FUNCTION: "tool",
}


# --- request ---------------------------------------------------------------------------------


def messages_to_wire(messages: Sequence[ChatMessage]) -> list[Message]:
    """Convert a conversation to request messages."""
    return [message_to_wire(message) for message in messages]


def message_to_wire(message: ChatMessage) -> Message:
    """One LlamaIndex message as Cerebras expects it.

    Raises:
        ConfigurationError (a ``ValueError``): a tool result without
            ``additional_kwargs["tool_call_id"]``, or content the chat completions API cannot carry
            (audio, video, documents); nothing is sent.
    """
    role = _ROLES.get(message.role)
    if role is None:
        raise ConfigurationError(f"unsupported chat message role {message.role!r}")
    name = message.additional_kwargs.get("name")
    name = name if isinstance(name, str) and name else None
    if role == "assistant":
        return _assistant_to_wire(message, name)
    if role == "tool":
        call_id = message.additional_kwargs.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise ConfigurationError(
                "a tool result needs the id of the call it answers: "
                "ChatMessage(role='tool', content=..., additional_kwargs={'tool_call_id': ...})"
            )
        return Message(role="tool", content=_tool_text(message.blocks), tool_call_id=call_id, name=name)
    if role == "user":
        return Message(role="user", content=_user_content(message.blocks), name=name)
    return Message(role=role, content=_text(message.blocks), name=name)


def _text(blocks: Iterable[ContentBlock]) -> str:
    return "".join(block.text for block in blocks if isinstance(block, TextBlock))


def _tool_text(blocks: Iterable[ContentBlock]) -> str:
    """A tool result as a string: text blocks joined, anything else as JSON."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            parts.append(block.text)
        elif not isinstance(block, (ThinkingBlock, ToolCallBlock, CachePoint)):
            parts.append(block.model_dump_json(exclude_none=True))
    return "".join(parts)


def _user_content(blocks: Sequence[ContentBlock]) -> str | list[dict[str, Any]]:
    """A user turn: a string, or OpenAI-style parts when it carries images."""
    if all(isinstance(block, (TextBlock, CachePoint)) for block in blocks):
        return _text(blocks)
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
        elif not isinstance(block, (CachePoint, ThinkingBlock)):
            raise ConfigurationError(f"Cerebras chat completions cannot carry {type(block).__name__} content")
    return parts


def _image_url(block: ImageBlock) -> str:
    if block.url is not None:
        return str(block.url)
    encoded = block.resolve_image(as_base64=True).read().decode("ascii")
    return f"data:{block.image_mimetype or 'image/png'};base64,{encoded}"


def _assistant_to_wire(message: ChatMessage, name: str | None) -> Message:
    reasoning = "".join(block.content or "" for block in message.blocks if isinstance(block, ThinkingBlock))
    if not reasoning:
        value = message.additional_kwargs.get("reasoning_content")
        reasoning = value if isinstance(value, str) else ""
    return assistant_message(
        _text(message.blocks), reasoning=reasoning, tool_calls=_assistant_calls(message), name=name
    )


def _assistant_calls(message: ChatMessage) -> list[ToolCall]:
    """Tool calls of an assistant turn: ``ToolCallBlock``\\ s, else ``additional_kwargs["tool_calls"]``.

    A block's arguments go back as the exact string the model produced when the raw call in
    ``additional_kwargs`` still says the same thing, so a replayed turn is byte-for-byte the same.
    """
    raw = [_raw_call(item) for item in message.additional_kwargs.get("tool_calls") or ()]
    raw_calls = [call for call in raw if call is not None]
    blocks = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    if not blocks:
        return raw_calls
    raw_arguments = {call.id: call.function.arguments or "" for call in raw_calls}
    calls = []
    for block in blocks:
        call_id = block.tool_call_id or ""
        kwargs = block.tool_kwargs
        if isinstance(kwargs, str):
            arguments = kwargs
        else:
            original = raw_arguments.get(call_id)
            same = original is not None and _loads_object(original) == kwargs
            arguments = original if same and original is not None else json.dumps(kwargs, ensure_ascii=False)
        calls.append(ToolCall(id=call_id, function=FunctionCall(name=block.tool_name, arguments=arguments)))
    return calls


def _raw_call(item: Any) -> ToolCall | None:
    """A tool call kept in ``additional_kwargs``: a dict, or an object with ``id`` and ``function``."""
    if isinstance(item, ToolCall):
        return ToolCall(id=item.id, function=item.function)
    if not isinstance(item, Mapping):
        if hasattr(item, "model_dump"):
            item = item.model_dump()
        elif hasattr(item, "function"):
            function = item.function
            item = {"id": getattr(item, "id", ""), "function": {"name": function.name, "arguments": function.arguments}}
        else:
            return None
    function = item.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return ToolCall(id=str(item.get("id") or ""), function=FunctionCall(name=function.get("name"), arguments=arguments))


def _loads_object(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return None


def tool_choice_for(
    tool_choice: str | dict[str, Any] | None, tool_required: bool, names: Sequence[str]
) -> str | dict[str, Any]:
    """LlamaIndex's ``tool_choice`` -> the API's: ``None`` is ``"auto"`` (``"required"`` when
    ``tool_required``); everything else as the core maps it (``api_tool_choice``)."""
    if tool_choice is None:
        return "required" if tool_required else "auto"
    return api_tool_choice(tool_choice, names)


# --- response --------------------------------------------------------------------------------


def usage_kwargs(usage: Usage | None) -> dict[str, int]:
    """``prompt_tokens``, ``completion_tokens``, ``total_tokens`` (+ cached and reasoning tokens)."""
    if usage is None:
        return {}
    counted = usage_counts(usage)
    counts = {
        "prompt_tokens": counted.input_tokens,
        "completion_tokens": counted.output_tokens,
        "total_tokens": counted.total_tokens,
    }
    if counted.cached_tokens is not None:
        counts["cached_tokens"] = counted.cached_tokens
    if counted.reasoning_tokens is not None:
        counts["reasoning_tokens"] = counted.reasoning_tokens
    return counts


def _call_kwargs(info: CallInfo | None) -> dict[str, Any]:
    """What the core saw of the call: cost, rate-limit snapshot, attempts, waits, tier."""
    return dict(info.as_metadata()) if info is not None else {}


def _tool_kwargs(arguments: str) -> dict[str, Any] | str:
    """Arguments as a dict when they are a JSON object (``""`` is ``{}``), else the raw string."""
    value = _loads_object(arguments)
    return value if isinstance(value, dict) else arguments


def _assistant_message(
    text: str, reasoning: str, calls: Sequence[tuple[str, str, str]], reasoning_tokens: int | None
) -> ChatMessage:
    """An assistant ``ChatMessage``: ``ThinkingBlock``, ``TextBlock``, ``ToolCallBlock``\\ s."""
    blocks: list[ContentBlock] = []
    if reasoning:
        blocks.append(ThinkingBlock(content=reasoning, num_tokens=reasoning_tokens))
    blocks.append(TextBlock(text=text))
    if calls:
        blocks.extend(
            ToolCallBlock(tool_call_id=call_id, tool_name=name, tool_kwargs=_tool_kwargs(arguments))
            for call_id, name, arguments in calls
        )
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=_message_kwargs(reasoning, calls))


def _message_kwargs(reasoning: str, calls: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """An assistant message's ``additional_kwargs``: ``reasoning_content``, OpenAI-style ``tool_calls``."""
    additional: dict[str, Any] = {}
    if reasoning:
        additional["reasoning_content"] = reasoning
    if calls:
        additional["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in calls
        ]
    return additional


def _logprobs(raw: Any) -> list[list[LogProb]] | None:
    """``{"content": [{token, logprob, bytes, top_logprobs}]}`` -> LlamaIndex's per-token lists."""
    content = raw.get("content") if isinstance(raw, Mapping) else None
    if not isinstance(content, list):
        return None
    out: list[list[LogProb]] = []
    for item in content:
        if not isinstance(item, Mapping):
            continue
        alternatives = item.get("top_logprobs") or [item]
        out.append(
            [
                LogProb(
                    token=str(alt.get("token", "")),
                    logprob=float(alt.get("logprob", 0.0)),
                    bytes=alt.get("bytes") or [],
                )
                for alt in alternatives
                if isinstance(alt, Mapping)
            ]
        )
    return out


def completion_to_response(completion: ChatCompletion, info: CallInfo | None = None) -> ChatResponse:
    """A completion (and what the core saw of the call) as a ``ChatResponse``.

    ``additional_kwargs`` holds the usage (``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``), ``finish_reason``, ``model`` and the call's ``cost_usd``, ``rate_limits``,
    ``attempts``, ``waited_s`` ...; ``raw`` is the completion as a dict.
    """
    choice = completion.choices[0] if completion.choices else None
    message = choice.message if choice is not None else None
    usage = completion.usage
    calls = [
        (call.id, call.function.name or "", call.function.arguments or "")
        for call in (message.tool_calls if message is not None else None) or ()
    ]
    chat_message = _assistant_message(
        message.content or "" if message is not None else "",
        message.reasoning or "" if message is not None else "",
        calls,
        usage.reasoning_tokens or None if usage is not None else None,
    )
    extra: dict[str, Any] = {
        **usage_kwargs(usage),
        "finish_reason": choice.finish_reason if choice is not None else None,
        "model": completion.model,
        **_call_kwargs(info),
    }
    return ChatResponse(
        message=chat_message,
        raw=completion.model_dump(mode="json"),
        logprobs=_logprobs(choice.logprobs) if choice is not None else None,
        additional_kwargs=extra,
    )


_Folded = TypeVar("_Folded", bound="ChatResponse | CompletionResponse")


class StreamFolder(Generic[_Folded]):
    """The core's stream chunks -> cumulative ``ChatResponse``\\ s.

    Every response holds the whole message so far (text, ``ThinkingBlock``, ``ToolCallBlock``\\ s)
    and this chunk's ``delta``; ``additional_kwargs["thinking_delta"]`` holds this chunk's
    reasoning. The core hands the last chunk over once the call has ended, with the stream's
    ``info`` set: feed it along, and that response, the last, carries the usage, cost and
    rate-limit snapshot. Pure: the sync and async streams share it.

    ``completion=True`` (``stream_complete``) yields ``CompletionResponse``\\ s instead, the same
    fields as a chat response turned into a completion (``text``: the text so far; the message's
    ``reasoning_content``/``tool_calls`` and the response's extras in ``additional_kwargs``), built
    directly: no ``ChatMessage`` and its blocks per chunk that would only be taken apart again.
    """

    __slots__ = ("_acc", "_completion", "_finished", "_reasoning", "_text")

    @overload
    def __init__(self: StreamFolder[ChatResponse], *, completion: Literal[False] = False) -> None: ...
    @overload
    def __init__(self: StreamFolder[CompletionResponse], *, completion: Literal[True]) -> None: ...
    def __init__(self, *, completion: bool = False) -> None:
        self._acc = StreamAccumulator()
        self._completion = completion
        self._text = ""
        self._reasoning = ""
        self._finished = False

    def feed(self, chunk: ChatCompletionChunk, info: CallInfo | None) -> _Folded | None:
        """Fold one chunk (with the call's info when it is the last); the response to yield, if any."""
        calls_before = self._call_state()
        self._acc.add(chunk)
        text = reasoning = ""
        for choice in chunk.choices:
            if choice.index == 0:
                text = choice.delta.content or ""
                reasoning = choice.delta.reasoning or ""
        self._text += text
        self._reasoning += reasoning
        if info is not None:
            return self._final(chunk.model_dump(mode="json"), text, reasoning, info)
        if not text and not reasoning and self._call_state() == calls_before:
            return None  # the role chunk, an empty delta, or a finish_reason without text
        return self._response(chunk.model_dump(mode="json"), text, reasoning, {})

    def finish(self, info: CallInfo) -> _Folded | None:
        """The call's info as a response of its own, unless the last chunk already carried it."""
        if self._finished:
            return None
        return self._final(None, "", "", info)

    def _final(self, raw: Any, text: str, reasoning: str, info: CallInfo) -> _Folded:
        self._finished = True
        extra = {
            **usage_kwargs(self._acc.usage),
            "finish_reason": self._acc.finish_reason,
            "model": self._acc.model or info.model,
            **_call_kwargs(info),
        }
        return self._response(raw, text, reasoning, extra)

    def _call_state(self) -> tuple[tuple[str, str, int], ...]:
        return tuple((p.id, p.name, len(p.arguments)) for _, p in sorted(self._acc.tool_calls.items()))

    def _response(self, raw: Any, text: str, reasoning: str, extra: dict[str, Any]) -> _Folded:
        calls = [(p.id, p.name, "".join(p.arguments)) for _, p in sorted(self._acc.tool_calls.items())]
        if self._completion:
            # What ``_to_completion(ChatResponse(...))`` gives, without the message in between.
            merged = _message_kwargs(self._reasoning, calls)
            merged.update(extra)
            if reasoning:
                merged["thinking_delta"] = reasoning
            return cast(_Folded, CompletionResponse(text=self._text, delta=text, raw=raw, additional_kwargs=merged))
        usage = self._acc.usage
        message = _assistant_message(
            self._text, self._reasoning, calls, usage.reasoning_tokens or None if usage is not None else None
        )
        if reasoning:
            extra = {**extra, "thinking_delta": reasoning}
        return cast(_Folded, ChatResponse(message=message, delta=text, raw=raw, additional_kwargs=extra))


# --- tool calls ------------------------------------------------------------------------------


def _arguments_dict(arguments: Any) -> dict[str, Any]:
    """Tool arguments as a dict: JSON (even cut short) parsed; empty or not an object -> ``{}``."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = parse_partial_json(arguments)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def tool_selections(message: ChatMessage) -> list[ToolSelection]:
    """The tool calls of an assistant message: ``ToolCallBlock``\\ s, else ``additional_kwargs["tool_calls"]``."""
    blocks = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    if blocks:
        return [
            ToolSelection(
                tool_id=block.tool_call_id or "",
                tool_name=block.tool_name,
                tool_kwargs=_arguments_dict(block.tool_kwargs),
            )
            for block in blocks
        ]
    selections = []
    for item in message.additional_kwargs.get("tool_calls") or ():
        call = _raw_call(item)
        if call is not None:
            selections.append(
                ToolSelection(
                    tool_id=call.id,
                    tool_name=call.function.name or "",
                    tool_kwargs=_arguments_dict(call.function.arguments),
                )
            )
    return selections


def first_call_only(message: ChatMessage) -> ChatMessage:
    """``message`` with its tool calls cut to the first (parallel calls not allowed)."""
    blocks = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    raw = message.additional_kwargs.get("tool_calls")
    if len(blocks) <= 1 and (not isinstance(raw, list) or len(raw) <= 1):
        return message
    kept: list[ContentBlock] = []
    seen_call = False
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            if seen_call:
                continue
            seen_call = True
        kept.append(block)
    additional = dict(message.additional_kwargs)
    if isinstance(raw, list):
        additional["tool_calls"] = raw[:1]
    return message.model_copy(update={"blocks": kept, "additional_kwargs": additional})
