"""Response bodies in the real API's shape, and the SSE response that can pace, stall or drop.

Key order follows the captures: ``id, choices, created, model, system_fingerprint, object``, then
``usage`` and ``time_info``. A stream is: a role chunk, reasoning/content deltas (one token each) or
one chunk with every whole tool call, an empty-delta chunk after content, the final chunk with
``finish_reason`` + ``usage`` + ``time_info``, then ``data: [DONE]`` (switchable).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from cerebras_paygo.emulator.content import GeneratedChoice, logprobs_for
from cerebras_paygo.emulator.faults import EmulatedConnectionDrop

__all__ = ["CompletionMeta", "SSEResponse", "completion_body", "stream_events", "time_info", "usage_body"]


@dataclass(frozen=True)
class CompletionMeta:
    id: str
    created: int
    model: str
    fingerprint: str
    logprobs: bool = False
    top_logprobs: int = 0
    seed: int = 0


def usage_body(
    prompt: int, completion: int, cached: int, reasoning: int | None, prediction: tuple[int, int] | None = None
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    if reasoning is not None or prediction is not None:
        accepted, rejected = prediction or (0, 0)
        usage["completion_tokens_details"] = {
            "reasoning_tokens": reasoning or 0,
            "accepted_prediction_tokens": accepted,
            "rejected_prediction_tokens": rejected,
        }
    return usage


def time_info(
    prompt: int, completion: int, *, queue_s: float, tokens_per_second: float | None, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    queue = round(queue_s + 0.0001 + rng.random() * 0.0004, 9)
    prompt_time = round(prompt / 40_000 + rng.random() * 0.001, 9)
    completion_time = round(completion / (tokens_per_second or 2_000) + rng.random() * 0.001, 9)
    return {
        "queue_time": queue,
        "prompt_time": prompt_time,
        "completion_time": completion_time,
        "total_time": queue + prompt_time + completion_time + rng.random() * 0.002,
        "created": time.time(),
    }


def _message(choice: GeneratedChoice) -> dict[str, Any]:
    message: dict[str, Any] = {}
    if choice.content is not None:
        message["content"] = choice.content
    if choice.reasoning is not None:
        message["reasoning"] = choice.reasoning
    if choice.tool_calls:
        message["tool_calls"] = choice.tool_calls
    message["role"] = "assistant"
    return message


def completion_body(
    meta: CompletionMeta, choices: Sequence[GeneratedChoice], usage: dict[str, Any], timing: dict[str, Any]
) -> dict[str, Any]:
    out_choices = []
    for choice in choices:
        item: dict[str, Any] = {
            "finish_reason": choice.finish_reason,
            "index": choice.index,
            "message": _message(choice),
        }
        if meta.logprobs:
            item["logprobs"] = logprobs_for(choice.content_pieces, meta.top_logprobs, meta.seed + choice.index)
        out_choices.append(item)
    return {
        "id": meta.id,
        "choices": out_choices,
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": meta.fingerprint,
        "object": "chat.completion",
        "service_tier": None,
        "usage": usage,
        "time_info": timing,
    }


def _chunk(meta: CompletionMeta, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": meta.id,
        "choices": choices,
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": meta.fingerprint,
        "object": "chat.completion.chunk",
        **extra,
    }


def stream_events(
    meta: CompletionMeta,
    choices: Sequence[GeneratedChoice],
    usage: dict[str, Any],
    timing: Callable[[], dict[str, Any]],
) -> list[tuple[Callable[[], dict[str, Any]] | dict[str, Any], int]]:
    """The chunks of a stream, each with its token count (for pacing).

    The final chunk is a callable, so its ``time_info.created`` is read when it is sent.
    """
    events: list[tuple[Callable[[], dict[str, Any]] | dict[str, Any], int]] = []
    for choice in choices:
        i = choice.index
        events.append((_chunk(meta, [{"delta": {"role": "assistant"}, "index": i}]), 0))
        for piece in choice.reasoning_pieces:
            events.append((_chunk(meta, [{"delta": {"reasoning": piece}, "index": i}]), 1))
        for piece in choice.content_pieces:
            item: dict[str, Any] = {"delta": {"content": piece}, "index": i}
            if meta.logprobs:
                item["logprobs"] = logprobs_for([piece], meta.top_logprobs, meta.seed + i)
            events.append((_chunk(meta, [item]), 1))
        if choice.tool_calls:
            calls = [
                {"function": dict(call["function"]), "type": "function", "id": call["id"], "index": k}
                for k, call in enumerate(choice.tool_calls)
            ]
            tokens = sum(len(c["function"].get("arguments") or "") // 4 + 1 for c in calls)
            events.append((_chunk(meta, [{"delta": {"tool_calls": calls}, "index": i}]), tokens))
        if choice.content_pieces:
            events.append((_chunk(meta, [{"delta": {}, "index": i}]), 0))

    def final() -> dict[str, Any]:
        finals = [{"delta": {}, "finish_reason": c.finish_reason, "index": c.index} for c in choices]
        return _chunk(meta, finals, usage=usage, time_info=timing())

    events.append((final, 0))
    return events


class SSEResponse:
    """``text/event-stream; charset=utf-8`` that can stall the first byte, pace tokens and drop.

    ``on_close`` runs exactly once, however the stream ends (done, dropped, client gone).
    """

    media_type = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        events: list[tuple[Callable[[], dict[str, Any]] | dict[str, Any], int]],
        *,
        headers: dict[str, str],
        send_done: bool,
        first_byte_delay: float,
        token_delay: float,
        drop_after: int | None,
        on_close: Callable[[bool], None],
    ) -> None:
        self.events = events
        self.headers = headers
        self.send_done = send_done
        self.first_byte_delay = first_byte_delay
        self.token_delay = token_delay
        self.drop_after = drop_after
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dropped = False
        gone = asyncio.Event()

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        watcher = asyncio.ensure_future(watch_disconnect())
        try:
            raw_headers = [(b"content-type", self.media_type.encode())]
            raw_headers += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
            await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
            if self.first_byte_delay > 0:
                await asyncio.sleep(self.first_byte_delay)
            for sent, (event, tokens) in enumerate(self.events):
                if gone.is_set():
                    return  # the client left: stop generating
                if self.drop_after is not None and sent >= self.drop_after:
                    dropped = True
                    raise EmulatedConnectionDrop(f"emulated connection drop after {sent} events")
                if self.token_delay > 0 and tokens:
                    await asyncio.sleep(self.token_delay * tokens)
                data = event() if callable(event) else event
                payload = b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
                await send({"type": "http.response.body", "body": payload, "more_body": True})
            if self.send_done:
                await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            self.on_close(dropped)
