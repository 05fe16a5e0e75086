"""JSON-schema structured output for LlamaIndex: the ``response_format`` for an output class and
the parse into it (pure).

Cerebras' strict-mode rules live in ``cerebras_paygo._structured``: the schema is made strict when
strict mode can express it *without changing its meaning* (an optional property becomes required
but nullable) and sent with ``strict: false`` otherwise; ``parse_output`` drops the ``null``\\ s the
original schema does not allow, so the field takes its default again.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

from cerebras_paygo._structured import make_response_format, strict_schema, strip_added_nulls

__all__ = ["parse_output", "response_format_for", "strict_schema", "strip_added_nulls"]

_M = TypeVar("_M", bound=BaseModel)


def response_format_for(output_cls: type[BaseModel]) -> dict[str, Any]:
    """``response_format`` asking for ``output_cls`` as JSON: strict when the schema allows it."""
    return make_response_format(output_cls.__name__, output_cls.model_json_schema(), strict=True)


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
