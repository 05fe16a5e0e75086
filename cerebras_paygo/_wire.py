"""Pydantic models of what crosses the wire: request, response, stream chunk, usage, error body.

Response models ignore fields they do not know (the API adds fields); request models keep
extra fields so ``extra_body`` options reach the server as given.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "MAX_RETRY_AFTER",
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
    "ResponseMeta",
    "TimeInfo",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "header_number",
    "parse_retry_after_value",
]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


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

    model_config = ConfigDict(extra="allow", defer_build=True)

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

    model_config = ConfigDict(extra="allow", defer_build=True)

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


# --- response headers ------------------------------------------------------------------------

_WINDOWS = ("minute", "hour", "day")
_KINDS = ("requests", "tokens")

#: Retry-After values above this many seconds are ignored (as openai-python does).
MAX_RETRY_AFTER = 120.0

#: ``x-ratelimit-<field>-<kind>-<window>`` -> (field, "<kind>-<window>"): one dict lookup per header.
_RATE_HEADERS: dict[str, tuple[str, str]] = {
    f"x-ratelimit-{what}-{kind}-{window}": (what, f"{kind}-{window}")
    for what in ("limit", "remaining", "reset")
    for kind in _KINDS
    for window in _WINDOWS
}


def header_number(raw: str | None) -> float | None:
    """A header's value as a finite, non-negative number, or ``None`` for anything we cannot use.

    ``abc``, ``nan``, ``inf``, ``1e400`` (which ``float`` reads as infinity) and negatives are all
    ignored rather than raised: one odd header must never fail a call.
    """
    if raw is None:
        return None
    try:
        value = float(raw)
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


@dataclass(frozen=True)
class RateLimitSnapshot:
    """What the ``x-ratelimit-*`` headers of one response said.

    Keys are ``"<kind>-<window>"`` (``"tokens-minute"``, ``"requests-day"``, ...); ``reset`` is in
    seconds from ``received_at`` (a ``time.monotonic()`` reading), ``received_wall`` the wall clock.
    Cerebras documents the four ``requests-day`` and ``tokens-minute`` series; any
    ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}-{minute,hour,day}`` is accepted. Only
    finite, non-negative values are kept (``limit``/``remaining`` truncated to ints).
    """

    limit: Mapping[str, int] = field(default_factory=dict)
    remaining: Mapping[str, int] = field(default_factory=dict)
    reset: Mapping[str, float] = field(default_factory=dict)
    received_at: float = 0.0
    received_wall: float = 0.0

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, now: float | None = None) -> RateLimitSnapshot:
        """The snapshot of a header mapping (any case). Prefer :attr:`ResponseMeta.rate_limits`."""
        return ResponseMeta.from_headers(0, headers, now=now).rate_limits

    @property
    def empty(self) -> bool:
        return not (self.limit or self.remaining or self.reset)

    def as_dict(self) -> dict[str, Any]:
        """A plain dict for response metadata: ``{"limit": {...}, "remaining": {...}, "reset": {...}}``."""
        return {"limit": dict(self.limit), "remaining": dict(self.remaining), "reset": dict(self.reset)}


def _snapshot(headers: Mapping[str, str], received_at: float, received_wall: float) -> RateLimitSnapshot:
    limit: dict[str, int] = {}
    remaining: dict[str, int] = {}
    reset: dict[str, float] = {}
    for name, value in headers.items():
        slot = _RATE_HEADERS.get(name)
        if slot is None:
            continue
        number = header_number(value)
        if number is None:
            continue
        what, key = slot
        if what == "reset":
            reset[key] = number
        elif what == "limit":
            limit[key] = int(number)
        else:
            remaining[key] = int(number)
    return RateLimitSnapshot(limit, remaining, reset, received_at, received_wall)


def parse_retry_after_value(ms: str | None, seconds: str | None, *, wall: float) -> float | None:
    """``retry-after-ms`` (milliseconds) else ``retry-after`` (seconds or an HTTP-date, relative to
    ``wall``, a ``time.time()`` reading); only ``0 < x <= 120`` is honoured, anything else is ``None``."""
    value: float | None = None
    delay_ms = header_number(ms)
    if delay_ms is not None:
        value = delay_ms / 1000.0
    elif seconds is not None:
        raw = seconds.strip()
        try:
            value = float(raw)
        except (ValueError, OverflowError):
            value = _http_date_delay(raw, wall)
    if value is None or not math.isfinite(value) or not 0 < value <= MAX_RETRY_AFTER:
        return None
    return value


def _http_date_delay(raw: str, wall: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no zone information
        when = when.replace(tzinfo=dt.timezone.utc)
    try:
        return when.timestamp() - wall
    except (OverflowError, ValueError, OSError):  # pragma: no cover - dates far outside the epoch
        return None


def _should_retry(raw: str | None) -> bool | None:
    if raw is None:
        return None
    text = raw.strip().lower()
    if text == "true":
        return True
    if text == "false":
        return False
    return None


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """Everything the headers of one response said, parsed once at the transport edge.

    ``headers`` holds the response headers with lowercase names (repeated headers joined with
    ``", "``, as ``httpx.Headers.get`` does); never request headers, so never the API key.
    ``retry_after`` is ``retry-after-ms`` / ``retry-after`` (seconds or HTTP-date) in seconds, kept
    only when ``0 < x <= 120``; ``should_retry`` is ``x-should-retry`` (``None`` when absent or not
    ``true``/``false``); ``received_at`` a ``time.monotonic()`` reading.
    """

    status_code: int
    rate_limits: RateLimitSnapshot = field(default_factory=RateLimitSnapshot)
    request_id: str | None = None
    retry_after: float | None = None
    should_retry: bool | None = None
    received_at: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_raw(
        cls,
        status_code: int,
        raw: Iterable[tuple[bytes, bytes]],
        *,
        now: float | None = None,
        wall: float | None = None,
    ) -> ResponseMeta:
        """Parse ``httpx.Response.headers.raw`` (name/value byte pairs) in one pass."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in raw:
            # latin-1 never fails and is what httpx decodes header bytes with by default.
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            previous = headers.get(name)
            headers[name] = value if previous is None else f"{previous}, {value}"
        return cls._build(status_code, headers, now, wall)

    @classmethod
    def from_headers(
        cls,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
        wall: float | None = None,
    ) -> ResponseMeta:
        """Parse a header mapping whose names may be in any case (tests, error events, callers)."""
        lowered: dict[str, str] = {}
        for name, value in (headers or {}).items():
            key = str(name).lower()
            previous = lowered.get(key)
            lowered[key] = str(value) if previous is None else f"{previous}, {value}"
        return cls._build(status_code, lowered, now, wall)

    @classmethod
    def _build(cls, status_code: int, headers: dict[str, str], now: float | None, wall: float | None) -> ResponseMeta:
        received_at = time.monotonic() if now is None else now
        received_wall = time.time() if wall is None else wall
        get = headers.get
        retry_after = None
        ms, seconds = get("retry-after-ms"), get("retry-after")
        if ms is not None or seconds is not None:
            retry_after = parse_retry_after_value(ms, seconds, wall=received_wall)
        return cls(
            status_code=status_code,
            rate_limits=_snapshot(headers, received_at, received_wall),
            request_id=get("x-request-id") or get("cf-ray") or None,
            retry_after=retry_after,
            should_retry=_should_retry(get("x-should-retry")),
            received_at=received_at,
            headers=headers,
        )
