"""Configuration from arguments and ``CEREBRAS_*`` environment variables.

Arguments win over the environment. The key comes from ``api_key`` or ``CEREBRAS_API_KEY`` only,
never from ``OPENAI_API_KEY``. Plain ``http://`` is refused unless the host is loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_serializer, field_validator

from cerebras_paygo._catalog import TIERS, Tier
from cerebras_paygo.errors import ConfigurationError, MissingAPIKeyError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "INTEGRATION_HEADER",
    "Settings",
    "key_fingerprint",
    "normalize_base_url",
    "redis_url_from_env",
]

DEFAULT_BASE_URL = "https://api.cerebras.ai/v1"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
INTEGRATION_HEADER = "X-Cerebras-3rd-Party-Integration"
#: The Redis a fleet of processes shares its state through, when ``redis_url=`` is not given.
REDIS_URL_ENV = "CEREBRAS_PAYGO_REDIS_URL"


def redis_url_from_env() -> str | None:
    """``$CEREBRAS_PAYGO_REDIS_URL`` (``None`` when unset or empty): the one place it is read."""
    return os.environ.get(REDIS_URL_ENV) or None


def key_fingerprint(api_key: SecretStr | str | None) -> str:
    """A short, non-reversible id of a key for limiter state, Redis keys and logs."""
    raw = api_key.get_secret_value() if isinstance(api_key, SecretStr) else (api_key or "")
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: str) -> str:
    """``https://host`` or ``https://host/v1`` (with or without a trailing slash) -> ``https://host/v1``.

    Raises ``ConfigurationError`` for a non-http(s) URL or plain ``http://`` to a non-loopback host,
    since the key would cross the network in clear text.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL, not {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing plain http:// to {parts.hostname!r}: the API key would travel unencrypted; "
            "use https:// (plain http is allowed only for loopback hosts such as the local emulator)"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path = f"{path}/v1"
    netloc = parts.netloc
    return f"{parts.scheme}://{netloc}{path}"


class Settings(BaseModel):
    """Connection settings shared by the transport, the gateway and both adapters."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    tier: Tier = "paygo"
    timeout: httpx.Timeout = DEFAULT_TIMEOUT
    integration: str = "cerebras-paygo"
    default_headers: dict[str, str] = {}

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            # Surface our own typed error rather than pydantic's wrapper around it.
            for detail in exc.errors():
                original = (detail.get("ctx") or {}).get("error")
                if isinstance(original, ConfigurationError):
                    raise original from None
            raise ConfigurationError(str(exc)) from exc

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return normalize_base_url(value)

    @field_validator("tier", mode="before")
    @classmethod
    def _check_tier(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in TIERS:
            return value.lower()
        raise ConfigurationError(f"tier must be one of {TIERS}, not {value!r}")

    @field_validator("timeout", mode="before")
    @classmethod
    def _coerce_timeout(cls, value: Any) -> httpx.Timeout:
        if value is None:
            return DEFAULT_TIMEOUT
        if isinstance(value, httpx.Timeout):
            return value
        if isinstance(value, (int, float)):
            if value <= 0:
                raise ConfigurationError(f"timeout must be positive, not {value!r}")
            return httpx.Timeout(float(value), connect=min(5.0, float(value)))
        raise ConfigurationError(f"timeout must be seconds or an httpx.Timeout, not {value!r}")

    @field_serializer("timeout")
    def _serialize_timeout(self, value: httpx.Timeout) -> dict[str, float | None]:
        return value.as_dict()

    @classmethod
    def from_env(
        cls,
        *,
        api_key: SecretStr | str | None = None,
        base_url: str | None = None,
        tier: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        **extra: Any,
    ) -> Settings:
        """Settings from arguments, falling back to ``CEREBRAS_API_KEY``/``_BASE_URL``/``_TIER``."""
        key = api_key if api_key is not None else os.environ.get("CEREBRAS_API_KEY")
        if isinstance(key, str):
            key = SecretStr(key) if key else None
        return cls(
            api_key=key,
            base_url=base_url or os.environ.get("CEREBRAS_BASE_URL") or DEFAULT_BASE_URL,
            tier=tier or os.environ.get("CEREBRAS_TIER") or "paygo",
            timeout=timeout,
            **extra,
        )

    def require_key(self) -> SecretStr:
        """The key, or ``MissingAPIKeyError`` (raised before any request)."""
        if self.api_key is None or not self.api_key.get_secret_value():
            raise MissingAPIKeyError(
                "no Cerebras API key: pass api_key=... or set CEREBRAS_API_KEY "
                "(OPENAI_API_KEY is never used, so no other provider's key reaches Cerebras)"
            )
        return self.api_key

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.api_key)

    def __repr__(self) -> str:
        key = "SecretStr('**********')" if self.api_key else "None"
        return f"Settings(api_key={key}, base_url={self.base_url!r}, tier={self.tier!r})"
