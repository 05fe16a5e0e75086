"""Chat templates per model family: what the server wraps around the messages, as countable chunks.

The data (``cerebras_paygo/data/chat_templates.json``) sits next to the catalog's other per-model
facts. Three formats:

- ``harmony`` (gpt-oss): rendered as the openai-harmony format is: the system preamble the server
  adds (model identity, knowledge cutoff, date, reasoning effort, valid channels), a developer
  message with the first system message's instructions, the tools as a TypeScript namespace and
  the response format, then per message ``<|start|>role<|channel|>..<|message|>..<|end|>``, tool
  calls ``<|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>ARGS<|call|>``,
  tool results ``<|start|>functions.NAME to=assistant<|channel|>commentary<|message|>..<|end|>``,
  reasoning passed back on the ``analysis`` channel, and the generation prompt ``<|start|>assistant``;
- ``chatml`` (qwen): ``<|im_start|>role\\n..<|im_end|>\\n``; tools are a fixed cost plus their JSON;
- ``profile`` (zai-glm, llama, anything else): fixed costs per request, message, tool, ...

A rendered request is a list of *units* (the fixed part, then one per message) of *chunks*:
a special token (one token), template text (known in advance: counted once from
``template_tokens``) or content (the caller's text, counted per call). Units end at special
tokens, where BPE's pre-tokenization splits anyway, so unit counts add up to the whole prompt's.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from cerebras_paygo._wire import ChatCompletionRequest, Message

__all__ = [
    "CONTENT",
    "DEFAULT_PROFILES",
    "GENERIC_PROFILE",
    "SPECIAL",
    "TEMPLATE",
    "Chunk",
    "Family",
    "TemplateProfile",
    "families",
    "family_for",
    "render_prompt",
    "render_units",
    "template_tokens",
]

SPECIAL, TEMPLATE, CONTENT = 0, 1, 2
Chunk = tuple[int, str]  # (SPECIAL | TEMPLATE | CONTENT, text)
Unit = list[Chunk]
DATE_PLACEHOLDER = "YYYY-MM-DD"  # dates of this shape are the same number of o200k tokens (checked)


@dataclass(frozen=True)
class TemplateProfile:
    """Tokens a ``profile`` family's chat template adds around the text (before calibration).

    Attributes:
        request: once per request (BOS, the template's default system text, the generation prompt).
        message: per message (role header and end marker).
        name: per message that has a ``name`` (plus the name's text).
        tool_call: per tool call of an assistant message (plus the name and arguments text).
        tool_result: per ``tool`` message, on top of ``message``.
        tools: once when ``tools`` are given (the tool-use instructions; plus the tools' JSON).
        tool: per tool definition.
        response_format: when a ``json_schema``/``json_object`` response format is given (plus its JSON).
    """

    request: int = 64
    message: int = 8
    name: int = 4
    tool_call: int = 12
    tool_result: int = 8
    tools: int = 128
    tool: int = 12
    response_format: int = 32


@dataclass(frozen=True)
class Family:
    """One model family's template: its format, vocabulary and costs."""

    prefix: str
    format: Literal["harmony", "chatml", "profile"]
    vocabulary: str | None
    profile: TemplateProfile
    heuristic_scale: tuple[float, float] = (1.0, 1.0)
    harmony: Mapping[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    text = resources.files("cerebras_paygo").joinpath("data/chat_templates.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _family(prefix: str, entry: Mapping[str, Any]) -> Family:
    scale = entry.get("heuristic_scale") or (1.0, 1.0)
    return Family(
        prefix=prefix,
        format=entry["format"],
        vocabulary=entry.get("vocabulary"),
        profile=TemplateProfile(**entry.get("profile", {})),
        heuristic_scale=(float(scale[0]), float(scale[1])),
        harmony=dict(entry.get("harmony", {})),
    )


@functools.lru_cache(maxsize=1)
def families() -> dict[str, Family]:
    """Every family by model id prefix, and ``""`` for the generic one."""
    data = _data()
    out = {prefix: _family(prefix, entry) for prefix, entry in data["families"].items()}
    out[""] = _family("", data["generic"])
    return out


@functools.lru_cache(maxsize=1024)
def family_for(model: str) -> Family:
    """The family of ``model``: the longest matching id prefix (the generic family otherwise)."""
    table = families()
    for prefix in sorted(table, key=len, reverse=True):
        if prefix and model.startswith(prefix):
            return table[prefix]
    return table[""]


def template_tokens(vocabulary: str) -> Mapping[str, int]:
    """Token counts of a vocabulary's template texts (see ``data/chat_templates.json``)."""
    table: Mapping[str, int] = _data().get("template_tokens", {}).get(vocabulary, {})
    return table


#: Profiles of the ``profile`` (and ``chatml``) families by prefix, for compatibility.
DEFAULT_PROFILES: Mapping[str, TemplateProfile] = {p: f.profile for p, f in families().items() if p}
GENERIC_PROFILE = families()[""].profile


# --- content ---------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def content_text(message: Message) -> str:
    """A message's content as one text: text parts joined, other parts as their JSON."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        if part.get("type") == "text" or "text" in part:
            pieces.append(str(part.get("text", "")))
        else:
            pieces.append(_json(part))
    return "".join(pieces)


def last_user_index(messages: Sequence[Message]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return -1


def keeps_reasoning_from(request: ChatCompletionRequest) -> int:
    """Reasoning passed back counts from this message index on (all with ``clear_thinking: false``)."""
    return 0 if request.clear_thinking is False else last_user_index(request.messages) + 1


# --- harmony ---------------------------------------------------------------------------------


def _ts_type(spec: Any) -> str:
    """A JSON schema as the TypeScript type the gpt-oss template renders."""
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
        inner = _ts_type(items)
        return ("any[]" if len(inner) > 50 else inner + "[]") + nullable
    if "oneOf" in spec or "anyOf" in spec:
        options = spec.get("oneOf") or spec.get("anyOf") or []
        return " | ".join(_ts_type(option) for option in options) or "any"
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
        fields = [f"{name}{'' if name in required else '?'}: {_ts_type(sub)}" for name, sub in properties.items()]
        return "{\n" + ", ".join(fields) + "}"
    return "any"


def harmony_tool(tool: Mapping[str, Any]) -> str:
    """One tool of the ``functions`` namespace, as the gpt-oss template renders it."""
    function = tool.get("function", tool)
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
        out += f"{name}{'' if name in required else '?'}: {_ts_type(spec)}"
        if isinstance(spec, Mapping) and "default" in spec:
            out += f", // default: {_json(spec['default'])}"
        out += ",\n"
    return out + "}) => any;\n\n"


def _harmony_fixed(request: ChatCompletionRequest, family: Family, date: str) -> Unit:
    settings = family.harmony
    effort = request.reasoning_effort or settings.get("default_reasoning_effort", "medium")
    tools = request.tools or []
    preamble = (
        f"{settings['model_identity']}\nKnowledge cutoff: {settings['knowledge_cutoff']}\nCurrent date: {date}"
        f"\n\nReasoning: {effort}\n\n{settings['channels_note']}{settings['tools_note'] if tools else ''}"
    )
    unit: Unit = [(SPECIAL, "<|start|>"), (TEMPLATE, "system"), (SPECIAL, "<|message|>"), (TEMPLATE, preamble)]
    unit.append((SPECIAL, "<|end|>"))
    first = request.messages[0] if request.messages else None
    instructions = first is not None and first.role in ("system", "developer")
    response_format = request.response_format
    schema = None
    if response_format and response_format.get("type") in ("json_schema", "json_object"):
        schema = response_format.get("json_schema", response_format)
    if not (instructions or tools or schema is not None):
        return unit
    unit += [(SPECIAL, "<|start|>"), (TEMPLATE, "developer"), (SPECIAL, "<|message|>")]
    # (the first system message's "# Instructions\n\n...\n\n" is that message's own unit)
    if tools:
        unit.append((TEMPLATE, "# Tools\n\n## functions\n\nnamespace functions {\n\n"))
        unit += [(CONTENT, harmony_tool(tool)) for tool in tools]
        unit.append((TEMPLATE, "} // namespace functions"))
    if schema is not None:
        name = str(schema.get("name", "response")) if isinstance(schema, Mapping) else "response"
        body = schema.get("schema", schema) if isinstance(schema, Mapping) else schema
        unit += [
            (TEMPLATE, "\n\n# Response Formats\n\n## "),
            (CONTENT, name),
            (TEMPLATE, "\n\n"),
            (CONTENT, _json(body)),
        ]
    unit.append((SPECIAL, "<|end|>"))
    return unit


def _harmony_message(message: Message, index: int, keep_reasoning: bool, tool_names: Mapping[str, str]) -> Unit:
    role = message.role
    text = content_text(message)
    if role in ("system", "developer"):
        body: Unit = [(TEMPLATE, "# Instructions\n\n"), (CONTENT, text), (TEMPLATE, "\n\n")]
        if index == 0:  # inside the developer message of the fixed part
            return body
        return [(SPECIAL, "<|start|>"), (TEMPLATE, "developer"), (SPECIAL, "<|message|>"), *body, (SPECIAL, "<|end|>")]
    if role == "user":
        unit: Unit = [(SPECIAL, "<|start|>"), (TEMPLATE, "user"), (SPECIAL, "<|message|>")]
        if message.name:
            unit.append((CONTENT, message.name + ": "))
        return [*unit, (CONTENT, text), (SPECIAL, "<|end|>")]
    if role == "tool":
        name = tool_names.get(message.tool_call_id or "", message.name or "")
        return [
            (SPECIAL, "<|start|>"),
            (TEMPLATE, "functions."),
            (CONTENT, name),
            (TEMPLATE, " to=assistant"),
            (SPECIAL, "<|channel|>"),
            (TEMPLATE, "commentary"),
            (SPECIAL, "<|message|>"),
            (CONTENT, text),
            (SPECIAL, "<|end|>"),
        ]
    # assistant
    unit = []
    analysis = message.reasoning if keep_reasoning and message.reasoning else None
    if message.tool_calls and text:
        analysis = text if analysis is None else analysis + text
    if analysis:
        unit += [(SPECIAL, "<|start|>"), (TEMPLATE, "assistant"), (SPECIAL, "<|channel|>"), (TEMPLATE, "analysis")]
        unit += [(SPECIAL, "<|message|>"), (CONTENT, analysis), (SPECIAL, "<|end|>")]
    if message.tool_calls:
        for call in message.tool_calls:
            unit += [(SPECIAL, "<|start|>"), (TEMPLATE, "assistant"), (SPECIAL, "<|channel|>")]
            unit += [(TEMPLATE, "commentary to=functions."), (CONTENT, call.function.name or ""), (TEMPLATE, " ")]
            unit += [(SPECIAL, "<|constrain|>"), (TEMPLATE, "json"), (SPECIAL, "<|message|>")]
            unit += [(CONTENT, call.function.arguments or ""), (SPECIAL, "<|call|>")]
        return unit
    unit += [(SPECIAL, "<|start|>"), (TEMPLATE, "assistant"), (SPECIAL, "<|channel|>"), (TEMPLATE, "final")]
    return [*unit, (SPECIAL, "<|message|>"), (CONTENT, text), (SPECIAL, "<|end|>")]


# --- chatml ----------------------------------------------------------------------------------


def _chatml_message(message: Message, keep_reasoning: bool) -> Unit:
    unit: Unit = [(SPECIAL, "<|im_start|>"), (TEMPLATE, message.role + "\n")]
    if keep_reasoning and message.reasoning:
        unit += [(SPECIAL, "<think>"), (CONTENT, "\n" + message.reasoning + "\n"), (SPECIAL, "</think>")]
        unit.append((TEMPLATE, "\n\n"))
    unit.append((CONTENT, content_text(message)))
    for call in message.tool_calls or ():
        unit.append((CONTENT, _json({"name": call.function.name, "arguments": call.function.arguments})))
    return [*unit, (SPECIAL, "<|im_end|>"), (TEMPLATE, "\n")]


# --- rendering -------------------------------------------------------------------------------


_today: tuple[int, str] = (-1, "")


def utc_today() -> str:
    """Today's date (UTC) as the harmony preamble writes it; formatted once a day, not per prompt."""
    global _today
    day = int(time.time() // 86400)
    if day != _today[0]:
        _today = (day, time.strftime("%Y-%m-%d", time.gmtime(day * 86400)))
    return _today[1]


def render_units(request: ChatCompletionRequest, family: Family, date: str | None = None) -> tuple[Unit, list[Unit]]:
    """The fixed unit and one unit per message of a ``harmony`` or ``chatml`` family.

    ``date`` is the harmony preamble's ``Current date`` (default: today, UTC). Generation prompt
    included in the fixed unit.
    """
    keep_from = keeps_reasoning_from(request)
    messages = request.messages
    if family.format == "harmony":
        today = date or utc_today()
        fixed = _harmony_fixed(request, family, today)
        tool_names = {call.id: call.function.name or "" for m in messages for call in (m.tool_calls or ())}
        units = [_harmony_message(m, i, i >= keep_from, tool_names) for i, m in enumerate(messages)]
        fixed += [(SPECIAL, "<|start|>"), (TEMPLATE, "assistant")]
        return fixed, units
    units = [_chatml_message(m, i >= keep_from) for i, m in enumerate(messages)]
    return [(SPECIAL, "<|im_start|>"), (TEMPLATE, "assistant\n")], units


def render_prompt(request: ChatCompletionRequest, family: Family | None = None, date: str | None = None) -> str:
    """The whole prompt as the server renders it (special tokens as their text), for a harmony or chatml family."""
    family = family or family_for(request.model)
    fixed, units = render_units(request, family, date)
    if family.format == "harmony":
        generation = fixed[-2:]
        head = fixed[:-2]
        if head and head[-1] == (SPECIAL, "<|end|>") and units and request.messages[0].role in ("system", "developer"):
            # the first system message's instructions sit inside the developer message, before its tools
            developer = next(i for i, chunk in enumerate(head) if chunk == (TEMPLATE, "developer")) + 2
            head = head[:developer] + units[0] + head[developer:]
            units = units[1:]
        parts = [*head, *(chunk for unit in units for chunk in unit), *generation]
    else:
        parts = [*(chunk for unit in units for chunk in unit), *fixed]
    return "".join(text for _, text in parts)
