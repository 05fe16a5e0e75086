"""The ASGI app: ``/v1`` endpoints as Cerebras serves them, plus ``/_emulator`` controls.

Checks run in this order: auth (401), JSON and fields (400 ``wrong_api_format``), model (404),
context window (400), injected faults (503 / 5xx / 429 storm), balance (402), concurrency (429
``queue_exceeded``), rate limits (429). Every ``/v1`` response carries the six ``x-ratelimit-*``
headers and ``x-request-id``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import math
import time
import uuid
import zlib
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cerebras_paygo.emulator import errors
from cerebras_paygo.emulator.clock import Clock
from cerebras_paygo.emulator.config import EmulatorConfig
from cerebras_paygo.emulator.content import GenerationSettings, generate
from cerebras_paygo.emulator.facts import Facts
from cerebras_paygo.emulator.limits import limit_message
from cerebras_paygo.emulator.responses import (
    CompletionMeta,
    SSEResponse,
    completion_body,
    stream_events,
    time_info,
    usage_body,
)
from cerebras_paygo.emulator.state import EmulatorState
from cerebras_paygo.emulator.tokens import count_text, prompt_pieces
from cerebras_paygo.emulator.validation import WrongFormat, validate_chat_body

__all__ = ["create_app"]

logger = logging.getLogger("cerebras_paygo.emulator")


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _respond(
    state: EmulatorState,
    status: int,
    body: dict[str, Any],
    *,
    org: str | None,
    model: str | None,
    request_id: str,
    retry_after: float | None = None,
    record: bool = True,
) -> JSONResponse:
    """A JSON response with the rate-limit headers and ``x-request-id`` (and ``Retry-After`` if enabled)."""
    headers = state.rate_headers(org, model)
    headers["x-request-id"] = request_id
    if retry_after is not None and state.config.retry_after:
        headers["retry-after"] = str(max(1, math.ceil(min(retry_after, 86400.0))))
    if record:
        with state.lock:
            state.counters.record_status(status, model, body.get("code"))
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding == "gzip":
        raw = gzip.decompress(raw)
    elif encoding == "deflate":
        raw = zlib.decompress(raw)
    return json.loads(raw.decode("utf-8"))


async def chat_completions(request: Request) -> Response | SSEResponse:
    # Starlette's Route awaits any ASGI callable the endpoint returns; a stream is our own
    # ``SSEResponse`` (it can stall, pace and drop), not a starlette ``Response``.
    state = _state(request)
    request_id = f"req_{uuid.uuid4().hex}"
    org = state.org_for_key(_bearer(request))
    if org is None:
        return _respond(state, 401, errors.wrong_api_key(), org=None, model=None, request_id=request_id)
    try:
        body = await _read_json(request)
    except json.JSONDecodeError as exc:
        message = f": Invalid JSON: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}"
        return _respond(state, 400, errors.wrong_api_format(message), org=org.name, model=None, request_id=request_id)
    except (UnicodeDecodeError, OSError, zlib.error) as exc:
        message = f": Invalid JSON: {exc}"
        return _respond(state, 400, errors.wrong_api_format(message), org=org.name, model=None, request_id=request_id)
    config = state.config
    try:
        validate_chat_body(body, strict_messages=config.strict_messages)
    except WrongFormat as exc:
        model_hint = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
        return _respond(
            state,
            400,
            errors.wrong_api_format(exc.message, exc.param),
            org=org.name,
            model=model_hint,
            request_id=request_id,
        )
    model = body["model"]
    spec = state.model_spec(model)
    if spec is None:
        return _respond(state, 404, errors.model_not_found(model), org=org.name, model=model, request_id=request_id)

    tier = org.tier
    pieces = prompt_pieces(body)
    prompt_tokens = len(pieces)
    window = spec.window(tier)
    max_c = body.get("max_completion_tokens")
    if max_c is None:
        max_c = body.get("max_tokens")
    if max_c is not None and prompt_tokens + max_c > window:
        return _respond(
            state,
            400,
            errors.context_length(prompt_tokens + max_c, window),
            org=org.name,
            model=model,
            request_id=request_id,
        )
    if max_c is None and prompt_tokens >= window:
        return _respond(
            state, 400, errors.context_length(prompt_tokens, window), org=org.name, model=model, request_id=request_id
        )
    reserve_completion = max_c if max_c is not None else window - prompt_tokens
    n = body.get("n") or 1
    reserve = prompt_tokens + reserve_completion
    stream = bool(body.get("stream"))

    def quota_exceeded(limit_name: str, retry_after: float) -> Response:
        """The real 429 body of the quota that tripped (a storm fault says tokens per minute)."""
        message, kind, code = limit_message(limit_name)
        body = errors.body(message, kind, "quota", code)
        return _respond(state, 429, body, org=org.name, model=model, request_id=request_id, retry_after=retry_after)

    with state.lock:
        now = state.clock()
        injected = state.faults.before_admission()
        buckets = state.buckets(org.name, model, now)
        if injected == "unavailable":
            return _respond(
                state,
                503,
                errors.service_unavailable(),
                org=org.name,
                model=model,
                request_id=request_id,
                retry_after=1,
            )
        if injected == "error":
            status = config.faults.error_status
            return _respond(
                state, status, errors.internal_error(status), org=org.name, model=model, request_id=request_id
            )
        if injected == "rate_limit":
            reset = buckets.buckets["tokens_per_minute"].reset_in(now) or 1.0
            return quota_exceeded("tokens_per_minute", reset)
        if not state.ledger.can_spend(org.name, now):
            return _respond(
                state,
                402,
                config.payment_required_body or errors.payment_required(),
                org=org.name,
                model=model,
                request_id=request_id,
            )
        if config.max_concurrency is not None and state.in_flight >= config.max_concurrency:
            return _respond(
                state, 429, errors.queue_exceeded(), org=org.name, model=model, request_id=request_id, retry_after=1
            )
        trip = buckets.check(reserve, now)
        if trip is not None:
            wait = trip.wait_s if math.isfinite(trip.wait_s) else buckets.buckets[trip.name].window
            return quota_exceeded(trip.name, wait)
        buckets.take(reserve, now)
        state.in_flight += 1
        state.counters.record_admission(model, reserve)
        cached = state.cache.lookup_and_store(org.name, model, pieces, now) if config.prompt_cache else 0
        latency = state.faults.latency()
        first_byte = state.faults.first_byte_delay()
        drop_after = state.faults.drop_after() if stream else None
        token_delay = state.faults.token_delay()
        pace = config.faults.tokens_per_second
        stream_headers = buckets.headers(now) if stream else {}

    settled = False

    def settle(completion_tokens: int, *, dropped: bool = False) -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        with state.lock:
            later = state.clock()
            used = prompt_tokens + completion_tokens
            buckets.refund(reserve - used, later)
            cost = spec.prices.cost(prompt_tokens, completion_tokens, cached) if org.tier != "free" else 0.0
            state.ledger.debit(org.name, cost, later)
            state.counters.record_usage(model, prompt_tokens, completion_tokens, cached, max(0, reserve - used), cost)
            if stream:
                state.counters.streams += 1
                state.counters.streams_dropped += int(dropped)
            state.in_flight -= 1

    try:
        settings = GenerationSettings(
            budget=max(0, min(reserve_completion, spec.output_cap(tier))),
            default_tokens=config.default_completion_tokens,
            reasoning_tokens=config.reasoning_tokens,
            seed=config.seed,
        )
        choices = [_generate(body, spec, settings, i) for i in range(n)]
        completion_tokens = sum(c.completion_tokens for c in choices)
        reasoning = sum(c.reasoning_tokens for c in choices) or None
        prediction = _prediction_counts(body, choices)
        usage = usage_body(prompt_tokens, completion_tokens, cached, reasoning, prediction)
        meta = CompletionMeta(
            id=f"chatcmpl-{uuid.uuid4()}",
            created=int(time.time()),
            model=model,
            fingerprint=state.fingerprint,
            logprobs=bool(body.get("logprobs")),
            top_logprobs=int(body.get("top_logprobs") or 0),
            seed=config.seed,
        )
        timing_seed = hash((meta.id, config.seed))

        def timing() -> dict[str, Any]:
            return time_info(
                prompt_tokens, completion_tokens, queue_s=latency, tokens_per_second=pace, seed=timing_seed
            )

        if stream:
            with state.lock:
                state.counters.record_status(200, model)
            headers = {**stream_headers, "x-request-id": request_id}
            if latency > 0:
                await asyncio.sleep(latency)
            return SSEResponse(
                stream_events(meta, choices, usage, timing),
                headers=headers,
                send_done=config.send_done,
                first_byte_delay=first_byte,
                token_delay=token_delay,
                drop_after=drop_after,
                on_close=lambda dropped: settle(completion_tokens, dropped=dropped),
            )

        if latency + first_byte > 0:
            await asyncio.sleep(latency + first_byte)
        settle(completion_tokens)
        payload = completion_body(meta, choices, usage, timing())
        return _respond(state, 200, payload, org=org.name, model=model, request_id=request_id)
    except BaseException:
        settle(0)
        raise


def _generate(body: dict[str, Any], spec: Any, settings: GenerationSettings, index: int) -> Any:
    """One choice; a generator bug falls back to a plain text answer (and is logged) instead of a 500."""
    try:
        return generate(body, spec, settings, index)
    except Exception:
        logger.exception("content generation failed; answering with plain text")
        fallback = {k: v for k, v in body.items() if k not in ("tools", "response_format", "tool_choice")}
        return generate(fallback, spec, settings, index)


def _prediction_counts(body: dict[str, Any], choices: list[Any]) -> tuple[int, int] | None:
    prediction = body.get("prediction")
    if not isinstance(prediction, dict):
        return None
    content = prediction.get("content")
    text = content if isinstance(content, str) else "".join(str(p.get("text", "")) for p in content or [])
    predicted = count_text(text)
    produced = "".join(c.content or "" for c in choices)
    accepted = min(predicted, count_text(produced)) if produced and text and produced[:32] in text else 0
    return accepted, max(0, predicted - accepted)


async def list_models(request: Request) -> Response:
    state = _state(request)
    request_id = f"req_{uuid.uuid4().hex}"
    org = state.org_for_key(_bearer(request))
    if org is None:
        return _respond(state, 401, errors.wrong_api_key(), org=None, model=None, request_id=request_id, record=False)
    data = [_model_object(spec.id, spec.owned_by) for spec in state.served_models()]
    return _respond(
        state, 200, {"object": "list", "data": data}, org=org.name, model=None, request_id=request_id, record=False
    )


async def get_model(request: Request) -> Response:
    state = _state(request)
    request_id = f"req_{uuid.uuid4().hex}"
    org = state.org_for_key(_bearer(request))
    if org is None:
        return _respond(state, 401, errors.wrong_api_key(), org=None, model=None, request_id=request_id, record=False)
    model_id = request.path_params["model_id"]
    spec = state.model_spec(model_id)
    if spec is None:
        return _respond(
            state, 404, errors.model_not_found(model_id), org=org.name, model=None, request_id=request_id, record=False
        )
    return _respond(
        state,
        200,
        _model_object(model_id, spec.owned_by),
        org=org.name,
        model=model_id,
        request_id=request_id,
        record=False,
    )


def _model_object(model_id: str, owned_by: str) -> dict[str, Any]:
    created = 1735689600 + zlib.crc32(model_id.encode()) % 31_536_000
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


async def tcp_warming(request: Request) -> Response:
    state = _state(request)
    org = state.org_for_key(_bearer(request))
    headers = state.rate_headers(org.name if org else None, None)
    headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
    return JSONResponse({}, headers=headers)


# --- control endpoints ------------------------------------------------------------------------


async def _json_or_empty(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _control_respond(exc: Exception) -> JSONResponse:
    return JSONResponse({"message": str(exc), "type": "invalid_request_error"}, status_code=400)


async def control_stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats())


async def control_reset(request: Request) -> Response:
    state = _state(request)
    try:
        changes = await _json_or_empty(request)
        state.reset(state.initial_config.updated(**changes) if changes else None)
    except (ValueError, ValidationError) as exc:
        return _control_respond(exc)
    return JSONResponse({"ok": True, "stats": state.stats()})


async def control_faults(request: Request) -> Response:
    state = _state(request)
    if request.method == "GET":
        with state.lock:
            return JSONResponse(state.faults.snapshot())
    try:
        return JSONResponse(state.set_faults(**await _json_or_empty(request)))
    except (ValueError, ValidationError) as exc:
        return _control_respond(exc)


async def control_config(request: Request) -> Response:
    state = _state(request)
    try:
        if request.method == "POST":
            state.update_config(**await _json_or_empty(request))
    except (ValueError, ValidationError) as exc:
        return _control_respond(exc)
    return JSONResponse(state.config.model_dump(mode="json"))


async def control_balance(request: Request) -> Response:
    state = _state(request)
    org = request.path_params["org"]
    try:
        data = await _json_or_empty(request)
        if "add_usd" in data:
            with state.lock:
                account = state.ledger.accounts[org]
                balance = account.balance + float(data["add_usd"])
        else:
            balance = float(data["balance_usd"])
        return JSONResponse(state.set_balance(org, balance))
    except KeyError as exc:
        return JSONResponse({"message": f"unknown org or field: {exc}", "type": "not_found_error"}, status_code=404)
    except (ValueError, TypeError) as exc:
        return _control_respond(exc)


async def control_advance(request: Request) -> Response:
    state = _state(request)
    try:
        data = await _json_or_empty(request)
        state.advance(float(data.get("seconds", 0)))
    except (ValueError, TypeError) as exc:
        return _control_respond(exc)
    return JSONResponse({"ok": True, "now": state.clock()})


def create_app(
    config: EmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    facts: Facts | None = None,
    state: EmulatorState | None = None,
) -> Starlette:
    """The emulator as a Starlette app; ``app.state.emulator`` is its ``EmulatorState``.

    Args:
        config: the run's configuration (default: two keys, ``csk-emulator-paygo`` and
            ``csk-emulator-free``).
        clock: the time source for buckets, recharges and windows (default: monotonic, advanceable).
        facts: model facts instead of the packaged ones (plus ``config.catalog_path``).
        state: share an existing state instead of making one (``config``/``clock``/``facts`` ignored).
    """
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/v1/tcp_warming", tcp_warming, methods=["GET", "HEAD", "POST"]),
        Route("/_emulator/stats", control_stats, methods=["GET"]),
        Route("/_emulator/reset", control_reset, methods=["POST"]),
        Route("/_emulator/faults", control_faults, methods=["GET", "POST"]),
        Route("/_emulator/config", control_config, methods=["GET", "POST"]),
        Route("/_emulator/orgs/{org}/balance", control_balance, methods=["POST"]),
        Route("/_emulator/clock/advance", control_advance, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state if state is not None else EmulatorState(config, clock=clock, facts=facts)
    return app
