"""Small helpers shared by the emulator tests (plain httpx, no client library of ours)."""

from __future__ import annotations

import json
from typing import Any

import httpx

RATE_HEADERS = (
    "x-ratelimit-limit-requests-day",
    "x-ratelimit-limit-tokens-minute",
    "x-ratelimit-remaining-requests-day",
    "x-ratelimit-remaining-tokens-minute",
    "x-ratelimit-reset-requests-day",
    "x-ratelimit-reset-tokens-minute",
)
MODEL = "gpt-oss-120b"
GLM = "zai-glm-4.7"


def chat(client: httpx.Client, content: str = "Hello there", **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": content}], **fields}
    return client.post("/chat/completions", json=body)


def sse_events(text: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded (``"[DONE]"`` kept as a string)."""
    events: list[Any] = []
    for block in text.split("\n\n"):
        block = block.strip()
        if not block:
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def assert_rate_headers(response: httpx.Response) -> None:
    for name in RATE_HEADERS:
        assert name in response.headers, name
    assert int(response.headers["x-ratelimit-limit-requests-day"]) > 0
    float(response.headers["x-ratelimit-reset-tokens-minute"])
    float(response.headers["x-ratelimit-reset-requests-day"])
    assert response.headers.get("x-request-id")
