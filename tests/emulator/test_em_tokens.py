"""The emulator's tokenizer: one count for admission and usage, unlike chars/4; the prompt cache."""

from __future__ import annotations

import pytest

from cerebras_paygo.emulator.tokens import (
    MESSAGE_OVERHEAD,
    PRIMING_TOKENS,
    count_prompt,
    count_text,
    emulated_prompt_pieces,
    harmony_prompt,
    split,
    vocabulary_counting,
)
from tests.emulator._helpers import GLM, MODEL

TEXTS = [
    "The sum of 2 and 3 is 5, and the product is 6.",
    "Internationalization requires careful considerations.",
    "Olá! São Paulo e 東京 — café crème\n\nnew   lines\ttabs",
    "snake_case_identifier = compute(x, y) ** 2",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_pieces_join_back_and_count_matches(text):
    pieces = split(text)
    assert "".join(pieces) == text
    assert count_text(text) == len(pieces)


def test_long_words_split_in_four_letter_pieces_and_numbers_in_threes():
    assert split(" currently") == [" curr", "entl", "y"]
    assert split("1234567") == ["123", "456", "7"]
    assert split("a, b!") == ["a", ",", " b", "!"]


def test_not_simply_chars_over_four():
    differences = [abs(count_text(t) - len(t) / 4) for t in TEXTS if t]
    assert max(differences) > 3


@pytest.fixture(params=["vocabulary", "emulated"])
def counting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """gpt-oss prompts counted in o200k_harmony (with the [tokenizer] extra), or by the emulated counter."""
    if request.param == "vocabulary":
        pytest.importorskip("quicktok", reason="needs the [tokenizer] extra (quicktok-v1)")
    else:
        monkeypatch.setenv("CEREBRAS_PAYGO_TOKENIZER", "off")
    return str(request.param)


def test_prompt_overhead_tools_and_schema_are_counted(counting: str) -> None:
    one = {"model": MODEL, "messages": [{"role": "user", "content": "Hello world"}]}
    two = {**one, "messages": [{"role": "system", "content": "Be brief"}, *one["messages"]]}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    if counting == "vocabulary":
        import quicktok

        encoding = quicktok.get_encoding("o200k_harmony")
        for body in (one, two, {**one, "tools": tools}, {**one, "response_format": schema}):
            # the real count: the harmony rendering encoded with the real vocabulary, token for token
            assert count_prompt(body) == len(encoding.encode_with_special(harmony_prompt(body)))
        assert count_prompt(one) == len(encoding.encode_ordinary("Hello world")) + 67  # system preamble, turns
        assert harmony_prompt(one).endswith("<|start|>user<|message|>Hello world<|end|><|start|>assistant")
        # the other models keep the emulated counter
        glm = {**one, "model": GLM}
        assert count_prompt(glm) == count_text("Hello world") + MESSAGE_OVERHEAD + PRIMING_TOKENS
        assert vocabulary_counting(MODEL) and not vocabulary_counting(GLM)
    else:
        assert not vocabulary_counting(MODEL)
        assert count_prompt(one) == count_text("Hello world") + MESSAGE_OVERHEAD + PRIMING_TOKENS
        assert count_prompt(two) == count_prompt(one) + count_text("Be brief") + MESSAGE_OVERHEAD
        assert count_prompt(one) == len(emulated_prompt_pieces(one))
    assert count_prompt(two) > count_prompt(one) + 3
    assert count_prompt({**one, "tools": tools}) > count_prompt(one) + 5
    assert count_prompt({**one, "response_format": schema}) > count_prompt(one) + 5


def test_usage_reports_the_same_count(emulator):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Internationalization rocks"}]
    with emulator.client() as client:
        body = client.post("/chat/completions", json={"model": GLM, "messages": messages}).json()
    assert body["usage"]["prompt_tokens"] == count_prompt({"messages": messages})


def test_prefix_cache_reports_cached_tokens(emulator):
    system = "You are a meticulous assistant. " + "Reference text: lorem ipsum dolor sit amet. " * 60
    with emulator.client() as client:
        body = {"model": MODEL, "messages": [{"role": "system", "content": system}, {"role": "user", "content": "A?"}]}
        cold = client.post("/chat/completions", json=body).json()["usage"]
        body["messages"][1]["content"] = "Another question entirely?"
        warm = client.post("/chat/completions", json=body).json()["usage"]
    assert cold["prompt_tokens_details"]["cached_tokens"] == 0
    cached = warm["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0
    assert cached % 128 == 0
    assert cached < warm["prompt_tokens"]
    emulator.configure(prompt_cache=False)
    with emulator.client() as client:
        again = client.post("/chat/completions", json=body).json()["usage"]
    assert again["prompt_tokens_details"]["cached_tokens"] == 0
