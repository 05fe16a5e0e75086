"""Agents built with the real frameworks (``langchain.agents.create_agent``, LangGraph's prebuilt
agent) on ChatCerebras against the emulator: tools, structured responses, multi-step tool use."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_cerebras_paygo import ChatCerebras
from tests.langchain.helpers import fresh_key

agents = pytest.importorskip("langchain.agents", reason="create_agent needs the langchain package (dev extra)")


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is 21 degrees and sunny in {city}."


@tool
def convert_temperature(celsius: float) -> str:
    """Convert a temperature from celsius to fahrenheit."""
    return f"{celsius * 9 / 5 + 32:.1f} F"


class WeatherReport(BaseModel):
    city: str
    summary: str


def llm_for(emulator: Any) -> ChatCerebras:
    return ChatCerebras(base_url=emulator.base_url, api_key=fresh_key(emulator), max_tokens=512)


def tool_names(messages: list[Any]) -> list[str]:
    return [m.name for m in messages if isinstance(m, ToolMessage)]


def test_create_agent_with_tools_answers(emulator: Any) -> None:
    agent = agents.create_agent(llm_for(emulator), tools=[get_weather])
    result = agent.invoke({"messages": [("user", "What is the weather in Oslo?")]})
    assert tool_names(result["messages"]) == ["get_weather"]
    final = result["messages"][-1]
    assert isinstance(final, AIMessage) and not final.tool_calls and "21 degrees" in final.text


@pytest.mark.parametrize("strategy", ["model", "provider", "tool"])
def test_create_agent_with_response_format(emulator: Any, strategy: str) -> None:
    from langchain.agents.structured_output import ProviderStrategy, ToolStrategy

    response_format: Any = {"model": WeatherReport, "provider": ProviderStrategy(WeatherReport)}.get(
        strategy, ToolStrategy(WeatherReport)
    )
    agent = agents.create_agent(llm_for(emulator), tools=[get_weather], response_format=response_format)
    result = agent.invoke({"messages": [("user", "What is the weather in Oslo? Report city and summary.")]})
    assert isinstance(result["structured_response"], WeatherReport)
    assert tool_names(result["messages"]).count("get_weather") == 1, "the tool is called once, no loop"
    assert emulator.stats()["requests"] <= 3


def test_create_agent_multi_step_calls_a_second_tool(emulator: Any) -> None:
    llm = llm_for(emulator).bind_tools([get_weather, convert_temperature], parallel_tool_calls=False)
    agent = agents.create_agent(llm, tools=[get_weather, convert_temperature])
    result = agent.invoke(
        {"messages": [("user", "Get the weather in Oslo, then convert the temperature to fahrenheit.")]}
    )
    assert tool_names(result["messages"]) == ["get_weather", "convert_temperature"]
    final = result["messages"][-1]
    assert isinstance(final, AIMessage) and not final.tool_calls and final.text


def test_langgraph_prebuilt_agent(emulator: Any) -> None:
    prebuilt = pytest.importorskip("langgraph.prebuilt")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent is deprecated in favour of create_agent
        agent = prebuilt.create_react_agent(llm_for(emulator), tools=[get_weather])
    result = agent.invoke({"messages": [("user", "What is the weather in Lisbon?")]})
    assert tool_names(result["messages"]) == ["get_weather"]
    assert "Lisbon" in result["messages"][-1].text
