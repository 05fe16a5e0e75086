"""``ClientOptions``: the client options both adapters take, validated once, and the rules of a turn.

``ChatCerebras`` (LangChain) and ``Cerebras`` (LlamaIndex) declare these options as fields under
their frameworks' names, then build the core client with ``ClientOptions(...).build()``. Bad values
raise ``ConfigurationError`` (a ``ValueError``) naming the option, the same in both frameworks,
before any request. What an assistant turn sends back and what a usage block counts are decided
here too, so the two adapters cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator, model_validator

from cerebras_paygo._payment import PaymentPolicy
from cerebras_paygo._ratelimit import RateLimits
from cerebras_paygo._settings import env_base_url, normalize_base_url, parse_tier
from cerebras_paygo._wire import Message, ToolCall, Usage
from cerebras_paygo.errors import ConfigurationError

__all__ = [
    "ClientOptions",
    "UsageCounts",
    "assistant_message",
    "build_request",
    "check_sampling",
    "configuration_error",
    "usage_counts",
]

ContextOverflow = Literal["raise", "trim_history", "shrink_completion"]


def configuration_error(exc: ValidationError, owner: str) -> ConfigurationError:
    """Our own error out of pydantic's wrapper, or one ``ConfigurationError`` naming each bad field."""
    for detail in exc.errors():
        original = (detail.get("ctx") or {}).get("error")
        if isinstance(original, ConfigurationError):
            return original
    problems = "; ".join(
        f"{'.'.join(str(p) for p in d['loc']) or 'value'}: {d['msg']} (got {d.get('input')!r})" for d in exc.errors()
    )
    return ConfigurationError(f"{owner}: {problems}")


def _number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None, strict_low: bool = False
) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, not {value!r}")
    if low is not None and (value <= low if strict_low else value < low):
        raise ConfigurationError(f"{name} must be {'>' if strict_low else '>='} {low:g}, not {value!r}")
    if high is not None and value > high:
        raise ConfigurationError(f"{name} must be <= {high:g}, not {value!r}")
    return value


def _integer(name: str, value: Any, *, low: int) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigurationError(f"{name} must be an integer >= {low}, not {value!r}")
    return value


def check_sampling(params: Mapping[str, Any]) -> None:
    """Refuse request fields the API would refuse, before sending (``temperature=5``, ``stop=5``...)."""
    _number("temperature", params.get("temperature"), low=0.0, high=2.0)
    _number("top_p", params.get("top_p"), low=0.0, high=1.0)
    _number("frequency_penalty", params.get("frequency_penalty"), low=-2.0, high=2.0)
    _number("presence_penalty", params.get("presence_penalty"), low=-2.0, high=2.0)
    _integer("max_completion_tokens", params.get("max_completion_tokens"), low=1)
    _integer("seed", params.get("seed"), low=-(2**63))
    _integer("top_logprobs", params.get("top_logprobs"), low=0)
    stop = params.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
            raise ConfigurationError(f"stop must be a string or a list of strings, not {stop!r}")
        if len(stop) > 4:
            raise ConfigurationError(f"stop takes at most 4 sequences, not {len(stop)}")
    effort = params.get("reasoning_effort")
    if effort is not None and effort not in ("none", "low", "medium", "high"):
        raise ConfigurationError(f"reasoning_effort must be 'none', 'low', 'medium' or 'high', not {effort!r}")


class ClientOptions(BaseModel):
    """Everything that configures a ``CerebrasClient``, validated; ``build()`` makes the client.

    ``None`` means "the core's default" (for the key, base URL and tier: the ``CEREBRAS_*``
    environment variables, read in ``cerebras_paygo._settings``).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    api_key: SecretStr | None = None
    base_url: str | None = None
    tier: Literal["auto", "paygo", "free"] | None = None
    timeout: float | httpx.Timeout | None = None
    max_retries: int = 2
    deadline: float | None = None
    rate_limits: RateLimits | None = None
    payment_policy: PaymentPolicy | None = None
    context_overflow: ContextOverflow = "raise"
    context_window: int | None = None
    max_spend_usd: float | None = None
    http_client: httpx.Client | None = None
    async_http_client: httpx.AsyncClient | None = None
    default_headers: dict[str, str] | None = None
    proxy: str | None = None
    redis_url: str | None = None
    redis: Any = None
    on_backend_error: Literal["local", "raise"] = "local"
    workers: int = 1
    integration: str = "cerebras-paygo"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise configuration_error(exc, "invalid client option") from None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        key = values.get("api_key")
        if isinstance(key, str):
            values["api_key"] = SecretStr(key) if key else None
        tier = values.get("tier")
        if tier is not None:
            values["tier"] = parse_tier(tier)
        timeout = values.get("timeout")
        if isinstance(timeout, httpx.Timeout):
            for part in ("connect", "read", "write", "pool"):
                seconds = getattr(timeout, part)
                if seconds is not None:
                    _number(f"timeout.{part}", seconds, low=0.0, strict_low=True)
        else:
            _number("timeout", timeout, low=0.0, strict_low=True)
        values["max_retries"] = 2 if values.get("max_retries") is None else values["max_retries"]
        _integer("max_retries", values["max_retries"], low=0)
        _number("deadline", values.get("deadline"), low=0.0, strict_low=True)
        _integer("context_window", values.get("context_window"), low=1)
        _number("max_spend_usd", values.get("max_spend_usd"), low=0.0)
        overflow = values.get("context_overflow", "raise")
        if overflow not in ("raise", "trim_history", "shrink_completion"):
            raise ConfigurationError(
                f"context_overflow must be 'raise', 'trim_history' or 'shrink_completion', not {overflow!r}"
            )
        limits = values.get("rate_limits")
        if isinstance(limits, Mapping):
            values["rate_limits"] = RateLimits.from_mapping(limits)
        elif limits is not None and not isinstance(limits, RateLimits):
            raise ConfigurationError(f"rate_limits must be a mapping or a RateLimits, not {limits!r}")
        _integer("workers", values.get("workers", 1), low=1)
        if values.get("on_backend_error", "local") not in ("local", "raise"):
            raise ConfigurationError(
                f"on_backend_error must be 'local' or 'raise', not {values.get('on_backend_error')!r}"
            )
        url = values.get("redis_url")
        schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if url is not None and (not isinstance(url, str) or not url.startswith(schemes)):
            raise ConfigurationError(f"redis_url must be a URL starting with one of {schemes}, not {url!r}")
        policy = values.get("payment_policy")
        if policy is not None and not isinstance(policy, PaymentPolicy):
            raise ConfigurationError(f"payment_policy must be a PaymentPolicy, not {policy!r}")
        return values

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"base_url must be a URL, not {value!r}")
        return normalize_base_url(value)

    def build(self) -> Any:
        """The ``CerebrasClient`` of these options (HTTP clients through ``proxy`` when one is set)."""
        from cerebras_paygo._client import CerebrasClient  # the client module imports this one

        http_client, async_client = self.http_client, self.async_http_client
        if self.proxy:
            from cerebras_paygo._http import shared_ssl_context
            from cerebras_paygo._settings import Settings

            timeout = Settings(timeout=self.timeout).timeout
            verify = shared_ssl_context()
            http_client = http_client or httpx.Client(proxy=self.proxy, timeout=timeout, verify=verify)
            async_client = async_client or httpx.AsyncClient(proxy=self.proxy, timeout=timeout, verify=verify)
        return CerebrasClient(
            api_key=self.api_key,
            base_url=self.base_url or env_base_url(),
            tier=self.tier,
            timeout=self.timeout,
            max_retries=self.max_retries,
            deadline=self.deadline,
            rate_limits=self.rate_limits,
            payment_policy=self.payment_policy,
            context_overflow=self.context_overflow,
            context_window=self.context_window,
            max_spend_usd=self.max_spend_usd,
            http_client=http_client,
            async_http_client=async_client,
            default_headers=self.default_headers,
            redis_url=self.redis_url,
            redis=self.redis,
            on_backend_error=self.on_backend_error,
            workers=self.workers,
            integration=self.integration,
        )


def assistant_message(
    text: str | None, *, reasoning: str | None = None, tool_calls: list[ToolCall] | None = None, name: str | None = None
) -> Message:
    """An assistant turn sent back to the API, the same from both adapters.

    Its reasoning goes in ``reasoning`` (Cerebras reads it on the next turn). ``content`` is the
    text; a turn that only calls tools goes without content, as Cerebras itself records it; any
    other turn (a reasoning-only one included) sends its text, ``""`` when it had none.
    """
    calls = tool_calls or None
    return Message(
        role="assistant",
        content=text if text or not calls else None,
        reasoning=reasoning or None,
        tool_calls=calls,
        name=name,
    )


@dataclass(frozen=True, slots=True)
class UsageCounts:
    """A usage block as both adapters report it."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_tokens: int | None
    reasoning_tokens: int | None


def usage_counts(usage: Usage) -> UsageCounts:
    """What a Cerebras ``usage`` block counts (total computed when the server left it out)."""
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    return UsageCounts(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        cached_tokens=prompt.cached_tokens if prompt is not None else None,
        reasoning_tokens=completion.reasoning_tokens if completion is not None else None,
    )


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise ConfigurationError(f"tools must be a list of tool definitions, not {tools!r}")
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            shape = "{'type': 'function', 'function': {'name': ...}}"
            raise ConfigurationError(f"a tool must be {shape}, not {tool!r}")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ConfigurationError(
                f"tool {function['name']!r}: parameters must be a JSON schema object, not {parameters!r}"
            )


def _check_call_timeout(value: Any) -> None:
    """A per-call ``timeout`` is not a request field: Cerebras answers 400 "body.timeout is
    unsupported" (after counting the request), and ``httpx.Timeout`` cannot even be serialized."""
    if isinstance(value, httpx.Timeout):
        for part in ("connect", "read", "write", "pool"):
            _number(f"timeout.{part}", getattr(value, part), low=0.0, strict_low=True)
    else:
        _number("timeout", value, low=0.0, strict_low=True)
    raise ConfigurationError(
        f"timeout={value!r} is not a request option: set timeout= (or deadline=) on the model or client"
    )


def build_request(messages: list[Message], params: Mapping[str, Any]) -> Any:
    """The wire request of one call, checked: what the API would refuse raises ``ConfigurationError``
    here, before any request (no messages, sampling out of range, a malformed tool)."""
    from cerebras_paygo._wire import ChatCompletionRequest

    if not messages:
        raise ConfigurationError("a chat request needs at least one message")
    if "timeout" in params:
        _check_call_timeout(params["timeout"])
    check_sampling(params)
    _check_tools(params.get("tools"))
    try:
        return ChatCompletionRequest(messages=messages, **params)
    except ValidationError as exc:
        raise configuration_error(exc, "invalid request") from None
