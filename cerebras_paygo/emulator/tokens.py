"""The emulator's one tokenizer: used for admission, usage, streaming deltas and the prompt cache.

It imitates a BPE tokenizer without being one (and without being ``len(text) / 4``), so a client-side
estimator has something real to calibrate against:

- a word (letters, with at most one leading space or tab) is one token per 4 letters (``" currently"``
  -> ``" curr"``, ``"entl"``, ``"y"``); CJK characters are one token each;
- digits go in groups of up to 3; every other symbol is one token; each newline is one token;
- a chat prompt adds 4 tokens per message plus 3 priming tokens; ``name`` adds 1; tools,
  tool calls and ``response_format`` count as their JSON text.

``split(text)`` returns the pieces, and ``"".join(split(text)) == text`` always holds.

With the optional tokenizer installed (``pip install 'cerebras-paygo[tokenizer]'``), the prompt of a
model whose vocabulary it ships (gpt-oss: o200k_harmony) is counted as a real server counts it: the
harmony format rendered (``harmony_prompt``, written here apart from the client's template code)
and encoded token for token; its pieces are then the token ids. ``CEREBRAS_PAYGO_TOKENIZER=off``
turns that off (``emulated_prompt_pieces`` is the counter above, for every model).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MESSAGE_OVERHEAD",
    "PRIMING_TOKENS",
    "count_prompt",
    "count_text",
    "emulated_prompt_pieces",
    "harmony_prompt",
    "prompt_pieces",
    "split",
    "vocabulary_counting",
]

MESSAGE_OVERHEAD = 4
PRIMING_TOKENS = 3
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECE_RE = re.compile(
    rf"[ \t]?[{_CJK}]"  # one CJK character
    rf"|[ \t]?(?:(?![{_CJK}])[^\W\d_])+"  # a word
    r"|[ \t]?\d{1,3}"  # digits
    r"|[ \t]?[^\w\s]"  # one symbol
    r"|[ \t]?_"
    r"|\r?\n"
    r"|[ \t]+"  # leftover blanks
    r"|\s",
)


def split(text: str) -> list[str]:
    """The token pieces of ``text``; joined, they give ``text`` back."""
    pieces: list[str] = []
    for match in _PIECE_RE.finditer(text):
        piece = match.group()
        lead = 1 if piece[:1] in (" ", "\t") and len(piece) > 1 else 0
        body_len = len(piece) - lead
        if body_len <= 4 or not piece[lead:].isalpha():
            pieces.append(piece)
            continue
        pieces.append(piece[: lead + 4])
        pieces.extend(piece[i : i + 4] for i in range(lead + 4, len(piece), 4))
    return pieces


def count_text(text: str) -> int:
    """How many tokens ``text`` is."""
    return len(split(text)) if text else 0


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type") == "text":
                    parts.append(str(part.get("text", "")))
                elif part.get("type") in ("image_url", "image"):
                    parts.append("<image>")
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def emulated_prompt_pieces(body: Mapping[str, Any]) -> list[str]:
    """The prompt of a chat request as the emulated counter's pieces (overhead tokens are marker pieces).

    ``len(prompt_pieces(body))`` is the request's ``prompt_tokens``. Reasoning of earlier assistant
    turns is counted only with ``clear_thinking: false``.
    """
    keep_reasoning = body.get("clear_thinking") is False
    pieces: list[str] = []
    tools = body.get("tools")
    if tools:
        pieces.append("<|tools|>")
        pieces.extend(split(_json(tools)))
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") in ("json_schema", "json_object"):
        pieces.extend(split(_json(response_format)))
    for message in _messages(body.get("messages")):
        role = str(message.get("role", ""))
        pieces.extend(("<|start|>", f"<|{role}|>", "<|message|>", "<|end|>"))
        if message.get("name"):
            pieces.append(f"<|name:{message['name']}|>")
        pieces.extend(split(_content_text(message.get("content"))))
        if keep_reasoning and message.get("reasoning"):
            pieces.extend(split(_content_text(message.get("reasoning"))))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if not isinstance(function, Mapping):
                continue
            pieces.extend(split(str(function.get("name", ""))))
            pieces.extend(split(str(function.get("arguments", ""))))
    pieces.extend(("<|start|>", "<|assistant|>", "<|message|>"))
    return pieces


def _messages(messages: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(messages, list):
        return [m for m in messages if isinstance(m, Mapping)]
    return []


# --- gpt-oss: the harmony format in the real vocabulary ---------------------------------------
#
# Written here from the openai-harmony format, apart from the client's own template code (the
# emulator imports nothing from the core): the client's counts are checked against this one.

_HARMONY_PREFIX = "gpt-oss"
_HARMONY_VOCABULARY = "o200k_harmony"
_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
_CUTOFF = "2024-06"
_CHANNELS = "# Valid channels: analysis, commentary, final. Channel must be included for every message."
_TOOLS_NOTE = "\nCalls to these tools must go to the commentary channel: 'functions'."
_encodings: dict[str, Any] = {}


def _tokenizer_enabled() -> bool:
    return os.environ.get("CEREBRAS_PAYGO_TOKENIZER", "").strip().lower() not in ("off", "0", "false", "no")


def _encoding(name: str) -> Any | None:
    """The optional tokenizer's encoding ``name`` (None: not installed, or turned off)."""
    if not _tokenizer_enabled():
        return None
    if name not in _encodings:
        try:
            quicktok = importlib.import_module("quicktok")
            _encodings[name] = quicktok.get_encoding(name)
        except Exception:  # not installed, or no such vocabulary in this version
            _encodings[name] = None
    return _encodings[name]


def _harmony_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, Mapping) and (part.get("type") == "text" or "text" in part):
                out.append(str(part.get("text", "")))
            elif isinstance(part, Mapping):
                out.append(json.dumps(part, ensure_ascii=False, default=str))
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return str(content)


def _ts(spec: Any) -> str:
    """A JSON schema as the TypeScript type of the harmony tool namespace."""
    if not isinstance(spec, Mapping):
        return "any"
    kind = spec.get("type")
    if isinstance(kind, list):
        return " | ".join(map(str, kind)) if kind else "any"
    nullable = " | null" if spec.get("nullable") else ""
    if kind == "array":
        items = spec.get("items")
        if not isinstance(items, Mapping):
            return "any[]" + nullable
        inner = _ts(items)
        return ("any[]" if len(inner) > 50 else inner + "[]") + nullable
    if "oneOf" in spec or "anyOf" in spec:
        return " | ".join(_ts(option) for option in (spec.get("oneOf") or spec.get("anyOf") or [])) or "any"
    if kind == "string":
        enum = spec.get("enum")
        return ('"' + '" | "'.join(map(str, enum)) + '"') if enum else "string" + nullable
    if kind in ("number", "integer"):
        return "number" + nullable
    if kind == "boolean":
        return "boolean" + nullable
    if kind == "object":
        properties = spec.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            return "object"
        required = spec.get("required") or []
        return "{\n" + ", ".join(f"{k}{'' if k in required else '?'}: {_ts(v)}" for k, v in properties.items()) + "}"
    return "any"


def _harmony_tool(tool: Any) -> str:
    function = tool.get("function", tool) if isinstance(tool, Mapping) else None
    if not isinstance(function, Mapping):
        return ""
    out = f"// {function.get('description', '')}\ntype {function.get('name', '')} = "
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    if not isinstance(parameters, Mapping) or not isinstance(properties, Mapping) or not properties:
        return out + "() => any;\n\n"
    required = parameters.get("required") or []
    out += "(_: {\n"
    for name, spec in properties.items():
        if isinstance(spec, Mapping) and spec.get("description"):
            out += f"// {spec['description']}\n"
        out += f"{name}{'' if name in required else '?'}: {_ts(spec)}"
        if isinstance(spec, Mapping) and "default" in spec:
            out += f", // default: {json.dumps(spec['default'], ensure_ascii=False, default=str)}"
        out += ",\n"
    return out + "}) => any;\n\n"


def harmony_prompt(body: Mapping[str, Any], date: str | None = None) -> str:
    """A gpt-oss chat request rendered in the harmony format (special tokens as their text)."""
    messages = list(_messages(body.get("messages")))
    tools = body.get("tools") or []
    effort = body.get("reasoning_effort") or "medium"
    today = date or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    out = [
        f"<|start|>system<|message|>{_IDENTITY}\nKnowledge cutoff: {_CUTOFF}\nCurrent date: {today}"
        f"\n\nReasoning: {effort}\n\n{_CHANNELS}{_TOOLS_NOTE if tools else ''}<|end|>"
    ]
    first = messages[0] if messages else None
    instructions = first is not None and first.get("role") in ("system", "developer")
    response_format = body.get("response_format")
    schema = None
    if isinstance(response_format, Mapping) and response_format.get("type") in ("json_schema", "json_object"):
        schema = response_format.get("json_schema", response_format)
    if instructions or tools or schema is not None:
        developer = "<|start|>developer<|message|>"
        if instructions and first is not None:
            developer += f"# Instructions\n\n{_harmony_text(first.get('content'))}\n\n"
        if tools:
            developer += "# Tools\n\n## functions\n\nnamespace functions {\n\n"
            developer += "".join(_harmony_tool(tool) for tool in tools) + "} // namespace functions"
        if schema is not None:
            name = str(schema.get("name", "response")) if isinstance(schema, Mapping) else "response"
            inner = schema.get("schema", schema) if isinstance(schema, Mapping) else schema
            developer += f"\n\n# Response Formats\n\n## {name}\n\n{json.dumps(inner, ensure_ascii=False, default=str)}"
        out.append(developer + "<|end|>")
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    keep_from = 0 if body.get("clear_thinking") is False else last_user + 1
    tool_names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                tool_names[str(call.get("id", ""))] = str(call["function"].get("name") or "")
    for index, message in enumerate(messages):
        role = message.get("role")
        text = _harmony_text(message.get("content"))
        if role in ("system", "developer"):
            if index:
                out.append(f"<|start|>developer<|message|># Instructions\n\n{text}\n\n<|end|>")
        elif role == "user":
            name = f"{message['name']}: " if message.get("name") else ""
            out.append(f"<|start|>user<|message|>{name}{text}<|end|>")
        elif role == "tool":
            name = tool_names.get(str(message.get("tool_call_id") or ""), str(message.get("name") or ""))
            out.append(f"<|start|>functions.{name} to=assistant<|channel|>commentary<|message|>{text}<|end|>")
        else:
            calls = [c for c in message.get("tool_calls") or () if isinstance(c, Mapping)]
            reasoning = message.get("reasoning")
            analysis = str(reasoning) if index >= keep_from and reasoning else ""
            if calls and text:
                analysis += text
            if analysis:
                out.append(f"<|start|>assistant<|channel|>analysis<|message|>{analysis}<|end|>")
            for call in calls:
                found = call.get("function")
                function: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
                out.append(
                    f"<|start|>assistant<|channel|>commentary to=functions.{function.get('name') or ''} "
                    f"<|constrain|>json<|message|>{function.get('arguments') or ''}<|call|>"
                )
            if not calls:
                out.append(f"<|start|>assistant<|channel|>final<|message|>{text}<|end|>")
    out.append("<|start|>assistant")
    return "".join(out)


def _vocabulary_pieces(body: Mapping[str, Any]) -> list[str] | None:
    """A gpt-oss prompt's token ids (as pieces) in o200k_harmony, or None without the optional tokenizer."""
    if not str(body.get("model", "")).startswith(_HARMONY_PREFIX):
        return None
    encoding = _encoding(_HARMONY_VOCABULARY)
    if encoding is None:
        return None
    return [str(token) for token in encoding.encode_with_special(harmony_prompt(body))]


def vocabulary_counting(model: str) -> bool:
    """Whether ``model``'s prompts are counted in their real vocabulary (gpt-oss with the optional tokenizer)."""
    return model.startswith(_HARMONY_PREFIX) and _encoding(_HARMONY_VOCABULARY) is not None


def prompt_pieces(body: Mapping[str, Any]) -> list[str]:
    """The prompt of a chat request as token pieces: the real vocabulary's token ids when installed."""
    pieces = _vocabulary_pieces(body)
    return pieces if pieces is not None else emulated_prompt_pieces(body)


def count_prompt(body: Mapping[str, Any]) -> int:
    """``prompt_tokens`` of a chat request: messages, overhead, tools and response format."""
    return len(prompt_pieces(body))
