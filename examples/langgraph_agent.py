"""A LangGraph graph: a model node with tools and a ToolNode, looping until the model answers.

Run it as is::

    python examples/langgraph_agent.py

With ``CEREBRAS_API_KEY`` set it talks to the real API; without it, it starts the embedded emulator
(``pip install "cerebras-paygo[langchain]" langgraph``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

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


def build(llm: ChatCerebras) -> Any:
    tools = [get_weather]
    model = llm.bind_tools(tools)

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    return graph.compile()


def main() -> None:
    with chat_model() as llm:
        app = build(llm)
        print("1. The graph, step by step")
        for update in app.stream({"messages": [("user", "What is the weather in Paris?")]}, stream_mode="updates"):
            for node, value in update.items():
                message = value["messages"][-1]
                print(f"   {node}: {message.text or message.tool_calls}")
    print("Done.")


if __name__ == "__main__":
    main()
