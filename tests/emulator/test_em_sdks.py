"""The official cerebras-cloud-sdk and openai clients talk to the emulator and parse every response."""

from __future__ import annotations

import json
from typing import Literal

import openai
import pytest
from cerebras.cloud.sdk import Cerebras
from cerebras.cloud.sdk import RateLimitError as CerebrasRateLimitError
from pydantic import BaseModel

from tests.emulator._helpers import GLM, MODEL

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "user", "content": "What's the weather in Lisbon in celsius?"}]


class City(BaseModel):
    city: str
    population: int
    size: Literal["small", "medium", "large"]


class GetWeather(BaseModel):
    """Get the current weather for a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"]


@pytest.fixture(params=[True, False], ids=["warm", "no-warm"])
def cerebras(emulator, request):
    client = Cerebras(api_key=emulator.api_key, base_url=emulator.root_url, warm_tcp_connection=request.param)
    yield client
    client.close()


@pytest.fixture
def oai(emulator):
    client = openai.OpenAI(api_key=emulator.api_key, base_url=emulator.base_url)
    yield client
    client.close()


def test_cerebras_sdk_plain_and_stream(cerebras):
    question = [{"role": "user", "content": "Explain how rainbows form"}]
    response = cerebras.chat.completions.create(model=MODEL, messages=question)
    assert response.choices[0].message.content
    assert response.choices[0].message.reasoning
    assert response.usage.total_tokens > 0
    assert isinstance(response.time_info.created, float)
    chunks = list(cerebras.chat.completions.create(model=MODEL, messages=question, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == response.choices[0].message.content
    assert "".join(c.choices[0].delta.reasoning or "" for c in chunks) == response.choices[0].message.reasoning
    assert chunks[-1].usage.completion_tokens == response.usage.completion_tokens
    assert chunks[-1].time_info.created > 0


def test_cerebras_sdk_tools_and_json_schema(cerebras):
    response = cerebras.chat.completions.create(model=GLM, messages=MESSAGES, tools=[WEATHER])
    call = response.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Lisbon", "unit": "celsius"}
    stream = cerebras.chat.completions.create(model=GLM, messages=MESSAGES, tools=[WEATHER], stream=True)
    streamed = [tc for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert streamed[0].function.arguments == call.function.arguments
    structured = cerebras.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tokyo has 14000000 people"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True}},
    )
    assert json.loads(structured.choices[0].message.content) == {"city": "Tokyo", "population": 14000000}


def test_cerebras_sdk_models_and_errors(emulator, cerebras):
    assert [m.id for m in cerebras.models.list().data] == ["gpt-oss-120b", "zai-glm-4.7"]
    assert cerebras.models.retrieve("zai-glm-4.7").owned_by == "Z.ai"
    emulator.set_faults(rate_limit_next=5)
    with pytest.raises(CerebrasRateLimitError) as info:
        cerebras.with_options(max_retries=0).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert info.value.status_code == 429
    assert info.value.body["code"] == "token_quota_exceeded"


def test_openai_plain_and_stream(oai):
    question = [{"role": "user", "content": "Explain how rainbows form"}]
    response = oai.chat.completions.create(model=MODEL, messages=question, max_completion_tokens=500)
    assert response.choices[0].message.content
    assert response.usage.completion_tokens > 0
    chunks = list(
        oai.chat.completions.create(
            model=MODEL,
            messages=question,
            max_completion_tokens=500,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == response.choices[0].message.content
    assert chunks[-1].usage.total_tokens == response.usage.total_tokens


def test_openai_tools_and_structured_output(oai):
    response = oai.chat.completions.create(model=GLM, messages=MESSAGES, tools=[WEATHER])
    assert response.choices[0].finish_reason == "tool_calls"
    parsed = oai.chat.completions.parse(model=GLM, messages=MESSAGES, tools=[openai.pydantic_function_tool(GetWeather)])
    call = parsed.choices[0].message.tool_calls[0]
    assert call.function.parsed_arguments == GetWeather(city="Lisbon", unit="celsius")
    city = oai.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Tokyo is a large city of 14000000"}], response_format=City
    )
    assert city.choices[0].message.parsed == City(city="Tokyo", population=14000000, size="large")
    with oai.chat.completions.stream(model=GLM, messages=MESSAGES, tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_openai_error_mapping(emulator, oai):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="csk-wrong", base_url=emulator.base_url, max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="llama3.1-8b", messages=MESSAGES)
    emulator.set_balance(emulator.paygo_org, 0)
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert info.value.status_code == 402
