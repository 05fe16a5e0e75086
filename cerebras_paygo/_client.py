"""``CerebrasClient``: the one orchestrator both adapters call, sync and async, call and stream.

One call: resolve the model (catalog), plan the context (estimate, cap, trim or shrink, default
``max_completion_tokens``), pass the payment circuit, reserve on the shared limiter, check the
budget, send, then settle (real usage back to the limiter, headers synced, spend recorded, the
estimator calibrated) or recover (429 pause, 402 circuit, backoff, typed error).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from cerebras_paygo._async.calls import achat, astream
from cerebras_paygo._async.transport import AsyncTransport
from cerebras_paygo._billing import Budget, BudgetGuard, SpendMeter, shared_spend_meter
from cerebras_paygo._call import Attempt, CallInfo, Route
from cerebras_paygo._catalog import Catalog, ModelSpec, default_catalog
from cerebras_paygo._context import ContextOverflow, TokenEstimator, shared_estimator
from cerebras_paygo._payment import PaymentPolicy, payment_circuit
from cerebras_paygo._ratelimit import Limiter, RateLimits, Scope, shared_limiter
from cerebras_paygo._retry import RetryPolicy
from cerebras_paygo._settings import Settings
from cerebras_paygo._sync.calls import chat as sync_chat
from cerebras_paygo._sync.calls import stream as sync_stream
from cerebras_paygo._sync.transport import Transport
from cerebras_paygo._wire import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ModelList
from cerebras_paygo.errors import CerebrasError, ConfigurationError

__all__ = ["CallInfo", "CerebrasClient", "ChatResult"]

_CONTEXT_OVERFLOWS = ("raise", "trim_history", "shrink_completion")


class _NoLoop:
    """Stands for "no asyncio loop" as a weak-referenceable dictionary key."""


class ChatResult:
    """A completion and what the call cost and saw."""

    __slots__ = ("completion", "info")

    def __init__(self, completion: ChatCompletion, info: CallInfo) -> None:
        self.completion = completion
        self.info = info

    def __repr__(self) -> str:
        return f"ChatResult(model={self.info.model!r}, cost_usd={self.info.cost_usd:.6f})"


class CerebrasClient:
    """A Cerebras client that never trips over the API's hard edges.

    Cheap to share: every client of the same key and model draws from one process-wide limiter,
    payment circuit and estimator. Sync and async methods can be used on the same instance.

    Args:
        api_key: the Cerebras key (else ``CEREBRAS_API_KEY``; never ``OPENAI_API_KEY``).
        base_url: API root (else ``CEREBRAS_BASE_URL``, else ``https://api.cerebras.ai/v1``).
        tier: ``"paygo"`` (default, else ``CEREBRAS_TIER``) or ``"free"`` (8,192-token cap, free limits).
        timeout: HTTP timeout in seconds or an ``httpx.Timeout`` (default 60 s read, 5 s connect).
        max_retries: retries of 5xx and connection failures (429s are waited out, not counted).
        deadline: overall seconds a call may take, waits included (``None``: no deadline).
        rate_limits: limits to enforce when you know yours (headers, once seen, win).
        payment_policy: what to do on 402 (wait for auto-recharge, hook, fallback key).
        context_overflow: ``"raise"``, ``"trim_history"`` or ``"shrink_completion"``.
        context_window: a window to use instead of the catalog's for the tier.
        max_spend_usd: refuse requests whose worst-case cost would cross this budget.
        starting_balance_usd, warn_below_usd: warn when the estimated balance falls below a threshold.
    """

    def __init__(
        self,
        *,
        api_key: SecretStr | str | None = None,
        base_url: str | None = None,
        tier: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = 2,
        deadline: float | None = None,
        rate_limits: RateLimits | Mapping[str, int] | None = None,
        payment_policy: PaymentPolicy | None = None,
        context_overflow: ContextOverflow = "raise",
        context_window: int | None = None,
        max_spend_usd: float | None = None,
        starting_balance_usd: float | None = None,
        warn_below_usd: float | None = None,
        catalog: Catalog | None = None,
        limiter: Limiter | None = None,
        estimator: TokenEstimator | None = None,
        spend_meter: SpendMeter | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        integration: str = "cerebras-paygo",
    ) -> None:
        if context_overflow not in _CONTEXT_OVERFLOWS:
            raise ConfigurationError(f"context_overflow must be one of {_CONTEXT_OVERFLOWS}, not {context_overflow!r}")
        if context_window is not None and context_window <= 0:
            raise ConfigurationError(f"context_window must be positive, not {context_window!r}")
        self.settings = Settings.from_env(
            api_key=api_key,
            base_url=base_url,
            tier=tier,
            timeout=timeout,
            default_headers=dict(default_headers or {}),
            integration=integration,
        )
        self.catalog = catalog or default_catalog()
        self.retry_policy = RetryPolicy(max_retries=max_retries, deadline=deadline)
        self.payment_policy = payment_policy or PaymentPolicy()
        self.context_overflow: ContextOverflow = context_overflow
        self.context_window = context_window
        if isinstance(rate_limits, Mapping):
            rate_limits = RateLimits.from_mapping(rate_limits)
        self.user_limits = rate_limits or RateLimits()
        self.limiter: Limiter = limiter or shared_limiter()
        self.estimator = estimator or shared_estimator()
        self.spend_meter = spend_meter or shared_spend_meter()
        budget = Budget(
            max_spend_usd=max_spend_usd, starting_balance_usd=starting_balance_usd, warn_below_usd=warn_below_usd
        )
        self.budget_guard: BudgetGuard | None = (
            BudgetGuard(budget, self.spend_meter)
            if any(v is not None for v in (max_spend_usd, starting_balance_usd, warn_below_usd))
            else None
        )
        self._http_client = http_client
        self._async_http_client = async_http_client
        self._lock = threading.Lock()
        self._sync_transports: dict[str, Transport] = {}
        # An httpx.AsyncClient's connections belong to the event loop that opened them, so each
        # loop gets its own pool (a process may run asyncio.run() many times).
        self._async_transports: weakref.WeakKeyDictionary[object, dict[str, AsyncTransport]] = (
            weakref.WeakKeyDictionary()
        )
        self._no_loop = _NoLoop()
        self._fallback_settings: Settings | None = None
        fallback_key = self.payment_policy.fallback_api_key
        if fallback_key is not None:
            self._fallback_settings = self.settings.model_copy(
                update={"api_key": fallback_key, "tier": self.payment_policy.fallback_tier}
            )

    # -- model and routing ------------------------------------------------------------------

    def spec(self, model: str) -> ModelSpec:
        return self.catalog.get(model)

    def _route(self, settings: Settings, spec: ModelSpec, *, fallback: bool) -> Route:
        limits = spec.rate_limits(settings.tier)
        if not fallback:
            limits = self.user_limits.merged_over(limits)
        return Route(
            settings=settings,
            scope=Scope(base_url=settings.base_url, key_fingerprint=settings.fingerprint, model=spec.id),
            limits=limits,
            circuit=payment_circuit(settings.fingerprint, self.payment_policy),
            fallback=fallback,
        )

    def primary_route(self, spec: ModelSpec) -> Route:
        self.settings.require_key()
        return self._route(self.settings, spec, fallback=False)

    def fallback_route(self, spec: ModelSpec) -> Route | None:
        if self._fallback_settings is None:
            return None
        return self._route(self._fallback_settings, spec, fallback=True)

    def payment_hook_info(self, attempt: Attempt, error: CerebrasError) -> dict[str, Any]:
        """What the ``on_payment_required`` hook receives (no key, only its fingerprint)."""
        return {
            "key_fingerprint": attempt.route.scope.key_fingerprint,
            "model": attempt.route.scope.model,
            "base_url": attempt.route.settings.base_url,
            "message": error.message,
            "request_id": error.request_id,
        }

    # -- transports (one connection pool per client, shared by the primary and fallback keys) --

    def transport_for(self, route: Route) -> Transport:
        key = route.settings.fingerprint
        with self._lock:
            transport = self._sync_transports.get(key)
            if transport is None:
                base = next(iter(self._sync_transports.values()), None)
                if base is not None:
                    transport = base.with_settings(route.settings)
                else:
                    transport = Transport(route.settings, self._http_client)
                self._sync_transports[key] = transport
            return transport

    def _loop_transports(self) -> dict[str, AsyncTransport]:
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:  # another async library (trio): one pool
            loop = self._no_loop
        transports = self._async_transports.get(loop)
        if transports is None:
            transports = self._async_transports[loop] = {}
        return transports

    def async_transport_for(self, route: Route) -> AsyncTransport:
        key = route.settings.fingerprint
        with self._lock:
            transports = self._loop_transports()
            transport = transports.get(key)
            if transport is None:
                base = next(iter(transports.values()), None)
                if base is not None:
                    transport = base.with_settings(route.settings)
                else:
                    transport = AsyncTransport(route.settings, self._async_http_client)
                transports[key] = transport
            return transport

    # -- calls ------------------------------------------------------------------------------

    def chat(self, request: ChatCompletionRequest) -> ChatResult:
        completion, info = sync_chat(self, request)
        return ChatResult(completion, info)

    async def achat(self, request: ChatCompletionRequest) -> ChatResult:
        completion, info = await achat(self, request)
        return ChatResult(completion, info)

    def stream(self, request: ChatCompletionRequest) -> Iterator[ChatCompletionChunk | CallInfo]:
        """Chunks as they arrive, then one ``CallInfo`` as the last item."""
        return sync_stream(self, request)

    def astream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk | CallInfo]:
        """Chunks as they arrive, then one ``CallInfo`` as the last item."""
        return astream(self, request)

    def list_models(self) -> ModelList:
        transport = self.transport_for(self._route(self.settings, self.catalog.unknown_spec("-"), fallback=False))
        return transport.list_models().data

    async def alist_models(self) -> ModelList:
        route = self._route(self.settings, self.catalog.unknown_spec("-"), fallback=False)
        response = await self.async_transport_for(route).list_models()
        return response.data

    def estimate_tokens(self, request: ChatCompletionRequest) -> int:
        """The estimator's prompt-token count for ``request`` (calibrated by past responses)."""
        return self.estimator.estimate_request(request)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        for sync_transport in self._sync_transports.values():
            sync_transport.close()
        self._sync_transports.clear()

    async def aclose(self) -> None:
        """Close this event loop's connections (and the sync ones)."""
        with self._lock:
            transports = list(self._loop_transports().values())
            self._loop_transports().clear()
        for async_transport in transports:
            await async_transport.aclose()
        self.close()

    def __enter__(self) -> CerebrasClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> CerebrasClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"CerebrasClient(base_url={self.settings.base_url!r}, tier={self.settings.tier!r})"
