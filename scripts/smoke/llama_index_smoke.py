"""Smoke test of ``pip install cerebras-paygo[llama-index]`` alone (run by scripts/wheel_smoke.py)."""

from __future__ import annotations

import asyncio

from _common import check_installed_from_wheel, check_missing_extra, run_demo
from llama_index.core import Document, SummaryIndex
from llama_index.core.agent.workflow import FunctionAgent
from pydantic import SecretStr

from cerebras_paygo.emulator import EmulatorServer
from llama_index_cerebras import Cerebras


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is 21 degrees and sunny in {city}."


async def agent(llm: Cerebras) -> str:
    result = await FunctionAgent(tools=[get_weather], llm=llm).run(user_msg="What is the weather in Oslo?")
    return str(result.response.content)


def main() -> None:
    check_installed_from_wheel()
    with EmulatorServer() as server:
        llm = Cerebras(
            model="gpt-oss-120b", max_tokens=256, api_key=SecretStr(server.api_key), base_url=server.base_url
        )
        completion = llm.complete("Say hi in Portuguese.")
        assert completion.text, completion
        assert "".join(chunk.delta or "" for chunk in llm.stream_complete("One word.")), "a stream"
        docs = [Document(text="Auto-recharge tops the balance up when it falls below a threshold.")]
        response = SummaryIndex.from_documents(docs).as_query_engine(llm=llm).query("How does auto-recharge work?")
        assert "Auto-recharge tops the balance up" in str(response), response
        assert "sunny in Oslo" in asyncio.run(agent(llm))
        print("Cerebras: complete, stream_complete, query engine, FunctionAgent: ok")
    check_missing_extra("langchain_cerebras_paygo", "langchain")
    run_demo("langchain-core is not installed", "4. LlamaIndex: a query engine over the same documents")
    print("[llama-index] smoke: ok")


if __name__ == "__main__":
    main()
