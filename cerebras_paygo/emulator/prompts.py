"""Framework prompts the emulator recognises, parsed into what an answer needs.

Agents and RAG pipelines talk to a model through fixed prompt templates, and a real model answers
them in the shape the framework then parses. These parsers find, in the messages of a request:

- a ReAct prompt (LlamaIndex's ``ReActAgent`` header: ``Tool Name:`` / ``Tool Args:`` blocks and
  ``Answer:``; the classic LangChain one: ``Action: ... one of [tools]`` and ``Final Answer:``),
  with the question and the steps since it (``Action:`` lines, ``Observation:`` results);
- a JSON schema written into the prompt (LlamaIndex's ``LLMTextCompletionProgram``, LangChain's
  ``PydanticOutputParser`` instructions), or a plain request for JSON;
- LlamaIndex's refine prompts (query engine and chat engines) and its condense-question prompts;
- a conversation-summary prompt (LangChain's ``SummarizationMiddleware``: ``<messages>`` block).

Only parsing is here; ``content.py`` writes the answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ReActPrompt",
    "Refine",
    "condense_question",
    "json_requested",
    "prompt_schema",
    "react_prompt",
    "refine_prompt",
    "summary_request",
    "text_of",
]


def text_of(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def _instruction_texts(messages: list[Mapping[str, Any]]) -> list[str]:
    """The system/developer messages and the last user message: what the current turn asks."""
    texts = [text_of(m) for m in messages if m.get("role") in ("system", "developer")]
    for message in reversed(messages):
        if message.get("role") == "user":
            texts.append(text_of(message))
            break
    return texts


# --- ReAct ------------------------------------------------------------------------------------


@dataclass
class ReActPrompt:
    tools: list[dict[str, Any]]
    """The listed tools, as OpenAI ``tools`` entries (``parameters`` when the prompt gives them)."""
    question: str
    steps: str
    """The agent's text since the question: its ``Thought/Action`` turns and the ``Observation:`` results."""
    classic: bool
    """LangChain's classic format (``Final Answer:``, ``Action Input`` a plain string for one argument)."""
    continues: bool
    """The prompt ends with ``Thought:``: the answer continues that line."""
    called: list[str] = field(default_factory=list)
    observations: list[tuple[str, str]] = field(default_factory=list)
    """``(tool name, result)`` for each ``Observation:`` since the question, in order."""


_STEP_LABEL = r"(?:Thought|Action|Action Input|Observation|Final Answer|Answer)\s*:"


def _is_react_header(text: str) -> bool:
    return (
        "Action Input:" in text
        and "Thought:" in text
        and re.search(r"(?m)^\s*Action:", text) is not None
        and not text.lstrip().startswith("Observation:")
    )


def _json_at(text: str, start: int) -> Any:
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return value


def _llama_tools(text: str) -> list[dict[str, Any]]:
    tools = []
    for match in re.finditer(r"(?m)^>?\s*Tool Name:\s*(\S+)\s*$", text):
        block = text[match.end() :]
        end = re.search(r"(?m)^>?\s*Tool Name:", block)
        block = block[: end.start()] if end else block
        description = re.search(r"(?s)Tool Description:\s*(.*?)(?:\n\s*Tool Args:|$)", block)
        args_at = re.search(r"Tool Args:\s*", block)
        parameters = _json_at(block, args_at.end()) if args_at else None
        function: dict[str, Any] = {
            "name": match.group(1),
            "description": description.group(1).strip() if description else "",
        }
        if isinstance(parameters, dict):
            function["parameters"] = parameters
        tools.append({"type": "function", "function": function})
    return tools


def _classic_tools(text: str) -> list[dict[str, Any]]:
    listed = re.search(r"one of \[([^\]\n]*)\]", text)
    if not listed:
        return []
    tools = []
    for name in (n.strip() for n in listed.group(1).split(",")):
        if not name:
            continue
        # ``render_text_description``: ``name(args) - description``; also ``name: description``.
        line = re.search(rf"(?m)^\s*{re.escape(name)}\s*(\([^\n]*?\))?\s*(?:-|:)\s*(.*)$", text)
        function: dict[str, Any] = {"name": name, "description": line.group(2).strip() if line else ""}
        signature = line.group(1) if line else None
        if signature:
            params = re.findall(r"(\w+)\s*:\s*(\w+)", signature)
            kinds = {"int": "integer", "float": "number", "bool": "boolean"}
            function["parameters"] = {
                "type": "object",
                "properties": {p: {"type": kinds.get(t, "string")} for p, t in params},
                "required": [p for p, _ in params],
            }
        args_json = re.search(r"args:\s*", line.group(2)) if line else None
        if line and args_json:
            schema = _json_at(line.group(2), args_json.end())
            if isinstance(schema, dict):
                function["parameters"] = {"type": "object", "properties": schema, "required": list(schema)}
        tools.append({"type": "function", "function": function})
    return tools


def react_prompt(messages: list[Mapping[str, Any]]) -> ReActPrompt | None:
    """The ReAct prompt of this request, or ``None``."""
    for index, message in enumerate(messages):
        if message.get("role") not in ("system", "developer", "user"):
            continue
        text = text_of(message)
        if not _is_react_header(text):
            continue
        tools = _llama_tools(text) or _classic_tools(text)
        if not tools:
            continue
        classic = "Final Answer:" in text
        later = messages[index + 1 :]
        if message.get("role") == "user" or not later:
            # The whole conversation is in this one prompt: the scratchpad follows the last question.
            questions = list(re.finditer(r"(?m)^\s*(?:Question|Human|User)\s*:\s*(.+)$", text))
            question_match = questions[-1] if questions else None
            question = question_match.group(1).strip() if question_match else ""
            steps = text[question_match.end() :] if question_match else ""
            steps += "".join("\n" + text_of(m) for m in later)
            continues = not later and text.rstrip().endswith("Thought:")
        else:
            # The header is a system message: the question is the last user turn that is not an
            # observation, the steps are what came after it.
            question, start = "", 0
            for i, m in enumerate(later):
                if m.get("role") == "user" and not text_of(m).lstrip().startswith("Observation:"):
                    question, start = text_of(m), i + 1
            steps = "\n".join(text_of(m) for m in later[start:])
            continues = False
        prompt = ReActPrompt(tools=tools, question=question.strip(), steps=steps, classic=classic, continues=continues)
        _read_steps(prompt)
        return prompt
    return None


def _read_steps(prompt: ReActPrompt) -> None:
    action = "tool"
    for match in re.finditer(rf"(?ms)^\s*(Action|Observation)\s*:\s*(.*?)(?=^\s*{_STEP_LABEL}|\Z)", prompt.steps):
        label, value = match.group(1), match.group(2).strip()
        if label == "Action":
            action = value.split()[0] if value.split() else "tool"
            prompt.called.append(action)
        else:
            prompt.observations.append((action, value))


# --- JSON without response_format -----------------------------------------------------------------


def _is_schema(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    properties = value.get("properties")
    if isinstance(properties, dict) and properties:
        return all(isinstance(v, dict) for v in properties.values())
    return value.get("type") in ("object", "array") or "$defs" in value or "anyOf" in value


def _schemas_in(text: str) -> list[tuple[dict[str, Any], int, int]]:
    found: list[tuple[dict[str, Any], int, int]] = []
    decoder = json.JSONDecoder()
    i = text.find("{")
    while i >= 0:
        try:
            value, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if _is_schema(value):
            found.append((value, i, end))
        i = text.find("{", end)
    return found


def prompt_schema(messages: list[Mapping[str, Any]]) -> tuple[dict[str, Any], str] | None:
    """A JSON schema written into the prompt (the last one: instructions may show an example
    first), with the prompt's text without it; ``None`` when the prompt shows no schema or does not
    mention JSON. LlamaIndex sends its schema with doubled braces (``{{"properties": ...}}``)."""
    for text in reversed(_instruction_texts(messages)):
        if not re.search(r"\bJSON\b", text, re.IGNORECASE):
            continue
        for candidate in (text, text.replace("{{", "{").replace("}}", "}")):
            schemas = _schemas_in(candidate)
            if schemas:
                return schemas[-1][0], _without_format_instructions(candidate, schemas)
    return None


def _without_format_instructions(text: str, schemas: list[tuple[dict[str, Any], int, int]]) -> str:
    """The prompt without its schemas and the lines about the output format (what the answer is
    built from: the quoted names, numbers and places of the request itself)."""
    for _, start, end in reversed(schemas):
        text = text[:start] + text[end:]
    lines = [line for line in text.splitlines() if not re.search(r"json|schema|^\s*```", line, re.IGNORECASE)]
    return "\n".join(lines)


_JSON_ASK = re.compile(
    r"\b(?:respond|reply|answer|output|return|format(?:ted)?|provide|produce|give|generate|write|emit)\b"
    r"[^.\n]{0,40}\bJSON\b|\bJSON\b\s+(?:object|only|format)\b|\bas\s+JSON\b",
    re.IGNORECASE,
)


def json_requested(messages: list[Mapping[str, Any]]) -> bool:
    """The prompt asks for a JSON answer in words (no ``response_format``, no schema)."""
    return any(_JSON_ASK.search(text) for text in _instruction_texts(messages))


# --- LlamaIndex refine and condense prompts ---------------------------------------------------------


@dataclass(frozen=True)
class Refine:
    context: str
    question: str
    existing: str


_DASHES = re.compile(r"(?m)^[ \t]*-{4,}[ \t]*$")


def _strip_dashes(text: str) -> str:
    return _DASHES.sub("", text).strip()


def refine_prompt(messages: list[Mapping[str, Any]]) -> Refine | None:
    """A refine prompt (an existing answer to improve with new context), or ``None``."""
    last_user = next((text_of(m) for m in reversed(messages) if m.get("role") == "user"), "")
    for message in reversed(messages):
        if message.get("role") not in ("user", "system", "developer"):
            continue
        text = text_of(message)
        # Query engines (chat models): ``New Context: ... Query: ... Original Answer: ... New Answer:``.
        match = re.search(
            r"(?s)New Context:\s*(.*?)\n\s*Query:\s*(.*?)\n\s*Original Answer:\s*(.*?)\n\s*New Answer:", text
        )
        if match:
            return Refine(_strip_dashes(match.group(1)), match.group(2).strip(), match.group(3).strip())
        # Query engines (completion prompt).
        match = re.search(
            r"(?s)The original query is as follows:\s*(.*?)\n\s*We have provided an existing answer:\s*(.*?)\n"
            r".*?^-{4,}\s*$(.*?)^-{4,}\s*$",
            text,
            re.MULTILINE,
        )
        if match:
            return Refine(match.group(3).strip(), match.group(1).strip(), match.group(2).strip())
        # Chat engines: the context in the system prompt, the question is the user's.
        match = re.search(
            r"(?s)refine the following existing answer.*?^-{4,}\s*$(.*?)^-{4,}\s*$\s*Existing Answer:\s*(.*?)"
            r"(?:^-{4,}\s*$|\Z)",
            text,
            re.MULTILINE,
        )
        if match is None:
            match = re.search(
                r"(?s)relevant documents for the context:\s*(.*?)\n\s*Existing Answer:\s*(.*?)\n\s*Instruction:", text
            )
        if match:
            return Refine(match.group(1).strip(), last_user.strip(), match.group(2).strip())
    return None


def condense_question(messages: list[Mapping[str, Any]]) -> str | None:
    """The follow-up question of a "rephrase as a standalone question" prompt, or ``None``."""
    for text in reversed(_instruction_texts(messages)):
        if "standalone question" not in text.lower():
            continue
        match = re.search(r"(?s)Follow Up Input:\s*(.*?)\s*(?:\n\s*)?Standalone question:", text) or re.search(
            r"(?s)<Follow Up Message>\s*(.*?)\s*<Standalone question>", text
        )
        if match and match.group(1).strip():
            return match.group(1).strip()
    return None


# --- conversation summaries ------------------------------------------------------------------------


def summary_request(messages: list[Mapping[str, Any]]) -> tuple[str, list[tuple[str, str]]] | None:
    """``(instructions, [(role, text), ...])`` when the prompt asks to summarize a conversation given
    as a ``<messages>`` block (LangChain's ``SummarizationMiddleware``), else ``None``."""
    for text in reversed(_instruction_texts(messages)):
        block = re.search(r"(?s)<messages>(.*?)(?:</messages>|\Z)", text)
        if not block or not re.search(r"summar|extract", text[: block.start()], re.IGNORECASE):
            continue
        body = block.group(1)
        turns = [
            (m.group(1), m.group(2).strip())
            for m in re.finditer(r'(?s)<message type="(\w+)"[^>]*>(.*?)(?:</message>|(?=<message )|\Z)', body)
        ]
        if not turns:
            turns = [
                (m.group(1).lower(), m.group(2).strip())
                for m in re.finditer(r"(?ms)^(Human|AI|System|Tool|User|Assistant):\s*(.*?)(?=^\w+:|\Z)", body)
            ]
        return text[: block.start()], turns
    return None
