"""The I/O-free half of the transport: headers, status -> error, SSE data -> chunk, httpx error mapping.

Both transport shells (``_async/transport.py`` and its generated sync twin) call these, so a rule
about what goes on the wire or what an answer means is written once.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from cerebras_paygo._settings import INTEGRATION_HEADER, Settings
from cerebras_paygo._version import __version__
from cerebras_paygo._wire import ChatCompletionChunk, RateLimitSnapshot
from cerebras_paygo.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CerebrasError,
    StreamInterruptedError,
    error_from_response,
)

__all__ = [
    "USER_AGENT",
    "Response",
    "build_headers",
    "error_for_status",
    "map_transport_error",
    "parse_sse_data",
]

T = TypeVar("T")

USER_AGENT = f"cerebras-paygo/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"
DEFAULT_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30.0)


@dataclass(frozen=True)
class Response(Generic[T]):
    """A parsed body with what its headers said."""

    data: T
    rate_limits: RateLimitSnapshot
    request_id: str | None
    headers: Mapping[str, str]


def build_headers(settings: Settings, *, stream: bool = False) -> dict[str, str]:
    key = settings.require_key()
    headers = {
        **settings.default_headers,
        "Authorization": f"Bearer {key.get_secret_value()}",
        "User-Agent": USER_AGENT,
        INTEGRATION_HEADER: settings.integration,
        "Accept": "text/event-stream" if stream else "application/json",
    }
    return headers


def request_id_of(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-request-id") or headers.get("cf-ray")


def error_for_status(status_code: int, content: bytes, headers: Mapping[str, str]) -> APIStatusError:
    """The typed error of a non-2xx response (body already read)."""
    body: Any
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = content.decode("utf-8", "replace")
    return error_from_response(status_code, body, _plain_headers(headers))


def _plain_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def parse_sse_data(data: str, event: str) -> ChatCompletionChunk | None:
    """One SSE event -> a chunk; ``None`` for ``[DONE]`` and keep-alives; an error event raises."""
    text = data.strip()
    if not text or text == "[DONE]":
        return None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise APIConnectionError(f"malformed stream event: {text[:200]!r}") from exc
    if event == "error" or (isinstance(payload, dict) and "error" in payload):
        status = payload.get("status_code") if isinstance(payload, dict) else None
        raise error_from_response(status if isinstance(status, int) else 500, payload)
    return ChatCompletionChunk.model_validate(payload)


def chunk_delivers_content(chunk: ChatCompletionChunk) -> bool:
    """Whether a caller that saw this chunk saw tokens (a role-only chunk says nothing)."""
    for choice in chunk.choices:
        delta = choice.delta
        if delta.content or delta.reasoning or delta.tool_calls:
            return True
    return False


def map_transport_error(exc: Exception, *, delivered_chunks: int = 0) -> CerebrasError:
    """Translate an httpx failure at the one edge where it can happen."""
    if delivered_chunks:
        return StreamInterruptedError(
            f"the stream broke after {delivered_chunks} chunk(s) had been delivered ({type(exc).__name__}: {exc}); "
            "it is not retried because the caller already received tokens",
            delivered_chunks=delivered_chunks,
        )
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request timed out ({type(exc).__name__})")
    return APIConnectionError(f"connection failed ({type(exc).__name__}: {exc})")
