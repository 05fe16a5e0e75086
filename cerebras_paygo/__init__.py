"""cerebras-paygo: the common core behind the LangChain and LlamaIndex adapters.

Everything a user needs is importable from here; the modules are private (``cerebras_paygo._*``), as in
httpx, except ``cerebras_paygo.errors`` (the exception tree) and ``cerebras_paygo.emulator`` (the local
API and its pytest plugin). Names load on first use so ``import cerebras_paygo`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cerebras_paygo._version import __version__
from cerebras_paygo.errors import (
    APIConnectionError,
    APIContextWindowExceededError,
    APIModelNotFoundError,
    APIPaymentRequiredError,
    APIRateLimitError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BackendUnavailableError,
    BadRequestError,
    BudgetExceededError,
    CerebrasError,
    ConfigurationError,
    ContextWindowExceededError,
    LocalContextWindowExceededError,
    LocalPaymentRequiredError,
    LocalRateLimitError,
    MalformedResponseError,
    MissingAPIKeyError,
    ModelNotFoundError,
    ModelRetiredError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    ServiceUnavailableError,
    StreamInterruptedError,
    StreamTimeoutError,
    UnprocessableEntityError,
    error_from_response,
)

if TYPE_CHECKING:
    from cerebras_paygo._async.transport import AsyncChatStream as AsyncTransportStream
    from cerebras_paygo._async.transport import AsyncTransport
    from cerebras_paygo._billing import Budget, BudgetGuard, SpendMeter, shared_spend_meter
    from cerebras_paygo._catalog import Catalog, ModelSpec, Prices, default_catalog
    from cerebras_paygo._client import CallInfo, CerebrasClient, ChatResult
    from cerebras_paygo._context import ContextOverflow, ContextPlan, TokenEstimator, plan_context, shared_estimator
    from cerebras_paygo._payment import PaymentCircuit, PaymentPolicy, payment_circuit
    from cerebras_paygo._ratelimit import (
        BucketStats,
        Limiter,
        MemoryLimiter,
        RateLimits,
        Reservation,
        Scope,
        shared_limiter,
    )
    from cerebras_paygo._retry import RetryPolicy
    from cerebras_paygo._settings import Settings
    from cerebras_paygo._sync.transport import ChatStream as TransportStream
    from cerebras_paygo._sync.transport import Transport
    from cerebras_paygo._wire import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionRequest,
        Message,
        RateLimitSnapshot,
        ResponseMeta,
        ToolCall,
        Usage,
    )

#: Public name -> (private module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    "CerebrasClient": ("_client", "CerebrasClient"),
    "ChatResult": ("_client", "ChatResult"),
    "CallInfo": ("_client", "CallInfo"),
    "Catalog": ("_catalog", "Catalog"),
    "ModelSpec": ("_catalog", "ModelSpec"),
    "Prices": ("_catalog", "Prices"),
    "default_catalog": ("_catalog", "default_catalog"),
    "Settings": ("_settings", "Settings"),
    "RetryPolicy": ("_retry", "RetryPolicy"),
    "PaymentPolicy": ("_payment", "PaymentPolicy"),
    "PaymentCircuit": ("_payment", "PaymentCircuit"),
    "payment_circuit": ("_payment", "payment_circuit"),
    "Budget": ("_billing", "Budget"),
    "BudgetGuard": ("_billing", "BudgetGuard"),
    "SpendMeter": ("_billing", "SpendMeter"),
    "shared_spend_meter": ("_billing", "shared_spend_meter"),
    "TokenEstimator": ("_context", "TokenEstimator"),
    "ContextOverflow": ("_context", "ContextOverflow"),
    "ContextPlan": ("_context", "ContextPlan"),
    "plan_context": ("_context", "plan_context"),
    "shared_estimator": ("_context", "shared_estimator"),
    "RateLimits": ("_ratelimit", "RateLimits"),
    "Limiter": ("_ratelimit", "Limiter"),
    "MemoryLimiter": ("_ratelimit", "MemoryLimiter"),
    "Reservation": ("_ratelimit", "Reservation"),
    "Scope": ("_ratelimit", "Scope"),
    "BucketStats": ("_ratelimit", "BucketStats"),
    "shared_limiter": ("_ratelimit", "shared_limiter"),
    "ChatCompletionRequest": ("_wire", "ChatCompletionRequest"),
    "ChatCompletion": ("_wire", "ChatCompletion"),
    "ChatCompletionChunk": ("_wire", "ChatCompletionChunk"),
    "Message": ("_wire", "Message"),
    "ToolCall": ("_wire", "ToolCall"),
    "Usage": ("_wire", "Usage"),
    "RateLimitSnapshot": ("_wire", "RateLimitSnapshot"),
    "ResponseMeta": ("_wire", "ResponseMeta"),
    "Transport": ("_sync.transport", "Transport"),
    "AsyncTransport": ("_async.transport", "AsyncTransport"),
    "TransportStream": ("_sync.transport", "ChatStream"),
    "AsyncTransportStream": ("_async.transport", "AsyncChatStream"),
}

__all__ = [
    "APIConnectionError",
    "APIContextWindowExceededError",
    "APIModelNotFoundError",
    "APIPaymentRequiredError",
    "APIRateLimitError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncTransport",
    "AsyncTransportStream",
    "AuthenticationError",
    "BackendUnavailableError",
    "BadRequestError",
    "BucketStats",
    "Budget",
    "BudgetExceededError",
    "BudgetGuard",
    "CallInfo",
    "Catalog",
    "CerebrasClient",
    "CerebrasError",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatResult",
    "ConfigurationError",
    "ContextOverflow",
    "ContextPlan",
    "ContextWindowExceededError",
    "Limiter",
    "LocalContextWindowExceededError",
    "LocalPaymentRequiredError",
    "LocalRateLimitError",
    "MalformedResponseError",
    "MemoryLimiter",
    "Message",
    "MissingAPIKeyError",
    "ModelNotFoundError",
    "ModelRetiredError",
    "ModelSpec",
    "PaymentCircuit",
    "PaymentPolicy",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "Prices",
    "RateLimitError",
    "RateLimitSnapshot",
    "RateLimits",
    "RequestTooLargeError",
    "Reservation",
    "ResponseMeta",
    "RetryPolicy",
    "Scope",
    "ServerError",
    "ServiceUnavailableError",
    "Settings",
    "SpendMeter",
    "StreamInterruptedError",
    "StreamTimeoutError",
    "TokenEstimator",
    "ToolCall",
    "Transport",
    "TransportStream",
    "UnprocessableEntityError",
    "Usage",
    "__version__",
    "default_catalog",
    "error_from_response",
    "payment_circuit",
    "plan_context",
    "shared_estimator",
    "shared_limiter",
    "shared_spend_meter",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'cerebras_paygo' has no attribute {name!r}")
    module = importlib.import_module(f"cerebras_paygo.{target[0]}")
    value = getattr(module, target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
