"""LlamaIndex agents on Cerebras: a FunctionAgent with two tools (its events streamed), then a ReActAgent.

Run it as is::

    python examples/llama_index_agent.py

With ``CEREBRAS_API_KEY`` set it talks to the real API; without it, it starts the embedded emulator
(``pip install "cerebras-paygo[llama-index]"``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager

from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ReActAgent, ToolCall, ToolCallResult
from pydantic import SecretStr

from llama_index_cerebras import Cerebras

MODEL = os.environ.get("CEREBRAS_MODEL", "gpt-oss-120b")


@contextmanager
def llm() -> Iterator[Cerebras]:
    """A Cerebras LLM on the real API when CEREBRAS_API_KEY is set, else on the embedded emulator."""
    if os.environ.get("CEREBRAS_API_KEY"):
        print("Using the Cerebras API (CEREBRAS_API_KEY is set)")
        yield Cerebras(model=MODEL, max_tokens=1024)
        return
    from cerebras_paygo.emulator import EmulatorServer

    with EmulatorServer() as server:
        print(f"CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator at {server.base_url}")
        yield Cerebras(model=MODEL, max_tokens=1024, api_key=SecretStr(server.api_key), base_url=server.base_url)


def get_weather(city: str) -> str:
    """Get the current weather for a city, in degrees celsius."""
    return f"It is 21 degrees celsius and sunny in {city}."


def celsius_to_fahrenheit(celsius: float) -> str:
    """Convert a temperature from degrees celsius to degrees fahrenheit."""
    return f"{celsius * 9 / 5 + 32:.1f} degrees fahrenheit"


async def function_agent(model: Cerebras) -> None:
    print("1. A FunctionAgent with two tools (native tool calling; it picks the one that fits), its events")
    agent = FunctionAgent(
        tools=[get_weather, celsius_to_fahrenheit], llm=model, system_prompt="You are a concise assistant."
    )
    handler = agent.run(user_msg="What is the weather in Oslo?")
    async for event in handler.stream_events():
        if isinstance(event, ToolCall) and not isinstance(event, ToolCallResult):
            print(f"   tool call:   {event.tool_name}({event.tool_kwargs})")
        elif isinstance(event, ToolCallResult):
            print(f"   tool result: {event.tool_output.content}")
    result = await handler
    print(f"   answer: {result.response.content}")


async def react_agent(model: Cerebras) -> None:
    print("2. A ReActAgent with the same tool (Thought / Action / Observation in plain text)")
    agent = ReActAgent(tools=[get_weather], llm=model)
    handler = agent.run(user_msg="What is the weather in Lisbon?")
    streamed = 0
    async for event in handler.stream_events():
        if isinstance(event, AgentStream):
            streamed += 1
        elif isinstance(event, ToolCallResult):
            print(f"   {event.tool_name}: {event.tool_output.content}")
    result = await handler
    print(f"   answer: {result.response.content} ({streamed} streamed chunks)")


def main() -> None:
    with llm() as model:
        asyncio.run(function_agent(model))
        asyncio.run(react_agent(model))
    print("Done.")


if __name__ == "__main__":
    main()
