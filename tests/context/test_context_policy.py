"""plan_context: validation, defaults per model and tier, raise / trim_history / shrink_completion."""

from __future__ import annotations

import random
from typing import Any

import pytest

from cerebras_paygo._catalog import Catalog, Tier
from cerebras_paygo._context import DEFAULT_PROFILES, ContextPlan, TokenEstimator, plan_context
from cerebras_paygo._wire import ChatCompletionRequest, FunctionCall, Message, ToolCall
from cerebras_paygo.errors import ConfigurationError, ContextWindowExceededError

CATALOG = Catalog.load()
GPT = CATALOG.get("gpt-oss-120b")
GLM = CATALOG.get("zai-glm-4.7")
PROFILE = DEFAULT_PROFILES["gpt-oss"]  # request 56, message 5, tool_call 8, tool_result 6


def word_counter(text: str) -> int:
    return len(text.split())


def exact() -> TokenEstimator:
    """Prompt = 56 + per message (5 + words [+ 6 for tool results] [+ 8 + args words per call])."""
    return TokenEstimator(counter=word_counter)


def text(n: int) -> str:
    return " ".join(["word"] * n)


def system(n: int = 1) -> Message:
    return Message(role="system", content=text(n))


def user(n: int = 1, tag: str = "") -> Message:
    return Message(role="user", content=text(n), name=tag or None)


def assistant(n: int = 1) -> Message:
    return Message(role="assistant", content=text(n))


def calls(*ids: str) -> Message:
    return Message(
        role="assistant",
        content=None,
        tool_calls=[ToolCall(id=i, function=FunctionCall(name="f", arguments="{}")) for i in ids],
    )


def result(call_id: str, n: int = 1) -> Message:
    return Message(role="tool", content=text(n), tool_call_id=call_id)


def req(*messages: Message, model: str = "gpt-oss-120b", **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest(model=model, messages=list(messages), **fields)


def prompt_of(*messages: Message) -> int:
    return int(exact().raw_estimate(req(*messages)))


def words_for(prompt: int) -> int:
    """How many words a lone user message needs for the request's prompt to be ``prompt`` tokens."""
    return prompt - prompt_of(user(0))


# --- raise (the default) ---------------------------------------------------------------------


def test_over_cap_prompt_on_the_free_tier_raises_before_any_request() -> None:
    big = req(system(), user(9000))
    with pytest.raises(ContextWindowExceededError) as info:
        plan_context(big, GPT, "free", estimator=exact())
    err = info.value
    prompt = prompt_of(system(), user(9000))
    assert err.local is True
    assert err.limit == 8192
    assert err.current_length == prompt + 256  # the smallest default completion still does not fit
    assert err.code == "context_length_exceeded"
    message = str(err)
    for needed in (f"{prompt:,}", "8,192", "free tier", "max_completion_tokens", "trim_history", "shrink_completion"):
        assert needed in message
    # The same request fits the PayGo window.
    plan = plan_context(big, GPT, "paygo", estimator=exact())
    assert plan.window == 131072
    assert plan.max_completion_tokens == 8192


def test_explicit_completion_that_does_not_fit_raises_with_the_numbers() -> None:
    request = req(user(6000), max_completion_tokens=4000)
    with pytest.raises(ContextWindowExceededError) as info:
        plan_context(request, GPT, "free", estimator=exact())
    prompt = prompt_of(user(6000))
    assert info.value.current_length == prompt + 4000
    assert info.value.limit == 8192
    assert f"Current length is {prompt + 4000} while limit is 8192" in str(info.value)


def test_heuristic_estimator_also_raises_on_the_free_tier() -> None:
    request = req(user(), Message(role="user", content="lorem ipsum dolor sit amet " * 2000))
    with pytest.raises(ContextWindowExceededError) as info:
        plan_context(request, GPT, "free", estimator=TokenEstimator())
    assert info.value.local
    assert info.value.current_length is not None and info.value.current_length > 8192


def test_plan_fits_and_reports_the_estimate() -> None:
    estimator = exact()
    request = req(system(10), user(20), max_completion_tokens=1000)
    plan = plan_context(request, GPT, "free", estimator=estimator)
    assert isinstance(plan, ContextPlan)
    assert plan.prompt_tokens == prompt_of(system(10), user(20)) == estimator.estimate_request(plan.request)
    assert plan.max_completion_tokens == plan.request.max_completion_tokens == 1000
    assert plan.reserved_tokens == plan.prompt_tokens + 1000
    assert plan.dropped_messages == 0
    assert not plan.completion_defaulted


# --- defaults and validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "tier", "expected"),
    [
        ("gpt-oss-120b", "paygo", 8192),
        ("gpt-oss-120b", "free", 2048),
        ("zai-glm-4.7", "paygo", 8192),
        ("zai-glm-4.7", "free", 2048),
        ("llama3.1-8b", "paygo", 4096),
        ("qwen-3-235b-a22b-instruct-2507", "free", 2048),
    ],
)
def test_default_completion_per_model_and_tier(model: str, tier: Tier, expected: int) -> None:
    spec = CATALOG.get(model)
    plan = plan_context(req(user(10), model=model), spec, tier, estimator=exact())
    assert plan.max_completion_tokens == expected == spec.default_completion(tier)
    assert plan.request.max_completion_tokens == expected
    assert plan.completion_defaulted


def test_default_for_an_unknown_model_is_conservative() -> None:
    spec = CATALOG.unknown_spec("brand-new-model")
    plan = plan_context(req(user(10), model="brand-new-model"), spec, "paygo", estimator=exact())
    assert plan.window == 8192
    assert plan.max_completion_tokens == 2048


def test_default_is_clamped_to_what_fits_but_not_below_the_floor() -> None:
    prompt = prompt_of(user(7000))
    plan = plan_context(req(user(7000)), GPT, "free", estimator=exact())
    assert plan.max_completion_tokens == 8192 - prompt < 2048
    assert plan.completion_defaulted
    tight = words_for(8192 - 100)  # leaves 100 < 256 tokens for the completion
    with pytest.raises(ContextWindowExceededError):
        plan_context(req(user(tight)), GPT, "free", estimator=exact())
    plan = plan_context(req(user(tight)), GPT, "free", estimator=exact(), min_completion_tokens=64)
    assert plan.max_completion_tokens == 100


@pytest.mark.parametrize("value", [0, -5])
def test_non_positive_max_completion_tokens_is_a_configuration_error(value: int) -> None:
    with pytest.raises(ConfigurationError, match="positive"):
        plan_context(req(user(), max_completion_tokens=value), GPT, "paygo", estimator=exact())


@pytest.mark.parametrize(("tier", "value", "cap"), [("paygo", 50_000, "40,960"), ("free", 9000, "8,192")])
def test_max_completion_tokens_above_the_output_cap_names_the_cap(tier: Tier, value: int, cap: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{cap}-token output cap of 'gpt-oss-120b' on the {tier} tier"):
        plan_context(req(user(), max_completion_tokens=value), GPT, tier, estimator=exact())


def test_deprecated_max_tokens_is_honoured_and_not_sent_twice() -> None:
    request = req(user(), max_tokens=300)
    plan = plan_context(request, GPT, "paygo", estimator=exact())
    assert plan.max_completion_tokens == 300
    payload = plan.request.to_payload()
    assert payload["max_completion_tokens"] == 300
    assert "max_tokens" not in payload
    assert request.to_payload()["max_tokens"] == 300  # the caller's request is untouched
    with pytest.raises(ConfigurationError):
        plan_context(req(user(), max_tokens=99_999), GPT, "paygo", estimator=exact())
    with pytest.raises(ConfigurationError, match="integer"):
        plan_context(req(user(), max_tokens="many"), GPT, "paygo", estimator=exact())


@pytest.mark.parametrize(
    "kwargs",
    [{"overflow": "truncate"}, {"window": 0}, {"window": -1}, {"min_completion_tokens": 0}],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        plan_context(req(user()), GPT, "paygo", estimator=exact(), **kwargs)


def test_window_override() -> None:
    plan = plan_context(req(user(10)), GPT, "paygo", estimator=exact(), window=1000)
    assert plan.window == 1000
    assert plan.max_completion_tokens == 1000 - prompt_of(user(10))


def test_calibration_is_keyed_by_the_canonical_model_id() -> None:
    entry = next(dict(m) for m in CATALOG.as_dict()["models"] if m["id"] == "gpt-oss-120b")
    spec = Catalog({"models": [{**entry, "aliases": ["oss"]}]}).get("oss")
    assert spec.id == "gpt-oss-120b"
    estimator = exact()
    request = req(user(100), model="oss")
    raw = estimator.raw_estimate(request)
    parts = estimator.request_parts(request)
    for _ in range(30):  # the gateway observes under spec.id
        estimator.observe(spec.id, estimator.calibrated(spec.id, parts), round(2 * raw))
    plan = plan_context(request, spec, "paygo", estimator=estimator)
    assert plan.prompt_tokens >= 2 * raw
    assert plan.prompt_tokens == estimator.scale(spec.id).tokens(parts)
    assert estimator.estimate_request(request) < 1.5 * raw  # nothing learned under the alias itself


def test_uses_the_shared_estimator_by_default() -> None:
    plan = plan_context(req(user(10)), GPT, "paygo")
    assert plan.prompt_tokens > 0


# --- the tier can change mid-run (402 fallback key) ------------------------------------------


def test_planning_again_for_the_free_tier_after_a_fallback() -> None:
    original = req(system(50), user(3000))
    paygo = plan_context(original, GPT, "paygo", estimator=exact())
    assert (paygo.window, paygo.max_completion_tokens) == (131072, 8192)
    # The gateway plans the caller's request again with the fallback key's tier ...
    free = plan_context(original, GPT, "free", estimator=exact())
    assert (free.window, free.max_completion_tokens) == (8192, 2048)
    # ... and a request returned by the PayGo plan works too: its default is chosen again.
    again = plan_context(paygo.request, GPT, "free", estimator=exact())
    assert (again.window, again.max_completion_tokens) == (8192, 2048)
    assert again.completion_defaulted
    assert original.max_completion_tokens is None


def test_an_explicit_completion_stays_the_callers_after_a_tier_change() -> None:
    original = req(user(3000), max_completion_tokens=6000)
    paygo = plan_context(original, GPT, "paygo", estimator=exact())
    assert paygo.max_completion_tokens == 6000
    with pytest.raises(ContextWindowExceededError) as info:
        plan_context(paygo.request, GPT, "free", estimator=exact())
    assert info.value.limit == 8192
    shrunk = plan_context(paygo.request, GPT, "free", estimator=exact(), overflow="shrink_completion")
    assert shrunk.max_completion_tokens == 8192 - prompt_of(user(3000))


def test_free_tier_trim_after_a_fallback() -> None:
    history = [system(5)] + [m for _ in range(10) for m in (user(500), assistant(500))] + [user(10)]
    original = req(*history)
    assert plan_context(original, GLM, "paygo", estimator=exact()).dropped_messages == 0
    free = plan_context(original, GLM, "free", estimator=exact(), overflow="trim_history")
    assert free.dropped_messages > 0
    assert free.prompt_tokens + free.max_completion_tokens <= 8192


# --- shrink_completion -----------------------------------------------------------------------


def test_shrink_lowers_max_completion_tokens_to_what_fits() -> None:
    request = req(user(6000), max_completion_tokens=4000)
    plan = plan_context(request, GPT, "free", estimator=exact(), overflow="shrink_completion")
    assert plan.max_completion_tokens == 8192 - prompt_of(user(6000))
    assert plan.prompt_tokens + plan.max_completion_tokens == 8192
    assert request.max_completion_tokens == 4000
    untouched = plan_context(req(user(10), max_completion_tokens=4000), GPT, "free", overflow="shrink_completion")
    assert untouched.max_completion_tokens == 4000


def test_shrink_raises_below_the_floor() -> None:
    prompt_words = words_for(8192 - 200)  # 200 tokens left: below the 256 floor
    request = req(user(prompt_words), max_completion_tokens=4000)
    with pytest.raises(ContextWindowExceededError) as info:
        plan_context(request, GPT, "free", estimator=exact(), overflow="shrink_completion")
    assert info.value.local
    assert info.value.current_length == 8192 - 200 + 256
    assert "shrinking" in str(info.value)
    plan = plan_context(
        request, GPT, "free", estimator=exact(), overflow="shrink_completion", min_completion_tokens=200
    )
    assert plan.max_completion_tokens == 200


def test_shrink_never_raises_a_small_request_to_the_floor() -> None:
    prompt_words = words_for(8192 - 100)
    request = req(user(prompt_words), max_completion_tokens=100)
    plan = plan_context(request, GPT, "free", estimator=exact(), overflow="shrink_completion")
    assert plan.max_completion_tokens == 100  # the caller's value fits exactly; the floor does not apply
    with pytest.raises(ContextWindowExceededError):
        plan_context(req(user(prompt_words + 1), max_completion_tokens=100), GPT, "free", overflow="shrink_completion")


# --- trim_history ----------------------------------------------------------------------------


def fitting_window(kept: list[Message], completion: int) -> int:
    return prompt_of(*kept) + completion


def assert_valid_history(original: list[Message], kept: list[Message]) -> None:
    """System/developer messages and the last user turn stay; tool calls and their results stay together."""
    assert [id(m) for m in original if m.role in ("system", "developer")] == [
        id(m) for m in kept if m.role in ("system", "developer")
    ]
    last_user = max(i for i, m in enumerate(original) if m.role == "user")
    assert kept[-(len(original) - last_user) :] == original[last_user:]
    kept_ids = {id(m) for m in kept}
    ids_seen: set[str] = set()
    answered: set[str] = set()
    for message in kept:
        for call in message.tool_calls or ():
            ids_seen.add(call.id)
        if message.role == "tool":
            assert message.tool_call_id in ids_seen, "a tool result lost its call"
            answered.add(message.tool_call_id or "")
    for message in original:
        if id(message) in kept_ids and message.tool_calls:
            ids = {c.id for c in message.tool_calls}
            results = {m.tool_call_id for m in original if m.role == "tool" and m.tool_call_id in ids}
            assert results <= answered, "a tool call lost its results"
    assert [m for m in original if id(m) in kept_ids] == kept  # order kept


def test_trim_drops_the_oldest_turns_and_keeps_system_and_the_last_turn() -> None:
    history = [system(5), user(100, "u1"), assistant(100), user(100, "u2"), assistant(100), user(10, "u3")]
    kept_expected = [history[0], *history[3:]]
    window = fitting_window(kept_expected, 500)
    plan = plan_context(
        req(*history, max_completion_tokens=500),
        GPT,
        "paygo",
        estimator=exact(),
        window=window,
        overflow="trim_history",
    )
    assert plan.request.messages == kept_expected
    assert plan.dropped_messages == 2
    assert plan.prompt_tokens + 500 <= window
    assert_valid_history(history, plan.request.messages)


def test_trim_drops_only_as_much_as_needed() -> None:
    history = [system(5), user(100), assistant(100), user(10)]
    window = fitting_window(history, 500)
    plan = plan_context(
        req(*history, max_completion_tokens=500),
        GPT,
        "paygo",
        estimator=exact(),
        window=window,
        overflow="trim_history",
    )
    assert plan.dropped_messages == 0
    assert plan.request.messages == history
    assert plan.request.messages is not history


def test_trim_keeps_a_tool_call_with_its_results() -> None:
    history = [
        system(5),
        user(50, "u1"),
        calls("a", "b"),
        result("a", 200),
        result("b", 200),
        assistant(50),
        user(50, "u2"),
        assistant(50),
        user(10, "u3"),
    ]
    window = fitting_window([history[0], *history[6:]], 100)
    plan = plan_context(
        req(*history, max_completion_tokens=100),
        GPT,
        "paygo",
        estimator=exact(),
        window=window,
        overflow="trim_history",
    )
    assert plan.request.messages == [history[0], *history[6:]]
    assert plan.dropped_messages == 5
    assert_valid_history(history, plan.request.messages)


def test_trim_when_a_tool_call_and_its_results_are_the_oldest_turns() -> None:
    history = [
        system(5),
        calls("a", "b"),
        result("a", 300),
        result("b", 300),
        user(50, "u1"),
        assistant(50),
        user(10, "u2"),
    ]
    # Just too small for everything: dropping the tool call alone would leave orphan results.
    window = fitting_window(history, 100) - 1
    plan = plan_context(
        req(*history, max_completion_tokens=100),
        GPT,
        "paygo",
        estimator=exact(),
        window=window,
        overflow="trim_history",
    )
    assert plan.request.messages == [history[0], *history[4:]]
    assert plan.dropped_messages == 3
    assert_valid_history(history, plan.request.messages)


def test_trim_drops_orphan_tool_results_at_the_start() -> None:
    history = [system(5), result("gone", 300), user(50, "u1"), assistant(50), user(10, "u2")]
    window = fitting_window([history[0], *history[2:]], 100)
    plan = plan_context(
        req(*history, max_completion_tokens=100),
        GPT,
        "paygo",
        estimator=exact(),
        window=window,
        overflow="trim_history",
    )
    assert plan.request.messages == [history[0], *history[2:]]
    assert plan.dropped_messages == 1


def test_trim_keeps_system_messages_between_turns_and_the_tool_loop_after_the_last_user() -> None:
    history = [
        system(5),
        user(200, "u1"),
        assistant(200),
        Message(role="developer", content="mid-conversation instruction"),
        user(200, "u2"),
        assistant(200),
        user(10, "u3"),
        calls("x"),
        result("x", 50),
        calls("y"),
        result("y", 50),
    ]
    kept_expected = [history[0], history[3], *history[6:]]
    window = fitting_window(kept_expected, 100)
    plan = plan_context(
        req(*history, max_completion_tokens=100),
        GPT,
        "paygo",
        estimator=exact(),
        window=window,
        overflow="trim_history",
    )
    assert plan.request.messages == kept_expected
    assert plan.dropped_messages == 4
    assert_valid_history(history, plan.request.messages)


def test_trim_without_a_user_message_keeps_the_last_tool_call_and_results() -> None:
    history = [system(5), assistant(300), calls("a"), result("a", 20)]
    window = fitting_window([history[0], *history[2:]], 100)
    plan = plan_context(
        req(*history, max_completion_tokens=100),
        GPT,
        "paygo",
        estimator=exact(),
        window=window,
        overflow="trim_history",
    )
    assert plan.request.messages == [history[0], *history[2:]]


def test_trim_raises_when_the_last_turn_alone_does_not_fit() -> None:
    history = [system(5), user(100), assistant(100), user(9000)]
    with pytest.raises(ContextWindowExceededError) as info:
        plan_context(req(*history), GPT, "free", estimator=exact(), overflow="trim_history")
    err = info.value
    assert err.local
    assert err.limit == 8192
    assert err.current_length == prompt_of(history[0], history[3]) + 256
    assert "dropping 2 older message(s)" in str(err)


def test_trim_with_a_default_completion_trims_only_to_the_floor() -> None:
    history = [system(5), user(4000), assistant(3000), user(1000)]
    plan = plan_context(req(*history), GPT, "free", estimator=exact(), overflow="trim_history")
    assert plan.dropped_messages == 2
    assert plan.max_completion_tokens == min(2048, 8192 - plan.prompt_tokens)
    assert plan.completion_defaulted


def test_trim_never_mutates_the_callers_request() -> None:
    history = [system(5), user(4000), assistant(3000), user(1000)]
    request = req(*history)
    before = request.model_dump()
    messages = request.messages
    plan = plan_context(request, GPT, "free", estimator=exact(), overflow="trim_history")
    assert plan.request is not request
    assert request.messages is messages
    assert request.model_dump() == before


def test_trim_keeps_the_invariants_on_random_conversations() -> None:
    rng = random.Random(11)
    for case in range(200):
        history: list[Message] = [system(rng.randint(1, 20))]
        call_n = 0
        for _ in range(rng.randint(1, 8)):
            history.append(user(rng.randint(1, 200)))
            for _ in range(rng.randint(0, 2)):
                ids = [f"c{case}-{call_n + i}" for i in range(rng.randint(1, 3))]
                call_n += len(ids)
                history.append(calls(*ids))
                history.extend(result(i, rng.randint(1, 200)) for i in ids)
            if rng.random() < 0.2:
                history.append(Message(role="developer", content="note"))
            history.append(assistant(rng.randint(1, 200)))
        history.append(user(rng.randint(1, 50)))
        full = prompt_of(*history)
        window = rng.randint(full // 3, full + 300)
        request = req(*history, max_completion_tokens=50)
        last_turn = prompt_of(*(m for m in history if m.role in ("system", "developer")), history[-1])
        if last_turn + 50 > window:
            with pytest.raises(ContextWindowExceededError) as info:
                plan_context(request, GPT, "paygo", estimator=exact(), window=window, overflow="trim_history")
            assert info.value.local and info.value.limit == window
            continue
        plan = plan_context(request, GPT, "paygo", estimator=exact(), window=window, overflow="trim_history")
        assert plan.prompt_tokens + 50 <= window
        assert plan.dropped_messages == len(history) - len(plan.request.messages)
        assert_valid_history(history, plan.request.messages)
