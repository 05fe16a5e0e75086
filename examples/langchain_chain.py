"""ChatCerebras in LangChain: a prompt | model | parser chain, tool calling and structured output.

Run it as is::

    python examples/langchain_chain.py

With ``CEREBRAS_API_KEY`` set it talks to the real API (``CEREBRAS_BASE_URL`` and ``CEREBRAS_TIER``
are read too; a few short requests cost a fraction of a cent). Without it, it starts the embedded
emulator (``pip install "cerebras-paygo[langchain]"``), which answers tool calls and JSON
schemas the way the API does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_cerebras_paygo import ChatCerebras

MODEL = os.environ.get("CEREBRAS_MODEL", "gpt-oss-120b")


@contextmanager
def chat_model() -> Iterator[ChatCerebras]:
    """A ChatCerebras on the real API when CEREBRAS_API_KEY is set, else on the embedded emulator."""
    if os.environ.get("CEREBRAS_API_KEY"):
        print(f"Using {os.environ.get('CEREBRAS_BASE_URL') or 'https://api.cerebras.ai/v1'} (CEREBRAS_API_KEY is set)")
        yield ChatCerebras(model=MODEL, max_tokens=1024)
        return
    from cerebras_paygo.emulator import EmulatorServer

    with EmulatorServer() as server:
        print(f"CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator at {server.base_url}")
        yield ChatCerebras(model=MODEL, max_tokens=1024, api_key=server.api_key, base_url=server.base_url)


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"{city}: 21 degrees C, clear sky, light wind from the north"


class Movie(BaseModel):
    """A movie described in a text."""

    title: str = Field(description="the movie's title")
    year: int = Field(description="the year it came out")
    director: str = Field(description="who directed it")


def plain_chain(llm: ChatCerebras) -> None:
    print("\n1. prompt | ChatCerebras | StrOutputParser")
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You answer in one sentence."), ("human", "What is {topic}?")]
    )
    chain = prompt | llm | StrOutputParser()
    for topic in ("a token bucket", "a context window"):
        print(f"   {topic}: {chain.invoke({'topic': topic})}")
    message = (prompt | llm).invoke({"topic": "prompt caching"})
    meta = message.response_metadata
    print(f"   the AIMessage also says: cost ${meta['cost_usd']:.7f}, usage {message.usage_metadata}")
    remaining = (meta.get("rate_limits") or {}).get("remaining", {})
    if remaining:
        print(f"   and what the rate-limit headers left: {remaining}")


def tool_calling(llm: ChatCerebras) -> None:
    print("\n2. Tools: prompt | llm.bind_tools([get_weather]), then the tool's result goes back")
    prompt = ChatPromptTemplate.from_messages([("system", "Use the tools when they help."), ("placeholder", "{chat}")])
    chain = prompt | llm.bind_tools([get_weather])
    chat: list[BaseMessage] = [HumanMessage("What is the weather in Lisbon right now?")]
    reply = chain.invoke({"chat": chat})
    print(f"   the model asked for: {[(call['name'], call['args']) for call in reply.tool_calls]}")
    chat.append(reply)
    for call in reply.tool_calls:
        result = get_weather.invoke(call)  # a ToolMessage answering this call
        print(f"   get_weather returned: {result.content!r}")
        chat.append(result)
    final = (chain | StrOutputParser()).invoke({"chat": chat})
    print(f"   final answer: {final}")


def structured_output(llm: ChatCerebras) -> None:
    print("\n3. Structured output: prompt | llm.with_structured_output(Movie)  (JSON schema, strict)")
    prompt = ChatPromptTemplate.from_messages([("system", "Extract the movie."), ("human", "{text}")])
    chain = prompt | llm.with_structured_output(Movie)
    movie = chain.invoke({"text": "Spirited Away came out in 2001; Hayao Miyazaki directed it."})
    print(f"   {movie!r}")


def main() -> None:
    with chat_model() as llm:
        plain_chain(llm)
        tool_calling(llm)
        structured_output(llm)
        llm.close()
    print("\nDone.")


if __name__ == "__main__":
    main()
