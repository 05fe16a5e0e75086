"""The model catalog: windows, output caps, prices, per-tier limits, capabilities, retirements.

The data lives in ``data/models.json``; a user file (argument, or the path in
``CEREBRAS_PAYGO_CATALOG``) is merged over it by model id, so new models or changed prices need no
release. Unknown model ids are allowed (the API adds models) with a warning and conservative
defaults.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from cerebras_paygo._ratelimit.limits import RateLimits
from cerebras_paygo.errors import ConfigurationError, ModelRetiredError

__all__ = [
    "CATALOG_ENV",
    "TIER_SETTINGS",
    "Capabilities",
    "Catalog",
    "ModelSpec",
    "Prices",
    "Tier",
    "TierSetting",
    "UnknownModelWarning",
    "default_catalog",
]

logger = logging.getLogger("cerebras_paygo.catalog")

Tier = Literal["paygo", "free"]
TIERS: tuple[Tier, ...] = ("paygo", "free")
#: What a user may configure: a tier, or ``"auto"`` (learned from the server; see ``_tier``).
TierSetting = Literal["auto", "paygo", "free"]
TIER_SETTINGS: tuple[TierSetting, ...] = ("auto", "paygo", "free")
CATALOG_ENV = "CEREBRAS_PAYGO_CATALOG"


class UnknownModelWarning(UserWarning):
    """A model id the catalog does not know; conservative defaults are used."""


@dataclass(frozen=True)
class Prices:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (prompt_tokens - cached) * self.input + cached * cached_price + completion_tokens * self.output
        ) / 1_000_000


@dataclass(frozen=True)
class Capabilities:
    tools: bool = True
    tool_choice: bool = True
    parallel_tool_calls: bool = False
    json_schema: bool = True
    json_mode: bool = True
    reasoning: bool = False
    reasoning_efforts: tuple[str, ...] = ()
    default_reasoning_effort: str | None = None
    vision: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """Everything the client knows of one model."""

    id: str
    context_window: Mapping[str, int]
    max_output: Mapping[str, int]
    default_max_completion_tokens: Mapping[str, int]
    prices: Prices
    limits: Mapping[str, RateLimits]
    capabilities: Capabilities = field(default_factory=Capabilities)
    owned_by: str = "cerebras"
    status: str = "production"
    retired_on: dt.date | None = None
    replacement: str | None = None
    aliases: tuple[str, ...] = ()
    known: bool = True

    def window(self, tier: Tier) -> int:
        return self.context_window.get(tier, self.context_window["paygo"])

    def output_cap(self, tier: Tier) -> int:
        return min(self.max_output.get(tier, self.max_output["paygo"]), self.window(tier))

    def default_completion(self, tier: Tier) -> int:
        value = self.default_max_completion_tokens.get(tier, self.default_max_completion_tokens["paygo"])
        return min(value, self.output_cap(tier))

    def rate_limits(self, tier: Tier) -> RateLimits:
        return self.limits.get(tier, RateLimits())

    def is_retired(self, today: dt.date | None = None) -> bool:
        if self.retired_on is None:
            return self.status == "retired"
        return (today or dt.date.today()) >= self.retired_on

    def check_available(self, today: dt.date | None = None) -> None:
        """Raise ``ModelRetiredError`` (before any request) for a model past its retirement date."""
        if not self.is_retired(today):
            return
        when = self.retired_on.isoformat() if self.retired_on else None
        hint = f"; use {self.replacement!r} instead" if self.replacement else ""
        raise ModelRetiredError(
            f"model {self.id!r} was retired on {when or 'an earlier date'}{hint}",
            model=self.id,
            retired_on=when,
            replacement=self.replacement,
            code="model_not_found",
            param="model",
        )


def _spec_from_dict(raw: Mapping[str, Any], tier_caps: Mapping[str, int]) -> ModelSpec:
    try:
        model_id = str(raw["id"])
        windows = {k: int(v) for k, v in raw["context_window"].items()}
        for tier, cap in tier_caps.items():
            windows[tier] = min(windows.get(tier, windows["paygo"]), cap)
        prices = raw["prices"]
        caps = dict(raw.get("capabilities", {}))
        caps["reasoning_efforts"] = tuple(caps.get("reasoning_efforts", ()))
        retired = raw.get("retired_on")
        return ModelSpec(
            id=model_id,
            context_window=windows,
            max_output={k: int(v) for k, v in raw["max_output"].items()},
            default_max_completion_tokens={k: int(v) for k, v in raw["default_max_completion_tokens"].items()},
            prices=Prices(
                input=float(prices["input"]),
                output=float(prices["output"]),
                cached_input=None if prices.get("cached_input") is None else float(prices["cached_input"]),
            ),
            limits={tier: RateLimits.from_mapping(v) for tier, v in raw.get("limits", {}).items()},
            capabilities=Capabilities(**caps),
            owned_by=str(raw.get("owned_by", "cerebras")),
            status=str(raw.get("status", "production")),
            retired_on=dt.date.fromisoformat(retired) if retired else None,
            replacement=raw.get("replacement"),
            aliases=tuple(raw.get("aliases", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"catalog entry {raw.get('id')!r} is invalid: {exc!r}") from exc


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


class Catalog:
    """Model specs by id (and alias), built from the packaged data plus optional overrides."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        caps = {tier: int(v["context_cap"]) for tier, v in data.get("tiers", {}).items() if "context_cap" in v}
        self._raw = data
        self._specs: dict[str, ModelSpec] = {}
        for raw in data.get("models", []):
            spec = _spec_from_dict(raw, caps)
            self._specs[spec.id] = spec
            for alias in spec.aliases:
                self._specs[alias] = spec
        self._tier_caps = caps

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Catalog:
        """The packaged catalog, with ``path`` (or ``$CEREBRAS_PAYGO_CATALOG``) merged over it."""
        data = json.loads(resources.files("cerebras_paygo").joinpath("data/models.json").read_text("utf-8"))
        override_path = path if path is not None else os.environ.get(CATALOG_ENV)
        if override_path:
            try:
                override = json.loads(Path(override_path).read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot read catalog override {str(override_path)!r}: {exc}") from exc
            data = _merge_catalogs(data, override)
        return cls(data)

    def ids(self, *, include_retired: bool = True) -> list[str]:
        seen: dict[str, ModelSpec] = {}
        for spec in self._specs.values():
            seen.setdefault(spec.id, spec)
        return [s.id for s in seen.values() if include_retired or not s.is_retired()]

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._specs

    def get(self, model_id: str, *, warn: bool = True) -> ModelSpec:
        """The spec of ``model_id``; an unknown id gets conservative defaults and a warning."""
        spec = self._specs.get(model_id)
        if spec is not None:
            return spec
        if not model_id or not isinstance(model_id, str):
            raise ConfigurationError(f"model must be a non-empty string, not {model_id!r}")
        if warn:
            warnings.warn(
                f"model {model_id!r} is not in the cerebras-paygo catalog; using conservative defaults "
                f"(8,192-token window, free-tier limits). Known models: {', '.join(self.ids(include_retired=False))}",
                UnknownModelWarning,
                stacklevel=2,
            )
        return self.unknown_spec(model_id)

    def unknown_spec(self, model_id: str) -> ModelSpec:
        cap = self._tier_caps.get("free", 8192)
        conservative = RateLimits(requests_per_minute=30, tokens_per_minute=60000)
        return ModelSpec(
            id=model_id,
            context_window={"paygo": cap, "free": cap},
            max_output={"paygo": cap, "free": cap},
            default_max_completion_tokens={"paygo": 2048, "free": 2048},
            prices=Prices(input=2.25, output=2.75),
            limits={"paygo": conservative, "free": conservative},
            capabilities=Capabilities(),
            status="unknown",
            known=False,
        )

    def as_dict(self) -> Mapping[str, Any]:
        return self._raw


def _merge_catalogs(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = _merge(dict(base), {k: v for k, v in override.items() if k != "models"})
    by_id = {m["id"]: dict(m) for m in base.get("models", [])}
    for entry in override.get("models", []):
        if "id" not in entry:
            raise ConfigurationError("every catalog override model needs an 'id'")
        by_id[entry["id"]] = _merge(by_id.get(entry["id"], {}), entry)
    merged["models"] = list(by_id.values())
    return merged


@lru_cache(maxsize=1)
def _cached_default(env_path: str | None) -> Catalog:
    return Catalog.load(env_path)


def default_catalog() -> Catalog:
    """The process-wide catalog (packaged data plus ``$CEREBRAS_PAYGO_CATALOG``)."""
    return _cached_default(os.environ.get(CATALOG_ENV))
