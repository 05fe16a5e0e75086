"""A LangChain agent (``langchain.agents.create_agent``) with tools and a structured response.

Run it as is::

    python examples/langchain_agent.py

With ``CEREBRAS_API_KEY`` set it talks to the real API; without it, it starts the embedded emulator
(``pip install "cerebras-paygo[langchain]" langchain``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from langchain.agents import create_agent
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_cerebras_paygo import ChatCerebras

MODEL = os.environ.get("CEREBRAS_MODEL", "gpt-oss-120b")


@contextmanager
def chat_model() -> Iterator[ChatCerebras]:
    """A ChatCerebras on the real API when CEREBRAS_API_KEY is set, else on the embedded emulator."""
    if os.environ.get("CEREBRAS_API_KEY"):
        print("Using the Cerebras API (CEREBRAS_API_KEY is set)")
        yield ChatCerebras(model=MODEL, max_tokens=1024)
        return
    from cerebras_paygo.emulator import EmulatorServer

    with EmulatorServer() as server:
        print(f"CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator at {server.base_url}")
        yield ChatCerebras(model=MODEL, max_tokens=1024, api_key=server.api_key, base_url=server.base_url)


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


def main() -> None:
    with chat_model() as llm:
        print("1. An agent with two tools")
        agent = create_agent(llm, tools=[get_weather, convert_temperature], system_prompt="You are concise.")
        result = agent.invoke({"messages": [("user", "What is the weather in Oslo?")]})
        for message in result["messages"]:
            print(f"   {type(message).__name__}: {message.text or message.tool_calls}")

        print("2. The same agent, answering with a WeatherReport")
        agent = create_agent(llm, tools=[get_weather], response_format=WeatherReport)
        result = agent.invoke({"messages": [("user", "What is the weather in Lisbon? Give city and summary.")]})
        report = result["structured_response"]
        print(f"   {type(report).__name__}: {report!r}")
    print("Done.")


if __name__ == "__main__":
    main()
