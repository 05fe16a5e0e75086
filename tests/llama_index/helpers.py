"""Helpers shared by the LlamaIndex tests that run against the emulator."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx
from llama_index.core.tools import FunctionTool

from cerebras_paygo._client import CerebrasClient
from llama_index_cerebras import Cerebras

_serial = itertools.count()


def fresh_key(emulator: Any, *, free: bool = False) -> str:
    """A key of its own for this test, on the emulator's paygo (or free) org.

    The limiter buckets and the 402 circuit are process-wide per key, so a fresh key keeps what
    one test does (a tiny quota, an open 402 circuit) out of the next one.
    """
    key = f"csk-li-{'free' if free else 'paygo'}-{next(_serial)}-{time.monotonic_ns()}"
    org = emulator.free_org if free else emulator.paygo_org
    emulator.configure(keys={**emulator.config.keys, key: org})
    return key


def llm_for(emulator: Any, *, free: bool = False, **kwargs: Any) -> Cerebras:
    """A ``Cerebras`` on the emulator with a fresh key (and the free tier when ``free``)."""
    kwargs.setdefault("max_tokens", 256)
    if free:
        kwargs.setdefault("tier", "free")
    return Cerebras(base_url=emulator.base_url, api_key=fresh_key(emulator, free=free), **kwargs)


class Recorder:
    """An httpx event hook that keeps the JSON bodies sent to ``/chat/completions``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            self.bodies.append(json.loads(request.content))

    async def acall(self, request: httpx.Request) -> None:
        self(request)


def recorded_llm(emulator: Any, recorder: Recorder, **kwargs: Any) -> Cerebras:
    """A ``Cerebras`` whose core client records every request body."""
    client = CerebrasClient(
        base_url=emulator.base_url,
        api_key=fresh_key(emulator),
        http_client=httpx.Client(event_hooks={"request": [recorder]}),
        async_http_client=httpx.AsyncClient(event_hooks={"request": [recorder.acall]}),
    )
    kwargs.setdefault("max_tokens", 256)
    return Cerebras(client=client, **kwargs)


PATHS = ["chat", "achat", "stream_chat", "astream_chat"]
COMPLETE_PATHS = ["complete", "acomplete", "stream_complete", "astream_complete"]


async def run_chat(llm: Cerebras, path: str, messages: Any, **kwargs: Any) -> Any:
    """Call ``llm`` by one of the four chat paths; a stream comes back as its last response,
    with the number of responses that carried usage checked to be exactly one."""
    if path == "chat":
        return llm.chat(messages, **kwargs)
    if path == "achat":
        return await llm.achat(messages, **kwargs)
    if path == "stream_chat":
        responses = list(llm.stream_chat(messages, **kwargs))
    else:
        responses = [r async for r in await llm.astream_chat(messages, **kwargs)]
    assert responses, "a stream yields at least one response"
    with_usage = [r for r in responses if "total_tokens" in r.additional_kwargs]
    assert len(with_usage) == 1 and with_usage[0] is responses[-1], "the last response, only, carries usage"
    assert "".join(r.delta or "" for r in responses) == responses[-1].message.content
    return responses[-1]


async def run_complete(llm: Cerebras, path: str, prompt: str, **kwargs: Any) -> Any:
    """Call ``llm`` by one of the four complete paths; a stream comes back as its last response."""
    if path == "complete":
        return llm.complete(prompt, **kwargs)
    if path == "acomplete":
        return await llm.acomplete(prompt, **kwargs)
    if path == "stream_complete":
        responses = list(llm.stream_complete(prompt, **kwargs))
    else:
        responses = [r async for r in await llm.astream_complete(prompt, **kwargs)]
    assert responses
    assert "".join(r.delta or "" for r in responses) == responses[-1].text
    return responses[-1]


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is 21 degrees and sunny in {city}."


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


WEATHER = FunctionTool.from_defaults(fn=get_weather)
MULTIPLY = FunctionTool.from_defaults(fn=multiply)
