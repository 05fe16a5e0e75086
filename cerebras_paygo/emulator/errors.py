"""The flat error bodies of the real API (``{"message", "type", "param", "code"}``)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "body",
    "context_length",
    "internal_error",
    "model_not_found",
    "payment_required",
    "queue_exceeded",
    "service_unavailable",
    "wrong_api_format",
    "wrong_api_key",
]


def body(message: str, type: str, param: str | None, code: str) -> dict[str, Any]:
    return {"message": message, "type": type, "param": param, "code": code}


def wrong_api_key() -> dict[str, Any]:
    return body("Wrong API Key", "invalid_request_error", "api_key", "wrong_api_key")


def wrong_api_format(message: str, param: str = "validation_error") -> dict[str, Any]:
    return body(message, "invalid_request_error", param, "wrong_api_format")


def model_not_found(model: str) -> dict[str, Any]:
    return body(
        f"Model {model} does not exist or you do not have access to it.", "not_found_error", "model", "model_not_found"
    )


def context_length(current: int, limit: int) -> dict[str, Any]:
    return body(
        f"Please reduce the length of the messages or completion. Current length is {current} while limit is {limit}",
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    )


def payment_required() -> dict[str, Any]:
    return body(
        "Payment required to access this resource. Visit your billing tab.",
        "payment_required_error",
        "quota",
        "payment_required",
    )


def queue_exceeded() -> dict[str, Any]:
    return body(
        "We're experiencing high traffic right now! Please try again soon.",
        "too_many_requests_error",
        "queue",
        "queue_exceeded",
    )


def internal_error(status: int = 500) -> dict[str, Any]:
    return body("Internal server error. Please try again later.", "internal_server_error", None, "internal_error")


def service_unavailable() -> dict[str, Any]:
    return body(
        "The service is temporarily unavailable. Please try again later.",
        "service_unavailable_error",
        None,
        "service_unavailable",
    )
