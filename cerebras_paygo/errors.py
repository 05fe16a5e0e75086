"""The exception tree of cerebras-paygo.

Every error a user handles is a ``CerebrasError``; each one says when it happens::

    CerebrasError
    ├── ConfigurationError (also ValueError)   bad arguments, known before any request
    │   └── MissingAPIKeyError                 no key given and CEREBRAS_API_KEY unset
    ├── APIStatusError                         the server answered with an error status
    │   ├── BadRequestError            400     (wrong_api_format, ...)
    │   │   ├── ContextWindowExceededError     prompt + completion over the window (also local)
    │   │   └── UnprocessableEntityError 422
    │   ├── AuthenticationError        401
    │   ├── PaymentRequiredError       402     Team org without credit (also after the wait)
    │   ├── PermissionDeniedError      403
    │   ├── ModelNotFoundError         404
    │   │   └── ModelRetiredError              the catalog knows it is retired (local)
    │   ├── RateLimitError             429     quota tripped (also when our own deadline passes)
    │   └── ServerError                5xx
    │       └── ServiceUnavailableError 503
    ├── APIConnectionError                     no usable response (refused, reset, DNS)
    │   ├── APITimeoutError                    connect or read timeout
    │   └── StreamInterruptedError             a stream broke after content was delivered
    ├── RequestTooLargeError                   more tokens than a quota can ever hold
    ├── BudgetExceededError                    the spend budget would be crossed
    └── BackendUnavailableError                the limiter's shared store (Redis) failed

No error ever carries the API key: messages come from the server's body, and only
response headers (never request headers) are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BackendUnavailableError",
    "BadRequestError",
    "BudgetExceededError",
    "CerebrasError",
    "ConfigurationError",
    "ContextWindowExceededError",
    "MissingAPIKeyError",
    "ModelNotFoundError",
    "ModelRetiredError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "ServerError",
    "ServiceUnavailableError",
    "StreamInterruptedError",
    "UnprocessableEntityError",
    "error_from_response",
]


class CerebrasError(Exception):
    """Root of every error raised by cerebras-paygo."""

    status_code: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.code = code
        self.param = param
        self.type = type
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        parts = [self.message]
        details = [
            f"{name}={value}"
            for name, value in (
                ("status", self.status_code),
                ("code", self.code),
                ("request_id", self.request_id),
            )
            if value is not None
        ]
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)


class ConfigurationError(CerebrasError, ValueError):
    """An argument or setting is wrong; raised before any request is sent."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was passed and ``CEREBRAS_API_KEY`` is not set."""


class APIStatusError(CerebrasError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        # Response headers only: request headers hold the Authorization bearer.
        self.headers: dict[str, str] = dict(headers or {})


class BadRequestError(APIStatusError):
    """400: the request is malformed or unsupported (``wrong_api_format``)."""

    status_code = 400


_LENGTH_RE = re.compile(r"Current length is (\d+) while limit is (\d+)", re.IGNORECASE)


class ContextWindowExceededError(BadRequestError):
    """Prompt plus ``max_completion_tokens`` do not fit the model's window for this tier.

    Raised locally (before any request) from the token estimate, or mapped from the server's
    ``context_length_exceeded``; ``current_length`` and ``limit`` hold the two lengths.
    """

    def __init__(
        self,
        message: str,
        *,
        current_length: int | None = None,
        limit: int | None = None,
        local: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        match = _LENGTH_RE.search(message)
        if match and current_length is None:
            current_length = int(match.group(1))
        if match and limit is None:
            limit = int(match.group(2))
        self.current_length = current_length
        self.limit = limit
        self.local = local


class UnprocessableEntityError(BadRequestError):
    """422: the body parsed but could not be processed."""

    status_code = 422


class AuthenticationError(APIStatusError):
    """401: the API key is wrong (``wrong_api_key``)."""

    status_code = 401


class PaymentRequiredError(APIStatusError):
    """402: the Team org of this key has no credit and no subscription.

    Raised once the payment policy's ``max_wait`` has passed; ``waited`` says how long we waited.
    """

    status_code = 402

    def __init__(self, message: str, *, waited: float = 0.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.waited = waited


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource (or no Authorization header reached the server)."""

    status_code = 403


class ModelNotFoundError(APIStatusError):
    """404: the model does not exist or this key has no access to it (``model_not_found``)."""

    status_code = 404


class ModelRetiredError(ModelNotFoundError):
    """The catalog knows the model was retired; ``replacement`` names what to use instead."""

    def __init__(
        self,
        message: str,
        *,
        model: str,
        retired_on: str | None = None,
        replacement: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.model = model
        self.retired_on = retired_on
        self.replacement = replacement


class RateLimitError(APIStatusError):
    """429: a quota tripped and could not be waited out within the caller's deadline.

    ``quota`` is ``"tokens"``, ``"requests"`` or ``"queue"``; ``retry_after`` the seconds the
    headers advise (``None`` when unknown).
    """

    status_code = 429

    def __init__(
        self,
        message: str,
        *,
        quota: str | None = None,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.quota = quota
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the server failed; retried with backoff."""

    status_code = 500


class ServiceUnavailableError(ServerError):
    """503: the service is overloaded or down; retried with backoff."""

    status_code = 503


class APIConnectionError(CerebrasError):
    """No usable response: the connection failed, was refused or reset."""


class APITimeoutError(APIConnectionError):
    """The connect or read timeout passed."""


class StreamInterruptedError(APIConnectionError):
    """A stream broke after content was delivered; it is not retried, since the caller saw tokens.

    ``delivered_chunks`` says how many chunks reached the caller before the break.
    """

    def __init__(self, message: str, *, delivered_chunks: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.delivered_chunks = delivered_chunks


class RequestTooLargeError(CerebrasError):
    """The request needs more requests or tokens than a quota can ever hold; waiting cannot help."""

    def __init__(self, message: str, *, needed: int, capacity: int, limit_name: str) -> None:
        super().__init__(message)
        self.needed = needed
        self.capacity = capacity
        self.limit_name = limit_name


class BudgetExceededError(CerebrasError):
    """The worst-case cost of the request would cross ``max_spend_usd``; nothing was sent."""

    def __init__(self, message: str, *, spent_usd: float, request_usd: float, budget_usd: float) -> None:
        super().__init__(message)
        self.spent_usd = spent_usd
        self.request_usd = request_usd
        self.budget_usd = budget_usd


class BackendUnavailableError(CerebrasError):
    """The limiter's shared store (Redis) could not be reached or failed (only with
    ``on_backend_error="raise"``; by default the limiter falls back to local limits). The driver's
    error is the ``__cause__``; the message names the backend, never a password or the API key."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: ModelNotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}

_QUOTA_BY_CODE = {
    "token_quota_exceeded": "tokens",
    "request_quota_exceeded": "requests",
    "queue_exceeded": "queue",
}


def error_from_response(
    status_code: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    retry_after: float | None = None,
) -> APIStatusError:
    """Map an error response to its typed error.

    Accepts the flat Cerebras body ``{message, type, param, code}``, the wrapped OpenAI form
    ``{"error": {...}}``, the FastAPI ``{"detail": ...}`` form and plain text. A ``status_code``
    inside the body (as in mid-stream error events) wins over the HTTP status, as in the SDK.
    """
    fields: dict[str, Any] = {}
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            fields = dict(inner)
        elif isinstance(inner, str):
            fields = {"message": inner}
        if isinstance(body.get("status_code"), int):
            status_code = int(body["status_code"])
        if "detail" in body and "message" not in fields:
            fields["message"] = str(body["detail"])
    elif isinstance(body, str) and body.strip():
        fields = {"message": body.strip()[:500]}

    code = _str_or_none(fields.get("code"))
    message = _str_or_none(fields.get("message")) or f"HTTP {status_code}"
    common: dict[str, Any] = {
        "status_code": status_code,
        "code": code,
        "param": _str_or_none(fields.get("param")),
        "type": _str_or_none(fields.get("type")),
        "request_id": _str_or_none(fields.get("id")) or _request_id(headers),
        "body": body,
        "headers": headers,
    }
    if code == "context_length_exceeded" or (status_code == 400 and _LENGTH_RE.search(message)):
        return ContextWindowExceededError(message, **common)
    if status_code == 429:
        return RateLimitError(message, quota=_QUOTA_BY_CODE.get(code or ""), retry_after=retry_after, **common)
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else (BadRequestError if status_code >= 400 else APIStatusError)
    return cls(message, **common)


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _request_id(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    for name in ("x-request-id", "cf-ray"):
        value = headers.get(name)
        if value:
            return value
    return None
