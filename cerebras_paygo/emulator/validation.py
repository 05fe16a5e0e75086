"""Request validation with the real API's 400 ``wrong_api_format`` messages.

Unknown body fields are refused as ``body.<name>: property 'body.<name>' is unsupported``;
type and range errors read like pydantic's (``body.temperature: Input should be a valid number``).
``reasoning_content`` on an input message is refused (the API takes ``reasoning``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ALLOWED_FIELDS", "WrongFormat", "validate_chat_body"]


class WrongFormat(Exception):
    """A 400 ``wrong_api_format``; ``param`` is ``validation_error`` unless a field is to blame."""

    def __init__(self, message: str, param: str = "validation_error") -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _unsupported(path: str) -> WrongFormat:
    return WrongFormat(f"{path}: property '{path}' is unsupported")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(low: int | None = None, high: int | None = None) -> Callable[[str, Any], None]:
    def check(path: str, value: Any) -> None:
        if not _is_int(value):
            raise WrongFormat(f"{path}: Input should be a valid integer")
        if low is not None and value < low:
            raise WrongFormat(f"{path}: Input should be greater than or equal to {low}")
        if high is not None and value > high:
            raise WrongFormat(f"{path}: Input should be less than or equal to {high}")

    return check


def _number(low: float, high: float) -> Callable[[str, Any], None]:
    def check(path: str, value: Any) -> None:
        if not _is_number(value):
            raise WrongFormat(f"{path}: Input should be a valid number")
        if value < low:
            raise WrongFormat(f"{path}: Input should be greater than or equal to {low:g}")
        if value > high:
            raise WrongFormat(f"{path}: Input should be less than or equal to {high:g}")

    return check


def _bool(path: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise WrongFormat(f"{path}: Input should be a valid boolean")


def _str(path: str, value: Any) -> None:
    if not isinstance(value, str):
        raise WrongFormat(f"{path}: Input should be a valid string")


def _dict(path: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise WrongFormat(f"{path}: Input should be a valid dictionary")


def _choice(*options: str) -> Callable[[str, Any], None]:
    listed = ", ".join(f"'{o}'" for o in options[:-1]) + f" or '{options[-1]}'"

    def check(path: str, value: Any) -> None:
        if value not in options:
            raise WrongFormat(f"{path}: Input should be {listed}")

    return check


def _stop(path: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise WrongFormat(f"{path}: Input should be a valid string or list of strings")
    if len(value) > 4:
        raise WrongFormat(f"{path}: List should have at most 4 items after validation, not {len(value)}")


def _stream_options(path: str, value: Any) -> None:
    _dict(path, value)
    for key, item in value.items():
        if key != "include_usage":
            raise _unsupported(f"{path}.{key}")
        if item is not None:
            _bool(f"{path}.{key}", item)


def _tools(path: str, value: Any) -> None:
    if not isinstance(value, list):
        raise WrongFormat(f"{path}: Input should be a valid list")
    for i, tool in enumerate(value):
        where = f"{path}.{i}"
        _dict(where, tool)
        if tool.get("type", "function") != "function":
            raise WrongFormat(f"{where}.type: Input should be 'function'")
        function = tool.get("function")
        _dict(f"{where}.function", function)
        for key in function:
            if key not in ("name", "description", "parameters", "strict"):
                raise _unsupported(f"{where}.function.{key}")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise WrongFormat(f"{where}.function.name: Field required")
        if function.get("parameters") is not None:
            _dict(f"{where}.function.parameters", function["parameters"])
        if function.get("strict") is not None:
            _bool(f"{where}.function.strict", function["strict"])


def _tool_choice(path: str, value: Any) -> None:
    if isinstance(value, str):
        _choice("none", "auto", "required")(path, value)
        return
    _dict(path, value)
    function = value.get("function")
    if value.get("type") != "function" or not isinstance(function, Mapping) or not function.get("name"):
        raise WrongFormat(f"{path}: Input should be 'none', 'auto', 'required' or a named function")


def _response_format(path: str, value: Any) -> None:
    _dict(path, value)
    kind = value.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise WrongFormat(f"{path}.type: Input should be 'text', 'json_object' or 'json_schema'", "response_format")
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping):
            raise WrongFormat(f"{path}.json_schema: Field required", "response_format")
        if not isinstance(spec.get("name"), str) or not spec["name"]:
            raise WrongFormat(f"{path}.json_schema.name: Field required", "response_format")
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, Mapping):
            raise WrongFormat(f"{path}.json_schema.schema: Input should be a valid dictionary", "response_format")
        if isinstance(schema, Mapping):
            extra = sorted(set(schema) & {"allOf", "not", "if", "then", "else"})
            if extra:
                raise WrongFormat(
                    "Extra top level keys found in JSON schema: {" + ", ".join(repr(k) for k in extra) + "}.",
                    "response_format",
                )


def _prediction(path: str, value: Any) -> None:
    _dict(path, value)
    if value.get("type") != "content":
        raise WrongFormat(f"{path}.type: Input should be 'content'")
    content = value.get("content")
    if not isinstance(content, (str, list)):
        raise WrongFormat(f"{path}.content: Input should be a valid string")


_FIELDS: dict[str, Callable[[str, Any], None]] = {
    "model": _str,
    "messages": lambda path, value: None,
    "stream": _bool,
    "stream_options": _stream_options,
    "max_tokens": _int(1),
    "max_completion_tokens": _int(1),
    "min_tokens": _int(-1),
    "min_completion_tokens": _int(-1),
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "seed": _int(),
    "stop": _stop,
    "n": _int(1, 8),
    "user": _str,
    "service_tier": _choice("auto", "default", "flex", "priority"),
    "prompt_cache_key": _str,
    "prediction": _prediction,
    "frequency_penalty": _number(-2, 2),
    "presence_penalty": _number(-2, 2),
    "logit_bias": _dict,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _bool,
    "response_format": _response_format,
    "reasoning_effort": _choice("none", "low", "medium", "high"),
    "reasoning_format": _choice("none", "parsed", "text_parsed", "raw", "hidden"),
    "clear_thinking": _bool,
    "disable_reasoning": _bool,
    "logprobs": _bool,
    "top_logprobs": _int(0, 20),
    "model_parameters": _dict,
}
ALLOWED_FIELDS = frozenset(_FIELDS)

_ROLE_FIELDS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "reasoning", "tool_calls"},
    "tool": {"role", "content", "name", "tool_call_id"},
}


def _content(path: str, value: Any, *, required: bool) -> None:
    if value is None:
        if required:
            raise WrongFormat(f"{path}: Field required")
        return
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise WrongFormat(f"{path}: Input should be a valid string or a list of content parts")
    for i, part in enumerate(value):
        where = f"{path}.{i}"
        _dict(where, part)
        kind = part.get("type")
        if kind == "text":
            _str(f"{where}.text", part.get("text"))
        elif kind not in ("image_url", "image"):
            raise WrongFormat(f"{where}.type: Input should be 'text', 'image_url' or 'image'")


def _messages(path: str, value: Any, *, strict: bool) -> None:
    if not isinstance(value, list):
        raise WrongFormat(f"{path}: Input should be a valid list")
    if not value:
        raise WrongFormat(f"{path}: List should have at least 1 item after validation, not 0")
    for i, message in enumerate(value):
        where = f"{path}.{i}"
        _dict(where, message)
        role = message.get("role")
        if role not in _ROLE_FIELDS:
            raise WrongFormat(f"{where}.role: Input should be 'system', 'developer', 'user', 'assistant' or 'tool'")
        if "reasoning_content" in message:
            raise _unsupported(f"{where}.{role}.reasoning_content")
        for key, item in message.items():
            if key not in _ROLE_FIELDS[role] and (strict and item is not None):
                raise _unsupported(f"{where}.{role}.{key}")
        if message.get("name") is not None:
            _str(f"{where}.{role}.name", message["name"])
        has_calls = bool(message.get("tool_calls"))
        _content(f"{where}.{role}.content", message.get("content"), required=role != "assistant")
        if role == "assistant":
            if message.get("reasoning") is not None:
                _content(f"{where}.assistant.reasoning", message["reasoning"], required=False)
            if message.get("tool_calls") is not None:
                _tool_calls(f"{where}.assistant.tool_calls", message["tool_calls"])
            if not has_calls and message.get("content") is None and not message.get("reasoning"):
                raise WrongFormat(f"{where}.assistant.content: Field required")
        if role == "tool":
            _str(f"{where}.tool.tool_call_id", message.get("tool_call_id"))


def _tool_calls(path: str, value: Any) -> None:
    if not isinstance(value, list):
        raise WrongFormat(f"{path}: Input should be a valid list")
    for i, call in enumerate(value):
        where = f"{path}.{i}"
        _dict(where, call)
        _str(f"{where}.id", call.get("id"))
        function = call.get("function")
        _dict(f"{where}.function", function)
        _str(f"{where}.function.name", function.get("name"))
        _str(f"{where}.function.arguments", function.get("arguments"))


def validate_chat_body(body: Any, *, strict_messages: bool = True) -> None:
    """Raise ``WrongFormat`` for what the real API refuses with 400 ``wrong_api_format``."""
    if not isinstance(body, Mapping):
        raise WrongFormat("body: Input should be a valid dictionary or object to extract fields from")
    for key in body:
        if key not in _FIELDS:
            raise _unsupported(f"body.{key}")
    for key in ("model", "messages"):
        if key not in body or body[key] is None:
            raise WrongFormat(f"body.{key}: Field required")
    for key, value in body.items():
        if value is not None:
            _FIELDS[key](f"body.{key}", value)
    _messages("body.messages", body["messages"], strict=strict_messages)
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if isinstance(choice, Mapping):
        wanted = choice["function"]["name"]
        if not any((t.get("function") or {}).get("name") == wanted for t in tools):
            raise WrongFormat(f"body.tool_choice: function '{wanted}' is not among the tools", "tool_choice")
    elif choice == "required" and not tools:
        raise WrongFormat("body.tool_choice: 'required' needs at least one tool", "tool_choice")
