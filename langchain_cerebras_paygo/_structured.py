"""Structured output for Cerebras: strict JSON schemas, tool conversion and output parsers.

Cerebras' strict mode (constrained decoding) wants every object closed
(``additionalProperties: false``) and every property listed in ``required``; it rejects the
``format`` keyword and the ``"type": [...]`` shorthand. ``strict_schema`` rewrites a schema to
that shape *without changing its meaning*: an optional property becomes required but nullable,
and the parsers drop the ``null``\\ s that the original schema would not have allowed, so a
missing optional field still takes its default (pydantic) or stays absent (TypedDict, JSON schema).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pydantic
from langchain_core.exceptions import OutputParserException
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser
from langchain_core.outputs import Generation
from langchain_core.utils.function_calling import convert_to_openai_function
from langchain_core.utils.pydantic import is_basemodel_subclass

__all__ = [
    "StrictJsonOutputParser",
    "StrictToolArgsParser",
    "response_format_for",
    "schema_function",
    "strict_schema",
    "strip_added_nulls",
]

# Keywords Cerebras' strict mode rejects (observed: ``Invalid fields for schema with types
# ['string']: {'format'}``); they only narrow a string, so dropping them keeps the output valid.
_UNSUPPORTED_KEYWORDS = ("format",)
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


def _resolve(schema: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """Follow a local ``$ref`` (``#/$defs/X`` or ``#/definitions/X``)."""
    if not isinstance(schema, Mapping) or depth > 32:
        return schema
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(target, Mapping) or part not in target:
            return schema
        target = target[part]
    return _resolve(target, root, depth + 1)


def _allows_null(schema: Any, root: Mapping[str, Any], depth: int = 0) -> bool:
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping) or depth > 32:
        return False
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "enum" in schema and None in schema["enum"]:
        return True
    return any(
        _allows_null(branch, root, depth + 1) for key in ("anyOf", "oneOf") for branch in schema.get(key, []) or []
    )


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that Cerebras accepts with ``strict: true``, meaning kept.

    * every object with ``properties`` gets ``additionalProperties: false`` and lists all its
      properties in ``required``; a property that was optional and not nullable becomes
      ``anyOf: [<schema>, {"type": "null"}]`` (``strip_added_nulls`` undoes it on the output);
    * ``"type": ["string", "null"]`` becomes ``anyOf``; a lone ``allOf`` is inlined;
    * ``format`` is dropped.
    """
    root = copy.deepcopy(dict(schema))
    original = copy.deepcopy(dict(schema))
    strict: dict[str, Any] = _strict_node(root, original)
    return strict


def _strict_node(node: Any, root: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict_node(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        del node["allOf"]
        node = {**all_of[0], **node}
    for key in _UNSUPPORTED_KEYWORDS:
        if isinstance(node.get(key), str):
            node.pop(key)
    kind = node.get("type")
    if isinstance(kind, list):
        node.pop("type")
        others = {k: v for k, v in node.items() if k not in ("description", "title", "default")}
        keep = {k: v for k, v in node.items() if k in ("description", "title", "default")}
        node = {**keep, "anyOf": [{**others, "type": t} if t != "null" else {"type": "null"} for t in kind]}
    for key in _SUBSCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            node[key] = {name: _strict_node(sub, root) for name, sub in node[key].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(node.get(key), list):
            node[key] = [_strict_node(sub, root) for sub in node[key]]
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            node[key] = _strict_node(node[key], root)
    properties = node.get("properties")
    if isinstance(properties, dict) and (node.get("type") in (None, "object")):
        required = set(node.get("required") or [])
        for name, sub in list(properties.items()):
            if name not in required and not _allows_null(sub, root):
                properties[name] = _nullable(sub)
        node["required"] = list(properties)
        if node.get("additionalProperties") in (None, True):
            node["additionalProperties"] = False
    return node


def _nullable(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {"anyOf": [schema, {"type": "null"}]}
    outer = {k: schema[k] for k in ("description", "title") if k in schema}
    inner = {k: v for k, v in schema.items() if k not in ("description", "title", "default")}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


def strip_added_nulls(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """Drop ``null`` values that ``strict_schema`` allowed but the original ``schema`` did not.

    Works on partial (streamed) objects too; anything the schema does not describe is kept.
    """
    root = schema if root is None else root
    node = _resolve(schema, root)
    if not isinstance(node, Mapping):
        return value
    if isinstance(value, dict):
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            required = set(node.get("required") or [])
            for key in list(value):
                sub = properties.get(key)
                if sub is None:
                    continue
                if value[key] is None and key not in required and not _allows_null(sub, root):
                    del value[key]
                else:
                    value[key] = strip_added_nulls(value[key], sub, root)
            return value
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in node.get(key, []) or []:
                resolved = _resolve(branch, root)
                if isinstance(resolved, Mapping) and isinstance(resolved.get("properties"), Mapping):
                    return strip_added_nulls(value, resolved, root)
        return value
    if isinstance(value, list):
        items = node.get("items")
        if isinstance(items, Mapping):
            return [strip_added_nulls(item, items, root) for item in value]
        for key in ("anyOf", "oneOf"):
            for branch in node.get(key, []) or []:
                resolved = _resolve(branch, root)
                if isinstance(resolved, Mapping) and isinstance(resolved.get("items"), Mapping):
                    return [strip_added_nulls(item, resolved["items"], root) for item in value]
    return value


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
    """The ``response_format`` for ``method="json_schema"``, and the schema the output follows."""
    function = schema_function(schema)
    parameters = function["parameters"]
    json_schema: dict[str, Any] = {"name": function["name"], "schema": parameters, "strict": strict}
    if strict:
        json_schema["schema"] = strict_schema(parameters)
    if function.get("description"):
        json_schema["description"] = function["description"]
    return {"type": "json_schema", "json_schema": json_schema}, parameters


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
