"""``EmulatorConfig``: who may call the emulator, what each org may spend, and what goes wrong.

Everything is a pydantic model, so a config can come from Python, a JSON file
(``cerebras-paygo emulate --config file.json``) or the ``/_emulator/*`` control endpoints.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cerebras_paygo.emulator.facts import ServerLimits

__all__ = [
    "FREE_KEY",
    "FREE_ORG",
    "PAYGO_KEY",
    "PAYGO_ORG",
    "AutoRecharge",
    "EmulatorConfig",
    "FaultConfig",
    "OrgConfig",
    "default_config",
]

PAYGO_KEY = "csk-emulator-paygo"
FREE_KEY = "csk-emulator-free"
PAYGO_ORG = "emulator-paygo"
FREE_ORG = "emulator-free"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AutoRecharge(_Strict):
    """When the balance falls to or below ``threshold_usd``, ``amount_usd`` is credited ``delay_s`` later."""

    threshold_usd: float = 5.0
    amount_usd: float = Field(default=20.0, gt=0)
    delay_s: float = Field(default=0.0, ge=0)


class OrgConfig(_Strict):
    """One organization: its tier, its prepaid balance and its auto-recharge (``None``: off)."""

    name: str
    tier: Literal["paygo", "free"] = "paygo"
    balance_usd: float = 100.0
    auto_recharge: AutoRecharge | None = None


class FaultConfig(_Strict):
    """Faults to inject into ``POST /v1/chat/completions``; the defaults inject nothing.

    Counters (``*_next``) count down one per request (or stream) they hit.
    """

    latency_s: float = Field(default=0.0, ge=0)
    """Delay before the response starts (status line), on every completion."""
    tokens_per_second: float | None = Field(default=None, gt=0)
    """Streaming pace: the delay between token deltas is ``1 / tokens_per_second``; ``None``: no delay."""
    slow_first_byte_s: float = Field(default=0.0, ge=0)
    """Extra delay before the first body byte (after the headers of a stream)."""
    slow_first_byte_next: int | None = Field(default=None, ge=0)
    """How many requests get the slow first byte; ``None``: every request."""
    error_rate: float = Field(default=0.0, ge=0, le=1)
    """Probability (seeded) that a request fails with ``error_status``."""
    error_status: int = Field(default=500, ge=500, le=599)
    unavailable_next: int = Field(default=0, ge=0)
    """A 503 burst: the next N requests get 503."""
    drop_after_chunks: int | None = Field(default=None, ge=0)
    """Streams are cut (connection closed) after this many SSE events."""
    drop_next: int | None = Field(default=None, ge=0)
    """How many streams are cut; ``None``: every stream while ``drop_after_chunks`` is set."""
    payment_required_s: float | None = Field(default=None, ge=0)
    """A 402 window: paygo balances count as zero for this many seconds (``inf``: until a recharge
    lands or the balance is set); an org with auto-recharge gets its recharge triggered at once."""
    payment_required_orgs: list[str] | None = None
    """Orgs hit by the 402 window; ``None``: every paygo org."""
    rate_limit_next: int = Field(default=0, ge=0)
    """A 429 storm: the next N requests get 429 ``token_quota_exceeded``."""


def _default_orgs() -> list[OrgConfig]:
    return [
        OrgConfig(name=PAYGO_ORG, tier="paygo", balance_usd=100.0),
        OrgConfig(name=FREE_ORG, tier="free", balance_usd=0.0),
    ]


class EmulatorConfig(_Strict):
    """The whole configuration of one emulator run.

    ``limits`` overrides the facts' per-tier limits. Keys are scopes, later ones win:
    ``"*"``, ``"*/<model>"``, ``"<tier>"``, ``"<tier>/<model>"``, ``"<org>"``, ``"<org>/<model>"``;
    values are ``ServerLimits``, a dict of its fields, or anything with ``as_dict()`` giving one
    (the client's ``RateLimits``). Only the fields given are overridden.
    """

    keys: dict[str, str] = Field(default_factory=lambda: {PAYGO_KEY: PAYGO_ORG, FREE_KEY: FREE_ORG})
    """API key -> org name."""
    orgs: list[OrgConfig] = Field(default_factory=_default_orgs)
    limits: dict[str, ServerLimits] = Field(default_factory=dict)
    max_concurrency: int | None = Field(default=None, ge=1)
    """More requests in flight than this get 429 ``queue_exceeded``."""
    send_done: bool = True
    """End streams with ``data: [DONE]``."""
    retry_after: bool = False
    """Send ``Retry-After`` on 429 and 503 (the real API does not)."""
    default_completion_tokens: int = Field(default=32, ge=1)
    """The natural length of a generated text answer (cut by ``max_completion_tokens``)."""
    reasoning_tokens: int = Field(default=24, ge=1)
    """Reasoning length at ``reasoning_effort="medium"`` (low: half, high: double)."""
    seed: int = 0
    """Run seed: the same request under the same seed gets the same answer."""
    faults: FaultConfig = Field(default_factory=FaultConfig)
    catalog_path: str | None = None
    """A file merged over the emulator's packaged facts by model id: the facts file's shape, or the
    client catalog's (``models.json``). The client's ``$CEREBRAS_PAYGO_CATALOG`` is not read: the
    emulator stands in for the server, which does not share the client's beliefs."""
    today: dt.date | None = None
    """The date used for retirements (default: the real date)."""
    prompt_cache: bool = True
    """Report prefix-cache hits (blocks of 128 tokens, per org, 5-minute TTL) in ``cached_tokens``."""
    strict_messages: bool = True
    """Reject unknown non-null message fields (``reasoning_content`` is rejected either way)."""
    payment_required_body: dict[str, Any] | None = None
    """Replace the 402 body (default: the flat ``payment_required`` body)."""

    @field_validator("limits", mode="before")
    @classmethod
    def _coerce_limits(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ServerLimits.coerce(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check_refs(self) -> EmulatorConfig:
        names = [org.name for org in self.orgs]
        if len(names) != len(set(names)):
            raise ValueError(f"org names must be unique: {names}")
        missing = sorted({org for org in self.keys.values() if org not in names})
        if missing:
            raise ValueError(f"keys refer to unknown orgs: {missing}")
        return self

    def org(self, name: str) -> OrgConfig | None:
        return next((org for org in self.orgs if org.name == name), None)

    def key_for(self, tier: str) -> str | None:
        """The first key whose org is on ``tier``."""
        tiers = {org.name: org.tier for org in self.orgs}
        return next((key for key, org in self.keys.items() if tiers.get(org) == tier), None)

    def updated(self, **changes: Any) -> EmulatorConfig:
        """A validated copy with top-level fields replaced (``faults`` may be a partial dict)."""
        data = self.model_dump()
        for name, value in changes.items():
            if name not in type(self).model_fields:
                raise ValueError(f"unknown EmulatorConfig field {name!r}")
            if isinstance(value, BaseModel):
                value = value.model_dump()
            if name == "faults" and isinstance(value, dict):
                value = {**FaultConfig().model_dump(), **value}
            data[name] = value
        return EmulatorConfig.model_validate(data)

    @classmethod
    def from_file(cls, path: str | Path) -> EmulatorConfig:
        return cls.model_validate(json.loads(Path(path).read_text("utf-8")))


def default_config() -> EmulatorConfig:
    """Two keys: ``csk-emulator-paygo`` (paygo org, $100) and ``csk-emulator-free`` (free org)."""
    return EmulatorConfig()
