"""Helpers shared by the LangChain tests that run against the emulator."""

from __future__ import annotations

import itertools
import time
from typing import Any

from langchain_core.messages import AIMessageChunk

_serial = itertools.count()


def fresh_key(emulator: Any, *, free: bool = False) -> str:
    """A key of its own for this test, on the emulator's paygo (or free) org.

    The limiter buckets and the 402 circuit are process-wide per key, so a fresh key keeps what
    one test does (a tiny quota, an open 402 circuit) out of the next one.
    """
    key = f"csk-lc-{'free' if free else 'paygo'}-{next(_serial)}-{time.monotonic_ns()}"
    org = emulator.free_org if free else emulator.paygo_org
    emulator.configure(keys={**emulator.config.keys, key: org})
    return key


async def collect(stream: Any) -> AIMessageChunk:
    """Aggregate a sync or async stream of message chunks."""
    full: Any = None
    if hasattr(stream, "__aiter__"):
        async for chunk in stream:
            full = chunk if full is None else full + chunk
    else:
        for chunk in stream:
            full = chunk if full is None else full + chunk
    assert isinstance(full, AIMessageChunk)
    return full


PATHS = ["invoke", "ainvoke", "stream", "astream"]


async def run_path(llm: Any, path: str, messages: Any) -> Any:
    """Call ``llm`` by one of the four paths; streams come back aggregated."""
    if path == "invoke":
        return llm.invoke(messages)
    if path == "ainvoke":
        return await llm.ainvoke(messages)
    if path == "stream":
        return await collect(llm.stream(messages))
    return await collect(llm.astream(messages))
