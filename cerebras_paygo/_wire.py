"""Pydantic models of what crosses the wire: request, response, stream chunk, usage, error body.

Response models ignore fields they do not know (the API adds fields); request models keep
extra fields so ``extra_body`` options reach the server as given.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "Choice",
    "ChunkChoice",
    "CompletionTokensDetails",
    "Delta",
    "ErrorBody",
    "FunctionCall",
    "Message",
    "ModelInfo",
    "ModelList",
    "PromptTokensDetails",
    "RateLimitSnapshot",
    "ResponseMessage",
    "TimeInfo",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- request ---------------------------------------------------------------------------------


class FunctionCall(_Response):
    name: str | None = None
    arguments: str | None = None


class ToolCall(_Response):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall
    index: int | None = None


class Message(BaseModel):
    """One chat message as sent: ``system``, ``developer``, ``user``, ``assistant`` or ``tool``."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning: str | None = None

    def text(self) -> str:
        """The message's text, with list content parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(part.get("text", "")) for part in self.content if isinstance(part, dict))


class ChatCompletionRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``; fields left ``None`` are not sent."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message]
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    reasoning_format: str | None = None
    clear_thinking: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    user: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON body: ``None`` fields and empty ``stop`` lists dropped."""
        payload = self.model_dump(exclude_none=True, mode="json")
        if payload.get("stop") == []:
            del payload["stop"]
        return payload


# --- response --------------------------------------------------------------------------------


class PromptTokensDetails(_Response):
    cached_tokens: int | None = None


class CompletionTokensDetails(_Response):
    reasoning_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class Usage(_Response):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None

    @property
    def cached_tokens(self) -> int:
        details = self.prompt_tokens_details
        return (details.cached_tokens or 0) if details else 0

    @property
    def reasoning_tokens(self) -> int:
        details = self.completion_tokens_details
        return (details.reasoning_tokens or 0) if details else 0


class TimeInfo(_Response):
    queue_time: float | None = None
    prompt_time: float | None = None
    completion_time: float | None = None
    total_time: float | None = None
    created: float | None = None


class ResponseMessage(_Response):
    role: str = "assistant"
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None


class Choice(_Response):
    index: int = 0
    message: ResponseMessage
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletion(_Response):
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    system_fingerprint: str | None = None
    service_tier: str | None = None
    choices: list[Choice]
    usage: Usage | None = None
    time_info: TimeInfo | None = None


class ToolCallDelta(_Response):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: FunctionCall | None = None


class Delta(_Response):
    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(_Response):
    index: int = 0
    delta: Delta = Delta()
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletionChunk(_Response):
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    system_fingerprint: str | None = None
    choices: list[ChunkChoice] = []
    usage: Usage | None = None
    time_info: TimeInfo | None = None


class ErrorBody(_Response):
    """The flat Cerebras error body (``{"message", "type", "param", "code"}``)."""

    message: str = ""
    type: str | None = None
    param: str | None = None
    code: str | None = None
    id: str | None = None


class ModelInfo(_Response):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = ""


class ModelList(_Response):
    object: str = "list"
    data: list[ModelInfo] = []


# --- rate-limit headers ----------------------------------------------------------------------

_WINDOWS = ("minute", "hour", "day")
_KINDS = ("requests", "tokens")


@dataclass(frozen=True)
class RateLimitSnapshot:
    """What the ``x-ratelimit-*`` headers of one response said.

    Keys are ``"<kind>-<window>"`` (``"tokens-minute"``, ``"requests-day"``, ...); ``reset`` is in
    seconds from ``received_at`` (a ``time.monotonic()`` reading), ``received_wall`` the wall clock.
    Cerebras documents the four ``requests-day`` and ``tokens-minute`` series; any
    ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}-{minute,hour,day}`` is accepted.
    """

    limit: Mapping[str, int] = field(default_factory=dict)
    remaining: Mapping[str, int] = field(default_factory=dict)
    reset: Mapping[str, float] = field(default_factory=dict)
    received_at: float = 0.0
    received_wall: float = 0.0

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, now: float | None = None) -> RateLimitSnapshot:
        limit: dict[str, int] = {}
        remaining: dict[str, int] = {}
        reset: dict[str, float] = {}
        for kind in _KINDS:
            for window in _WINDOWS:
                key = f"{kind}-{window}"
                _put_number(limit, key, headers.get(f"x-ratelimit-limit-{key}"), int)
                _put_number(remaining, key, headers.get(f"x-ratelimit-remaining-{key}"), int)
                _put_number(reset, key, headers.get(f"x-ratelimit-reset-{key}"), float)
        return cls(
            limit=limit,
            remaining=remaining,
            reset=reset,
            received_at=time.monotonic() if now is None else now,
            received_wall=time.time(),
        )

    @property
    def empty(self) -> bool:
        return not (self.limit or self.remaining or self.reset)

    def as_dict(self) -> dict[str, Any]:
        """A plain dict for response metadata: ``{"limit": {...}, "remaining": {...}, "reset": {...}}``."""
        return {"limit": dict(self.limit), "remaining": dict(self.remaining), "reset": dict(self.reset)}


def _put_number(target: dict[str, Any], key: str, raw: str | None, kind: type) -> None:
    if raw is None:
        return
    try:
        target[key] = kind(float(raw)) if kind is int else kind(raw)
    except ValueError:
        return
