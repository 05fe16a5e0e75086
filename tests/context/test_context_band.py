"""Issue 14: counts a user can trust. Exact with the tokenizer extra; a band that holds the true count without it.

Every sample's true o200k_harmony count is computed here with the tokenizer (quicktok-v1, the
``[tokenizer]`` extra); the heuristic is tested by turning the exact counter off.
"""

from __future__ import annotations

import statistics

import pytest

from cerebras_paygo._context import TokenEstimator
from cerebras_paygo._context.templates import render_prompt
from cerebras_paygo._wire import ChatCompletionRequest, FunctionCall, Message, ToolCall
from tests.context.corpus import KINDS, corpus, tiny_texts

quicktok = pytest.importorskip("quicktok", reason="needs the [tokenizer] extra (quicktok-v1)")
ENC = quicktok.get_encoding("o200k_harmony")
MODEL = "gpt-oss-120b"


def true_text(text: str) -> int:
    return len(ENC.encode_ordinary(text))


def true_prompt(request: ChatCompletionRequest) -> int:
    return len(ENC.encode_with_special(render_prompt(request)))


@pytest.mark.parametrize("kind", KINDS)
def test_with_the_tokenizer_the_text_count_is_exact(kind: str) -> None:
    estimator = TokenEstimator()
    for text in corpus("held")[kind]:
        assert estimator.count_text(text, MODEL) == true_text(text)


@pytest.mark.parametrize("kind", KINDS)
def test_with_the_tokenizer_the_whole_prompt_is_the_templates_true_size(kind: str) -> None:
    estimator = TokenEstimator()
    texts = corpus("held")[kind]
    for i, text in enumerate(texts[:20]):
        messages = [Message(role="system", content="You are a careful assistant."), Message(role="user", content=text)]
        if i % 3 == 0:
            call = ToolCall(id=f"c{i}", function=FunctionCall(name="lookup", arguments='{"q": "x"}'))
            messages += [
                Message(role="assistant", content=None, tool_calls=[call]),
                Message(role="tool", tool_call_id=f"c{i}", content=texts[(i + 1) % len(texts)]),
            ]
        tools = [{"type": "function", "function": {"name": "lookup", "description": "Look up a thing.",
                  "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "query"}},
                                 "required": ["q"]}}}] if i % 2 else None  # fmt: skip
        request = ChatCompletionRequest(model=MODEL, messages=messages, tools=tools)
        band = estimator.band(request)
        truth = true_prompt(request)
        assert band.exact
        assert abs(band.high - truth) <= 3, (kind, i, band, truth)


def _heuristic_ratios(kind: str) -> list[tuple[int, int, int]]:
    estimator = TokenEstimator(vocabularies=False)  # the exact counter disabled
    out = []
    for text in corpus("held")[kind]:
        request = ChatCompletionRequest(model=MODEL, messages=[Message(role="user", content=text)])
        band = estimator.band(request)
        assert not band.exact
        out.append((band.low, band.high, true_prompt(request)))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_without_the_tokenizer_the_band_holds_the_true_count_and_is_tight(kind: str) -> None:
    rows = _heuristic_ratios(kind)
    for low, high, truth in rows:
        assert low <= truth <= high, (kind, low, high, truth)
    assert statistics.median(high / truth for _, high, truth in rows) <= 1.3
    texts = TokenEstimator(vocabularies=False)
    for text in corpus("held")[kind]:  # the texts alone too, without the exact template around them
        parts, low = texts._text(text, texts.family(MODEL))
        assert low <= true_text(text) <= parts[0] + parts[1] + parts[2] + parts[3]


def test_without_the_tokenizer_the_band_holds_on_tiny_texts() -> None:
    estimator = TokenEstimator(vocabularies=False)
    for text in tiny_texts():
        parts, low = estimator._text(text, estimator.family(MODEL))
        assert low <= true_text(text) <= sum(parts), text


def test_the_template_table_matches_the_tokenizer() -> None:
    from cerebras_paygo._context.templates import DATE_PLACEHOLDER, template_tokens

    for text, count in template_tokens("o200k_harmony").items():
        assert true_text(text.replace(DATE_PLACEHOLDER, "2026-01-15")) == count, text
    qwen = quicktok.get_encoding("qwen3")
    for text, count in template_tokens("qwen3").items():
        assert len(qwen.encode_ordinary(text)) == count, text
