"""The exception tree of cerebras-paygo.

Every error a user handles is a ``CerebrasError``. ``except APIStatusError`` catches exactly the
errors that came with an HTTP response (``error.meta`` holds its parsed headers); refusals made
here, before or instead of a request, never are ``APIStatusError``. Four concepts have a local and
a server variant, and ``except`` on the concept catches both::

    CerebrasError
    ├── ConfigurationError (also ValueError)        bad arguments, known before any request
    │   └── MissingAPIKeyError                      no key given and CEREBRAS_API_KEY unset
    ├── RateLimitError                              a quota stopped the call (either variant)
    │   ├── LocalRateLimitError                     our limiter would wait past max_wait; nothing sent
    │   └── APIRateLimitError (+ APIStatusError)    429 from the server
    ├── PaymentRequiredError                        the key's org has no credit (either variant)
    │   ├── LocalPaymentRequiredError               the circuit stayed open past max_wait; nothing sent
    │   └── APIPaymentRequiredError (+ APIStatusError)   402 from the server
    ├── ContextWindowExceededError                  prompt + completion over the window (either variant)
    │   ├── LocalContextWindowExceededError         from the token estimate; nothing sent
    │   └── APIContextWindowExceededError (+ BadRequestError)   400 context_length_exceeded
    ├── ModelNotFoundError                          the model cannot be used (either variant)
    │   ├── ModelRetiredError                       the catalog knows it is retired; nothing sent
    │   └── APIModelNotFoundError (+ APIStatusError)     404 from the server
    ├── APIStatusError                              the server answered with an error status
    │   ├── BadRequestError            400          (wrong_api_format, ...)
    │   │   ├── APIContextWindowExceededError
    │   │   └── UnprocessableEntityError 422
    │   ├── AuthenticationError        401
    │   ├── APIPaymentRequiredError    402
    │   ├── PermissionDeniedError      403
    │   ├── APIModelNotFoundError      404
    │   ├── APIRateLimitError          429
    │   ├── MalformedResponseError     2xx/3xx      a body that is not what was asked for (retried)
    │   └── ServerError                5xx
    │       └── ServiceUnavailableError 503
    ├── APIConnectionError                          no usable response (refused, reset, DNS)
    │   ├── APITimeoutError                         timeout, deadline or first_token_deadline passed
    │   │   └── StreamTimeoutError (+ StreamInterruptedError)   ... after content was delivered
    │   └── StreamInterruptedError                  a stream broke after content was delivered
    ├── RequestTooLargeError                        more tokens than a quota can ever hold
    ├── BudgetExceededError                         the spend budget would be crossed
    └── BackendUnavailableError                     the shared store (Redis) failed

``APIConnectionError.maybe_admitted`` (and ``MalformedResponseError.maybe_admitted``) says whether
the server may have admitted the request, i.e. counted it against the quota.

No error ever carries the API key: messages come from the server's body, and only
response headers (never request headers) are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cerebras_paygo._wire import ResponseMeta

__all__ = [
    "APIConnectionError",
    "APIContextWindowExceededError",
    "APIModelNotFoundError",
    "APIPaymentRequiredError",
    "APIRateLimitError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BackendUnavailableError",
    "BadRequestError",
    "BudgetExceededError",
    "CerebrasError",
    "ConfigurationError",
    "ContextWindowExceededError",
    "LocalContextWindowExceededError",
    "LocalPaymentRequiredError",
    "LocalRateLimitError",
    "MalformedResponseError",
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
    "StreamTimeoutError",
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


# --- errors that came with a response ---------------------------------------------------------


class APIStatusError(CerebrasError):
    """The server answered, and the answer is an error; ``meta`` holds its parsed headers.

    The transport passes the ``ResponseMeta`` it parsed once; built by hand (tests, error events),
    ``headers`` are parsed here instead.
    """

    def __init__(
        self,
        message: str,
        *,
        meta: ResponseMeta | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        if meta is None:
            from cerebras_paygo._wire import ResponseMeta  # lazily: `errors` stays light to import

            meta = ResponseMeta.from_headers(self.status_code or 0, headers)
        # Response headers only: request headers hold the Authorization bearer.
        self.meta: ResponseMeta = meta
        if self.request_id is None:
            self.request_id = meta.request_id

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers, lowercase names (``meta.headers``)."""
        return self.meta.headers


class BadRequestError(APIStatusError):
    """400: the request is malformed or unsupported (``wrong_api_format``)."""

    status_code = 400


class UnprocessableEntityError(BadRequestError):
    """422: the body parsed but could not be processed."""

    status_code = 422


class AuthenticationError(APIStatusError):
    """401: the API key is wrong (``wrong_api_key``)."""

    status_code = 401


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource (or no Authorization header reached the server)."""

    status_code = 403


class ServerError(APIStatusError):
    """5xx: the server failed; retried with backoff."""

    status_code = 500


class ServiceUnavailableError(ServerError):
    """503: the service is overloaded or down; retried with backoff."""

    status_code = 503


class MalformedResponseError(APIStatusError):
    """A 2xx/3xx answer whose body is not what was asked for: truncated or non-JSON, the wrong
    shape, a completion without a choice or message, an SSE event that is not a chunk, a redirect.

    Retried with backoff when nothing was delivered. ``maybe_admitted`` is true for a 2xx (the
    server ran the request and may have counted it) and false for a 3xx (a redirect is answered in
    front of the API); ``delivered_chunks`` counts the stream chunks the caller already saw.
    """

    def __init__(self, message: str, *, maybe_admitted: bool = True, delivered_chunks: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.maybe_admitted = maybe_admitted
        self.delivered_chunks = delivered_chunks


# --- concepts with a local and a server variant ----------------------------------------------


class RateLimitError(CerebrasError):
    """A quota stopped the call: the server's 429 (:class:`APIRateLimitError`) or our own limiter
    refusing to wait past ``max_wait`` (:class:`LocalRateLimitError`).

    ``quota`` is ``"tokens"``, ``"requests"`` or ``"queue"`` (``None`` when unknown or a 429 pause);
    ``retry_after`` the seconds after which trying again may succeed (``None`` when unknown).
    """

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


class LocalRateLimitError(RateLimitError):
    """Our limiter would have delayed the request past ``max_wait``; nothing was sent.

    ``retry_after`` is the wait the limiter computed; ``type`` is ``"local_rate_limit"``.
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("type", "local_rate_limit")
        super().__init__(message, **kwargs)


class APIRateLimitError(RateLimitError, APIStatusError):
    """429 from the server; ``retry_after`` defaults to the response's ``meta.retry_after``."""

    status_code = 429

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if self.retry_after is None:
            self.retry_after = self.meta.retry_after


class PaymentRequiredError(CerebrasError):
    """The Team org of this key has no credit and no subscription: the server's 402
    (:class:`APIPaymentRequiredError`) or the payment circuit still open once the payment policy's
    ``max_wait`` has passed (:class:`LocalPaymentRequiredError`); ``waited`` says how long we waited.
    """

    def __init__(self, message: str, *, waited: float = 0.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.waited = waited


class LocalPaymentRequiredError(PaymentRequiredError):
    """The payment circuit of the key stayed open past ``max_wait``; nothing was sent this time."""


class APIPaymentRequiredError(PaymentRequiredError, APIStatusError):
    """402 from the server."""

    status_code = 402


_LENGTH_RE = re.compile(r"Current length is (\d{1,18}) while limit is (\d{1,18})\b", re.IGNORECASE)


class ContextWindowExceededError(CerebrasError):
    """Prompt plus ``max_completion_tokens`` do not fit the model's window for this tier.

    Raised locally from the token estimate (:class:`LocalContextWindowExceededError`, before any
    request) or mapped from the server's ``context_length_exceeded``
    (:class:`APIContextWindowExceededError`); ``current_length`` and ``limit`` hold the two lengths,
    ``local`` says which variant it is.
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


class LocalContextWindowExceededError(ContextWindowExceededError):
    """The estimate says the request does not fit; nothing was sent."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("local", True)
        super().__init__(message, **kwargs)


class APIContextWindowExceededError(ContextWindowExceededError, BadRequestError):
    """400 ``context_length_exceeded`` from the server."""


class ModelNotFoundError(CerebrasError):
    """The model cannot be used: the server's 404 (:class:`APIModelNotFoundError`) or a model the
    catalog knows was retired (:class:`ModelRetiredError`)."""


class ModelRetiredError(ModelNotFoundError):
    """The catalog knows the model was retired; ``replacement`` names what to use instead. Nothing
    was sent."""

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


class APIModelNotFoundError(ModelNotFoundError, APIStatusError):
    """404: the model does not exist or this key has no access to it (``model_not_found``)."""

    status_code = 404


# --- no usable response -----------------------------------------------------------------------


class APIConnectionError(CerebrasError):
    """No usable response: the connection failed, was refused or reset.

    ``maybe_admitted`` is true when the request may have reached the server (read timeout or
    error, the server hanging up after the request was written): its quota charge must be kept.
    It is false when it certainly did not (DNS, connect error or timeout, pool timeout). Built by
    hand without saying, it is true, the safe side.
    """

    def __init__(self, message: str, *, maybe_admitted: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.maybe_admitted = maybe_admitted


class APITimeoutError(APIConnectionError):
    """A bound passed: ``bound`` is ``"timeout"`` (httpx's per-operation timeout), ``"deadline"``
    (the whole response, body included) or ``"first_token_deadline"`` (no content in time)."""

    def __init__(self, message: str, *, bound: str = "timeout", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.bound = bound


class StreamInterruptedError(APIConnectionError):
    """A stream broke after content was delivered; it is not retried, since the caller saw tokens.

    ``delivered_chunks`` says how many chunks reached the caller before the break.
    """

    def __init__(self, message: str, *, delivered_chunks: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.delivered_chunks = delivered_chunks


class StreamTimeoutError(StreamInterruptedError, APITimeoutError):
    """A timeout or deadline passed after content was delivered (both an interruption and a timeout)."""


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
    402: APIPaymentRequiredError,
    403: PermissionDeniedError,
    404: APIModelNotFoundError,
    422: UnprocessableEntityError,
    429: APIRateLimitError,
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
    meta: ResponseMeta | None = None,
) -> APIStatusError:
    """Map an error response to its typed (server) error.

    Accepts the flat Cerebras body ``{message, type, param, code}``, the wrapped OpenAI form
    ``{"error": {...}}``, the FastAPI ``{"detail": ...}`` form and plain text. A ``status_code``
    inside the body (as in mid-stream error events) wins over the HTTP status, as in the SDK.
    ``meta`` is the response's parsed headers (else ``headers`` are parsed); ``retry_after``
    overrides ``meta.retry_after`` on a 429.
    """
    fields: dict[str, Any] = {}
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            fields = dict(inner)
        elif isinstance(inner, str):
            fields = {"message": inner}
        body_status = body.get("status_code")
        if isinstance(body_status, int) and not isinstance(body_status, bool):
            status_code = body_status
        if "detail" in body and "message" not in fields:
            fields["message"] = str(body["detail"])
    elif isinstance(body, str) and body.strip():
        fields = {"message": body.strip()[:500]}

    if meta is None:
        from cerebras_paygo._wire import ResponseMeta  # lazily: `errors` stays light to import

        meta = ResponseMeta.from_headers(status_code, headers)
    code = _str_or_none(fields.get("code"))
    message = _str_or_none(fields.get("message")) or f"HTTP {status_code}"
    common: dict[str, Any] = {
        "status_code": status_code,
        "code": code,
        "param": _str_or_none(fields.get("param")),
        "type": _str_or_none(fields.get("type")),
        "request_id": _str_or_none(fields.get("id")) or meta.request_id,
        "body": body,
        "meta": meta,
    }
    if code == "context_length_exceeded" or (status_code == 400 and _LENGTH_RE.search(message)):
        return APIContextWindowExceededError(message, **common)
    if status_code == 429:
        return APIRateLimitError(message, quota=_QUOTA_BY_CODE.get(code or ""), retry_after=retry_after, **common)
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else (BadRequestError if status_code >= 400 else APIStatusError)
    return cls(message, **common)


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
