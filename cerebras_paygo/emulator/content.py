"""Deterministic completions: text, reasoning, tool calls, JSON, RAG answers, and the answers to
framework prompts ``prompts.py`` recognises (ReAct steps, JSON from a schema in the prompt, refine,
condense and summary prompts).

The output depends only on the request (minus delivery fields such as ``stream``, ``stop`` or
``max_completion_tokens``), the run seed and the choice index, so a stream and a plain call say the
same thing and a smaller budget cuts the same answer shorter. Lengths are in
the emulator's tokens (``tokens.split``): a text answer runs to the configured default length (or
``min_completion_tokens``), everything is cut at the completion budget (``finish_reason: "length"``)
and at the first ``stop`` string.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cerebras_paygo.emulator.facts import ModelFacts
from cerebras_paygo.emulator.prompts import (
    ReActPrompt,
    Refine,
    condense_question,
    json_requested,
    prompt_schema,
    react_prompt,
    refine_prompt,
    summary_request,
    text_of,
)
from cerebras_paygo.emulator.schemas import (
    STOPWORDS,
    PromptFacts,
    instance,
    keywords,
    name_words,
    requested_keys,
    string_role,
    word_set,
)
from cerebras_paygo.emulator.tokens import count_text, split

__all__ = ["GeneratedChoice", "GenerationSettings", "ReasoningPlan", "generate", "logprobs_for", "reasoning_plan"]

# Fields that change how an answer is delivered or cut, not what it says: they do not change the seed,
# so a stream equals a plain call and a short budget gives a prefix of the long answer.
_PRESENTATION_FIELDS = word_set(
    "stream stream_options reasoning_format logprobs top_logprobs max_tokens max_completion_tokens stop "
    "user service_tier prompt_cache_key"
)
_EFFORT_SCALE = {"low": 0.5, "medium": 1.0, "high": 2.0}
_THINK_TAG_MODELS = ("glm", "qwen", "deepseek")
_GENERIC_TOOL_WORDS = word_set(
    "get set fetch do run call tool function current data info information given returns return value "
    "result specified provided using based the for and with from"
)
_GREETINGS = {
    "portuguese": "Olá!",
    "spanish": "¡Hola!",
    "french": "Bonjour !",
    "german": "Hallo!",
    "italian": "Ciao!",
    "japanese": "こんにちは\uff01",
    "chinese": "你好\uff01",
    "russian": "Привет!",
    "dutch": "Hallo!",
}
_TEXT_TEMPLATES = (
    "{T} is best understood by looking at {u} first.",
    "The key idea is that {t} and {u} are closely connected.",
    "In practice, {t} depends on the context you give it.",
    "A small, concrete example usually makes {t} easier to follow.",
    "Keep in mind that details about {u} can change the outcome.",
    "Most of the time, a careful look at {u} answers the question.",
    "It also helps to compare {t} with related ideas such as {u}.",
    "To summarize, {t} rewards a step-by-step approach.",
)
_REASONING_TEMPLATES = (
    "The user is asking about {t}.",
    "I should give a clear and concise answer.",
    "Let me consider how {u} relates to {t}.",
    "The important points are {t} and {u}.",
    "I will keep the answer short and accurate.",
    "Double-checking the details about {u} before answering.",
)


@dataclass(frozen=True)
class ReasoningPlan:
    effort: str
    format: str  # "text_parsed" | "parsed" | "raw" | "hidden"
    tokens: int
    think_tags: bool


@dataclass(frozen=True)
class GenerationSettings:
    budget: int
    """Completion tokens allowed (``max_completion_tokens`` or its default, capped by the output cap)."""
    default_tokens: int
    reasoning_tokens: int
    seed: int


@dataclass
class GeneratedChoice:
    index: int
    content: str | None
    reasoning: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    completion_tokens: int
    reasoning_tokens: int
    content_pieces: list[str] = field(default_factory=list)
    reasoning_pieces: list[str] = field(default_factory=list)


def reasoning_plan(body: Mapping[str, Any], spec: ModelFacts, base_tokens: int) -> ReasoningPlan | None:
    """Whether and how this request reasons (``None``: no reasoning)."""
    caps = spec.capabilities
    if not caps.reasoning:
        return None
    effort = body.get("reasoning_effort") or caps.default_reasoning_effort or "medium"
    if effort == "none" or body.get("disable_reasoning") is True:
        return None
    fmt = body.get("reasoning_format") or "none"
    if fmt == "none":
        fmt = "text_parsed"
    response_format = body.get("response_format") or {}
    if fmt == "raw" and response_format.get("type") in ("json_object", "json_schema"):
        fmt = "hidden"
    tokens = max(1, round(base_tokens * _EFFORT_SCALE.get(effort, 1.0)))
    think = any(tag in spec.id.lower() for tag in _THINK_TAG_MODELS)
    return ReasoningPlan(effort=effort, format=fmt, tokens=tokens, think_tags=think)


def _seed(body: Mapping[str, Any], run_seed: int, index: int) -> int:
    relevant = {k: v for k, v in body.items() if k not in _PRESENTATION_FIELDS}
    digest = hashlib.sha256(
        json.dumps([run_seed, index, relevant], sort_keys=True, default=str, ensure_ascii=False).encode()
    ).digest()
    return int.from_bytes(digest[:8], "big")


_text_of = text_of


def _last_user_text(messages: list[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message)
    return ""


def _fill(templates: tuple[str, ...], topics: list[str], target: int, rng: random.Random, first: str) -> str:
    """Whole sentences about ``topics`` until the text is at least ``target`` tokens."""
    t = topics[0] if topics else "your question"
    u = topics[1] if len(topics) > 1 else ("its context" if topics else "the context")
    sentences = [first.format(t=t, u=u, T=t[:1].upper() + t[1:])]
    total = count_text(sentences[0])  # a joining space attaches to the next word: counts simply add up
    order = list(range(len(templates)))
    rng.shuffle(order)
    i = 0
    while total < target and i < 20_000:
        template = templates[order[i % len(order)]]
        if i >= len(order) and topics:
            t_alt, u_alt = rng.choice(topics), rng.choice(topics)
        else:
            t_alt, u_alt = t, u
        sentence = template.format(t=t_alt, u=u_alt, T=t_alt[:1].upper() + t_alt[1:])
        i += 1
        if i < 4 * len(order) and sentence in sentences:
            continue
        sentences.append(sentence)
        total += count_text(sentence)
    return " ".join(sentences)


def _topics(text: str) -> list[str]:
    """Topic phrases of ``text``: runs of adjacent content words (``"token buckets"``), in order."""
    wanted = {w.lower() for w in keywords(text)}
    phrases: list[str] = []
    run: list[str] = []
    for word in [*re.findall(r"[^\W_]+(?:['\u2019][^\W_]+)?|[^\w\s]", text), "."]:
        if word.lower() in wanted:
            run.append(word)
            continue
        if run:
            phrase = " ".join(run[:3])
            if phrase.lower() not in (p.lower() for p in phrases):
                phrases.append(phrase)
            run = []
    return phrases[:6]


def _greeting(text: str) -> str | None:
    low = text.lower()
    if not re.search(r"\b(say|said)\s+(hi|hello)\b|^\s*(hi|hello|hey)\b|\bgreet", low):
        return None
    for language, greeting in _GREETINGS.items():
        if language in low:
            return greeting
    return "Hello! How can I help you today?"


def _rag(messages: list[Mapping[str, Any]]) -> tuple[str, str] | None:
    """``(context, question)`` when a prompt carries a retrieval context block."""
    question_default = _last_user_text(messages)
    for message in reversed(messages):
        if message.get("role") not in ("user", "system", "developer"):
            continue
        text = _text_of(message)
        low = text.lower()
        context = question = None
        if "---------------------" in text or _SEPARATOR.search(text):
            # LlamaIndex's QA and summary templates (21 dashes) and its context chat engine (20).
            parts = _SEPARATOR.split(text) if _SEPARATOR.search(text) else text.split("---------------------")
            context = parts[1] if len(parts) > 1 else ""
            rest = "\n".join(parts[2:]) if len(parts) > 2 else ""
            question = _after(rest, ("query:", "question:")) or _last_line(rest)
        elif "relevant documents for the context:" in low:
            # LlamaIndex's condense-plus-context chat engine: the documents in the system prompt.
            body = re.split(r"(?i)relevant documents for the context:", text, maxsplit=1)[-1]
            context = re.split(r"(?im)^\s*instruction\s*:", body, maxsplit=1)[0]
            question = None
        elif "context information is below" in low or re.search(r"(?im)^\s*context\s*:", text):
            body = re.split(r"(?im)context information is below\.?|^\s*context\s*:", text, maxsplit=1)[-1]
            context = re.split(r"(?im)^\s*(?:query|question|answer)\s*:", body, maxsplit=1)[0]
            question = _after(body, ("query:", "question:"))
        if context is not None and context.strip():
            q = question or (question_default if message.get("role") != "user" else "") or question_default
            return context.strip(), q.strip()
    return None


_SEPARATOR = re.compile(r"(?m)^[ \t]*-{10,}[ \t]*$")


def _after(text: str, labels: tuple[str, ...]) -> str | None:
    for label in labels:
        match = re.search(rf"(?i){re.escape(label)}\s*(.+?)(?:\n\s*answer\s*:|$)", text, re.DOTALL)
        if match and match.group(1).strip():
            return match.group(1).strip()
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _stem(word: str) -> str:
    return word.lower()[:5]


def _rag_answer(context: str, question: str) -> str:
    lines = [
        line
        for line in context.splitlines()
        if line.strip() and (len(line.split()) > 6 or not re.match(r"^\s*[\w ]{1,30}:\s*\S+\s*$", line))
    ]
    sentences = [s.strip() for s in re.split(r"(?<=[.!?。])\s+", " ".join(line.strip() for line in lines)) if s.strip()]
    if not sentences:
        return "The provided context does not contain an answer to this question."
    return " ".join(_best_sentences(sentences, question) or sentences[:2])


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?。])\s+", " ".join(text.split())) if s.strip()]


def _best_sentences(sentences: list[str], question: str, limit: int = 3) -> list[str]:
    """Up to ``limit`` sentences that share the most content words with ``question`` (at least half
    as many as the best one does), in their order; none when no sentence shares a word."""
    wanted = {_stem(w) for w in keywords(question) if w.lower() not in STOPWORDS}
    scored = [(len(wanted & {_stem(w) for w in keywords(s)}), i) for i, s in enumerate(sentences)]
    top = max((score for score, _ in scored), default=0)
    if top == 0:
        return []
    best = sorted((item for item in scored if 2 * item[0] >= top), key=lambda item: (-item[0], item[1]))[:limit]
    return [sentences[i] for i in sorted(i for _, i in best)]


def _matches(user_words: set[str], tool_words: set[str]) -> bool:
    for word in user_words:
        for tool_word in tool_words:
            if word == tool_word or (len(word) >= 5 and len(tool_word) >= 5 and word[:5] == tool_word[:5]):
                return True
    return False


def _tool_score(tool: Mapping[str, Any], user_text: str) -> int:
    function = tool.get("function") or {}
    user_words = {w.lower() for w in re.findall(r"[^\W_]+", user_text) if len(w) >= 3}
    names = {w for w in name_words(str(function.get("name", ""))) if len(w) >= 3 and w not in _GENERIC_TOOL_WORDS}
    described = {
        w.lower()
        for w in keywords(str(function.get("description", "")))
        if len(w) >= 4 and w.lower() not in _GENERIC_TOOL_WORDS
    }
    score = 0
    if _matches(user_words, names):
        score += 2
    if _matches(user_words, described):
        score += 1
    return score


def _choose_tools(body: Mapping[str, Any], spec: ModelFacts, messages: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    tools = [t for t in body.get("tools") or [] if isinstance(t, Mapping) and t.get("type", "function") == "function"]
    choice = body.get("tool_choice") or "auto"
    if not tools or choice == "none":
        return []
    if isinstance(choice, Mapping):
        wanted = (choice.get("function") or {}).get("name")
        return [dict(t) for t in tools if (t.get("function") or {}).get("name") == wanted][:1]
    last_role = messages[-1].get("role") if messages else None
    if last_role not in ("user", "tool"):
        return []
    user_text = _last_user_text(messages)
    # After tool results the model moves on, as agents rely on: it calls only tools it has not
    # called since the user spoke (a second step the task names, or the structured-output tool
    # of a ``tool_choice="required"`` agent), never the same tool again; else it answers.
    called = _called_since_user(messages) if last_role == "tool" else set()
    candidates = [i for i, t in enumerate(tools) if (t.get("function") or {}).get("name") not in called]
    scored = [(_tool_score(tools[i], user_text), i) for i in candidates]
    hits = [i for score, i in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]
    if not hits:
        if choice != "required" or not candidates:
            return []
        # Nothing in the prompt names a tool: the first one, or after tool results the last one
        # not yet called (agents append their structured-output tool after the user's tools).
        hits = [candidates[-1] if last_role == "tool" else candidates[0]]
    parallel = body.get("parallel_tool_calls")
    if parallel is None:
        parallel = spec.capabilities.parallel_tool_calls
    chosen = sorted(hits) if parallel else hits[:1]
    return [dict(tools[i]) for i in chosen]


def _called_since_user(messages: list[Mapping[str, Any]]) -> set[str]:
    """Names of the tools the assistant called after the last user message."""
    names: set[str] = set()
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                if isinstance(call, Mapping):
                    names.add(str((call.get("function") or {}).get("name", "")))
    return names


def _tool_answer(messages: list[Mapping[str, Any]]) -> str | None:
    """A text answer built from the tool results after the last assistant tool call."""
    results: list[Mapping[str, Any]] = []
    names: dict[str, str] = {}
    for message in reversed(messages):
        if message.get("role") == "tool":
            results.insert(0, message)
            continue
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                if isinstance(call, Mapping):
                    names[str(call.get("id"))] = str((call.get("function") or {}).get("name", "tool"))
        break
    if not results:
        return None
    return _results_answer(
        [(names.get(str(r.get("tool_call_id")), str(r.get("name") or "tool")), _text_of(r)) for r in results]
    )


def _results_answer(results: list[tuple[str, str]]) -> str:
    """An answer that reports each ``(tool name, result)``."""
    parts = []
    for name, raw in results:
        text = " ".join(raw.split())
        words = text.split()
        if len(words) > 60:
            text = " ".join(words[:60]) + " ..."
        parts.append((name, text))
    if len(parts) == 1:
        name, text = parts[0]
        return f"According to the {name} tool, the result is: {text}"
    listed = "; ".join(f"{name} returned {text}" for name, text in parts)
    return f"Here are the results: {listed}."


_NUMERIC_KEYS = word_set(
    "age count number total year quantity amount price score id size rating population length width "
    "height weight duration minutes hours days temperature percent"
)


def _json_object(body: Mapping[str, Any], user_text: str, rng: random.Random) -> Any:
    """JSON mode: the keys the prompt names (numbers, places and names from the prompt, else sentences)."""
    all_text = "\n".join(_text_of(m) for m in body.get("messages") or [] if m.get("role") != "assistant")
    keys = requested_keys(all_text)
    topics = [t for t in _topics(user_text) if t not in keys]
    if not keys:
        return {"answer": _fill(_TEXT_TEMPLATES, topics, 12, rng, "Here is a short answer about {t}.")}
    facts = PromptFacts.from_text(user_text)
    facts.quoted = [q for q in facts.quoted if q not in keys]
    facts.words = [w for w in facts.words if w not in keys]
    firsts = ["Here is a short answer about {t}.", *_TEXT_TEMPLATES]
    result: dict[str, Any] = {}
    for i, key in enumerate(keys):
        if set(name_words(key)) & _NUMERIC_KEYS:
            result[key] = instance({"type": "integer"}, facts, rng, name=key)
        elif string_role(key) is not None:
            result[key] = instance({"type": "string"}, facts, rng, name=key)
        else:
            result[key] = _fill(
                (), topics[i % len(topics) :] + topics if topics else [], 0, rng, firsts[i % len(firsts)]
            )
    return result


def _json_schema(
    body: Mapping[str, Any], user_text: str, rng: random.Random, schema: Mapping[str, Any] | None = None
) -> Any:
    """An instance of ``response_format``'s schema (or of ``schema``, one the prompt shows)."""
    if schema is None:
        spec = (body.get("response_format") or {}).get("json_schema") or {}
        schema = spec.get("schema") or {"type": "object"}
    return instance(dict(schema), PromptFacts.from_text(user_text), rng)


def _react_answer(prompt: ReActPrompt, rng: random.Random) -> str:
    """The next ReAct step: an ``Action`` on the best-fitting tool not yet called since the question,
    else the answer (from the observations when there are some)."""
    scored = [
        (_tool_score(tool, prompt.question), i)
        for i, tool in enumerate(prompt.tools)
        if (tool.get("function") or {}).get("name") not in prompt.called
    ]
    hits = [i for score, i in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]
    final = "Final Answer" if prompt.classic else "Answer"
    if hits:
        function = prompt.tools[hits[0]].get("function") or {}
        name = str(function.get("name"))
        schema = function.get("parameters") or {"type": "object", "properties": {"input": {"type": "string"}}}
        args = instance(schema, PromptFacts.from_text(prompt.question), rng)
        action_input = json.dumps(args, ensure_ascii=False)
        if prompt.classic and isinstance(args, dict) and len(args) == 1:
            # LangChain's single-input parser hands the text after ``Action Input:`` to the tool as is.
            only = next(iter(args.values()))
            action_input = only if isinstance(only, str) else json.dumps(only, ensure_ascii=False)
        thought = f"I need to use the {name} tool to answer the question."
        text = f"Thought: {thought}\nAction: {name}\nAction Input: {action_input}"
    elif prompt.observations:
        closing = "I now know the final answer" if prompt.classic else "I can answer without using any more tools."
        text = f"Thought: {closing}\n{final}: {_results_answer(prompt.observations)}"
    else:
        topics = _topics(prompt.question)
        answer = _fill(_TEXT_TEMPLATES, topics, 24, rng, "Here is a short answer about {t}.")
        text = f"Thought: I can answer without using any tools.\n{final}: {answer}"
    if prompt.continues:
        text = text.removeprefix("Thought:")
    return text


def _refine_answer(refine: Refine) -> str:
    """The existing answer rewritten with what the new context adds to the question, or repeated
    when the new context says nothing about it (what LlamaIndex's refine prompts ask)."""
    if not _best_sentences(_sentences(refine.context), refine.question):
        return refine.existing or _rag_answer(refine.context, refine.question)
    pool = list(dict.fromkeys([*_sentences(refine.existing), *_sentences(refine.context)]))
    return " ".join(_best_sentences(pool, refine.question))


def _summary(instructions: str, turns: list[tuple[str, str]]) -> str:
    """A summary of a conversation: what the user wants, the facts stated, what is left to do; in
    the sections the instructions name when they name some (``## SESSION INTENT`` ...)."""
    human = [text for role, text in turns if role in ("human", "user") and text]
    first = [s for text in human for s in _sentences(text)[:1]]
    facts = list(dict.fromkeys(first))
    intent = facts[0] if facts else "None"
    said = [s for role, text in turns if role in ("ai", "assistant", "tool") and text for s in _sentences(text)[:1]]
    summary = " ".join([*facts[:12], *list(dict.fromkeys(said))[:4]]) or "None"
    next_step = f"Answer the latest request: {human[-1]}" if human else "None"
    sections = re.findall(r"(?m)^##\s+(.+?)\s*$", instructions)
    if not sections:
        return summary
    out = []
    for section in sections:
        key = section.upper()
        if "INTENT" in key or "GOAL" in key:
            value = intent
        elif "NEXT" in key:
            value = next_step
        elif "SUMMARY" in key or "CONTEXT" in key:
            value = summary
        else:
            value = "None"
        out.append(f"## {section}\n\n{value}")
    return "\n\n".join(out)


def _content_for(
    body: Mapping[str, Any], messages: list[Mapping[str, Any]], settings: GenerationSettings, rng: random.Random
) -> str:
    user_text = _last_user_text(messages)
    response_format = body.get("response_format") or {}
    last_role = messages[-1].get("role") if messages else None
    kind = response_format.get("type")
    if last_role == "tool":
        answer = _tool_answer(messages)
        if answer and kind not in ("json_schema", "json_object"):
            return answer
        if answer:
            # ``response_format`` holds after tool results too: the answer is the JSON, built from
            # what the user asked and what the tools returned.
            user_text = f"{user_text}\n{answer}"
    if kind == "json_schema":
        return json.dumps(_json_schema(body, user_text, rng), ensure_ascii=False)
    if kind == "json_object":
        return json.dumps(_json_object(body, user_text, rng), ensure_ascii=False)
    # Framework prompts, answered in the shape the framework parses. A summary first: the
    # conversation it carries may show any of the others.
    summary = summary_request(messages)
    if summary is not None:
        return _summary(*summary)
    react = react_prompt(messages)
    if react is not None:
        return _react_answer(react, rng)
    shown = prompt_schema(messages)
    if shown is not None:
        schema, rest = shown
        return json.dumps(_json_schema(body, rest, rng, schema), ensure_ascii=False)
    if json_requested(messages):
        return json.dumps(_json_object(body, user_text, rng), ensure_ascii=False)
    standalone = condense_question(messages)
    if standalone is not None:
        return standalone
    refine = refine_prompt(messages)
    if refine is not None:
        return _refine_answer(refine)
    rag = _rag(messages)
    if rag is not None:
        return _rag_answer(*rag)
    greeting = _greeting(user_text)
    if greeting:
        return greeting
    target = settings.default_tokens
    for key in ("min_completion_tokens", "min_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            target = max(target, value)
        elif value == -1:
            target = max(target, settings.budget)
    return _fill(_TEXT_TEMPLATES, _topics(user_text), target, rng, "Here is a short answer about {t}.")


def _reasoning_text(
    messages: list[Mapping[str, Any]], calls: list[dict[str, Any]], plan: ReasoningPlan, rng: random.Random
) -> list[str]:
    topics = _topics(_last_user_text(messages))
    if calls:
        names = " and ".join(str((c.get("function") or {}).get("name")) for c in calls)
        first = f"The user needs {names}; I should call the tool with values from the request."
    elif messages and messages[-1].get("role") == "tool":
        first = "The tool returned a result; I should answer from it."
    else:
        first = "The user is asking about {t}."
    return split(_fill(_REASONING_TEMPLATES, topics, plan.tokens, rng, first))


def _apply_stop(content: str, stop: Any) -> tuple[str, bool]:
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    cut = min((content.find(s) for s in stops if s and s in content), default=-1)
    if cut >= 0:
        return content[:cut], True
    return content, False


def _call_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(36):09x}"


def generate(
    body: Mapping[str, Any], spec: ModelFacts, settings: GenerationSettings, index: int = 0
) -> GeneratedChoice:
    """One choice of a completion for ``body`` (already validated)."""
    rng = random.Random(_seed(body, settings.seed, index))
    messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
    plan = reasoning_plan(body, spec, settings.reasoning_tokens)
    budget = settings.budget
    tools = _choose_tools(body, spec, messages)
    calls: list[dict[str, Any]] = []
    for tool in tools:
        function = tool.get("function") or {}
        facts = PromptFacts.from_text(_last_user_text(messages))
        args = instance(function.get("parameters") or {"type": "object", "properties": {}}, facts, rng)
        calls.append(
            {
                "id": _call_id(rng),
                "type": "function",
                "function": {"name": function.get("name"), "arguments": json.dumps(args, ensure_ascii=False)},
            }
        )
    reasoning_pieces = _reasoning_text(messages, calls, plan, rng) if plan else []
    finish = "stop"
    body_pieces: list[str] = []
    if len(reasoning_pieces) >= budget:
        reasoning_pieces, calls, finish = reasoning_pieces[:budget], [], "length"
    remaining = budget - len(reasoning_pieces)
    call_tokens = sum(
        count_text(c["function"]["name"] or "") + count_text(c["function"]["arguments"]) + 4 for c in calls
    )
    if calls:
        if call_tokens > remaining:
            calls, call_tokens, finish = [], 0, "length"
        else:
            finish = "tool_calls"
    elif finish != "length":
        text, _ = _apply_stop(_content_for(body, messages, settings, rng), body.get("stop"))
        body_pieces = split(text)
        if len(body_pieces) > remaining:
            body_pieces, finish = body_pieces[:remaining], "length"
    visible_reasoning: str | None = None
    content_pieces = body_pieces
    tags = 0
    if plan and reasoning_pieces:
        if plan.format == "raw":
            tags = 2 if plan.think_tags else 0
            prefix = ["<think>", *reasoning_pieces, "</think>"] if plan.think_tags else reasoning_pieces
            content_pieces = [*prefix, *body_pieces]
        elif plan.format in ("parsed", "text_parsed"):
            visible_reasoning = "".join(reasoning_pieces)
    content: str | None = "".join(content_pieces)
    if calls and not content:
        content = None
    return GeneratedChoice(
        index=index,
        content=content,
        reasoning=visible_reasoning,
        tool_calls=calls,
        finish_reason=finish,
        completion_tokens=len(reasoning_pieces) + tags + len(body_pieces) + call_tokens,
        reasoning_tokens=len(reasoning_pieces),
        content_pieces=content_pieces,
        reasoning_pieces=reasoning_pieces if visible_reasoning is not None else [],
    )


def logprobs_for(pieces: list[str], top: int, seed: int) -> dict[str, Any]:
    """A ``logprobs`` object (``{"content": [...]}``) for the given token pieces."""
    rng = random.Random(f"logprobs:{seed}:{len(pieces)}")
    content = []
    for piece in pieces:
        logprob = -round(rng.random() * 0.4, 6)
        alternatives = [{"token": piece, "logprob": logprob, "bytes": list(piece.encode("utf-8"))}]
        for k in range(1, top):
            alt = piece.strip().upper() if k == 1 else f"{piece.strip()}{k}"
            alternatives.append(
                {"token": alt, "logprob": round(logprob - 1.5 * k - rng.random(), 6), "bytes": list(alt.encode())}
            )
        content.append(
            {
                "token": piece,
                "logprob": logprob,
                "bytes": list(piece.encode("utf-8")),
                "top_logprobs": alternatives[:top],
            }
        )
    return {"content": content}
