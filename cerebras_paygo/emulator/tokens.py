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
chat template rendered (``cerebras_paygo._context.templates``) and encoded token for token; its
pieces are then the token ids. ``CEREBRAS_PAYGO_TOKENIZER=off`` turns that off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MESSAGE_OVERHEAD",
    "PRIMING_TOKENS",
    "count_prompt",
    "count_text",
    "prompt_pieces",
    "split",
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


def prompt_pieces(body: Mapping[str, Any]) -> list[str]:
    """The prompt of a chat request as token pieces (overhead tokens are marker pieces).

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


def _vocabulary_pieces(body: Mapping[str, Any]) -> list[str] | None:
    """The prompt's token ids (as pieces) in the model's real vocabulary, or None when not installed."""
    from cerebras_paygo._context import exact, templates  # the package's own counters and templates
    from cerebras_paygo._wire import ChatCompletionRequest

    family = templates.family_for(str(body.get("model", "")))
    counter = exact.vocabulary_counter(family.vocabulary) if family.format in ("harmony", "chatml") else None
    encoding = getattr(counter, "_encoding", None)
    if encoding is None:
        return None
    try:
        request = ChatCompletionRequest.model_validate(dict(body))
    except Exception:  # a body the validation layer lets through but the client model does not take
        return None
    return [str(token) for token in encoding.encode_with_special(templates.render_prompt(request, family))]


_prompt_pieces = prompt_pieces


def prompt_pieces(body: Mapping[str, Any]) -> list[str]:  # type: ignore[no-redef]
    """The prompt of a chat request as token pieces: the real vocabulary's token ids when installed."""
    pieces = _vocabulary_pieces(body)
    return pieces if pieces is not None else _prompt_pieces(body)


def count_prompt(body: Mapping[str, Any]) -> int:
    """``prompt_tokens`` of a chat request: messages, overhead, tools and response format."""
    return len(prompt_pieces(body))
