"""``CerebrasClient``: the one orchestrator both adapters call, sync and async, call and stream.

The client holds configuration, the connection pools and the routes (key, limiter scope, limits,
payment circuit) of each model; one call is a ``_flow.CallFlow`` over a frozen ``CallConfig``,
performed by the sync or async shell (``_sync/drive.py``, ``_async/drive.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncGenerator, Mapping

import httpx
from pydantic import SecretStr

from cerebras_paygo._async.drive import AsyncChatStream, arun
from cerebras_paygo._async.transport import AsyncTransport
from cerebras_paygo._billing import Budget, BudgetGuard, SpendMeter
from cerebras_paygo._catalog import TIERS, Catalog, ModelSpec, Tier, default_catalog
from cerebras_paygo._context import ContextOverflow, TokenEstimator, shared_estimator
from cerebras_paygo._flow import CallConfig, CallFlow, CallInfo
from cerebras_paygo._payment import PaymentPolicy
from cerebras_paygo._ratelimit import Limiter, RateLimits, Scope
from cerebras_paygo._retry import RetryPolicy
from cerebras_paygo._settings import Settings
from cerebras_paygo._shared import BackendErrorPolicy, shared_state
from cerebras_paygo._steps import Route
from cerebras_paygo._sync.drive import ChatStream, run
from cerebras_paygo._sync.transport import Transport
from cerebras_paygo._tier import KeyTier
from cerebras_paygo._wire import ChatCompletion, ChatCompletionRequest, ModelList
from cerebras_paygo.errors import ConfigurationError

__all__ = ["AsyncChatStream", "CallInfo", "CerebrasClient", "ChatResult", "ChatStream"]

_CONTEXT_OVERFLOWS = ("raise", "trim_history", "shrink_completion")

logger = logging.getLogger("cerebras_paygo.client")


class ChatResult:
    """A completion and what the call cost and saw."""

    __slots__ = ("completion", "info")

    def __init__(self, completion: ChatCompletion, info: CallInfo) -> None:
        self.completion = completion
        self.info = info

    @classmethod
    def of(cls, flow: CallFlow) -> ChatResult:
        assert flow.completion is not None and flow.info is not None
        return cls(flow.completion, flow.info)

    def __repr__(self) -> str:
        return f"ChatResult(model={self.info.model!r}, cost_usd={self.info.cost_usd:.6f})"


class CerebrasClient:
    """A Cerebras client that never trips over the API's hard edges.

    Cheap to share: every client of the same key and model draws from one process-wide limiter,
    payment circuit and estimator. Sync and async methods can be used on the same instance.

    Args:
        api_key: the Cerebras key (else ``CEREBRAS_API_KEY``; never ``OPENAI_API_KEY``).
        base_url: API root (else ``CEREBRAS_BASE_URL``, else ``https://api.cerebras.ai/v1``).
        tier: ``"auto"`` (default, else ``CEREBRAS_TIER``: learned from the server's first answer),
            ``"paygo"`` or ``"free"`` (8,192-token cap, free limits).
        timeout: HTTP timeout in seconds or an ``httpx.Timeout`` (default 60 s read, 5 s connect).
        max_retries: retries of 5xx and connection failures (429s are waited out, not counted).
        deadline: overall seconds a call may take, waits included (``None``: no deadline).
        rate_limits: limits to enforce when you know yours (headers, once seen, win).
        payment_policy: what to do on 402 (wait for auto-recharge, hook, fallback key).
        context_overflow: ``"raise"``, ``"trim_history"`` or ``"shrink_completion"``.
        context_window: a window to use instead of the catalog's for the tier.
        max_spend_usd: refuse requests whose worst-case cost would cross this budget.
        starting_balance_usd, warn_below_usd: warn when the estimated balance falls below a threshold.
        redis_url: share the limiter, 429 pauses, 402 circuits, spend and budget with every process
            on this Redis (``redis://``, ``rediss://``, ``redis+cluster://``; else
            ``CEREBRAS_PAYGO_REDIS_URL``; neither: this process only).
        redis: a ready ``redis.Redis`` / ``redis.asyncio.Redis`` / ``RedisCluster`` instead of a URL.
        on_backend_error: when Redis fails: ``"local"`` (warn, use in-process state with limits and
            budget divided by ``workers``) or ``"raise"`` (``BackendUnavailableError``).
        workers: how many processes share the key (for the ``"local"`` fallback).
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
        redis_url: str | None = None,
        redis: object = None,
        on_backend_error: BackendErrorPolicy = "local",
        workers: int = 1,
    ) -> None:
        if context_overflow not in _CONTEXT_OVERFLOWS:
            raise ConfigurationError(f"context_overflow must be one of {_CONTEXT_OVERFLOWS}, not {context_overflow!r}")
        if context_window is not None and context_window <= 0:
            raise ConfigurationError(f"context_window must be positive, not {context_window!r}")
        # The same refusals as the adapters' ClientOptions (which imports this module, so it
        # cannot be imported here): a bad value is a ConfigurationError now, not a failure later.
        if base_url is not None and (not isinstance(base_url, str) or not base_url.strip()):
            raise ConfigurationError(f"base_url must be an http(s) URL, not {base_url!r}")
        if deadline is not None and (
            isinstance(deadline, bool)
            or not isinstance(deadline, (int, float))
            or not math.isfinite(deadline)
            or deadline <= 0
        ):
            raise ConfigurationError(f"deadline must be a finite number > 0, not {deadline!r}")
        if isinstance(rate_limits, Mapping):
            try:
                rate_limits = RateLimits.from_mapping(rate_limits)
            except ConfigurationError:
                raise
            except (TypeError, ValueError) as exc:  # int("x") in a value
                raise ConfigurationError(f"rate_limits values must be positive integers: {exc}") from None
        elif rate_limits is not None and not isinstance(rate_limits, RateLimits):
            raise ConfigurationError(f"rate_limits must be a mapping or a RateLimits, not {rate_limits!r}")
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
        self.user_limits = rate_limits or RateLimits()
        self.shared = shared_state(redis_url=redis_url, redis=redis, on_backend_error=on_backend_error, workers=workers)
        self.limiter: Limiter = limiter or self.shared.limiter
        self.estimator = estimator or shared_estimator()
        if self.shared.calibration is not None:  # what this process learns, the fleet learns
            self.shared.calibration.attach(self.estimator)
        self.spend_meter = spend_meter or self.shared.meter
        budget = Budget(
            max_spend_usd=max_spend_usd, starting_balance_usd=starting_balance_usd, warn_below_usd=warn_below_usd
        )
        self.budget_guard: BudgetGuard | None = (
            self.shared.budget(budget, self.spend_meter, self.settings.fingerprint)
            if any(v is not None for v in (max_spend_usd, starting_balance_usd, warn_below_usd))
            else None
        )
        self._http_client = http_client
        self._async_http_client = async_http_client
        self._lock = threading.RLock()  # re-entered when a closed loop's sentinel finishes under it
        self._sync_transports: dict[str, Transport] = {}
        # An httpx.AsyncClient's connections belong to the event loop that opened them, so each
        # loop gets its own pool (a process may run asyncio.run() many times). A pool is closed on
        # its loop's way out (``_close_at_loop_exit``); pools of loops closed some other way are
        # dropped on the next lookup: their connections can never be used again.
        self._async_transports: dict[object, dict[str, AsyncTransport]] = {}
        self._loop_sentinels: dict[object, AsyncGenerator[None, None]] = {}
        self._routes: dict[str, tuple[Route, Route | None]] = {}
        self._fallback_settings: Settings | None = None
        #: The primary key's tier: configured, or learned from its first answer (``tier="auto"``).
        self.key_tier = KeyTier(self.settings.tier)
        self._fallback_tier = KeyTier(self.payment_policy.fallback_tier)
        fallback_key = self.payment_policy.fallback_api_key
        if fallback_key is not None:
            self._fallback_settings = self.settings.model_copy(
                update={"api_key": fallback_key, "tier": self.payment_policy.fallback_tier}
            )

    # -- model and routing ------------------------------------------------------------------

    def spec(self, model: str) -> ModelSpec:
        return self.catalog.get(model)

    def _route(self, settings: Settings, spec: ModelSpec, *, fallback: bool) -> Route:
        tier_limits = {tier: spec.rate_limits(tier) for tier in TIERS}
        if not fallback:
            tier_limits = {tier: self.user_limits.merged_over(limits) for tier, limits in tier_limits.items()}
        return Route(
            settings=settings,
            scope=Scope(base_url=settings.base_url, key_fingerprint=settings.fingerprint, model=spec.id),
            tier_limits=tier_limits,
            circuit=self.shared.circuit(settings.fingerprint, self.payment_policy),
            key_tier=self._fallback_tier if fallback else self.key_tier,
            fallback=fallback,
        )

    @property
    def tier(self) -> Tier:
        """The tier calls are planned, priced and limited with: the configured one, the one learned
        from the server under ``tier="auto"``, or PayGo's while auto has not heard from it."""
        return self.key_tier.planning

    def routes(self, spec: ModelSpec) -> tuple[Route, Route | None]:
        """The primary key's route and the fallback key's (built once per model)."""
        routes = self._routes.get(spec.id)
        if routes is None:
            self.settings.require_key()
            fallback = None
            if self._fallback_settings is not None:
                fallback = self._route(self._fallback_settings, spec, fallback=True)
            routes = self._routes[spec.id] = (self._route(self.settings, spec, fallback=False), fallback)
        return routes

    def _flow(self, request: ChatCompletionRequest, *, stream: bool) -> CallFlow:
        spec = self.spec(request.model)
        primary, fallback = self.routes(spec)
        config = CallConfig(
            spec=spec,
            primary=primary,
            fallback=fallback,
            retry=self.retry_policy,
            payment=self.payment_policy,
            overflow=self.context_overflow,
            window=self.context_window,
            estimator=self.estimator,
            limiter=self.limiter,
            meter=self.spend_meter,
            budget=self.budget_guard,
            clock=time.monotonic,
        )
        return CallFlow(config, request, stream=stream)

    # -- transports (one connection pool per client, shared by the primary and fallback keys) --

    def transport_for(self, route: Route) -> Transport:
        key = route.scope.key_fingerprint  # the route hashed the key once
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
            loop = None
        transports = self._async_transports.get(loop)
        if transports is None:
            # A new loop: forget the pools of loops that have closed (they keep their loop alive).
            for old in [key for key in self._async_transports if isinstance(key, asyncio.AbstractEventLoop)]:
                if old.is_closed():
                    del self._async_transports[old]
                    self._finish_sentinel(old)
            transports = self._async_transports[loop] = {}
            if isinstance(loop, asyncio.AbstractEventLoop):
                self._close_at_loop_exit(loop)
        return transports

    def _close_at_loop_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close this loop's pool while the loop still runs, as ``asyncio.run`` ends.

        ``asyncio.run`` (and every ``loop.shutdown_asyncgens()``) closes the async generators first
        iterated on the loop, before closing it: a generator parked at its ``yield`` here is one,
        and its ``finally`` closes the pool's sockets and forgets the loop. Without it each
        ``asyncio.run`` left a closed loop, its pool and its sockets behind (400 runs: 651 open
        files) until the next call on a new loop dropped them unclosed (a ResourceWarning each).
        """
        sentinel = self._loop_exit(loop)
        try:
            sentinel.__anext__().send(None)  # run to the yield now: the loop's firstiter hook registers it
        except StopIteration:
            self._loop_sentinels[loop] = sentinel  # the loop holds it weakly: we keep it alive

    async def _loop_exit(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                transports = self._async_transports.pop(loop, None) or {}
                self._loop_sentinels.pop(loop, None)
            if not loop.is_closed():  # closed: dropped unawaited (``_finish_sentinel``)
                for transport in transports.values():
                    try:
                        await transport.aclose()
                    except Exception:  # a pool that fails to close must not fail the loop's exit
                        logger.debug("closing a connection pool at the event loop's exit failed", exc_info=True)

    def _finish_sentinel(self, loop: object) -> None:
        """Finish the sentinel of a loop closed without ``shutdown_asyncgens`` (nothing to await)."""
        sentinel = self._loop_sentinels.pop(loop, None)
        if sentinel is not None:
            with contextlib.suppress(StopIteration, RuntimeError):
                sentinel.aclose().send(None)

    def async_transport_for(self, route: Route) -> AsyncTransport:
        key = route.scope.key_fingerprint
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
        flow = self._flow(request, stream=False)
        run(flow, self.transport_for)
        return ChatResult.of(flow)

    async def achat(self, request: ChatCompletionRequest) -> ChatResult:
        flow = self._flow(request, stream=False)
        await arun(flow, self.async_transport_for)
        return ChatResult.of(flow)

    def stream(self, request: ChatCompletionRequest) -> ChatStream:
        """The call's chunks as they arrive (iterate it); then ``.info``. Close it if you stop early."""
        return ChatStream(self._flow(request, stream=True), self.transport_for)

    def astream(self, request: ChatCompletionRequest) -> AsyncChatStream:
        """The call's chunks as they arrive (``async for``); then ``.info``. Close it if you stop early."""
        return AsyncChatStream(self._flow(request, stream=True), self.async_transport_for)

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
        tier: str = self.settings.tier
        if tier == "auto":
            tier = f"auto:{self.key_tier.known or 'unknown'}"
        return f"CerebrasClient(base_url={self.settings.base_url!r}, tier={tier!r})"
