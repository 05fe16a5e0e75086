"""The emulator answers the recorded requests with responses of the recorded shape (key sets, chunk order)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.emulator._helpers import GLM, sse_events
from tests.fixtures.captures import NAMES, Interaction, load

#: Keys the emulator adds on purpose (documented by the API; absent from these particular captures).
EXTRA_TOP_LEVEL = {"service_tier"}


def _replay_body(interaction: Interaction) -> dict[str, Any]:
    # The captured model is retired: replay on a current one, without reasoning (qwen-3-coder had none).
    return {**interaction.request, "model": GLM, "reasoning_effort": "none"}


def _keys(value: Any, path: str = "$") -> set[str]:
    """Every key path in a JSON value (list items collapsed to ``[]``)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            out.add(f"{path}.{key}")
            out |= _keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            out |= _keys(item, f"{path}[]")
    return out


def _kind(chunk: dict[str, Any]) -> str:
    choice = chunk["choices"][0]
    if "usage" in chunk:
        return "final"
    delta = choice["delta"]
    return next(iter(delta), "empty")


def _collapsed(kinds: list[str]) -> list[str]:
    out: list[str] = []
    for kind in kinds:
        if not out or out[-1] != kind:
            out.append(kind)
    return out


def _by_kind(chunks: list[dict[str, Any]]) -> dict[str, set[str]]:
    shapes: dict[str, set[str]] = {}
    for chunk in chunks:
        shapes.setdefault(_kind(chunk), set()).update(_keys(chunk))
    return shapes


@pytest.mark.parametrize("name", [n for n in NAMES if not n.endswith("streaming")])
def test_plain_responses_have_the_captured_shape(emulator, name):
    with emulator.client() as client:
        for interaction in load(name):
            response = client.post("/chat/completions", json=_replay_body(interaction))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith(interaction.content_type)
            ours = response.json()
            recorded = json.loads(interaction.body)
            assert set(ours) - set(recorded) == EXTRA_TOP_LEVEL
            assert ours["service_tier"] is None
            ours.pop("service_tier")
            assert _keys(ours) == _keys(recorded)
            assert ours["choices"][0]["finish_reason"] == recorded["choices"][0]["finish_reason"]
            calls = ours["choices"][0]["message"].get("tool_calls") or []
            assert len(calls) == len(recorded["choices"][0]["message"].get("tool_calls") or [])


@pytest.mark.parametrize("name", [n for n in NAMES if n.endswith("streaming")])
def test_streams_have_the_captured_shape_and_order(emulator, name):
    with emulator.client() as client:
        for interaction in load(name):
            response = client.post("/chat/completions", json=_replay_body(interaction))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == interaction.content_type
            recorded = sse_events(interaction.body.decode())
            events = sse_events(response.text)
            assert events[-1] == "[DONE]"  # switchable; the captures end without it
            ours = events[:-1]
            assert _collapsed([_kind(c) for c in ours]) == _collapsed([_kind(c) for c in recorded])
            assert _by_kind(ours) == _by_kind(recorded)


def test_streams_end_like_the_captures_without_done(emulator):
    emulator.configure(send_done=False)
    interaction = load("simple_streaming")[0]
    with emulator.client() as client:
        text = client.post("/chat/completions", json=_replay_body(interaction)).text
    assert text.endswith("\n\n")
    assert "[DONE]" not in text
    assert _kind(sse_events(text)[-1]) == "final"
