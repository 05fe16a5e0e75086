"""Smoke test of ``pip install cerebras-paygo[langchain]`` alone (run by scripts/wheel_smoke.py)."""

from __future__ import annotations

from _common import check_installed_from_wheel, check_missing_extra, run_demo
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel

from cerebras_paygo.emulator import EmulatorServer
from langchain_cerebras_paygo import ChatCerebras


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is 21 degrees and sunny in {city}."


class Movie(BaseModel):
    title: str
    year: int


def main() -> None:
    check_installed_from_wheel()
    with EmulatorServer() as server:
        llm = ChatCerebras(model="gpt-oss-120b", max_tokens=256, api_key=server.api_key, base_url=server.base_url)
        message = llm.invoke("Say hi in Portuguese.")
        assert isinstance(message.content, str) and message.content, message
        assert message.response_metadata["cost_usd"] > 0
        chain = ChatPromptTemplate.from_messages([("human", "Context: {context}\nQuestion: {question}")]) | llm
        answer = (chain | StrOutputParser()).invoke({"context": "The sky is green here.", "question": "What colour?"})
        assert "green" in answer, answer
        assert "".join(str(chunk.content) for chunk in llm.stream("One word.")), "a stream"
        call = llm.bind_tools([get_weather]).invoke("What is the weather in Oslo?")
        assert call.tool_calls and call.tool_calls[0]["name"] == "get_weather", call
        movie = llm.with_structured_output(Movie).invoke("A movie from 2001, please.")
        assert isinstance(movie, Movie), movie
        print("ChatCerebras: invoke, chain, stream, tools, structured output: ok")
    check_missing_extra("llama_index_cerebras", "llama-index")
    run_demo("LangChain: ChatPromptTemplate | ChatCerebras | StrOutputParser", "4. LlamaIndex: not installed")
    print("[langchain] smoke: ok")


if __name__ == "__main__":
    main()
