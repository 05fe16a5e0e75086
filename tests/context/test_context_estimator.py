"""TokenEstimator: the heuristic, template overhead, exact counters, calibration, thread safety."""

from __future__ import annotations

import math
import random
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from cerebras_paygo._context import (
    DEFAULT_PROFILES,
    GENERIC_PROFILE,
    TokenEstimator,
    heuristic_tokens,
    shared_estimator,
)
from cerebras_paygo._context.calibration import add_parts, subtract_parts
from cerebras_paygo._context.heuristic import heuristic_band
from cerebras_paygo._context.templates import render_prompt
from cerebras_paygo._wire import ChatCompletionRequest, FunctionCall, Message, ToolCall
from cerebras_paygo.errors import ConfigurationError, ContextWindowExceededError, error_from_response

MODEL = "gpt-oss-120b"
GLM = "zai-glm-4.7"
try:
    import quicktok

    ENC: Any = quicktok.get_encoding("o200k_harmony")
except ImportError:  # without the [tokenizer] extra: the exact checks are skipped
    ENC = None
needs_tokenizer = pytest.mark.skipif(ENC is None, reason="needs the [tokenizer] extra (quicktok-v1)")


def true_prompt(req: ChatCompletionRequest) -> int:
    return len(ENC.encode_with_special(render_prompt(req)))


def request(*messages: Message, model: str = MODEL, **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest(model=model, messages=list(messages), **fields)


def user(text: str) -> Message:
    return Message(role="user", content=text)


def word_counter(text: str) -> int:
    return len(text.split())


# --- the heuristic ---------------------------------------------------------------------------


def test_heuristic_band_holds_the_true_count() -> None:
    assert heuristic_tokens("") == 0.0
    assert heuristic_tokens("Hi") == 1.0  # at least one token for any text
    prose = "Can you summarize the main differences between TCP and UDP for a networking class? Keep it short."
    code = "def add(a: int, b: int) -> int:\n    return a + b\n"
    long_prose = " ".join(["the quick brown fox jumps over the lazy dog"] * 200)
    # o200k counts: 19, 19, 4, 1800 (checked below when the tokenizer is installed)
    for text, truth in ((prose, 19), (code, 19), ("12345678901", 4), (long_prose, 1800)):
        (a_low, _, a_high), (o_low, _, o_high) = heuristic_band(text)
        assert a_low + o_low <= truth <= a_high + o_high, text
        assert 0.75 * truth - 2 <= heuristic_tokens(text) <= 1.3 * truth  # the best fit is near it
        if ENC is not None:
            assert len(ENC.encode_ordinary(text)) == truth


def test_heuristic_handles_any_unicode() -> None:
    assert heuristic_tokens("日本語のテキスト") >= 4
    assert heuristic_tokens("Привет, как дела?") >= 4
    assert heuristic_tokens("emoji 🎉🎉") >= 3
    assert heuristic_tokens("lone surrogate \ud800 here") >= 3  # no UnicodeEncodeError


def test_the_ceiling_is_at_or_above_the_best_fit() -> None:
    assert heuristic_tokens("", ceiling=True) == 0.0
    prose = "Can you summarize the main differences between TCP and UDP for a networking class? Keep it short."
    assert 1.3 * heuristic_tokens(prose) <= heuristic_tokens(prose, ceiling=True) <= 2.0 * heuristic_tokens(prose)
    for text in ("Hi", "12345678901", "日本語のテキスト", "Привет, как дела?", "emoji 🎉🎉", "x = [1, 2]\n"):
        assert heuristic_tokens(text, ceiling=True) >= heuristic_tokens(text) >= 1.0


def test_count_text_rounds_up_and_is_zero_for_empty() -> None:
    estimator = TokenEstimator()
    assert estimator.count_text("") == 0
    assert estimator.count_text("hello world") == math.ceil(heuristic_tokens("hello world"))


# --- what a request costs --------------------------------------------------------------------


def test_template_overhead_per_request_and_message() -> None:
    # A profile family (no rendered template): its fixed costs around an exact text counter.
    estimator = TokenEstimator(counter=word_counter)
    profile = DEFAULT_PROFILES["zai-glm"]
    one = estimator.breakdown(request(user("a b c"), model=GLM))
    assert one.fixed == profile.request
    assert one.messages == (profile.message + 3,)
    two = estimator.breakdown(request(Message(role="system", content="x y"), user("a b c"), model=GLM))
    assert two.total == profile.request + 2 * profile.message + 5
    assert estimator.estimate_request(request(user("a b c"), model=GLM)) == profile.request + profile.message + 3


@needs_tokenizer
def test_gpt_oss_template_is_counted_token_for_token() -> None:
    estimator = TokenEstimator()
    one = request(user("a b c"))
    two = request(Message(role="system", content="x y"), user("a b c"))
    for req in (one, two):
        assert estimator.band(req) == (true_prompt(req), true_prompt(req), True)
    assert true_prompt(two) > true_prompt(one)


def test_profiles_by_model_prefix() -> None:
    estimator = TokenEstimator()
    assert estimator.profile("gpt-oss-120b") is DEFAULT_PROFILES["gpt-oss"]
    assert estimator.profile("zai-glm-4.7") is DEFAULT_PROFILES["zai-glm"]
    assert estimator.profile("some-new-model") is GENERIC_PROFILE
    custom = TokenEstimator(profiles={"some-new": DEFAULT_PROFILES["qwen"]})
    assert custom.profile("some-new-model") is DEFAULT_PROFILES["qwen"]


@needs_tokenizer
def test_tools_and_response_format_are_counted() -> None:
    estimator = TokenEstimator()
    base = request(user("hello"))
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object"}},
    }
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object", "properties": {}}}}
    with_tools = request(user("hello"), tools=[tool, tool])
    with_schema = request(user("hello"), response_format=schema)
    for req in (base, with_tools, with_schema):
        assert estimator.band(req) == (true_prompt(req), true_prompt(req), True)
    assert true_prompt(with_tools) > true_prompt(base) + 2 * 5
    assert true_prompt(with_schema) > true_prompt(base) + 4
    assert estimator.band(request(user("hello"), response_format={"type": "text"})) == estimator.band(base)
    heuristic = TokenEstimator(vocabularies=False)  # without the tokenizer the band holds them
    for req in (base, with_tools, with_schema):
        low, high, _ = heuristic.band(req)
        assert low <= true_prompt(req) <= high


@needs_tokenizer
def test_names_tool_calls_parts_and_tool_results_are_counted() -> None:
    call = ToolCall(id="c1", function=FunctionCall(name="lookup", arguments='{"q": "a b"}'))
    messages = [
        Message(role="user", content=[{"type": "text", "text": "one two"}, {"type": "text", "text": "three"}]),
        Message(role="user", content="hi", name="alice"),
        Message(role="assistant", content=None, tool_calls=[call]),
        Message(role="tool", content="result words here", tool_call_id="c1"),
    ]
    exact, heuristic = TokenEstimator(), TokenEstimator(vocabularies=False)
    for n in range(1, len(messages) + 1):
        req = request(*messages[:n])
        assert exact.band(req) == (true_prompt(req), true_prompt(req), True)
        low, high, _ = heuristic.band(req)
        assert low <= true_prompt(req) <= high
    prompt = render_prompt(request(*messages))
    assert "alice: hi" in prompt and "to=functions.lookup" in prompt and "functions.lookup to=assistant" in prompt


def test_reasoning_counts_only_in_the_current_turn_unless_kept() -> None:
    estimator = TokenEstimator(counter=word_counter)
    old = Message(role="assistant", content="done", reasoning="r " * 50)
    current = Message(role="assistant", content="calling", reasoning="s " * 7)
    messages = (user("q1"), old, user("q2"), current)
    cleared = estimator.breakdown(request(*messages)).messages
    no_reasoning = estimator.breakdown(request(user("q1"), Message(role="assistant", content="done"))).messages
    assert cleared[1] == no_reasoning[1]  # an old turn's reasoning is not sent back ...
    plain = Message(role="assistant", content="calling")
    assert cleared[3] > estimator.breakdown(request(*messages[:3], plain)).messages[3]  # the current one is
    kept = estimator.breakdown(request(*messages, clear_thinking=False)).messages
    assert kept[1] >= cleared[1] + 50  # ... unless clear_thinking is false
    if ENC is not None:
        for req in (request(*messages), request(*messages, clear_thinking=False)):
            assert TokenEstimator().band(req).high == true_prompt(req)


def test_heuristic_estimate_before_calibration_is_the_template_plus_the_ceiling() -> None:
    estimator = TokenEstimator(vocabularies=False)
    text = "Please explain how a token bucket rate limiter works, with an example."
    req = request(user(text))
    raw = estimator.raw_estimate(req)
    assert raw == pytest.approx(sum(estimator.request_parts(req)))
    band = estimator.band(req)
    assert band.high == math.ceil(raw - 1e-9)  # the prior: no margin on the high end, which holds the count
    assert band.low < band.high and not band.exact
    assert estimator.factor(MODEL) == estimator.prior_factor == 1.0
    if ENC is not None:
        assert band.low <= true_prompt(req) <= band.high


def test_breakdown_parts_add_up_to_the_totals() -> None:
    estimator = TokenEstimator(vocabularies=False)
    call = ToolCall(id="c1", function=FunctionCall(name="lookup", arguments='{"q": "naïve café"}'))
    req = request(
        Message(role="system", content="Be brief."),
        Message(role="user", content="Größe und Gewicht, bitte", name="alice"),
        Message(role="assistant", content=None, tool_calls=[call]),
        Message(role="tool", content='{"result": [1, 2, 3]}', tool_call_id="c1"),
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    )
    breakdown = estimator.breakdown(req)
    assert sum(breakdown.fixed_parts) == pytest.approx(breakdown.fixed)
    assert [sum(p) for p in breakdown.message_parts] == pytest.approx(list(breakdown.messages))
    assert breakdown.parts == pytest.approx(estimator.request_parts(req))
    assert sum(breakdown.parts) == pytest.approx(breakdown.total) == pytest.approx(estimator.raw_estimate(req))
    assert breakdown.parts[4] > 0  # the other-script part: "ö", "ß", "ï", "é"
    assert all(p[0] == 0 for p in breakdown.message_parts)  # the per-request template is in the fixed part
    first, *rest = breakdown.message_parts
    assert subtract_parts(add_parts(first, *rest), *rest) == pytest.approx(first)


# --- exact counters --------------------------------------------------------------------------


def test_callable_counter_is_used_exactly() -> None:
    seen: list[str] = []

    def counter(text: str) -> int:
        seen.append(text)
        return 7

    estimator = TokenEstimator(counter=counter)
    assert estimator.exact
    assert estimator.count_text("whatever it says") == 7
    assert seen == ["whatever it says"]
    profile = DEFAULT_PROFILES["zai-glm"]
    two = request(user("x"), user("y"), model=GLM)
    band = estimator.band(two)
    assert band.high == profile.request + 2 * (profile.message + 7)  # the text exact, the template a profile
    assert 14 <= band.low < band.high and not band.exact
    assert estimator.factor(GLM) == 1.0  # no safety margin on an exact count before calibration


def test_tokenizer_file_needs_the_optional_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text("{}", "utf-8")
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # as if not installed
    with pytest.raises(ConfigurationError, match="pip install tokenizers"):
        TokenEstimator(counter=path)


def test_tokenizer_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        TokenEstimator(counter=str(tmp_path / "missing.json"))


def test_tokenizer_file_is_loaded_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text("{}", "utf-8")
    loaded: list[str] = []

    class FakeTokenizer:
        @classmethod
        def from_file(cls, location: str) -> FakeTokenizer:
            loaded.append(location)
            return cls()

        def encode(self, text: str, add_special_tokens: bool = True) -> Any:
            assert add_special_tokens is False
            return types.SimpleNamespace(ids=list(range(len(text))))

    monkeypatch.setitem(sys.modules, "tokenizers", types.SimpleNamespace(Tokenizer=FakeTokenizer))
    estimator = TokenEstimator(counter=path)
    assert loaded == [str(path)]
    assert estimator.count_text("abcd") == 4


def test_tokenizer_file_that_does_not_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text("not json", "utf-8")

    class Broken:
        @classmethod
        def from_file(cls, location: str) -> Any:
            raise RuntimeError("bad file")

    monkeypatch.setitem(sys.modules, "tokenizers", types.SimpleNamespace(Tokenizer=Broken))
    with pytest.raises(ConfigurationError, match="cannot load tokenizer file"):
        TokenEstimator(counter=path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"counter": 42},
        {"quantile": 1.0},
        {"quantile": 0.2},
        {"halflife": 0},
        {"prior_factor": 0},
        {"prior_factor": 50},
        {"min_text_factor": -1},
    ],
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        TokenEstimator(**kwargs)


# --- calibration -----------------------------------------------------------------------------

_VOCAB_TEXT = (
    "the a an of to in is it that for on with as was by be this are or from at which not have has "
    "rate limiter token bucket window context prompt completion reservation server client request "
    "internationalization configuration asynchronous implementation 2026 404 3.14159 foo_bar(x) "
    "{'key': [1, 2]} naïve café Größe"
)
_VOCAB = _VOCAB_TEXT.split()


def _random_text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_VOCAB) for _ in range(n))


def _other_rule(req: ChatCompletionRequest) -> int:
    """A different tokenizer (one token per 2 characters of each word) behind a harmony-like template."""
    total = 50
    for message in req.messages:
        total += 4 + sum(math.ceil(len(word) / 2) for word in message.text().split())
    return total


def test_calibration_reduces_the_error_and_stays_conservative() -> None:
    rng = random.Random(7)
    # the heuristic calibrating against another tokenizer (the tokenizer extra's vocabulary not used)
    estimator, uncalibrated = TokenEstimator(vocabularies=False), TokenEstimator(vocabularies=False)
    seen: list[tuple[int, int, int]] = []  # (calibrated estimate, prior-only estimate, actual)
    for _ in range(300):
        req = request(*(user(_random_text(rng, rng.randint(5, 120))) for _ in range(rng.randint(1, 6))))
        estimate = estimator.estimate_request(req)
        actual = _other_rule(req)
        seen.append((estimate, uncalibrated.estimate_request(req), actual))
        estimator.observe(MODEL, estimate, actual)

    def error(pairs: list[tuple[int, int]]) -> float:  # token-weighted relative error
        return sum(abs(e - a) for e, a in pairs) / sum(a for _, a in pairs)

    last = seen[-100:]
    before = error([(prior, actual) for _, prior, actual in last])
    after = error([(estimate, actual) for estimate, _, actual in last])
    assert after < before / 2, (before, after)
    assert after < 0.15
    assert sum(prior < actual for _, prior, actual in last) >= 95  # the prior under-counts this tokenizer ...
    assert sum(estimate < actual for estimate, _, actual in last) <= 10  # ... a high quantile rarely does
    stats = estimator.calibration(MODEL)
    assert stats.observations == 300
    assert stats.large_margin >= 1.0 and stats.small_margin >= 1.0
    assert stats.factor > stats.mean_ratio > 1.1  # this rule counts more than even the heuristic's ceiling


def test_calibration_is_per_model() -> None:
    estimator = TokenEstimator(counter=word_counter)
    req = request(user("w " * 2000))
    estimate = estimator.estimate_request(req)
    for _ in range(20):
        estimator.observe(MODEL, estimate, 2 * estimate)
    assert estimator.factor(MODEL) > 1.9
    assert estimator.calibration(MODEL).coefficients[2] > 1.9  # the text's coefficient
    assert estimator.factor("zai-glm-4.7") == 1.0
    assert estimator.estimate_request(req) > 1.9 * estimate
    assert estimator.estimate_request(request(user("w " * 2000), model="zai-glm-4.7")) < 1.1 * estimate


def test_observe_inverts_the_factor_used() -> None:
    estimator = TokenEstimator(counter=word_counter)
    req = request(user("one two three"))
    raw = estimator.raw_estimate(req)
    for _ in range(30):  # the factor moves while we observe; the ratio must stay actual / raw
        estimate = estimator.estimate_request(req)
        estimator.observe(MODEL, estimate, int(raw * 1.5))
    stats = estimator.calibration(MODEL)
    assert stats.mean_ratio == pytest.approx(1.5, rel=0.02)
    estimator.observe(MODEL, 10_000, int(10_000 / stats.factor))  # unknown estimate: current factor assumed
    assert estimator.calibration(MODEL).observations == 31


def test_observe_ignores_empty_counts_and_reset_forgets() -> None:
    estimator = TokenEstimator()
    estimator.observe(MODEL, 0, 100)
    estimator.observe(MODEL, 100, 0)
    assert estimator.calibration(MODEL).observations == 0
    estimator.observe(MODEL, 100, 80)
    estimator.observe("zai-glm-4.7", 100, 80)
    assert estimator.calibration(MODEL).observations == 1
    estimator.reset(MODEL)
    assert estimator.calibration(MODEL).observations == 0
    assert estimator.calibration("zai-glm-4.7").observations == 1
    estimator.reset()
    assert estimator.calibration("zai-glm-4.7").observations == 0
    assert estimator.factor(MODEL) == 1.0


def test_observe_context_error_uses_the_server_lengths() -> None:
    estimator = TokenEstimator(counter=word_counter)
    req = request(user("w " * 5000))
    estimate = estimator.estimate_request(req)
    body = {
        "message": "Please reduce the length of the messages or completion. Current length is 9000 while limit is 8192",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    err = error_from_response(400, body)
    assert isinstance(err, ContextWindowExceededError)
    actual = estimator.observe_context_error(MODEL, err, estimate, 2048)
    assert actual == 9000 - 2048
    stats = estimator.calibration(MODEL)
    assert stats.observations == 1
    assert stats.mean_ratio == pytest.approx((9000 - 2048) / estimator.raw_estimate(req))


def test_observe_context_error_ignores_local_and_lengthless_errors() -> None:
    estimator = TokenEstimator()
    local = ContextWindowExceededError("x", current_length=9000, limit=8192, local=True)
    assert estimator.observe_context_error(MODEL, local, 5000, 2048) is None
    bare = ContextWindowExceededError("context too long")
    assert estimator.observe_context_error(MODEL, bare, 5000, 2048) is None
    tiny = ContextWindowExceededError("Current length is 100 while limit is 50")
    assert estimator.observe_context_error(MODEL, tiny, 5000, 2048) is None
    assert estimator.calibration(MODEL).observations == 0


# --- sharing ---------------------------------------------------------------------------------


def test_shared_estimator_is_one_per_process() -> None:
    assert shared_estimator() is shared_estimator()
    assert isinstance(shared_estimator(), TokenEstimator)


def test_thread_safety_smoke() -> None:
    estimator = TokenEstimator()
    failures: list[BaseException] = []
    threads_n, rounds = 8, 300

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for i in range(rounds):
                model = MODEL if i % 2 else "zai-glm-4.7"
                req = request(user(_random_text(rng, rng.randint(1, 40))), model=model)
                estimate = estimator.estimate_request(req)
                estimator.observe(model, estimate, _other_rule(req))
                estimator.factor(model)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    total = estimator.calibration(MODEL).observations + estimator.calibration("zai-glm-4.7").observations
    assert total == threads_n * rounds
    assert 0.5 < estimator.factor(MODEL) < 2.5
