"""``ModelProfile``\\ s from the core catalog (no hand-kept copy of model data in the adapter)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, get_type_hints

from langchain_core.language_models import ModelProfile

from cerebras_paygo._catalog import Catalog, ModelSpec, Tier, default_catalog

__all__ = ["profile_for"]


@lru_cache(maxsize=1)
def _declared_keys() -> frozenset[str]:
    try:
        return frozenset(get_type_hints(ModelProfile))
    except (TypeError, NameError):  # pragma: no cover - very old langchain-core
        return frozenset()


def spec_profile(spec: ModelSpec, tier: Tier) -> ModelProfile:
    """What LangChain should know of ``spec`` on ``tier`` (the window is the tier's window)."""
    caps = spec.capabilities
    data: dict[str, Any] = {
        "name": spec.id,
        "status": spec.status,
        "max_input_tokens": spec.window(tier),
        "max_output_tokens": spec.output_cap(tier),
        "text_inputs": True,
        "image_inputs": caps.vision,
        "image_url_inputs": caps.vision,
        "pdf_inputs": False,
        "audio_inputs": False,
        "video_inputs": False,
        "image_tool_message": False,
        "pdf_tool_message": False,
        "text_outputs": True,
        "image_outputs": False,
        "audio_outputs": False,
        "video_outputs": False,
        "reasoning_output": caps.reasoning,
        "tool_calling": caps.tools,
        "tool_choice": caps.tool_choice,
        "tool_call_streaming": caps.tools,
        "structured_output": caps.json_schema,
        "temperature": True,
    }
    if caps.reasoning_efforts:
        data["reasoning_effort_levels"] = list(caps.reasoning_efforts)
        if caps.default_reasoning_effort:
            data["reasoning_effort_default"] = caps.default_reasoning_effort
    declared = _declared_keys()
    if declared:
        data = {key: value for key, value in data.items() if key in declared}
    profile: ModelProfile = ModelProfile(**data)  # type: ignore[typeddict-item]
    return profile


def profile_for(model: str, tier: Tier, catalog: Catalog | None = None) -> ModelProfile | None:
    """The profile of a catalog model, or ``None`` for a model the catalog does not know."""
    spec = (catalog or default_catalog()).get(model, warn=False)
    if not spec.known:
        return None
    return spec_profile(spec, tier)
