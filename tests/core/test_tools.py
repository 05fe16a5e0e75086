"""The one tool_choice mapping both adapters use."""

from __future__ import annotations

import pytest

from cerebras_paygo._tools import api_tool_choice, forced_tool
from cerebras_paygo.errors import ConfigurationError

NAMES = ["get_weather", "magic_function"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        ("magic_function", {"type": "function", "function": {"name": "magic_function"}}),
        ({"type": "function", "function": {"name": "get_weather"}}, forced_tool("get_weather")),
    ],
)
def test_tool_choice_mapping(choice, expected) -> None:
    assert api_tool_choice(choice, NAMES) == expected


def test_unknown_tool_name_is_a_local_error() -> None:
    with pytest.raises(ConfigurationError, match="not 'auto', 'none', 'required' or one of the tools"):
        api_tool_choice("send_email", NAMES)
