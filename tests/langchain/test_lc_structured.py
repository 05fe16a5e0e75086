"""Tools and structured output: request shapes, Cerebras-strict schemas, parsers (no network)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration
from langchain_core.runnables import RunnableBinding, RunnableSequence
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_json_schema
from pydantic import BaseModel, Field
from pydantic.v1 import BaseModel as BaseModelV1
from typing_extensions import TypedDict

from langchain_cerebras_paygo import ChatCerebras
from langchain_cerebras_paygo._structured import strict_schema, strip_added_nulls


class Joke(BaseModel):
    """A joke."""

    setup: str = Field(description="question to set up a joke")
    punchline: Optional[str] = Field(default=None, description="answer")  # noqa: UP045 - what users write
    rating: int = Field(default=5, description="1-10")


class JokeDict(TypedDict):
    setup: Annotated[str, ..., "question"]
    punchline: Annotated[Optional[str], None, "answer"]  # noqa: UP045


class JokeV1(BaseModelV1):
    setup: str
    punchline: Optional[str] = None  # noqa: UP045


@pytest.fixture
def llm() -> ChatCerebras:
    return ChatCerebras(model="gpt-oss-120b", api_key="csk-test")


def _binding(runnable: Any) -> RunnableBinding:  # type: ignore[type-arg]
    assert isinstance(runnable, RunnableSequence)
    first = runnable.first
    assert isinstance(first, RunnableBinding)
    return first


def _payload(llm: ChatCerebras, binding: RunnableBinding) -> dict[str, Any]:  # type: ignore[type-arg]
    kwargs = {k: v for k, v in binding.kwargs.items() if k != "ls_structured_output_format"}
    return llm._build_request([HumanMessage("hi")], **kwargs).to_payload()


def _parse(parser: Any, message: AIMessage) -> Any:
    return parser.parse_result([ChatGeneration(message=message)])


# --- strict schemas --------------------------------------------------------------------------


def test_strict_schema_closes_objects_and_keeps_optional_meaning() -> None:
    schema = Joke.model_json_schema()
    strict = strict_schema(schema)
    assert strict["additionalProperties"] is False
    assert strict["required"] == ["setup", "punchline", "rating"]
    # already nullable: unchanged; optional and not nullable: made nullable
    assert strict["properties"]["punchline"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert strict["properties"]["rating"] == {
        "description": "1-10",
        "title": "Rating",
        "anyOf": [{"type": "integer"}, {"type": "null"}],
    }
    assert schema["required"] == ["setup"], "the input schema is not modified"
    parsed = strip_added_nulls({"setup": "s", "punchline": None, "rating": None}, schema)
    assert parsed == {"setup": "s", "punchline": None}
    assert Joke.model_validate(parsed).rating == 5


def test_strict_schema_follows_refs_lists_type_arrays_and_drops_format() -> None:
    class Item(BaseModel):
        name: str
        when: str = Field(default="now", json_schema_extra={"format": "date-time"})

    class Order(BaseModel):
        items: list[Item]
        note: str | None = None
        tags: dict[str, int] = Field(default_factory=dict)

    schema = Order.model_json_schema()
    # strict mode cannot express a free-form ``dict`` field: such a schema is sent with strict=false
    assert strict_schema(schema) is None
    without_tags = {**schema, "properties": {k: v for k, v in schema["properties"].items() if k != "tags"}}
    strict = strict_schema(without_tags)
    assert strict is not None
    item = strict["$defs"]["Item"]
    assert item["additionalProperties"] is False
    assert item["required"] == ["name", "when"]
    assert "format" not in str(item)
    data = {"items": [{"name": "a", "when": None}], "note": None, "tags": None}
    assert strip_added_nulls(data, schema) == {"items": [{"name": "a"}], "note": None}

    assert strict_schema({"type": "object", "properties": {"x": {"type": ["string", "null"]}}}) == {
        "type": "object",
        "properties": {"x": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": ["x"],
        "additionalProperties": False,
    }
    inlined = strict_schema({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}], "title": "T"})
    assert inlined["required"] == ["a"] and "allOf" not in inlined


# --- with_structured_output --------------------------------------------------------------------


@pytest.mark.parametrize("schema", [Joke, JokeDict, Joke.model_json_schema(), JokeV1])
def test_json_schema_is_the_default_and_strict(llm: ChatCerebras, schema: Any) -> None:
    structured = llm.with_structured_output(schema)
    binding = _binding(structured)
    fmt = binding.kwargs["ls_structured_output_format"]
    assert fmt == {"kwargs": {"method": "json_schema", "strict": None}, "schema": convert_to_json_schema(schema)}
    payload = _payload(llm, binding)
    response_format = payload["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["additionalProperties"] is False
    assert "tools" not in payload and "tool_choice" not in payload
    parser = structured.last  # type: ignore[attr-defined]
    out = _parse(parser, AIMessage('{"setup": "Why?", "punchline": null, "rating": null}'))
    if isinstance(schema, type) and issubclass(schema, (BaseModel, BaseModelV1)):
        assert isinstance(out, schema)
        assert out.punchline is None
    elif schema is JokeDict:
        # langchain-core renders ``Optional[str] = None`` in a TypedDict as an optional string:
        # the strict-mode null is dropped again, so the key is absent (keys outside the schema stay).
        assert out == {"setup": "Why?", "rating": None}
    else:
        assert out == {"setup": "Why?", "punchline": None}


def test_json_schema_not_strict_sends_schema_as_given(llm: ChatCerebras) -> None:
    binding = _binding(llm.with_structured_output(Joke, strict=False))
    json_schema = _payload(llm, binding)["response_format"]["json_schema"]
    assert json_schema["strict"] is False
    assert "additionalProperties" not in json_schema["schema"]
    assert json_schema["description"] == "A joke."


def test_function_calling_forces_the_named_tool(llm: ChatCerebras) -> None:
    structured = llm.with_structured_output(Joke, method="function_calling")
    binding = _binding(structured)
    payload = _payload(llm, binding)
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "Joke"}}
    function = payload["tools"][0]["function"]
    assert function["strict"] is True
    assert function["parameters"]["required"] == ["setup", "punchline", "rating"]
    assert binding.kwargs["ls_structured_output_format"]["kwargs"]["method"] == "function_calling"
    message = AIMessage(
        "", tool_calls=[{"name": "Joke", "args": {"setup": "s", "punchline": "p", "rating": None}, "id": "1"}]
    )
    joke = _parse(structured.last, message)  # type: ignore[attr-defined]
    assert joke == Joke(setup="s", punchline="p", rating=5)


def test_json_mode(llm: ChatCerebras) -> None:
    structured = llm.with_structured_output(Joke, method="json_mode")
    binding = _binding(structured)
    assert _payload(llm, binding)["response_format"] == {"type": "json_object"}
    assert _parse(structured.last, AIMessage('{"setup": "a", "punchline": "b"}')).setup == "a"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="strict"):
        llm.with_structured_output(Joke, method="json_mode", strict=True)
    no_schema = llm.with_structured_output(None, method="json_mode")
    # langchain-core reads ["schema"] of any non-empty tracing dict: without a schema none is bound
    assert "ls_structured_output_format" not in _binding(no_schema).kwargs


def test_bad_arguments(llm: ChatCerebras) -> None:
    with pytest.raises(ValueError, match="method"):
        llm.with_structured_output(Joke, method="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema"):
        llm.with_structured_output(None)


def test_include_raw_shape(llm: ChatCerebras) -> None:
    structured = llm.with_structured_output(Joke, include_raw=True)
    assert isinstance(structured, RunnableSequence)
    # the parser half on its own: a parsing error is reported, not raised
    parser_half = structured.last
    ok = parser_half.invoke({"raw": AIMessage('{"setup": "s", "punchline": null, "rating": 3}')})
    assert ok["parsed"] == Joke(setup="s", rating=3) and ok["parsing_error"] is None
    bad = parser_half.invoke({"raw": AIMessage("not json")})
    assert bad["parsed"] is None and bad["parsing_error"] is not None


# --- bind_tools ------------------------------------------------------------------------------


@tool
def magic_function(value: int) -> int:
    """Apply a magic function."""
    return value + 2


class GetWeather(BaseModel):
    """Get the weather."""

    city: str


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("any", "required"),
        ("required", "required"),
        ("auto", "auto"),
        ("none", "none"),
        ("magic_function", {"type": "function", "function": {"name": "magic_function"}}),
        (
            {"type": "function", "function": {"name": "GetWeather"}},
            {"type": "function", "function": {"name": "GetWeather"}},
        ),
        (None, None),
        (False, None),
    ],
)
def test_tool_choice_mapping(llm: ChatCerebras, choice: Any, expected: Any) -> None:
    bound = llm.bind_tools([magic_function, GetWeather], tool_choice=choice)
    assert isinstance(bound, RunnableBinding)
    payload = llm._build_request([HumanMessage("hi")], **bound.kwargs).to_payload()
    assert [t["function"]["name"] for t in payload["tools"]] == ["magic_function", "GetWeather"]
    assert payload.get("tool_choice") == expected


def test_tool_choice_true_and_errors(llm: ChatCerebras) -> None:
    bound = llm.bind_tools([GetWeather], tool_choice=True)
    assert bound.kwargs["tool_choice"] == {"type": "function", "function": {"name": "GetWeather"}}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="exactly one"):
        llm.bind_tools([GetWeather, magic_function], tool_choice=True)
    with pytest.raises(ValueError, match="or one of the tools"):
        llm.bind_tools([GetWeather], tool_choice="other")


def test_bind_tools_strict_parallel_and_typeddict(llm: ChatCerebras) -> None:
    bound = llm.bind_tools([JokeDict, GetWeather.model_json_schema()], strict=True, parallel_tool_calls=False)
    kwargs = bound.kwargs  # type: ignore[attr-defined]
    assert kwargs["parallel_tool_calls"] is False
    functions = [t["function"] for t in kwargs["tools"]]
    assert all(f["strict"] is True for f in functions)
    assert "description" not in functions[0], "a TypedDict without docstring has no description"
