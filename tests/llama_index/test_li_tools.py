"""Tools, agents, structured output and a query engine over real HTTP against the emulator."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from llama_index.core import Document, Settings, SummaryIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.prompts import PromptTemplate
from pydantic import BaseModel, Field

from cerebras_paygo._catalog import Catalog, default_catalog
from cerebras_paygo._client import CerebrasClient
from llama_index_cerebras import Cerebras
from tests.llama_index.helpers import (
    MULTIPLY,
    PATHS,
    WEATHER,
    Recorder,
    fresh_key,
    get_weather,
    llm_for,
    recorded_llm,
    run_chat,
)

# --- one turn with tools ---------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_chat_with_tools_and_get_tool_calls_on_every_path(emulator: Any, path: str) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder)
    prepared = llm._prepare_chat_with_tools([WEATHER], user_msg="What is the weather in 'Oslo'?")
    messages = prepared.pop("messages")
    response = await run_chat(llm, path, messages, **prepared)

    calls = llm.get_tool_calls_from_response(response)
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert calls[0].tool_id
    blocks = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    assert [(b.tool_call_id, b.tool_name) for b in blocks] == [(calls[0].tool_id, "get_weather")]
    raw_calls = response.message.additional_kwargs["tool_calls"]
    assert json.loads(raw_calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    assert response.additional_kwargs["finish_reason"] == "tool_calls"

    body = recorder.bodies[0]
    assert body["tool_choice"] == "auto"
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert "parallel_tool_calls" not in body, "gpt-oss cannot call tools in parallel: not sent"

    # The tool's answer goes back as a wire ``tool`` message after the assistant's ``tool_calls``.
    result = ChatMessage(
        role=MessageRole.TOOL,
        content=get_weather("Oslo"),
        additional_kwargs={"tool_call_id": calls[0].tool_id},
    )
    final = await run_chat(llm, path, [*messages, response.message, result], tools=body["tools"])
    assert "21 degrees" in (final.message.content or "")
    sent = recorder.bodies[-1]["messages"]
    assert sent[-2]["role"] == "assistant"
    assert sent[-2]["tool_calls"] == [
        {
            "id": calls[0].tool_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": raw_calls[0]["function"]["arguments"]},
        }
    ]
    assert sent[-2].get("reasoning"), "the reasoning of the tool-calling turn goes back too"
    assert "content" not in sent[-2]
    assert sent[-1] == {"role": "tool", "content": get_weather("Oslo"), "tool_call_id": calls[0].tool_id}


def test_predict_and_call_runs_the_function_tool(emulator: Any) -> None:
    llm = llm_for(emulator)
    output = llm.predict_and_call([WEATHER, MULTIPLY], user_msg="What is the weather in 'Lisbon'?")
    assert output.response == "It is 21 degrees and sunny in Lisbon."
    assert output.sources[0].tool_name == "get_weather"
    assert output.sources[0].raw_input == {"args": (), "kwargs": {"city": "Lisbon"}}


async def test_apredict_and_call(emulator: Any) -> None:
    llm = llm_for(emulator)
    output = await llm.apredict_and_call([MULTIPLY], user_msg="Please multiply 6 and 7", tool_required=True)
    assert output.response == "42"


@pytest.mark.parametrize(
    ("tool_choice", "tool_required", "expected"),
    [
        (None, False, "auto"),
        (None, True, "required"),
        ("none", False, "none"),
        ("any", False, "required"),
        ("multiply", False, {"type": "function", "function": {"name": "multiply"}}),
    ],
)
def test_tool_choice_is_mapped(emulator: Any, tool_choice: Any, tool_required: bool, expected: Any) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder)
    response = llm.chat_with_tools(
        [WEATHER, MULTIPLY], user_msg="Multiply 3 and 4", tool_choice=tool_choice, tool_required=tool_required
    )
    assert recorder.bodies[0]["tool_choice"] == expected
    calls = llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
    if expected == "none":
        assert calls == []
        with pytest.raises(ValueError, match="Expected at least one tool call"):
            llm.get_tool_calls_from_response(response)
    else:
        assert [c.tool_name for c in calls] == ["multiply"]


def test_unknown_tool_choice_is_refused_before_sending(emulator: Any) -> None:
    llm = llm_for(emulator)
    with pytest.raises(ValueError, match="not 'auto'"):
        llm.chat_with_tools([WEATHER], user_msg="hi", tool_choice="nope")
    assert emulator.stats()["requests"] == 0


def test_parallel_tool_calls_on_a_model_that_has_them(emulator: Any) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder, model="zai-glm-4.7")
    tools = [WEATHER, MULTIPLY]
    prompt = "Get the weather in 'Rome' and multiply 2 and 5"
    both = llm.chat_with_tools(tools, user_msg=prompt, allow_parallel_tool_calls=True)
    assert recorder.bodies[-1]["parallel_tool_calls"] is True
    assert sorted(c.tool_name for c in llm.get_tool_calls_from_response(both)) == ["get_weather", "multiply"]
    one = llm.chat_with_tools(tools, user_msg=prompt, allow_parallel_tool_calls=False)
    assert recorder.bodies[-1]["parallel_tool_calls"] is False
    assert len(llm.get_tool_calls_from_response(one)) == 1


def test_multiple_calls_are_cut_to_one_when_parallel_calls_are_not_allowed(emulator: Any) -> None:
    llm = llm_for(emulator, model="zai-glm-4.7", additional_kwargs={"parallel_tool_calls": True})
    response = llm.chat_with_tools(
        [WEATHER, MULTIPLY], user_msg="Get the weather in 'Rome' and multiply 2 and 5", allow_parallel_tool_calls=False
    )
    assert len(llm.get_tool_calls_from_response(response)) == 1
    assert len(response.message.additional_kwargs["tool_calls"]) == 1


@pytest.mark.parametrize("use_async", [False, True])
async def test_streaming_tool_calls(emulator: Any, use_async: bool) -> None:
    llm = llm_for(emulator)
    if use_async:
        responses = [
            r async for r in await llm.astream_chat_with_tools([WEATHER], user_msg="What is the weather in 'Paris'?")
        ]
    else:
        responses = list(llm.stream_chat_with_tools([WEATHER], user_msg="What is the weather in 'Paris'?"))
    calls = llm.get_tool_calls_from_response(responses[-1])
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert responses[-1].additional_kwargs["finish_reason"] == "tool_calls"
    assert responses[-1].additional_kwargs["total_tokens"] > 0


def test_strict_tools_send_a_closed_schema(emulator: Any) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder)
    llm.chat_with_tools([MULTIPLY], user_msg="Multiply 3 and 4", strict=True)
    function = recorder.bodies[0]["tools"][0]["function"]
    assert function["strict"] is True
    assert function["parameters"]["additionalProperties"] is False
    assert function["parameters"]["required"] == ["a", "b"]


def test_history_with_tool_call_blocks_only_or_raw_calls_only(emulator: Any) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder)
    by_block = ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[ToolCallBlock(tool_call_id="abc123def", tool_name="multiply", tool_kwargs={"a": 2, "b": 3})],
    )
    by_kwargs = ChatMessage(
        role=MessageRole.ASSISTANT,
        content="",
        additional_kwargs={
            "tool_calls": [
                {"id": "abc123def", "type": "function", "function": {"name": "multiply", "arguments": '{"a":2,"b":3}'}}
            ]
        },
    )
    result = ChatMessage(role=MessageRole.TOOL, content="6", additional_kwargs={"tool_call_id": "abc123def"})
    for assistant in (by_block, by_kwargs):
        llm.chat([ChatMessage(role=MessageRole.USER, content="Multiply 2 and 3"), assistant, result])
        sent = recorder.bodies[-1]["messages"][1]
        assert sent["role"] == "assistant"
        assert sent["tool_calls"][0]["id"] == "abc123def"
        assert json.loads(sent["tool_calls"][0]["function"]["arguments"]) == {"a": 2, "b": 3}
    assert recorder.bodies[1]["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"a":2,"b":3}'


def test_a_tool_result_without_its_call_id_is_refused(emulator: Any) -> None:
    llm = llm_for(emulator)
    with pytest.raises(ValueError, match="tool_call_id"):
        llm.chat([ChatMessage(role=MessageRole.TOOL, content="6")])
    assert emulator.stats()["requests"] == 0


# --- agents -----------------------------------------------------------------------------------


# The workflow library inspects the agent with ``inspect.getmembers``, touching pydantic's
# deprecated attributes; that is llama-index's own noise, not this adapter's.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")
@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_runs_a_tool_loop(emulator: Any, streaming: bool) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder)
    agent = FunctionAgent(
        tools=[WEATHER, MULTIPLY],
        llm=llm,
        system_prompt="You are a helpful assistant.",
        streaming=streaming,
    )
    result = await agent.run(user_msg="What is the weather in 'Madrid'?")
    assert [call.tool_name for call in result.tool_calls] == ["get_weather"]
    assert result.tool_calls[0].tool_kwargs == {"city": "Madrid"}
    assert "It is 21 degrees and sunny in Madrid." in str(result.response.content)
    assert len(recorder.bodies) == 2
    second = recorder.bodies[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert second[3]["tool_call_id"] == second[2]["tool_calls"][0]["id"]
    assert emulator.stats()["statuses"] == {"200": 2}


# --- structured output --------------------------------------------------------------------------


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int
    city: str | None = None
    nickname: str = Field(default="none", description="What friends call them")


@pytest.mark.parametrize("use_async", [False, True])
async def test_structured_predict_uses_a_strict_json_schema(emulator: Any, use_async: bool) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder)
    prompt = PromptTemplate("Extract the person: {text}")
    text = "'Ada' is 36 years old and lives in 'London'."
    if use_async:
        person = await llm.astructured_predict(Person, prompt, text=text)
    else:
        person = llm.structured_predict(Person, prompt, text=text)
    assert isinstance(person, Person)
    assert isinstance(person.age, int)
    body = recorder.bodies[0]
    assert "tools" not in body and "tool_choice" not in body
    spec = body["response_format"]["json_schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert spec["name"] == "Person" and spec["strict"] is True
    assert spec["schema"]["additionalProperties"] is False
    assert spec["schema"]["required"] == ["name", "age", "city", "nickname"]
    assert body["messages"][-1]["content"] == f"Extract the person: {text}"


def test_stream_structured_predict_ends_with_the_whole_object(emulator: Any) -> None:
    llm = llm_for(emulator)
    prompt = PromptTemplate("Extract the person: {text}")
    outputs = list(llm.stream_structured_predict(Person, prompt, text="'Bo' is 7."))
    assert outputs and isinstance(outputs[-1], Person)


def test_structured_predict_falls_back_to_function_calling(emulator: Any) -> None:
    from llama_index.core.types import PydanticProgramMode

    recorder = Recorder()
    llm = recorded_llm(emulator, recorder, pydantic_program_mode=PydanticProgramMode.FUNCTION)
    person = llm.structured_predict(Person, PromptTemplate("Extract: {text}"), text="'Ada' is 36.")
    assert isinstance(person, Person)
    body = recorder.bodies[0]
    assert body["tool_choice"] == "required" and body["tools"][0]["function"]["name"] == "Person"
    assert "response_format" not in body


def test_structured_predict_uses_function_calling_when_the_catalog_has_no_json_schema(emulator: Any) -> None:
    data = copy.deepcopy(dict(default_catalog().as_dict()))
    for model in data["models"]:
        model["capabilities"]["json_schema"] = False
    recorder = Recorder()
    client = CerebrasClient(
        base_url=emulator.base_url,
        api_key=fresh_key(emulator),
        catalog=Catalog(data),
        http_client=httpx.Client(event_hooks={"request": [recorder]}),
    )
    llm = Cerebras(client=client, max_tokens=256)
    person = llm.structured_predict(Person, PromptTemplate("Extract: {text}"), text="'Ada' is 36.")
    assert isinstance(person, Person)
    body = recorder.bodies[0]
    assert "response_format" not in body
    assert body["tool_choice"] == "required" and [t["function"]["name"] for t in body["tools"]] == ["Person"]


# --- a query engine ------------------------------------------------------------------------------


def test_query_engine_answers_from_the_documents(emulator: Any) -> None:
    saved_llm, saved_embed = Settings._llm, Settings._embed_model
    try:
        Settings.llm = llm_for(emulator)
        Settings.embed_model = MockEmbedding(embed_dim=8)
        documents = [
            Document(text="The Cerebras wafer-scale engine is the largest chip ever built for AI workloads."),
            Document(text="Otters hold hands while they sleep so that they do not drift apart in the water."),
            Document(text="The city of Lisbon is built on seven hills overlooking the Tagus river."),
        ]
        index = SummaryIndex.from_documents(documents)
        response = index.as_query_engine().query("Why do otters hold hands while they sleep?")
    finally:
        Settings._llm, Settings._embed_model = saved_llm, saved_embed
    assert "Otters hold hands while they sleep" in str(response)
    assert emulator.stats()["statuses"] == {"200": 1}


def test_text_block_only_messages_and_a_system_prompt(emulator: Any) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder, system_prompt="Answer in one word.")
    out = llm.predict(PromptTemplate("Say hi in {language}"), language="French")
    assert out == "Bonjour !"
    assert recorder.bodies[0]["messages"][0] == {"role": "system", "content": "Answer in one word."}
    llm.chat([ChatMessage(role=MessageRole.USER, blocks=[TextBlock(text="Say "), TextBlock(text="hi")])])
    assert recorder.bodies[-1]["messages"] == [{"role": "user", "content": "Say hi"}]
