"""JSON-schema structured output for Cerebras: the ``response_format`` and the parser (pure).

Cerebras' strict mode (constrained decoding) wants every object closed
(``additionalProperties: false``) with all of its properties in ``required``; it rejects the
``format`` keyword and the ``"type": [...]`` shorthand, takes at most five ``anyOf`` branches,
and cannot express free-form objects (``dict[str, X]``) or untyped values (``Any``).

``response_format_for`` makes a schema strict when it can be made strict *without changing its
meaning*: an optional property becomes required but nullable, and ``parse_output`` drops the
``null``\\ s the original schema would not have allowed, so the field takes its default again.
A schema that cannot be made strict is sent with ``strict: false`` (JSON that follows the
schema on a best-effort basis), and parsed the same way.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["parse_output", "response_format_for", "strict_schema", "strip_added_nulls"]

_M = TypeVar("_M", bound=BaseModel)

_MAX_ANY_OF = 5
_DEPTH = 64
# Keywords that only narrow a string; strict mode rejects them, so they are dropped (the output
# still satisfies the original schema's type).
_DROPPED = ("format",)
_KEPT_BESIDE_ANY_OF = ("title", "description", "default")


def _resolve(node: Any, root: Mapping[str, Any]) -> Any:
    """Follow local ``$ref``\\ s (``#/$defs/X``); anything else comes back unchanged."""
    for _ in range(_DEPTH):
        ref = node.get("$ref") if isinstance(node, Mapping) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            if not isinstance(target, Mapping) or part not in target:
                return node
            target = target[part]
        node = target
    return node


def _allows_null(node: Any, root: Mapping[str, Any], depth: int = 0) -> bool:
    node = _resolve(node, root)
    if not isinstance(node, Mapping) or depth > _DEPTH:
        return False
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if None in (node.get("enum") or ()):
        return True
    return any(_allows_null(branch, root, depth + 1) for key in ("anyOf", "oneOf") for branch in node.get(key) or ())


def _strictable(node: Any, depth: int = 0) -> bool:
    """Whether strict mode can express ``node`` (and everything under it) as it is."""
    if depth > _DEPTH:
        return False
    if not isinstance(node, Mapping):
        return False
    if not node or set(node) <= {"title", "description", "default"}:
        return False  # an untyped value (``Any``)
    if "$ref" in node:
        return True  # its target is checked under ``$defs``
    for key in ("not", "if", "then", "else", "patternProperties"):
        if key in node:
            return False
    branches = node.get("anyOf") or node.get("oneOf")
    if branches is not None:
        if not isinstance(branches, list) or len(branches) > _MAX_ANY_OF:
            return False
        if not all(_strictable(branch, depth + 1) for branch in branches):
            return False
    all_of = node.get("allOf")
    if all_of is not None and (
        not isinstance(all_of, list) or len(all_of) != 1 or not _strictable(all_of[0], depth + 1)
    ):
        return False
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds:
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if not isinstance(properties, Mapping) or extra not in (None, False):
            return False  # a free-form object (``dict[str, X]``)
    properties = node.get("properties")
    if isinstance(properties, Mapping) and not all(_strictable(sub, depth + 1) for sub in properties.values()):
        return False
    if "array" in kinds:
        items = node.get("items")
        if not isinstance(items, Mapping) or not _strictable(items, depth + 1):
            return False
    for defs in ("$defs", "definitions"):
        if isinstance(node.get(defs), Mapping) and not all(_strictable(sub, depth + 1) for sub in node[defs].values()):
            return False
    return True


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """A copy of ``schema`` that Cerebras accepts with ``strict: true``, or ``None`` when strict
    mode cannot express it (free-form objects, untyped values, more than five ``anyOf`` branches)."""
    if not _strictable(schema):
        return None
    root = copy.deepcopy(dict(schema))
    result: dict[str, Any] = _strict_node(root, root)
    return result


def _strict_node(node: Any, root: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict_node(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        node = {**all_of[0], **{k: v for k, v in node.items() if k != "allOf"}}
    for key in _DROPPED:
        if isinstance(node.get(key), str):
            node = {k: v for k, v in node.items() if k != key}
    kind = node.get("type")
    if isinstance(kind, list):
        beside = {k: v for k, v in node.items() if k in _KEPT_BESIDE_ANY_OF}
        rest = {k: v for k, v in node.items() if k not in _KEPT_BESIDE_ANY_OF and k != "type"}
        node = {**beside, "anyOf": [{"type": "null"} if t == "null" else {**rest, "type": t} for t in kind]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: _strict_node(sub, root) for name, sub in value.items()}
        elif key in ("anyOf", "oneOf", "prefixItems") and isinstance(value, list):
            out[key] = [_strict_node(sub, root) for sub in value]
        elif key == "items" and isinstance(value, dict):
            out[key] = _strict_node(value, root)
        else:
            out[key] = value
    properties = out.get("properties")
    if isinstance(properties, dict) and out.get("type", "object") == "object":
        required = set(out.get("required") or ())
        for name, sub in list(properties.items()):
            if name not in required and not _allows_null(sub, root):
                properties[name] = _nullable(sub)
        out["required"] = list(properties)
        out["additionalProperties"] = False
    return out


def _nullable(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {"anyOf": [node, {"type": "null"}]}
    outer = {k: node[k] for k in ("title", "description") if k in node}
    inner = {k: v for k, v in node.items() if k not in ("title", "description", "default")}
    return {**outer, "anyOf": [inner, {"type": "null"}]}


def strip_added_nulls(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """Drop the ``null``\\ s ``strict_schema`` allowed where the original ``schema`` did not."""
    root = schema if root is None else root
    node = _resolve(schema, root)
    if not isinstance(node, Mapping):
        return value
    if isinstance(value, dict):
        properties = node.get("properties")
        if not isinstance(properties, Mapping):
            for key in ("anyOf", "oneOf", "allOf"):
                for branch in node.get(key) or ():
                    resolved = _resolve(branch, root)
                    if isinstance(resolved, Mapping) and isinstance(resolved.get("properties"), Mapping):
                        return strip_added_nulls(value, resolved, root)
            return value
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
        if not isinstance(items, Mapping):
            for key in ("anyOf", "oneOf"):
                for branch in node.get(key) or ():
                    resolved = _resolve(branch, root)
                    if isinstance(resolved, Mapping) and isinstance(resolved.get("items"), Mapping):
                        items = resolved["items"]
                        break
        if isinstance(items, Mapping):
            return [strip_added_nulls(item, items, root) for item in value]
    return value


def _schema_name(output_cls: type[BaseModel]) -> str:
    """The ``json_schema.name``: letters, digits, ``_`` and ``-`` only (generic names have brackets)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", output_cls.__name__)[:64] or "output"


def response_format_for(output_cls: type[BaseModel]) -> dict[str, Any]:
    """``response_format`` asking for ``output_cls`` as JSON: strict when the schema allows it."""
    schema = output_cls.model_json_schema()
    strict = strict_schema(schema)
    spec: dict[str, Any] = {
        "name": _schema_name(output_cls),
        "schema": strict if strict is not None else schema,
        "strict": strict is not None,
    }
    return {"type": "json_schema", "json_schema": spec}


def _json_value(text: str) -> Any:
    """The JSON in ``text``: the whole of it, else its first ``{...}`` span (a model that wrapped it)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError(f"no JSON object in the model's answer: {text[:200]!r}")
    return json.loads(text[start : end + 1])


def parse_output(output_cls: type[_M], text: str | None) -> _M:
    """Parse the model's JSON answer into ``output_cls`` (strict-mode ``null``\\ s dropped first).

    Raises:
        ValueError: no JSON in the answer, or JSON that does not validate (pydantic's
            ``ValidationError`` is a ``ValueError``).
    """
    value = _json_value(text or "")
    value = strip_added_nulls(value, output_cls.model_json_schema())
    return output_cls.model_validate(value)
