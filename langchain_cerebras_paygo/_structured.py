"""Structured output for LangChain: schema conversion and output parsers over the core's rules.

Cerebras' strict-mode rules (closed objects, every property required, optional ones nullable,
no ``format``, no type lists, what cannot be strict at all) live in ``cerebras_paygo._structured``;
this module turns LangChain's schemas (pydantic classes v1/v2, TypedDicts, JSON schemas) into
the core's inputs and wraps its ``strip_added_nulls`` in LangChain output parsers, so a missing
optional field still takes its default (pydantic) or stays absent (TypedDict, JSON schema).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
from langchain_core.exceptions import OutputParserException
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser
from langchain_core.outputs import Generation
from langchain_core.utils.function_calling import convert_to_openai_function
from langchain_core.utils.pydantic import is_basemodel_subclass

from cerebras_paygo._structured import make_response_format, strict_function, strict_schema, strip_added_nulls

__all__ = [
    "StrictJsonOutputParser",
    "StrictToolArgsParser",
    "pydantic_class",
    "response_format_for",
    "schema_function",
    "strict_schema",
    "strict_tool_function",
    "strip_added_nulls",
]


def schema_function(schema: Any) -> dict[str, Any]:
    """``{"name", "description"?, "parameters"}`` for a pydantic class, TypedDict or JSON schema."""
    if isinstance(schema, Mapping) and "title" not in schema and "name" not in schema:
        return {"name": "response", "parameters": dict(schema)}
    function = convert_to_openai_function(schema)
    result: dict[str, Any] = {key: function[key] for key in ("name", "description", "parameters") if key in function}
    if result.get("description") == dict.__doc__:
        # A TypedDict without a docstring inherits dict's; it is not a description of the schema.
        del result["description"]
    return result


def response_format_for(schema: Any, *, strict: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``response_format`` for ``method="json_schema"``, and the schema the output follows.

    ``strict`` asks for constrained decoding; a schema strict mode cannot express goes out with
    ``strict: false`` instead (the core decides: ``cerebras_paygo._structured.make_response_format``).
    """
    function = schema_function(schema)
    parameters: dict[str, Any] = function["parameters"]
    response_format = make_response_format(
        function["name"], parameters, strict=strict, description=function.get("description")
    )
    return response_format, parameters


def strict_tool_function(schema: Any, *, strict: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tool ``function`` for ``method="function_calling"``, and the schema its arguments follow."""
    function = schema_function(schema)
    return strict_function(function, strict=strict), function["parameters"]


def _validate(pydantic_object: Any, value: Any) -> Any:
    try:
        if issubclass(pydantic_object, pydantic.BaseModel):
            return pydantic_object.model_validate(value)
        return pydantic_object.parse_obj(value)
    except (pydantic.ValidationError, pydantic.v1.ValidationError, TypeError, ValueError) as exc:
        raise OutputParserException(
            f"Failed to parse {pydantic_object.__name__} from {value!r}: {exc}", llm_output=str(value)
        ) from exc


def _finish(parsed: Any, *, strip_schema: Any, pydantic_object: Any, partial: bool) -> Any:
    if parsed is None:
        return None
    if strip_schema is not None:
        parsed = strip_added_nulls(parsed, strip_schema)
    if pydantic_object is None:
        return parsed
    try:
        return _validate(pydantic_object, parsed)
    except OutputParserException:
        if partial:
            return None
        raise


class StrictJsonOutputParser(JsonOutputParser):
    """JSON from the message text; strict-mode ``null``\\ s dropped; optionally a pydantic object."""

    strip_schema: dict[str, Any] | None = None
    pydantic_object: Any = None

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        parsed = super().parse_result(result, partial=partial)
        return _finish(parsed, strip_schema=self.strip_schema, pydantic_object=self.pydantic_object, partial=partial)


class StrictToolArgsParser(JsonOutputKeyToolsParser):
    """The first call of one tool; strict-mode ``null``\\ s dropped; optionally a pydantic object."""

    strip_schema: dict[str, Any] | None = None
    pydantic_object: Any = None

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        parsed = super().parse_result(result, partial=partial)
        return _finish(parsed, strip_schema=self.strip_schema, pydantic_object=self.pydantic_object, partial=partial)


def pydantic_class(schema: Any) -> Any:
    """``schema`` when it is a pydantic (v1 or v2) class, else ``None``."""
    return schema if isinstance(schema, type) and is_basemodel_subclass(schema) else None
