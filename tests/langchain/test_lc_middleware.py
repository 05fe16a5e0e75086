"""LangChain's ``SummarizationMiddleware`` on ChatCerebras against the emulator: a conversation
longer than the free tier's 8,192-token window is summarized and the agent still answers."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from cerebras_paygo.errors import ContextWindowExceededError
from langchain_cerebras_paygo import ChatCerebras
from tests.langchain.helpers import fresh_key

agents = pytest.importorskip("langchain.agents", reason="create_agent needs the langchain package (dev extra)")
middleware = pytest.importorskip("langchain.agents.middleware")

FIRST = "My name is Ada and I am planning a trip to Lisbon in May."
FILLER = "We talked about the itinerary, museums, trams, food markets and the viewpoints of the old town. " * 12


class Errors(BaseCallbackHandler):
    """Keeps the errors the model calls raised (what the middleware saw)."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)


def free_llm(emulator: Any, errors: Errors) -> ChatCerebras:
    return ChatCerebras(
        base_url=emulator.base_url,
        api_key=fresh_key(emulator, free=True),
        tier="free",
        max_tokens=256,
        callbacks=[errors],
    )


def long_conversation() -> list[BaseMessage]:
    """About 16,000 tokens: twice the free tier's window."""
    messages: list[BaseMessage] = [HumanMessage(FIRST)]
    for day in range(30):
        messages.append(AIMessage(f"Noted, part {day}. {FILLER}"))
        messages.append(HumanMessage(f"Tell me more about day {day}. {FILLER}"))
    messages.append(HumanMessage("What should I pack for the trip?"))
    return messages


def test_the_conversation_does_not_fit_without_the_middleware(emulator: Any) -> None:
    errors = Errors()
    agent = agents.create_agent(free_llm(emulator, errors), tools=[])
    with pytest.raises(ContextOverflowError) as caught:
        agent.invoke({"messages": long_conversation()})
    assert isinstance(caught.value, ContextWindowExceededError)
    assert emulator.stats()["requests"] == 0, "refused before sending"


@pytest.mark.parametrize("use_async", [False, True])
async def test_summarization_middleware_summarizes_and_the_agent_answers(emulator: Any, use_async: bool) -> None:
    errors = Errors()
    llm = free_llm(emulator, errors)
    assert llm.profile is not None and llm.profile["max_input_tokens"] == 8192
    summarize = middleware.SummarizationMiddleware(
        model=llm,
        trigger=("fraction", 0.5),
        keep=("messages", 4),
        # The whole history goes to the summary call: it overflows the window first, and the
        # middleware retries with the middle cut out because the error is a ContextOverflowError.
        trim_tokens_to_summarize=None,
    )
    agent = agents.create_agent(llm, tools=[], middleware=[summarize])
    state = {"messages": long_conversation()}
    result = await agent.ainvoke(state) if use_async else agent.invoke(state)

    messages = result["messages"]
    summary = messages[0]
    assert isinstance(summary, HumanMessage)
    assert summary.text.startswith("Here is a summary of the conversation to date:")
    assert FIRST in summary.text, "the summary keeps what the user said first"
    assert "## SESSION INTENT" in summary.text and "## NEXT STEPS" in summary.text
    assert len(messages) == 1 + 4 + 1, "the summary, the kept messages and the answer"
    final = messages[-1]
    assert isinstance(final, AIMessage) and final.text and not final.tool_calls

    assert len(errors.errors) == 1
    assert isinstance(errors.errors[0], ContextOverflowError)
    assert isinstance(errors.errors[0], ContextWindowExceededError)
    stats = emulator.stats()
    assert stats["statuses"] == {"200": 2}, "the shortened summary call and the answer; the overflow never sent"
    assert stats["models"]["gpt-oss-120b"]["prompt_tokens"] < 2 * 8192
