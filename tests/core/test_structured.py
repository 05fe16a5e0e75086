"""Cerebras strict JSON schemas (``cerebras_paygo._structured``): the rewrite, what cannot be strict,
the ``response_format``/tool bodies, the null fix-up, round trips and the emulator's answers."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Field

from cerebras_paygo._structured import (
    MAX_ANY_OF,
    make_response_format,
    schema_name,
    strict_function,
    strict_schema,
    strip_added_nulls,
)

# --- the models ------------------------------------------------------------------------------------


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class Inner(BaseModel):
    label: str
    score: float | None = None


class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str | None = None
    rating: int = 5


class Nested(BaseModel):
    items: list[Inner]
    count: int = 3
    note: str | None = None
    best: Inner | None = None
    fallback: Inner = Field(default_factory=lambda: Inner(label="none"), description="used when empty")


class Enums(BaseModel):
    color: Color
    colors: list[Color] = Field(default_factory=list)
    mode: Literal["fast", "slow"] = "fast"
    maybe: Color | None = None


class Formats(BaseModel):
    when: datetime
    day: date | None = None
    contact: str = Field(default="a@b.c", json_schema_extra={"format": "email"})


class Recursive(BaseModel):
    name: str
    children: list[Recursive] = Field(default_factory=list)


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")

    a: int
    b: int = 2


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    lives: int | None


class Pets(BaseModel):
    pets: list[Annotated[Cat | Dog, Field(discriminator="kind")]]
    first: Cat | Dog | None = None


class FiveWay(BaseModel):
    value: int | str | bool | list[int] | None = None


class SixWay(BaseModel):
    value: int | str | float | bool | list[int] | Inner


class FreeForm(BaseModel):
    tags: dict[str, int]


class Untyped(BaseModel):
    anything: Any


class Pair(BaseModel):
    pair: tuple[int, str]


class Empty(BaseModel):
    pass


STRICTABLE: list[type[BaseModel]] = [Joke, Inner, Nested, Enums, Formats, Recursive, Open, Pets, FiveWay, Empty]
NOT_STRICTABLE: list[type[BaseModel]] = [SixWay, FreeForm, Untyped, Pair]

# Values valid for each strictable model, given as a model leaves them out (optional fields unset).
SAMPLES: dict[type[BaseModel], list[dict[str, Any]]] = {
    Joke: [{"setup": "s"}, {"setup": "s", "punchline": None, "rating": 7}],
    Inner: [{"label": "a"}, {"label": "a", "score": 0.5}],
    Nested: [
        {"items": []},
        {"items": [{"label": "a"}, {"label": "b", "score": None}], "best": {"label": "c"}, "fallback": {"label": "d"}},
    ],
    Enums: [{"color": "red"}, {"color": "green", "colors": ["red"], "mode": "slow", "maybe": None}],
    Formats: [{"when": "2026-01-15T09:30:00Z"}, {"when": "2026-01-15T09:30:00Z", "day": "2026-01-16"}],
    Recursive: [{"name": "root", "children": [{"name": "leaf"}, {"name": "mid", "children": [{"name": "x"}]}]}],
    Open: [{"a": 1}],
    Pets: [
        {"pets": [{"kind": "cat"}, {"kind": "dog", "lives": None}]},
        {"pets": [], "first": {"kind": "dog", "lives": 1}},
    ],
    FiveWay: [{}, {"value": [1, 2]}, {"value": None}],
    Empty: [{}],
}


# --- helpers -----------------------------------------------------------------------------------------


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def assert_cerebras_strict(schema: dict[str, Any]) -> None:
    """What Cerebras' strict mode asks of a schema (docs/cerebras-api.md §2.2)."""
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "$ref" not in schema and schema.get("type", "object") == "object", "the top level is an object"
    for node in _nodes(schema):
        assert "allOf" not in node and "format" not in node
        assert not isinstance(node.get("type"), list), node
        assert len(node.get("anyOf") or ()) <= MAX_ANY_OF
        assert node.get("items", {}) is not True
        if node.get("type") == "object" or isinstance(node.get("properties"), dict):
            assert isinstance(node.get("properties"), dict), f"free-form object {node}"
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])


def _validator(schema: dict[str, Any], root: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**schema, "$defs": root.get("$defs", {})})


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def as_strict_answer(value: Any, node: Any, root: dict[str, Any]) -> Any:
    """``value`` as a strict-mode model writes it: every property it leaves out is ``null``."""
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return value
    for branch in [*(node.get("anyOf") or ()), *(node.get("oneOf") or ())]:
        candidate = as_strict_answer(value, branch, root)
        if _validator(_resolve(branch, root), root).is_valid(candidate):
            return candidate
    if isinstance(value, dict) and isinstance(node.get("properties"), dict):
        return {
            name: as_strict_answer(value[name], sub, root) if name in value else None
            for name, sub in node["properties"].items()
        }
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [as_strict_answer(item, node["items"], root) for item in value]
    return value


# Hand-written schemas and their strict forms.
HAND_WRITTEN = [
    pytest.param(
        {"type": "object", "properties": {"x": {"type": ["string", "null"]}}},
        {
            "type": "object",
            "properties": {"x": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
            "required": ["x"],
            "additionalProperties": False,
        },
        id="type-list-becomes-anyOf",
    ),
    pytest.param(
        {
            "type": "object",
            "properties": {"y": {"type": ["integer", "string"], "minimum": 1, "maxLength": 3, "title": "Y"}},
            "required": ["y"],
        },
        {
            "type": "object",
            "properties": {
                "y": {
                    "title": "Y",
                    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 3}],
                }
            },
            "required": ["y"],
            "additionalProperties": False,
        },
        id="type-list-keywords-go-to-their-own-type",
    ),
    pytest.param(
        {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}], "title": "T"},
        {
            "type": "object",
            "properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
            "title": "T",
            "required": ["a"],
            "additionalProperties": False,
        },
        id="one-allOf-is-inlined",
    ),
    pytest.param(
        {
            "type": "object",
            "properties": {"c": {"$ref": "#/$defs/a~1b"}},
            "required": ["c"],
            "$defs": {"a/b": {"type": "string", "format": "uuid"}},
        },
        {
            "type": "object",
            "properties": {"c": {"$ref": "#/$defs/a~1b"}},
            "required": ["c"],
            "$defs": {"a/b": {"type": "string"}},
            "additionalProperties": False,
        },
        id="escaped-ref-and-format",
    ),
    pytest.param(
        {"type": "object", "properties": {"n": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}},
        {
            "type": "object",
            "properties": {"n": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}},
            "required": ["n"],
            "additionalProperties": False,
        },
        id="null-joins-a-short-anyOf",
    ),
    pytest.param(
        {"type": "object", "properties": {"e": {"enum": ["a", None]}, "k": {"const": "x"}}},
        {
            "type": "object",
            "properties": {"e": {"enum": ["a", None]}, "k": {"anyOf": [{"const": "x"}, {"type": "null"}]}},
            "required": ["e", "k"],
            "additionalProperties": False,
        },
        id="enum-with-null-stays-const-gets-null",
    ),
]


# --- strict_schema -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", STRICTABLE, ids=lambda m: m.__name__)
def test_pydantic_schemas_become_cerebras_strict_and_the_input_stays(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    before = copy.deepcopy(schema)
    strict = strict_schema(schema)
    assert strict is not None
    assert_cerebras_strict(strict)
    assert schema == before, "the input schema is not modified"


@pytest.mark.parametrize("model", NOT_STRICTABLE, ids=lambda m: m.__name__)
def test_what_strict_mode_cannot_express_is_none_and_sent_as_it_is(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    assert strict_schema(schema) is None
    spec = make_response_format(model.__name__, schema, strict=True)["json_schema"]
    assert spec == {"name": model.__name__, "schema": schema, "strict": False}


@pytest.mark.parametrize(("schema", "expected"), HAND_WRITTEN)
def test_hand_written_schemas(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    strict = strict_schema(schema)
    assert strict == expected
    assert_cerebras_strict(expected)


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"allOf": [{"type": "object", "properties": {}}, {"required": []}]}, id="allOf-of-two"),
        pytest.param({"type": "object", "properties": {"a": {"type": "array", "items": True}}}, id="items-true"),
        pytest.param({"type": "object", "properties": {"a": {"type": "array"}}}, id="array-without-items"),
        pytest.param({"type": "object", "properties": {"a": {"not": {"type": "null"}}}}, id="not"),
        pytest.param({"type": "object", "properties": {"a": {"title": "A"}}}, id="untyped"),
        pytest.param({"type": "object", "patternProperties": {"^x": {"type": "integer"}}}, id="patternProperties"),
        pytest.param({"type": "object", "additionalProperties": {"type": "string"}}, id="dict-of-strings"),
        pytest.param({"type": ["string", "integer", "number", "boolean", "array", "null"], "items": {}}, id="6-types"),
        pytest.param({"type": "object", "properties": {"r": {"$ref": "#/$defs/Missing"}}}, id="dangling-ref"),
        pytest.param({"type": "object", "properties": {"r": {"$ref": "other.json#/X"}}}, id="remote-ref"),
        pytest.param(
            {"type": "object", "properties": {"r": {"$ref": "#/$defs/D"}}, "$defs": {"D": {"type": "object"}}},
            id="free-form-def",
        ),
        pytest.param(
            {"type": "object", "properties": {"u": {"oneOf": [{"type": "integer"}] * (MAX_ANY_OF + 1)}}},
            id="six-oneOf",
        ),
    ],
)
def test_hand_written_schemas_strict_mode_cannot_express(schema: dict[str, Any]) -> None:
    assert strict_schema(schema) is None
    response_format = make_response_format("x", schema, strict=True)
    assert response_format["json_schema"]["strict"] is False
    assert response_format["json_schema"]["schema"] == schema


def test_optional_fields_become_required_and_nullable() -> None:
    schema = Joke.model_json_schema()
    strict = strict_schema(schema)
    assert strict is not None
    assert strict["required"] == ["setup", "punchline", "rating"]
    # already nullable: unchanged; optional and not nullable: made nullable (the default goes)
    assert strict["properties"]["punchline"] == schema["properties"]["punchline"]
    assert strict["properties"]["rating"] == {"title": "Rating", "anyOf": [{"type": "integer"}, {"type": "null"}]}


def test_a_recursive_model_is_inlined_at_the_top_and_keeps_its_defs() -> None:
    schema = Recursive.model_json_schema()
    assert "$ref" in schema
    strict = strict_schema(schema)
    assert strict is not None
    assert strict["type"] == "object" and "$ref" not in strict
    assert strict["$defs"]["Recursive"]["additionalProperties"] is False
    assert strict["properties"]["children"]["anyOf"][0]["items"] == {"$ref": "#/$defs/Recursive"}


def test_an_open_model_is_closed() -> None:
    strict = strict_schema(Open.model_json_schema())
    assert strict is not None and strict["additionalProperties"] is False


# --- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "value"),
    [(model, value) for model, values in SAMPLES.items() for value in values],
    ids=lambda x: x.__name__ if isinstance(x, type) else json.dumps(x)[:40],
)
def test_round_trip_through_a_strict_answer(model: type[BaseModel], value: dict[str, Any]) -> None:
    expected = model.model_validate(value)
    schema = model.model_json_schema()
    jsonschema.validate(value, schema)
    strict = strict_schema(schema)
    assert strict is not None
    answer = as_strict_answer(value, strict, strict)
    jsonschema.validate(answer, strict)
    stripped = strip_added_nulls(answer, schema)
    jsonschema.validate(stripped, schema)
    assert model.model_validate(stripped) == expected
    assert strip_added_nulls(value, schema) == value, "a value valid for the original schema stays as it is"


def test_strip_drops_only_the_nulls_the_original_does_not_allow() -> None:
    schema = Nested.model_json_schema()
    answer = {
        "items": [{"label": "a", "score": None}],
        "count": None,
        "note": None,
        "best": None,
        "fallback": None,
        "unknown": None,
    }
    before = copy.deepcopy(answer)
    stripped = strip_added_nulls(answer, schema)
    assert stripped == {"items": [{"label": "a", "score": None}], "note": None, "best": None, "unknown": None}
    assert answer == before, "the value is not modified"
    assert Nested.model_validate(stripped).count == 3


def test_strip_takes_the_union_branch_the_keys_name() -> None:
    class A(BaseModel):
        x: int = 1

    class B(BaseModel):
        x: int | None
        y: str

    class Holder(BaseModel):
        item: A | B

    schema = Holder.model_json_schema()
    value = {"item": {"x": None, "y": "s"}}
    assert strip_added_nulls(value, schema) == value, "B requires x; A would have dropped it"
    assert strip_added_nulls({"item": {"x": None}}, schema) == {"item": {}}
    assert Holder.model_validate(strip_added_nulls(value, schema)).item == B(x=None, y="s")


def test_strip_follows_discriminators_and_partial_objects() -> None:
    schema = Pets.model_json_schema()
    value = {"pets": [{"kind": "cat", "lives": None}, {"kind": "dog", "lives": None}], "first": None}
    assert strip_added_nulls(value, schema) == {
        "pets": [{"kind": "cat"}, {"kind": "dog", "lives": None}],
        "first": None,
    }
    assert strip_added_nulls({"pets": [{"kind": "cat", "lives": None}]}, schema) == {"pets": [{"kind": "cat"}]}


def test_strip_keeps_what_it_cannot_be_sure_about() -> None:
    class Loose(BaseModel):
        anything: Any = None
        tags: dict[str, int] | None = None
        pair: tuple[int, int | None] = (1, None)

    schema = Loose.model_json_schema()
    value = {"anything": None, "tags": {"a": 1}, "pair": [1, None], "more": None}
    assert strip_added_nulls(value, schema) == value
    assert strip_added_nulls("text", schema) == "text"
    assert strip_added_nulls({"a": None}, {"type": "object"}) == {"a": None}
    assert strip_added_nulls([None], {"type": "array", "items": True}) == [None]


# --- request bodies ---------------------------------------------------------------------------------------


def test_make_response_format() -> None:
    schema = Joke.model_json_schema()
    strict = make_response_format("Joke", schema, strict=True, description="A joke.")
    assert strict == {
        "type": "json_schema",
        "json_schema": {"name": "Joke", "schema": strict_schema(schema), "strict": True, "description": "A joke."},
    }
    loose = make_response_format("Page[Joke]", schema, strict=False)
    assert loose["json_schema"] == {"name": "Page_Joke_", "schema": schema, "strict": False}
    assert loose["json_schema"]["schema"] is not schema
    assert schema_name("x" * 80) == "x" * 64 and schema_name("") == "output"


def test_strict_function() -> None:
    function = {"name": "joke", "description": "d", "parameters": Joke.model_json_schema()}
    made = strict_function(function, strict=True)
    assert made["strict"] is True and made["parameters"] == strict_schema(function["parameters"])
    assert "strict" not in function, "the input is not modified"
    assert strict_function(function, strict=False) == {**function, "strict": False}
    assert strict_function({**function, "strict": True}, strict=None) == function
    free = {"name": "tag", "parameters": FreeForm.model_json_schema()}
    assert strict_function(free, strict=True) == {**free, "strict": False}
    empty = strict_function({"name": "ping"}, strict=True)
    assert empty["parameters"] == {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


# --- the emulator -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", STRICTABLE + NOT_STRICTABLE, ids=lambda m: m.__name__)
def test_the_emulator_answers_every_response_format_we_send(emulator: Any, model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    response_format = make_response_format(model.__name__, schema, strict=True)
    body = {
        "model": "gpt-oss-120b",
        "messages": [{"role": "user", "content": "Fill it in for 'Oslo', 3 items, 2026-01-15."}],
        "response_format": response_format,
    }
    with emulator.client() as client:
        response = client.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer = json.loads(response.json()["choices"][0]["message"]["content"])
    jsonschema.validate(answer, response_format["json_schema"]["schema"])
    stripped = strip_added_nulls(answer, schema)
    jsonschema.validate(stripped, schema)
    if model is not Formats:  # strict mode drops ``format``: any string may come back for a date
        model.model_validate(stripped)


@pytest.mark.parametrize(("schema", "expected"), HAND_WRITTEN)
def test_the_emulator_answers_the_hand_written_strict_schemas(
    emulator: Any, schema: dict[str, Any], expected: dict[str, Any]
) -> None:
    response_format = make_response_format("out", schema, strict=True)
    assert response_format["json_schema"]["schema"] == expected
    body = {
        "model": "gpt-oss-120b",
        "messages": [{"role": "user", "content": "Go"}],
        "response_format": response_format,
    }
    with emulator.client() as client:
        response = client.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer = json.loads(response.json()["choices"][0]["message"]["content"])
    jsonschema.validate(answer, expected)
    jsonschema.validate(strip_added_nulls(answer, schema), schema)
