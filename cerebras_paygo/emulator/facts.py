"""The emulator's own Cerebras facts: which models the server serves, and what it enforces for each.

The data is ``data/cerebras_facts.json``, every value sourced from the project's fact sheet
(``_sources`` fields). It is deliberately apart from the client's catalog (``cerebras_paygo/data/
models.json``): the emulator stands in for the real server, so if it read the client's numbers a
wrong window there would be copied here and every end-to-end test would still pass.
``tests/emulator/test_em_facts.py`` compares the two.

``ServerLimits`` is the emulator's own limits type (the quotas the server enforces for one org and
model); ``EmulatorConfig.limits`` overrides take it or a dict of its fields.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "LIMIT_WINDOWS",
    "TIERS",
    "Facts",
    "FactsError",
    "ModelCapabilities",
    "ModelFacts",
    "ModelPrices",
    "ServerLimits",
    "default_facts",
]

TIERS: tuple[str, ...] = ("paygo", "free")

#: Each limit's name -> (what it counts, window seconds), in the order the server checks them:
#: minute before hour before day, requests before tokens ("whichever trips first").
LIMIT_WINDOWS: dict[str, tuple[str, float]] = {
    "requests_per_minute": ("requests", 60.0),
    "tokens_per_minute": ("tokens", 60.0),
    "requests_per_hour": ("requests", 3600.0),
    "tokens_per_hour": ("tokens", 3600.0),
    "requests_per_day": ("requests", 86400.0),
    "tokens_per_day": ("tokens", 86400.0),
}

# Strict so that ``True`` or ``"5"`` in a config is refused rather than read as a limit.
_Positive = Annotated[int, Field(gt=0, strict=True)]

# Keys of the client's catalog entries that are no server fact: an override file in the shape of
# ``models.json`` merges over these facts with them dropped.
_CLIENT_ONLY_KEYS = frozenset({"default_max_completion_tokens"})


class FactsError(ValueError):
    """A facts file (packaged or override) that cannot be read or does not validate."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerLimits(_Frozen):
    """Requests and tokens per minute, hour and day the server enforces; ``None``: no such limit."""

    requests_per_minute: _Positive | None = None
    tokens_per_minute: _Positive | None = None
    requests_per_hour: _Positive | None = None
    tokens_per_hour: _Positive | None = None
    requests_per_day: _Positive | None = None
    tokens_per_day: _Positive | None = None

    def items(self) -> Iterator[tuple[str, int]]:
        """The limits that are set, as ``(name, value)``, in ``LIMIT_WINDOWS`` order."""
        for name in LIMIT_WINDOWS:
            value = getattr(self, name)
            if value is not None:
                yield name, value

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())

    def merged_over(self, base: ServerLimits) -> ServerLimits:
        """These limits where set, ``base`` elsewhere."""
        return base.model_copy(update=self.as_dict())

    @classmethod
    def coerce(cls, value: Any) -> Any:
        """A dict, a ``ServerLimits``, or any object with ``as_dict()`` (the client's ``RateLimits``)
        as something pydantic validates into ``ServerLimits``; anything else is left to fail there."""
        if isinstance(value, (cls, Mapping)):
            return value
        as_dict = getattr(value, "as_dict", None)
        return as_dict() if callable(as_dict) else value


class ModelPrices(_Frozen):
    """USD per million tokens; cached prompt tokens cost ``input`` unless ``cached_input`` is set."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (prompt_tokens - cached) * self.input + cached * cached_price + completion_tokens * self.output
        ) / 1_000_000


class ModelCapabilities(_Frozen):
    tools: bool = True
    tool_choice: bool = True
    parallel_tool_calls: bool = False
    json_schema: bool = True
    json_mode: bool = True
    reasoning: bool = False
    reasoning_efforts: tuple[str, ...] = ()
    default_reasoning_effort: str | None = None
    vision: bool = False


class ModelFacts(_Frozen):
    """One model as the server knows it.

    ``context_window`` and ``max_output`` hold the documented per-tier figure (``None``: not
    documented, the paygo figure applies); the enforced values, ``window(tier)`` and
    ``output_cap(tier)``, also apply the tier's context cap (``tier_caps``, from the facts file).
    """

    id: str = Field(min_length=1)
    owned_by: str
    status: str
    context_window: dict[str, _Positive | None]
    max_output: dict[str, _Positive | None]
    prices: ModelPrices
    limits: dict[str, ServerLimits] = Field(default_factory=dict)
    capabilities: ModelCapabilities = Field(default_factory=ModelCapabilities)
    aliases: tuple[str, ...] = ()
    retired_on: dt.date | None = None
    replacement: str | None = None
    tier_caps: dict[str, _Positive] = Field(default_factory=dict)

    def _per_tier(self, values: Mapping[str, int | None], tier: str) -> int:
        value = values.get(tier)
        if value is None:
            value = values["paygo"]
        if value is None:
            raise FactsError(f"model {self.id!r} has no paygo figure")
        return value

    def window(self, tier: str) -> int:
        """The context window the server enforces on ``tier`` (prompt + completion tokens)."""
        value = self._per_tier(self.context_window, tier)
        cap = self.tier_caps.get(tier)
        return value if cap is None else min(value, cap)

    def output_cap(self, tier: str) -> int:
        """The most completion tokens the model produces on ``tier``."""
        return min(self._per_tier(self.max_output, tier), self.window(tier))

    def rate_limits(self, tier: str) -> ServerLimits:
        return self.limits.get(tier, ServerLimits())

    def is_retired(self, today: dt.date | None = None) -> bool:
        """Past its removal date (on that date the server already answers 404)."""
        if self.retired_on is None:
            return self.status == "retired"
        return (today or dt.date.today()) >= self.retired_on


class Facts:
    """The models the server knows (by id and alias), the tier caps, and ids retired earlier."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        try:
            tiers = _strip_notes(data.get("tiers", {}))
            caps = {tier: int(v["context_cap"]) for tier, v in tiers.items() if v.get("context_cap") is not None}
            self.tier_caps: dict[str, int] = caps
            self._models: dict[str, ModelFacts] = {}
            for model_id, raw in _models_by_id(data.get("models", {})).items():
                entry = {k: v for k, v in _strip_notes(raw).items() if k not in _CLIENT_ONLY_KEYS}
                entry.pop("id", None)
                spec = ModelFacts.model_validate({**entry, "id": model_id, "tier_caps": caps})
                self._models[spec.id] = spec
                for alias in spec.aliases:
                    self._models[alias] = spec
            earlier = _strip_notes(data.get("retired_earlier", {}))
            self.retired_earlier: dict[str, dt.date] = {k: dt.date.fromisoformat(v) for k, v in earlier.items()}
        except (ValidationError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FactsError(f"invalid emulator facts: {exc}") from exc
        self._raw = data

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Facts:
        """The packaged facts, with the file at ``path`` (same shape, or ``models.json``'s) merged over them."""
        data = _packaged_data()
        if path is not None:
            try:
                override = json.loads(Path(path).read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise FactsError(f"cannot read emulator facts override {str(path)!r}: {exc}") from exc
            if not isinstance(override, Mapping):
                raise FactsError(f"emulator facts override {str(path)!r} is not a JSON object")
            data = _merge_facts(data, override)
        return cls(data)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def get(self, model_id: str) -> ModelFacts | None:
        """The model ``model_id`` names (an id or an alias), retired or not; ``None`` if unknown."""
        return self._models.get(model_id)

    def ids(self) -> list[str]:
        """Every model id (not aliases), in file order."""
        return list(dict.fromkeys(spec.id for spec in self._models.values()))

    def models(self) -> list[ModelFacts]:
        return [self._models[i] for i in self.ids()]

    def served(self, today: dt.date | None = None) -> list[ModelFacts]:
        """The models the server lists and answers on ``today``."""
        return [spec for spec in self.models() if not spec.is_retired(today)]

    def as_dict(self) -> Mapping[str, Any]:
        return self._raw


def _strip_notes(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` without its ``_sources`` / ``_comment`` keys (the citations are for people)."""
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def _models_by_id(models: Any) -> dict[str, dict[str, Any]]:
    """``models`` as ``{id: entry}``: the facts file keys them by id, ``models.json`` lists them."""
    if isinstance(models, Mapping):
        return {str(k): dict(v) for k, v in models.items() if not str(k).startswith("_")}
    out: dict[str, dict[str, Any]] = {}
    for entry in models:
        if not isinstance(entry, Mapping) or "id" not in entry:
            raise FactsError("every model listed in a facts file needs an 'id'")
        out[str(entry["id"])] = dict(entry)
    return out


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        merged[key] = _merge(current, value) if isinstance(value, Mapping) and isinstance(current, Mapping) else value
    return merged


def _merge_facts(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = _merge(base, {k: v for k, v in override.items() if k != "models"})
    models = _models_by_id(base.get("models", {}))
    for model_id, entry in _models_by_id(override.get("models", {})).items():
        models[model_id] = _merge(models.get(model_id, {}), entry)
    merged["models"] = models
    return merged


@lru_cache(maxsize=1)
def _packaged_text() -> str:
    return resources.files("cerebras_paygo.emulator").joinpath("data/cerebras_facts.json").read_text("utf-8")


def _packaged_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_packaged_text())
    return data


@lru_cache(maxsize=1)
def default_facts() -> Facts:
    """The packaged facts (shared: ``Facts`` is never changed after it is built)."""
    return Facts(_packaged_data())
