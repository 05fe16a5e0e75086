"""Counters behind ``GET /_emulator/stats`` (chat completions only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stats"]


@dataclass
class _ModelStats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    tokens_admitted: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "tokens_admitted": self.tokens_admitted,
            "cost_usd": self.cost_usd,
        }


@dataclass
class Stats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    tokens_admitted: int = 0
    tokens_used: int = 0
    tokens_refunded: int = 0
    streams: int = 0
    streams_dropped: int = 0
    models: dict[str, _ModelStats] = field(default_factory=dict)

    def record_status(self, status: int, model: str | None, code: str | None = None) -> None:
        self.requests += 1
        self.statuses[status] += 1
        if code:
            self.errors[code] += 1
        if model:
            per = self.models.setdefault(model, _ModelStats())
            per.requests += 1
            per.statuses[status] += 1

    def record_admission(self, model: str, tokens: int) -> None:
        self.tokens_admitted += tokens
        self.models.setdefault(model, _ModelStats()).tokens_admitted += tokens

    def record_usage(self, model: str, prompt: int, completion: int, cached: int, refunded: int, cost: float) -> None:
        self.tokens_used += prompt + completion
        self.tokens_refunded += refunded
        per = self.models.setdefault(model, _ModelStats())
        per.prompt_tokens += prompt
        per.completion_tokens += completion
        per.cached_tokens += cached
        per.cost_usd += cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "rate_limited": self.statuses.get(429, 0),
            "payment_required": self.statuses.get(402, 0),
            "tokens_admitted": self.tokens_admitted,
            "tokens_used": self.tokens_used,
            "tokens_refunded": self.tokens_refunded,
            "streams": self.streams,
            "streams_dropped": self.streams_dropped,
            "models": {name: per.as_dict() for name, per in self.models.items()},
        }
