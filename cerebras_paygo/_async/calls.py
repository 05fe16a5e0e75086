"""The async shell of one call: admit, send, settle — or recover and try again.

Hand-written; ``_sync/calls.py`` is generated from it by ``scripts/unasync.py``. It only sends,
sleeps and talks to the limiter; ``cerebras_paygo._call.CallState`` decides everything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from cerebras_paygo._backends import asleep, monotonic
from cerebras_paygo._call import SEND_POLL_S, Attempt, CallInfo, CallState
from cerebras_paygo._payment import acall_hook
from cerebras_paygo._wire import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, RateLimitSnapshot, Usage
from cerebras_paygo.errors import CerebrasError

if TYPE_CHECKING:
    from cerebras_paygo._client import CerebrasClient

__all__ = ["achat", "astream"]


async def _admit(state: CallState) -> Attempt:
    """Wait for the payment circuit and the limiter; return an admitted attempt (tokens booked)."""
    client = state.client
    limiter = client.limiter
    while True:
        now = monotonic()
        gate = state.gate(now)
        if gate.kind == "raise":
            assert gate.error is not None
            raise gate.error
        if gate.kind == "wait":
            state.waited_s += gate.wait_s
            await asleep(gate.wait_s)
            continue
        assert gate.route is not None
        route = gate.route
        plan = state.plan_for(route)
        budget_token = state.budget_reserve(route, plan)
        try:
            reservation = await limiter.aacquire(
                route.scope, route.limits, state.reserve_tokens(plan), max_wait=state.max_wait(now)
            )
        except BaseException:
            if budget_token is not None and client.budget_guard is not None:
                client.budget_guard.release(budget_token)
            if gate.probe:
                route.circuit.on_probe_done(monotonic())
            raise
        attempt = Attempt(route=route, plan=plan, reservation=reservation, probe=gate.probe, budget_token=budget_token)
        try:
            # The booking's own wait, then any 429 pause that began while it slept (with its spread).
            # Short naps: tokens refunded by finished requests move this booking earlier.
            while (delay := await limiter.asend_delay(reservation)) > 0:
                nap = min(delay, SEND_POLL_S)
                state.waited_s += nap
                await asleep(nap)
        except BaseException:
            await _abandon(state, attempt)
            raise
        state.attempts += 1
        attempt.sent_at = monotonic()
        return attempt


async def _abandon(state: CallState, attempt: Attempt) -> None:
    """Cancelled or failed outside the API: give everything back."""
    await state.client.limiter.arelease(attempt.reservation)
    guard = state.client.budget_guard
    if attempt.budget_token is not None and guard is not None:
        guard.release(attempt.budget_token)
    if attempt.probe:
        attempt.route.circuit.on_probe_done(monotonic())


async def _recover(state: CallState, attempt: Attempt, error: CerebrasError, *, delivered: bool) -> None:
    """Return the booking, sync headers, then sleep/pause or re-raise."""
    client = state.client
    limiter = client.limiter
    if delivered:
        # The server did the work: keep the charge rather than refund tokens it counted.
        await limiter.asettle(attempt.reservation, attempt.reservation.tokens)
    else:
        await limiter.arelease(attempt.reservation)
    headers = getattr(error, "headers", None)
    if headers:
        await limiter.async_(attempt.route.scope, attempt.route.limits, RateLimitSnapshot.from_headers(headers))
    recovery = state.recover(attempt, error, delivered=delivered, now=monotonic())
    if recovery.call_hook and client.payment_policy.on_payment_required is not None:
        await acall_hook(client.payment_policy.on_payment_required, client.payment_hook_info(attempt, error))
    if recovery.kind == "raise":
        raise error
    if recovery.kind == "pause":
        await limiter.apause(attempt.route.scope, recovery.delay)
        return
    state.waited_s += recovery.delay
    await asleep(recovery.delay)


async def _succeed(
    state: CallState,
    attempt: Attempt,
    usage: Usage | None,
    snapshot: RateLimitSnapshot | None,
    request_id: str | None,
) -> CallInfo:
    limiter = state.client.limiter
    await limiter.asettle(attempt.reservation, state.settle_tokens(attempt, usage))
    if snapshot is not None and not snapshot.empty:
        await limiter.async_(attempt.route.scope, attempt.route.limits, snapshot)
    return state.succeeded(attempt, usage, snapshot, request_id, monotonic())


async def achat(client: CerebrasClient, request: ChatCompletionRequest) -> tuple[ChatCompletion, CallInfo]:
    state = CallState(client, request)
    while True:
        attempt = await _admit(state)
        transport = client.async_transport_for(attempt.route)
        try:
            response = await transport.chat(attempt.payload)
        except CerebrasError as error:
            await _recover(state, attempt, error, delivered=False)
            continue
        except BaseException:
            await _abandon(state, attempt)
            raise
        completion = response.data
        info = await _succeed(state, attempt, completion.usage, response.rate_limits, response.request_id)
        return completion, info


async def astream(
    client: CerebrasClient, request: ChatCompletionRequest
) -> AsyncIterator[ChatCompletionChunk | CallInfo]:
    """Yield chunks as they arrive, then one ``CallInfo``; retries only before content was delivered."""
    state = CallState(client, request, stream=True)
    while True:
        attempt = await _admit(state)
        transport = client.async_transport_for(attempt.route)
        usage: Usage | None = None
        delivered = 0
        settled = False
        try:
            async with transport.stream_chat(attempt.payload) as stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    delivered = stream.delivered_chunks
                    yield chunk
                info = await _succeed(state, attempt, usage, stream.rate_limits, stream.request_id)
                settled = True
            yield info
            return
        except CerebrasError as error:
            if settled:
                raise
            await _recover(state, attempt, error, delivered=delivered > 0)
            settled = True
            continue
        except BaseException:
            # Cancelled, or the consumer stopped early: the server may have counted it all.
            if not settled:
                if delivered:
                    await client.limiter.asettle(attempt.reservation, attempt.reservation.tokens)
                await _abandon(state, attempt)
            raise
