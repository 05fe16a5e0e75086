"""``RateLimits``: the quotas of one (key, model), as a frozen value object."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["HEADER_LIMIT_NAMES", "LIMIT_WINDOWS", "RateLimits"]

#: Each limit's name -> (kind, window seconds). Cerebras counts requests and tokens per
#: minute, hour and day, "whichever trips first".
LIMIT_WINDOWS: dict[str, tuple[str, float]] = {
    "requests_per_minute": ("requests", 60.0),
    "tokens_per_minute": ("tokens", 60.0),
    "requests_per_hour": ("requests", 3600.0),
    "tokens_per_hour": ("tokens", 3600.0),
    "requests_per_day": ("requests", 86400.0),
    "tokens_per_day": ("tokens", 86400.0),
}

#: ``x-ratelimit-*`` series (``RateLimitSnapshot`` keys, ``"tokens-minute"``) -> limit name
#: (``"tokens_per_minute"``).
HEADER_LIMIT_NAMES: dict[str, str] = {
    f"{kind}-{unit}": f"{kind}_per_{unit}" for kind in ("requests", "tokens") for unit in ("minute", "hour", "day")
}


@dataclass(frozen=True)
class RateLimits:
    """Requests and tokens per minute, hour and day; ``None`` means no such limit."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    requests_per_hour: int | None = None
    tokens_per_hour: int | None = None
    requests_per_day: int | None = None
    tokens_per_day: int | None = None

    def __post_init__(self) -> None:
        for name in LIMIT_WINDOWS:  # the fields, without ``dataclasses.fields`` (built once per response)
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                from cerebras_paygo.errors import ConfigurationError

                raise ConfigurationError(f"RateLimits.{name} must be a positive integer or None, not {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> RateLimits:
        if not data:
            return cls()
        unknown = set(data) - set(LIMIT_WINDOWS)
        if unknown:
            from cerebras_paygo.errors import ConfigurationError

            raise ConfigurationError(f"unknown rate limit names: {sorted(unknown)}; known: {list(LIMIT_WINDOWS)}")
        return cls(**{k: (None if v is None else int(v)) for k, v in data.items()})

    def items(self) -> Iterator[tuple[str, int]]:
        """The limits that are set, as ``(name, value)``."""
        for name in LIMIT_WINDOWS:
            value = getattr(self, name)
            if value is not None:
                yield name, value

    def merged_over(self, base: RateLimits) -> RateLimits:
        """These limits where set, ``base`` elsewhere."""
        return replace(base, **dict(self.items()))

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())
