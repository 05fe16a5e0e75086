"""LlamaIndex on Cerebras: a query engine over documents, and a FunctionAgent with a tool.

Run it as is::

    python examples/llama_index_rag.py

With ``CEREBRAS_API_KEY`` set it talks to the real API; without it, it starts the embedded emulator
(``pip install "cerebras-paygo[emulator,llama-index]"``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager

from llama_index.core import Document, SummaryIndex
from llama_index.core.agent.workflow import FunctionAgent
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
    """Get the current weather for a city."""
    return f"It is 21 degrees and sunny in {city}."


async def run_agent(model: Cerebras) -> str:
    agent = FunctionAgent(tools=[get_weather], llm=model, system_prompt="You are a helpful assistant.")
    result = await agent.run(user_msg="What is the weather in Oslo?")
    return str(result.response.content)


def main() -> None:
    docs = [
        Document(text="Cerebras PayGo charges per input and output token at per-model prices."),
        Document(text="Auto-recharge tops the balance up when it falls below a threshold."),
    ]
    with llm() as model:
        print("1. A query engine over two documents")
        engine = SummaryIndex.from_documents(docs).as_query_engine(llm=model)
        print(f"   {engine.query('How does auto-recharge work?')}")
        print("2. A FunctionAgent with a tool")
        print(f"   {asyncio.run(run_agent(model))}")
    print("Done.")


if __name__ == "__main__":
    main()
