"""Configuration from arguments and ``CEREBRAS_*`` environment variables.

Arguments win over the environment. The key comes from ``api_key`` or ``CEREBRAS_API_KEY`` only,
never from ``OPENAI_API_KEY``. Plain ``http://`` is refused unless the host is loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_serializer, field_validator

from cerebras_paygo._catalog import TIER_SETTINGS, TierSetting
from cerebras_paygo.errors import ConfigurationError, MissingAPIKeyError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "INTEGRATION_HEADER",
    "Settings",
    "env_api_key",
    "env_base_url",
    "env_tier",
    "key_fingerprint",
    "normalize_base_url",
    "parse_tier",
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


#: The environment variables the package reads, all of them, and only here.
ENV_API_KEY = "CEREBRAS_API_KEY"
ENV_BASE_URLS = ("CEREBRAS_BASE_URL", "CEREBRAS_API_BASE")  # the second is langchain-cerebras' name
ENV_TIER = "CEREBRAS_TIER"


def env_api_key() -> SecretStr | None:
    """``CEREBRAS_API_KEY`` (never ``OPENAI_API_KEY``), or ``None`` when unset or empty."""
    key = os.environ.get(ENV_API_KEY)
    return SecretStr(key) if key else None


def env_base_url() -> str | None:
    """``CEREBRAS_BASE_URL``, else ``CEREBRAS_API_BASE``, else ``None``."""
    for name in ENV_BASE_URLS:
        value = os.environ.get(name)
        if value:
            return value
    return None


def env_tier() -> TierSetting:
    """``CEREBRAS_TIER`` (``auto`` when unset; an unknown value raises ``ConfigurationError``)."""
    return parse_tier(os.environ.get(ENV_TIER) or "auto", ENV_TIER)


def parse_tier(value: object, name: str = "tier") -> TierSetting:
    """``"auto"``, ``"paygo"`` or ``"free"`` (any case), else ``ConfigurationError``."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        for tier in TIER_SETTINGS:
            if lowered == tier:
                return tier
    raise ConfigurationError(f"{name} must be one of {TIER_SETTINGS}, not {value!r}")


def key_fingerprint(api_key: SecretStr | str | None) -> str:
    """A short, non-reversible id of a key for limiter state, Redis keys and logs."""
    raw = api_key.get_secret_value() if isinstance(api_key, SecretStr) else (api_key or "")
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def _positive_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


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
    tier: TierSetting = "auto"
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
        return parse_tier(value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _coerce_timeout(cls, value: Any) -> httpx.Timeout:
        if value is None:
            return DEFAULT_TIMEOUT
        if isinstance(value, httpx.Timeout):
            # httpx.Timeout(0) would fail every request with a misleading connection error; None
            # (no limit) stays allowed.
            for name, part in value.as_dict().items():
                if part is not None and not _positive_seconds(part):
                    raise ConfigurationError(
                        f"timeout {name}={part!r} must be a positive, finite number of seconds (or None for none)"
                    )
            return value
        if _positive_seconds(value):
            return httpx.Timeout(float(value), connect=min(5.0, float(value)))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ConfigurationError(f"timeout must be a positive, finite number of seconds, not {value!r}")
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
        key = api_key if api_key is not None else env_api_key()
        if isinstance(key, str):
            key = SecretStr(key) if key else None
        return cls(
            api_key=key,
            base_url=base_url or env_base_url() or DEFAULT_BASE_URL,
            tier=tier or env_tier(),
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
