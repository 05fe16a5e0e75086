"""Generated content: tool calls valid against their schemas, JSON output, reasoning formats, RAG answers."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from tests.emulator._helpers import GLM, MODEL, chat, sse_events

ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer", "description": "first"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
MULTIPLY = {
    "type": "function",
    "function": {
        "name": "multiply",
        "description": "Multiply two numbers",
        "parameters": ADD["function"]["parameters"],
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "the city"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["location", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
BOOKING = {
    "type": "function",
    "function": {
        "name": "book_trip",
        "description": "Book a trip for travellers",
        "parameters": {
            "type": "object",
            "$defs": {
                "traveller": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 2},
                        "age": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
                    },
                    "required": ["name", "age"],
                    "additionalProperties": False,
                }
            },
            "properties": {
                "destination": {"type": "string"},
                "travellers": {"type": "array", "items": {"$ref": "#/$defs/traveller"}, "minItems": 1, "maxItems": 3},
                "budget": {"type": "number", "exclusiveMinimum": 0},
                "refundable": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 2},
                "when": {"type": "string", "format": "date"},
                "meta": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["destination", "travellers", "budget", "refundable", "tags", "when", "meta"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
def client(emulator):
    with emulator.client() as client:
        yield client


def _calls(response):
    body = response.json()
    return body["choices"][0], body["choices"][0]["message"].get("tool_calls") or []


def _validate_calls(calls, tools):
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    for call in calls:
        assert re.fullmatch(r"[0-9a-f]{9}", call["id"])
        assert call["type"] == "function"
        jsonschema.validate(json.loads(call["function"]["arguments"]), schemas[call["function"]["name"]])


def test_tool_call_takes_values_from_the_prompt(client):
    choice, calls = _calls(chat(client, "What's the weather in Florence, Italy in celsius?", tools=[WEATHER]))
    assert choice["finish_reason"] == "tool_calls"
    assert "content" not in choice["message"]
    assert len(calls) == 1
    _validate_calls(calls, [WEATHER])
    args = json.loads(calls[0]["function"]["arguments"])
    assert args["location"].startswith("Florence")
    assert args["unit"] == "celsius"


def test_parallel_calls_with_numbers_in_order(client):
    _, calls = _calls(chat(client, "Add and multiply the number 2 and 3", model=GLM, tools=[ADD, MULTIPLY]))
    assert [c["function"]["name"] for c in calls] == ["add", "multiply"]
    assert all(json.loads(c["function"]["arguments"]) == {"a": 2, "b": 3} for c in calls)
    assert calls[0]["function"]["arguments"] == '{"a": 2, "b": 3}'  # formatted as captured
    _, single = _calls(
        chat(client, "Add and multiply the number 2 and 3", model=GLM, tools=[ADD, MULTIPLY], parallel_tool_calls=False)
    )
    assert len(single) == 1


def test_complex_schema_arguments_are_valid(client):
    prompt = "Book a trip to Zürich for 'Ana María' aged 34 with a budget of 1500, tags 'ski' and 'spa'"
    _, calls = _calls(chat(client, prompt, tools=[BOOKING], tool_choice="required"))
    _validate_calls(calls, [BOOKING])
    args = json.loads(calls[0]["function"]["arguments"])
    assert args["destination"] == "Zürich"
    assert "Ana María" in json.dumps(args, ensure_ascii=False)
    assert "Zürich" in calls[0]["function"]["arguments"]  # non-ASCII kept as is, not \\u-escaped


@pytest.mark.parametrize(
    ("tool_choice", "prompt", "expect_call"),
    [
        ("auto", "Tell me a joke about penguins", False),
        ("none", "What's the weather in Paris?", False),
        ("required", "Tell me a joke about penguins", True),
        ({"type": "function", "function": {"name": "add"}}, "Tell me a joke", True),
    ],
)
def test_tool_choice(client, tool_choice, prompt, expect_call):
    choice, calls = _calls(chat(client, prompt, tools=[WEATHER, ADD], tool_choice=tool_choice))
    assert bool(calls) is expect_call
    assert choice["finish_reason"] == ("tool_calls" if expect_call else "stop")
    if isinstance(tool_choice, dict):
        assert [c["function"]["name"] for c in calls] == ["add"]
    _validate_calls(calls, [WEATHER, ADD])


def test_answer_in_text_after_tool_result(client):
    _, calls = _calls(chat(client, "What's the weather in Oslo?", tools=[WEATHER]))
    messages = [
        {"role": "user", "content": "What's the weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "-3 C, light snow"},
    ]
    response = client.post("/chat/completions", json={"model": MODEL, "messages": messages, "tools": [WEATHER]})
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "-3 C, light snow" in choice["message"]["content"]
    assert "get_weather" in choice["message"]["content"]


def test_tool_calls_stream_as_one_whole_delta(client):
    events = sse_events(chat(client, "Add and multiply 4 and 5", model=GLM, tools=[ADD, MULTIPLY], stream=True).text)
    chunks = [e for e in events if e != "[DONE]"]
    with_calls = [c for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert len(with_calls) == 1
    calls = with_calls[0]["choices"][0]["delta"]["tool_calls"]
    assert [c["index"] for c in calls] == [0, 1]
    assert all(set(c) == {"function", "type", "id", "index"} for c in calls)
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"a": 4, "b": 5}] * 2
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-2] is with_calls[0]  # no empty-delta chunk after tool calls, as captured


SCHEMAS = [
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
        "required": ["city", "population"],
        "additionalProperties": False,
    },
    BOOKING["function"]["parameters"],
    {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
                        "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                        "status": {"type": "string", "enum": ["new", "used"]},
                        "price": {"type": "number", "multipleOf": 0.5},
                    },
                    "required": ["sku", "qty", "status", "price"],
                    "additionalProperties": False,
                },
            },
            "note": {"type": ["string", "null"]},
            "kind": {"const": "order"},
        },
        "required": ["items", "note", "kind"],
        "additionalProperties": False,
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_output_is_valid(client, schema, stream):
    response_format = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}
    prompt = "Order ABC-123 twice; the largest city is Tokyo with 14000000 people"
    response = chat(client, prompt, response_format=response_format, stream=stream, max_completion_tokens=2000)
    if stream:
        events = [e for e in sse_events(response.text) if e != "[DONE]"]
        content = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    else:
        content = response.json()["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(content), schema)


def test_json_object_uses_the_keys_the_prompt_names(client):
    prompt = "Return a JSON object with keys name and age for Alice, who is 30."
    content = chat(client, prompt, response_format={"type": "json_object"}).json()["choices"][0]["message"]["content"]
    data = json.loads(content)
    assert data == {"name": "Alice", "age": 30}
    plain = chat(client, "Describe the sea", response_format={"type": "json_object"}).json()
    assert isinstance(json.loads(plain["choices"][0]["message"]["content"]), dict)


def _reasoning(client, **fields):
    return chat(client, "What is the capital of France?", max_completion_tokens=500, **fields).json()


@pytest.mark.parametrize("fmt", [None, "parsed", "text_parsed"])
def test_reasoning_in_its_own_field(client, fmt):
    body = _reasoning(client, model=GLM, **({"reasoning_format": fmt} if fmt else {}))
    message = body["choices"][0]["message"]
    assert message["reasoning"]
    assert "<think>" not in message["content"]
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_raw_reasoning_goes_into_content(client):
    glm = _reasoning(client, model=GLM, reasoning_format="raw")["choices"][0]["message"]
    assert "reasoning" not in glm
    assert re.match(r"<think>.+</think>\S", glm["content"], re.DOTALL)
    oss = _reasoning(client, model=MODEL, reasoning_format="raw")["choices"][0]["message"]
    parsed = _reasoning(client, model=MODEL, reasoning_format="parsed")["choices"][0]["message"]
    assert "<think>" not in oss["content"]
    assert oss["content"].startswith(parsed["reasoning"])  # gpt-oss: no separator


def test_hidden_reasoning_is_dropped_but_counted(client):
    hidden = _reasoning(client, model=GLM, reasoning_format="hidden")
    parsed = _reasoning(client, model=GLM, reasoning_format="parsed")
    assert "reasoning" not in hidden["choices"][0]["message"]
    assert hidden["usage"]["completion_tokens"] == parsed["usage"]["completion_tokens"]
    assert hidden["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_raw_with_json_output_becomes_hidden(client):
    body = _reasoning(client, model=GLM, reasoning_format="raw", response_format={"type": "json_object"})
    json.loads(body["choices"][0]["message"]["content"])


def test_reasoning_effort_scales_and_none_disables(client):
    usages = {e: _reasoning(client, model=GLM, reasoning_effort=e)["usage"] for e in ("none", "low", "medium", "high")}
    tokens = {e: u.get("completion_tokens_details", {}).get("reasoning_tokens", 0) for e, u in usages.items()}
    assert "completion_tokens_details" not in usages["none"]  # as for models without reasoning
    assert tokens["none"] == 0
    assert 0 < tokens["low"] < tokens["medium"] < tokens["high"]
    off = _reasoning(client, model=GLM, disable_reasoning=True)["choices"][0]["message"]
    assert "reasoning" not in off


def test_reasoning_streams_before_content(client):
    events = [e for e in sse_events(chat(client, "Hi there", model=GLM, stream=True).text) if e != "[DONE]"]
    kinds = [next(iter(e["choices"][0]["delta"]), None) for e in events]
    first_content = kinds.index("content")
    assert "reasoning" in kinds[:first_content]
    assert "reasoning" not in kinds[first_content:]


def test_rag_prompt_is_answered_from_the_context(client):
    context = (
        "file_path: notes/eiffel.txt\n\n"
        "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 for the World's Fair. "
        "Bananas are rich in potassium. The tower is 330 metres tall."
    )
    prompt = (
        "Context information is below.\n---------------------\n"
        f"{context}\n---------------------\n"
        "Given the context information and not prior knowledge, answer the query.\n"
        "Query: How tall is the Eiffel Tower?\nAnswer: "
    )
    answer = chat(client, prompt, model=GLM, reasoning_effort="none").json()["choices"][0]["message"]["content"]
    assert "330 metres" in answer
    assert "Bananas" not in answer
    langchain_style = chat(
        client,
        f"Use the context to answer.\n\nContext: {context}\n\nQuestion: When was the tower completed?",
        model=GLM,
        reasoning_effort="none",
    ).json()["choices"][0]["message"]["content"]
    assert "1889" in langchain_style


def test_non_ascii_prompt_text_is_kept(client):
    search = {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the knowledge base",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    }
    _, calls = _calls(chat(client, "Search for «café crème» recipes", tools=[search]))
    assert json.loads(calls[0]["function"]["arguments"]) == {"query": "café crème"}
    _, calls = _calls(chat(client, "Search 東京の天気", tools=[search], tool_choice="required"))
    assert "東京の天気" in json.loads(calls[0]["function"]["arguments"])["query"]
