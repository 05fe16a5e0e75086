"""The async shell of a call: perform the flow's steps, relay a stream's chunks.

Hand-written; ``_sync/drive.py`` is generated from it by ``scripts/unasync.py``. It decides nothing:
``cerebras_paygo._flow.CallFlow`` does. It sends, sleeps, runs the payment hook and performs the
shared-state steps; every exception a step raises (cancellation included) goes back into the flow,
which closes the attempt's lease and re-raises it or tries again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

from cerebras_paygo._async.transport import AsyncTransport
from cerebras_paygo._backends import AsyncShield, asleep, await_shielded
from cerebras_paygo._flow import CallFlow, CallInfo
from cerebras_paygo._http import may_end_stream
from cerebras_paygo._payment import acall_hook
from cerebras_paygo._steps import ConsumerClosed, Emit, Relay, Relayed, Route, RunHook, Send, Sleep, StreamResult
from cerebras_paygo._wire import ChatCompletionChunk

__all__ = ["AsyncChatStream", "adrive", "arun"]


async def adrive(
    flow: CallFlow, transport_for: Callable[[Route], AsyncTransport]
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """Perform ``flow``'s steps until it returns; yield the chunks of its ``Relay`` steps."""
    steps = flow.steps()
    value: Any = None
    error: BaseException | None = None
    closed_by: GeneratorExit | None = None
    while True:
        try:
            step = steps.send(value) if error is None else steps.throw(error)
        except StopIteration:
            return
        except ConsumerClosed:
            assert closed_by is not None
            raise closed_by from None
        value = error = None
        try:
            if isinstance(step, Relay):
                usage, held = None, None
                try:
                    if not step.discard:
                        async for chunk in step.stream:
                            usage = chunk.usage or usage
                            if held is not None:
                                yield held
                                held = None
                            if may_end_stream(chunk):
                                held = chunk
                            else:
                                yield chunk
                finally:
                    async with AsyncShield():
                        await step.stream.aclose()
                value = Relayed(usage, held)
            elif isinstance(step, Emit):
                yield step.chunk
            elif isinstance(step, Send):
                transport = transport_for(step.route)
                if step.stream:
                    stream = transport.stream_chat(step.payload, deadline=step.deadline)
                    await stream.__aenter__()
                    value = StreamResult(stream, stream.rate_limits, stream.request_id)
                else:
                    value = await transport.chat(step.payload, deadline=step.deadline)
            elif isinstance(step, Sleep):
                await asleep(step.seconds)
            elif isinstance(step, RunHook):
                await acall_hook(step.hook, step.info)
            else:  # shared state: cancellation must not cut a booking or a release in half
                value = await await_shielded(step.arun())
        except GeneratorExit as exc:  # the caller closed the stream
            closed_by, error = exc, ConsumerClosed()
        except BaseException as exc:  # the flow closes the lease, then re-raises it (or tries again)
            error = exc


async def arun(flow: CallFlow, transport_for: Callable[[Route], AsyncTransport]) -> None:
    """Perform a call that relays nothing (a plain chat completion): its shell never yields."""
    with contextlib.suppress(StopAsyncIteration):
        await adrive(flow, transport_for).__anext__()


class AsyncChatStream:
    """One streamed call: iterate its chunks (``async for``), then read ``info``.

    Use it as a context manager, or close it (``aclose``) when you stop early: the attempt's
    reservation, budget hold and probe slot are settled or released then, not at garbage collection.
    """

    def __init__(self, flow: CallFlow, transport_for: Callable[[Route], AsyncTransport]) -> None:
        self._flow = flow
        self._chunks = adrive(flow, transport_for)

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        return await self._chunks.__anext__()

    @property
    def done(self) -> bool:
        """True once the call has ended: ``info`` is set (the last chunk, if any, is being handed over)."""
        return self._flow.info is not None

    @property
    def info(self) -> CallInfo:
        """What the call cost and saw; set when the last chunk is handed over."""
        if self._flow.info is None:
            raise RuntimeError("the stream has not ended yet: iterate it to the end before reading info")
        return self._flow.info

    async def aclose(self) -> None:
        await self._chunks.aclose()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "ended" if self._flow.info is not None else "open"
        return f"AsyncChatStream(model={self._flow.config.spec.id!r}, {state})"
