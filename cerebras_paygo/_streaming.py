"""Fold stream chunks into the ``ChatCompletion`` they add up to (pure; sync and async share it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebras_paygo._wire import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    FunctionCall,
    ResponseMessage,
    TimeInfo,
    ToolCall,
    Usage,
)

__all__ = ["StreamAccumulator"]


@dataclass
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class StreamAccumulator:
    """Add chunks with ``add``; ``result()`` is the completion so far.

    Tool-call arguments may arrive whole (as Cerebras sends them) or split across chunks (as
    OpenAI-style servers do); both fold into one call per ``index``.
    """

    id: str = ""
    model: str = ""
    created: int = 0
    system_fingerprint: str | None = None
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCallParts] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    time_info: TimeInfo | None = None
    chunks: int = 0

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.chunks += 1
        self.id = self.id or chunk.id
        self.model = self.model or chunk.model
        self.created = self.created or chunk.created
        self.system_fingerprint = self.system_fingerprint or chunk.system_fingerprint
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.time_info is not None:
            self.time_info = chunk.time_info
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content:
                self.content.append(delta.content)
            if delta.reasoning:
                self.reasoning.append(delta.reasoning)
            for position, call in enumerate(delta.tool_calls or ()):
                index = call.index if call.index is not None else position
                parts = self.tool_calls.setdefault(index, _ToolCallParts())
                if call.id:
                    parts.id = call.id
                if call.function is not None:
                    if call.function.name:
                        parts.name += call.function.name if not parts.name else ""
                    if call.function.arguments:
                        parts.arguments.append(call.function.arguments)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason

    def result(self) -> ChatCompletion:
        calls = [
            ToolCall(id=p.id, function=FunctionCall(name=p.name, arguments="".join(p.arguments)), index=i)
            for i, p in sorted(self.tool_calls.items())
        ]
        message = ResponseMessage(
            content="".join(self.content) if self.content or not calls else None,
            reasoning="".join(self.reasoning) or None,
            tool_calls=calls or None,
        )
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            system_fingerprint=self.system_fingerprint,
            choices=[Choice(index=0, message=message, finish_reason=self.finish_reason)],
            usage=self.usage,
            time_info=self.time_info,
        )
