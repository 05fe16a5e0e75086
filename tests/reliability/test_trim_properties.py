"""Property-based tests of the trim policy (issue 13): for any conversation and any window,
``context_overflow="trim_history"`` either returns a request that fits or raises the local context
error, and what it keeps is a valid conversation: every system/developer message, the last user turn
and everything after it, tool calls with all their results, the original order, and nothing added."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cerebras_paygo import ChatCompletionRequest, ContextWindowExceededError, Message, TokenEstimator, plan_context
from cerebras_paygo._catalog import default_catalog
from cerebras_paygo._wire import FunctionCall, ToolCall

GPT = default_catalog().get("gpt-oss-120b")


def words(n: int) -> str:
    return " ".join(["word"] * n)


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(Message(role="system", content=words(draw(st.integers(1, 40)))))
    calls = 0
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["user", "assistant", "tools", "system"]))
        size = draw(st.integers(1, 120))
        if kind == "tools":
            ids = [f"call{calls + i}" for i in range(draw(st.integers(1, 3)))]
            calls += len(ids)
            fn = FunctionCall(name="f", arguments="{}")
            messages.append(Message(role="assistant", tool_calls=[ToolCall(id=i, function=fn) for i in ids]))
            messages += [Message(role="tool", tool_call_id=i, content=words(size)) for i in ids]
        else:
            messages.append(Message(role=kind, content=words(size)))
    messages.append(Message(role="user", content=words(draw(st.integers(1, 30)))))
    return messages


def check_valid(original: list[Message], kept: list[Message]) -> None:
    ids = [id(m) for m in kept]
    positions = [next(i for i, m in enumerate(original) if m is k) for k in kept]
    assert positions == sorted(positions), "order kept, nothing added"
    assert len(set(ids)) == len(ids)
    assert [id(m) for m in original if m.role in ("system", "developer")] == [
        id(m) for m in kept if m.role in ("system", "developer")
    ]
    last_user = max(i for i, m in enumerate(original) if m.role == "user")
    assert [id(m) for m in kept[-(len(original) - last_user) :]] == [id(m) for m in original[last_user:]]
    called = {c.id for m in kept for c in (m.tool_calls or ())}
    results = {m.tool_call_id for m in kept if m.role == "tool"}
    assert results <= called, "no tool result without its call"
    for m in kept:
        for call in m.tool_calls or ():
            assert call.id in results, "no tool call without its results"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=conversations(), window=st.integers(200, 4000), completion=st.integers(16, 400))
def test_trim_fits_or_raises_and_keeps_a_valid_conversation(
    messages: list[Message], window: int, completion: int
) -> None:
    estimator = TokenEstimator(counter=lambda text: len(text.split()))
    request = ChatCompletionRequest(model=GPT.id, messages=messages, max_completion_tokens=completion)
    before = [m.model_dump() for m in request.messages]
    refused: ContextWindowExceededError | None = None
    try:
        plan = plan_context(request, GPT, "paygo", estimator=estimator, overflow="trim_history", window=window)
    except ContextWindowExceededError as error:
        refused = error
    if refused is not None:
        assert refused.local  # refused before any request, never by a bare error
        return
    assert plan.prompt_tokens + plan.max_completion_tokens <= window or plan.dropped_messages == 0
    kept = plan.request.messages
    assert plan.dropped_messages == len(messages) - len(kept)
    check_valid(messages, kept)
    assert [m.model_dump() for m in request.messages] == before, "the caller's request is intact"
