"""Structured output for Cerebras: strict JSON schemas, the ``response_format`` and the parse fix-up.

Pure functions over JSON schemas (plain mappings); both adapters call them, so each rule of
Cerebras' strict mode (constrained decoding) is decided here once:

* every object is closed (``additionalProperties: false``) and lists all of its properties in
  ``required``; an optional property that does not allow ``null`` becomes required but nullable
  (``anyOf: [<schema>, {"type": "null"}]``), and ``strip_added_nulls`` drops those ``null``\\ s
  from the answer again, so the field takes its default (pydantic) or stays absent (dicts);
* ``format`` is rejected on strings (observed: ``Invalid fields for schema with types
  ['string']: {'format'}``), so it is dropped: it only narrows a string, and the parser
  (pydantic) still checks it;
* the ``"type": [...]`` shorthand is not accepted: it becomes ``anyOf``;
* ``$ref``/``$defs`` and ``enum`` are fine; an ``anyOf`` takes at most five branches; ``allOf``
  is rejected (a one-element ``allOf``, pydantic's way to describe a ``$ref``, is inlined);
  free-form values cannot be expressed: ``dict[str, X]`` (an object without ``properties``),
  ``Any`` (no type), ``items: true`` or an array without ``items``, ``not``/``if``/``then``/
  ``else``/``patternProperties``.

``strict_schema`` returns ``None`` for a schema strict mode cannot express *without changing its
meaning*; ``make_response_format`` then sends the schema as it is with ``strict: false`` (JSON
that follows the schema on a best-effort basis) rather than a request Cerebras would refuse.

Every value valid against ``strict_schema(s)`` is, once ``strip_added_nulls`` has run, valid
against ``s`` (save for the dropped ``format``\\ s): strict mode only narrows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_ANY_OF",
    "make_response_format",
    "schema_name",
    "strict_function",
    "strict_schema",
    "strip_added_nulls",
]

MAX_ANY_OF = 5
"""The most branches Cerebras' strict mode takes in one ``anyOf``."""

_DEPTH = 64
# Keywords that only narrow a string; strict mode rejects them, so they are dropped.
_DROPPED = ("format",)
# Keywords strict mode cannot express; a schema that has one is sent with ``strict: false``.
_UNSUPPORTED = ("not", "if", "then", "else", "patternProperties")
# Annotations that stay beside an ``anyOf`` made from a type list or an added ``null``.
_ANNOTATIONS = ("title", "description", "default")
# A node without any of these does not constrain its value (``Any``).
_CONSTRAINING = ("type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties")
# Keywords that apply to one JSON type only: a ``"type": [...]`` list is split into ``anyOf``
# branches, and each branch keeps only the keywords of its own type (Cerebras checks them per
# type, as the ``format`` error above shows).
_TYPE_KEYWORDS = {
    "string": frozenset({"minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"}),
    "object": frozenset(
        {"properties", "required", "additionalProperties", "minProperties", "maxProperties", "propertyNames"}
    ),
}
_TYPE_KEYWORDS["integer"] = _TYPE_KEYWORDS["number"]
_ALL_TYPE_KEYWORDS = frozenset().union(*_TYPE_KEYWORDS.values())


# --- schema navigation ---------------------------------------------------------------------------


def _resolve(node: Any, root: Mapping[str, Any]) -> Any:
    """Follow local ``$ref``\\ s (``#/$defs/X``, JSON-pointer escapes too); anything else comes back as is."""
    for _ in range(_DEPTH):
        ref = node.get("$ref") if isinstance(node, Mapping) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                return node
            target = target[part]
        node = target
    return node


def _allows_null(node: Any, root: Mapping[str, Any], depth: int = 0) -> bool:
    """Whether ``null`` may be valid against ``node``; ``True`` whenever that is not certain.

    Erring towards ``True`` is safe for both callers (both adapters used to answer ``False`` for
    an untyped ``Any``, so a ``null`` it allows was dropped): ``strict_schema`` then leaves the property
    as it is (required, so the model must give a value the original schema accepts), and
    ``strip_added_nulls`` keeps the ``null``.
    """
    node = _resolve(node, root)
    if depth > _DEPTH or node is True:
        return True
    if node is False:
        return False
    if not isinstance(node, Mapping):
        return True
    if "const" in node and node["const"] is not None:
        return False
    enum = node.get("enum")
    if isinstance(enum, list) and None not in enum:
        return False
    kind = node.get("type")
    if isinstance(kind, str) and kind != "null":
        return False
    if isinstance(kind, list) and "null" not in kind:
        return False
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches and not any(_allows_null(b, root, depth + 1) for b in branches):
            return False
    all_of = node.get("allOf")
    return not (isinstance(all_of, list) and not all(_allows_null(b, root, depth + 1) for b in all_of))


def _kinds(node: Mapping[str, Any]) -> list[Any]:
    kind = node.get("type")
    return list(kind) if isinstance(kind, list) else [kind]


# --- strict schemas ------------------------------------------------------------------------------


def _strictable(node: Any, root: Mapping[str, Any], depth: int = 0) -> bool:
    """Whether strict mode can express ``node`` and everything under it (once rewritten)."""
    if depth > _DEPTH or not isinstance(node, Mapping):
        return False  # a boolean schema (``items: true``) or something that is no schema
    for defs in ("$defs", "definitions"):
        table = node.get(defs)
        if table is not None and (
            not isinstance(table, Mapping) or not all(_strictable(sub, root, depth + 1) for sub in table.values())
        ):
            return False
    ref = node.get("$ref")
    if ref is not None:
        # Its target is checked where it is defined (under ``$defs``); only local targets exist.
        return isinstance(ref, str) and _resolve(node, root) is not node
    if not any(key in node for key in _CONSTRAINING):
        return False  # an untyped value (``Any``)
    if any(key in node for key in _UNSUPPORTED):
        return False
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if branches is not None and (
            not isinstance(branches, list)
            or not branches
            or len(branches) > MAX_ANY_OF
            or not all(_strictable(branch, root, depth + 1) for branch in branches)
        ):
            return False
    all_of = node.get("allOf")
    if all_of is not None and (
        not isinstance(all_of, list) or len(all_of) != 1 or not _strictable(all_of[0], root, depth + 1)
    ):
        return False
    kinds = _kinds(node)
    if len(kinds) > MAX_ANY_OF:
        return False  # the type list becomes an ``anyOf``
    properties = node.get("properties")
    if "object" in kinds and not isinstance(properties, Mapping):
        return False  # a free-form object (``dict[str, X]``): closing it would leave only ``{}``
    if properties is not None and (
        not isinstance(properties, Mapping) or not all(_strictable(sub, root, depth + 1) for sub in properties.values())
    ):
        return False
    if "array" in kinds or "items" in node:
        items = node.get("items")
        if not isinstance(items, Mapping) or not _strictable(items, root, depth + 1):
            return False  # ``items: true``, ``list[Any]`` or a tuple (``prefixItems`` only)
    return True


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """A copy of ``schema`` that Cerebras accepts with ``strict: true``, meaning kept; ``None``
    when strict mode cannot express it (see the module docstring). ``schema`` is not modified.

    * every object with ``properties`` gets ``additionalProperties: false`` and lists all its
      properties in ``required``; one that was optional and does not allow ``null`` becomes
      ``anyOf: [<schema>, {"type": "null"}]`` (``strip_added_nulls`` undoes it on the answer);
    * ``"type": ["string", "null"]`` becomes ``anyOf``; a one-element ``allOf`` is inlined;
    * ``format`` is dropped.
    """
    # The LangChain adapter used to rewrite every schema and send it strict; Cerebras refuses what
    # strict mode cannot express (a 400 on every call), so the LlamaIndex adapter's ``None`` (and
    # a ``strict: false`` request) is the behaviour kept.
    if not _strictable(schema, schema):
        return None
    node: Mapping[str, Any] = schema
    target = _resolve(schema, schema)
    if target is not schema and isinstance(target, Mapping):
        # A recursive pydantic model is ``{"$ref": "#/$defs/M", "$defs": {...}}``: its target is
        # inlined, so that the top level is the object itself (``$defs`` stay for the recursion).
        node = {**{k: v for k, v in schema.items() if k != "$ref"}, **target}
    result: dict[str, Any] = _strict_node(node, schema)
    return result


def _strict_node(node: Any, root: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict_node(item, root) for item in node]
    if not isinstance(node, Mapping):
        return node
    node = dict(node)
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
        # pydantic < 2.9 writes a described ``$ref`` as ``{"allOf": [{"$ref": ...}], "description": ...}``
        node = {**all_of[0], **node}
    for key in _DROPPED:
        if isinstance(node.get(key), str):
            del node[key]
    kind = node.get("type")
    if isinstance(kind, list):
        beside = {k: v for k, v in node.items() if k in _ANNOTATIONS}
        rest = {k: v for k, v in node.items() if k not in _ANNOTATIONS and k != "type"}
        branches = []
        for t in kind:
            own = _TYPE_KEYWORDS.get(t, frozenset())
            keep = {k: v for k, v in rest.items() if k not in _ALL_TYPE_KEYWORDS or k in own}
            branches.append({"type": "null"} if t == "null" else {**keep, "type": t})
        node = {**beside, "anyOf": branches}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, Mapping):
            out[key] = {name: _strict_node(sub, root) for name, sub in value.items()}
        elif key in ("anyOf", "oneOf", "prefixItems") and isinstance(value, list):
            out[key] = [_strict_node(sub, root) for sub in value]
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _strict_node(value, root)
        else:
            out[key] = value
    properties = out.get("properties")
    if isinstance(properties, dict) and out.get("type", "object") == "object":
        required = set(out.get("required") or ())
        for name, sub in properties.items():
            if name not in required and not _allows_null(sub, root):
                properties[name] = _nullable(sub)
        out["required"] = list(properties)
        # Closing an object only narrows it (a model that allowed extra keys, or typed ones,
        # gets none): the answer stays valid for the original schema. The LangChain adapter
        # used to keep an ``additionalProperties`` schema here, which strict mode refuses; the
        # LlamaIndex one sent such a model non-strict, losing constrained decoding for nothing.
        out["additionalProperties"] = False
    return out


def _nullable(node: Any) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        return {"anyOf": [node, {"type": "null"}]}
    outer = {k: node[k] for k in ("title", "description") if k in node}
    inner = {k: v for k, v in node.items() if k not in _ANNOTATIONS}
    branches = inner.get("anyOf")
    if set(inner) == {"anyOf"} and isinstance(branches, list) and len(branches) < MAX_ANY_OF:
        return {**outer, "anyOf": [*branches, {"type": "null"}]}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


# --- requests ------------------------------------------------------------------------------------


def schema_name(name: str) -> str:
    """A valid ``json_schema.name``: letters, digits, ``_`` and ``-``, at most 64 (a generic
    pydantic class is called ``Page[Item]``)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "output"


def make_response_format(
    name: str, schema: Mapping[str, Any], *, strict: bool, description: str | None = None
) -> dict[str, Any]:
    """The ``response_format`` body asking for JSON that follows ``schema``.

    Args:
        name: the schema's name (made valid with ``schema_name``).
        schema: the JSON schema, as the caller's type describes it.
        strict: ask for constrained decoding. The schema is then sent as ``strict_schema`` makes
            it; when strict mode cannot express it, it is sent as it is with ``strict: false``.
        description: sent as ``json_schema.description`` when given.

    Returns:
        ``{"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"?}}``;
        ``json_schema["strict"]`` says whether the request is strict.
    """
    strict_version = strict_schema(schema) if strict else None
    spec: dict[str, Any] = {
        "name": schema_name(name),
        "schema": strict_version if strict_version is not None else dict(schema),
        "strict": strict_version is not None,
    }
    if description:
        spec["description"] = description
    return {"type": "json_schema", "json_schema": spec}


def strict_function(function: Mapping[str, Any], *, strict: bool | None) -> dict[str, Any]:
    """A copy of a tool's ``function`` (``name``, ``description``, ``parameters``) for ``strict``.

    ``True``: ``parameters`` made strict and ``"strict": true``, or, when strict mode cannot
    express them, left as they are with ``"strict": false``. ``False``: ``"strict": false``.
    ``None``: no ``strict`` key (the API's default).
    """
    result = dict(function)
    if strict is None:
        result.pop("strict", None)
        return result
    if strict:
        parameters = result.get("parameters") or {"type": "object", "properties": {}}
        strict_parameters = strict_schema(parameters)
        if strict_parameters is not None:
            result["parameters"] = strict_parameters
            result["strict"] = True
            return result
    result["strict"] = False
    return result


# --- answers -------------------------------------------------------------------------------------


def strip_added_nulls(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """``value`` without the ``null``\\ s ``schema`` does not allow on optional properties.

    ``schema`` is the original schema (not the strict one). A strict answer carries a ``null``
    for every optional property it leaves out; dropping them lets the property take its default.
    The same ``null`` from a non-strict answer is just as invalid, so it is dropped too (as the
    LlamaIndex adapter did; the LangChain one only cleaned strict answers and so failed on it):
    the result is never less valid than ``value``. Works on partial (streamed) objects; keys the
    schema does not describe are kept; ``value`` is not modified.
    """
    root = schema if root is None else root
    node = _resolve(schema, root)
    if not isinstance(node, Mapping):
        return value
    if isinstance(value, dict):
        properties = node.get("properties")
        if not isinstance(properties, Mapping):
            branch = _object_branch(value, node, root)
            return value if branch is None else strip_added_nulls(value, branch, root)
        required = set(node.get("required") or ())
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = properties.get(key)
            if sub is None:
                out[key] = item
            elif item is None and key not in required and not _allows_null(sub, root):
                continue
            else:
                out[key] = strip_added_nulls(item, sub, root)
        return out
    if isinstance(value, list):
        items = node.get("items")
        prefix = node.get("prefixItems")
        if not isinstance(items, Mapping) and not isinstance(prefix, list):
            for key in ("anyOf", "oneOf", "allOf"):
                for branch in node.get(key) or ():
                    resolved = _resolve(branch, root)
                    if isinstance(resolved, Mapping) and isinstance(resolved.get("items"), Mapping):
                        items = resolved["items"]
                        break
                if isinstance(items, Mapping):
                    break
        out_list: list[Any] = []
        for index, item in enumerate(value):
            if isinstance(prefix, list) and index < len(prefix) and isinstance(prefix[index], Mapping):
                out_list.append(strip_added_nulls(item, prefix[index], root))
            elif isinstance(items, Mapping):
                out_list.append(strip_added_nulls(item, items, root))
            else:
                out_list.append(item)
        return out_list
    return value


def _object_branch(value: Mapping[str, Any], node: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """The branch of a union (``anyOf``/``oneOf``/``allOf``) that describes the object ``value``.

    The first branch whose properties cover the value's keys, whose required keys are all there
    and whose ``const`` properties match (a strict answer lists every property, so its keys pick
    the branch); else the first that covers the keys; else the first object branch. Both adapters
    used to take the first object branch, which could drop a ``null`` another branch requires.
    """
    candidates = []
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key) or ():
            resolved = _resolve(branch, root)
            if isinstance(resolved, Mapping) and isinstance(resolved.get("properties"), Mapping):
                candidates.append(resolved)
    keys = set(value)
    covering = [c for c in candidates if keys <= set(c["properties"]) and _consts_match(value, c, root)]
    for candidate in covering:
        if set(candidate.get("required") or ()) <= keys:
            return candidate
    if covering:
        return covering[0]
    return candidates[0] if candidates else None


def _consts_match(value: Mapping[str, Any], node: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    for key, item in value.items():
        sub = _resolve(node["properties"].get(key), root)
        if not isinstance(sub, Mapping):
            continue
        if "const" in sub and sub["const"] != item:
            return False
        enum = sub.get("enum")
        if isinstance(enum, list) and len(enum) == 1 and enum[0] != item:
            return False
    return True
