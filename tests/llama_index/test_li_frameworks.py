"""LlamaIndex's prompt-driven workflows on ``Cerebras`` against the emulator, through the real
framework: the ReAct agent, a text-completion program (JSON from a schema in the prompt), the
chat engines and the refine synthesizer over a vector index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.program import LLMTextCompletionProgram
from pydantic import BaseModel

from tests.llama_index.helpers import MULTIPLY, WEATHER, Recorder, recorded_llm

OTTERS = "Otters hold hands while they sleep so that they do not drift apart in the water."
LISBON = "The city of Lisbon is built on seven hills overlooking the Tagus river."
CHIP = "The Cerebras wafer-scale engine is the largest chip ever built for AI workloads."


# --- ReAct ------------------------------------------------------------------------------------------


# The workflow library inspects the agent with ``inspect.getmembers``, touching pydantic's
# deprecated attributes; that is llama-index's own noise, not this adapter's.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")
@pytest.mark.filterwarnings("ignore:is_running called:DeprecationWarning")
@pytest.mark.parametrize("streaming", [True, False])
async def test_react_agent_runs_the_tool_and_answers_with_its_output(emulator: Any, streaming: bool) -> None:
    recorder = Recorder()
    agent = ReActAgent(tools=[WEATHER, MULTIPLY], llm=recorded_llm(emulator, recorder), streaming=streaming)
    result = await agent.run(user_msg="What is the weather in 'Oslo'?")

    assert [(c.tool_name, c.tool_kwargs) for c in result.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert "It is 21 degrees and sunny in Oslo." in str(result.response.content)
    assert len(recorder.bodies) == 2
    assert all("tools" not in body for body in recorder.bodies), "ReAct is text only: no function calling"
    second = recorder.bodies[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"].startswith("Thought: ") and "Action: get_weather" in second[2]["content"]
    assert second[3]["content"] == "Observation: It is 21 degrees and sunny in Oslo."
    assert emulator.stats()["statuses"] == {"200": 2}


@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")
@pytest.mark.filterwarnings("ignore:is_running called:DeprecationWarning")
async def test_react_agent_passes_numbers_to_the_tool(emulator: Any) -> None:
    # With a system prompt the agent uses its context header (the system prompt inside it).
    agent = ReActAgent(
        tools=[WEATHER, MULTIPLY], llm=recorded_llm(emulator, Recorder()), system_prompt="You are a calculator."
    )
    result = await agent.run(user_msg="Please multiply 6 and 7")
    assert [(c.tool_name, c.tool_kwargs) for c in result.tool_calls] == [("multiply", {"a": 6, "b": 7})]
    assert "42" in str(result.response.content)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")
@pytest.mark.filterwarnings("ignore:is_running called:DeprecationWarning")
async def test_react_agent_answers_without_a_tool_that_does_not_fit(emulator: Any) -> None:
    recorder = Recorder()
    agent = ReActAgent(tools=[WEATHER], llm=recorded_llm(emulator, recorder))
    result = await agent.run(user_msg="Explain how tides work.")
    assert result.tool_calls == []
    assert "tides" in str(result.response.content).lower()
    assert len(recorder.bodies) == 1


# --- JSON from a schema in the prompt ------------------------------------------------------------------


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int
    city: str | None = None


@pytest.mark.parametrize("use_async", [False, True])
async def test_text_completion_program_returns_a_valid_instance(emulator: Any, use_async: bool) -> None:
    recorder = Recorder()
    program = LLMTextCompletionProgram.from_defaults(
        output_cls=Person,
        prompt_template_str="Extract the person from this text: {text}",
        llm=recorded_llm(emulator, recorder),
    )
    text = "'Ada' is 36 years old and lives in 'London'."
    person = await program.acall(text=text) if use_async else program(text=text)

    assert isinstance(person, Person)
    assert (person.name, person.age, person.city) == ("Ada", 36, "London")
    body = recorder.bodies[0]
    assert "response_format" not in body and "tools" not in body, "the schema travels in the prompt only"
    assert "JSON schema" in body["messages"][-1]["content"]


# --- chat engines and refine over a vector index ------------------------------------------------------


@pytest.fixture
def index(emulator: Any) -> Iterator[VectorStoreIndex]:
    """Three documents in a vector index; MockEmbedding makes retrieval local and deterministic."""
    saved_llm, saved_embed = Settings._llm, Settings._embed_model
    try:
        Settings.embed_model = MockEmbedding(embed_dim=8)
        yield VectorStoreIndex.from_documents([Document(text=t) for t in (CHIP, OTTERS, LISBON)])
    finally:
        Settings._llm, Settings._embed_model = saved_llm, saved_embed


@pytest.mark.parametrize("mode", ["condense_plus_context", "context"])
def test_chat_engine_answers_each_turn_from_the_documents(emulator: Any, index: VectorStoreIndex, mode: str) -> None:
    recorder = Recorder()
    engine = index.as_chat_engine(chat_mode=mode, llm=recorded_llm(emulator, recorder), similarity_top_k=3)

    first = str(engine.chat("Why do otters hold hands while they sleep?"))
    assert first == OTTERS
    second = str(engine.chat("How many hills is Lisbon built on?"))
    assert second == LISBON, "the answer comes from the document that answers the question"

    if mode == "condense_plus_context":
        # The follow-up is condensed to a standalone question first, then answered with the context.
        assert len(recorder.bodies) == 3
        condense = recorder.bodies[1]["messages"][-1]["content"]
        assert "standalone question" in condense and "Follow Up Input: How many hills" in condense
    else:
        assert len(recorder.bodies) == 2
    final = recorder.bodies[-1]["messages"]
    assert final[0]["role"] == "system" and LISBON in final[0]["content"]
    assert [m["role"] for m in final[1:]] == ["user", "assistant", "user"]


@pytest.mark.parametrize("use_async", [False, True])
async def test_refine_answers_from_the_chunk_that_holds_the_fact(
    emulator: Any, index: VectorStoreIndex, use_async: bool
) -> None:
    recorder = Recorder()
    engine = index.as_query_engine(response_mode="refine", llm=recorded_llm(emulator, recorder), similarity_top_k=3)
    question = "How many hills is Lisbon built on?"
    response = await engine.aquery(question) if use_async else engine.query(question)

    assert str(response) == LISBON
    assert len(recorder.bodies) == 3, "one answer, then one refine per further chunk"
    refines = [body["messages"][-1]["content"] for body in recorder.bodies[1:]]
    assert all("Original Answer:" in text and "New Context:" in text for text in refines)
