"""Tool definitions and ``tool_choice``: the one mapping both adapters use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cerebras_paygo.errors import ConfigurationError

__all__ = ["api_tool_choice", "forced_tool"]

_MODES = ("auto", "none", "required")


def forced_tool(name: str) -> dict[str, Any]:
    """The API's form of "call this tool"."""
    return {"type": "function", "function": {"name": name}}


def api_tool_choice(choice: str | Mapping[str, Any], names: Sequence[str]) -> str | dict[str, Any]:
    """A framework's ``tool_choice`` -> the API's.

    ``"auto"``, ``"none"`` and ``"required"`` pass through; ``"any"`` (LangChain's word) is
    ``"required"``; a tool's name forces that tool; a dict is taken as already in the API's form.

    Raises:
        ConfigurationError: a name that is not one of ``names`` (before any request).
    """
    if isinstance(choice, Mapping):
        return dict(choice)
    if choice == "any":
        return "required"
    if choice in _MODES:
        return choice
    if choice in names:
        return forced_tool(choice)
    raise ConfigurationError(
        f"tool_choice {choice!r} is not 'auto', 'none', 'required' or one of the tools {list(names)}"
    )
