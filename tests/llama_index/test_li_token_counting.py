"""Cerebras token counting for LlamaIndex (issue 14): ``Settings.tokenizer`` and ``ChatMemoryBuffer``
cut with the model's real vocabulary (the ``[tokenizer]`` extra), or with the safe high end."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Settings
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.utils import get_tokenizer

from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._context import TokenEstimator
from llama_index_cerebras import Cerebras
from tests.llama_index.helpers import fresh_key

quicktok = pytest.importorskip("quicktok", reason="needs the [tokenizer] extra (quicktok-v1)")
ENC = quicktok.get_encoding("o200k_harmony")
TEXT = "Remember what was said; résumé, naïve, 東京, 12345678901 and a_snake_case_name."


def llm_with(emulator: Any, *, vocabularies: bool = True) -> Cerebras:
    client = CerebrasClient(
        base_url=emulator.base_url, api_key=fresh_key(emulator), estimator=TokenEstimator(vocabularies=vocabularies)
    )
    return Cerebras(client=client, max_tokens=16)


def chat_history() -> list[ChatMessage]:
    out = []
    for i in range(20):
        out.append(ChatMessage(role=MessageRole.USER, content=f"Question {i}: " + TEXT * (i % 4 + 1)))
        out.append(ChatMessage(role=MessageRole.ASSISTANT, content=f"Answer {i}: " + TEXT))
    return out


def real(text: str) -> int:
    return len(ENC.encode_ordinary(text))


def memory_text(messages: list[ChatMessage]) -> str:
    return " ".join(str(m.content) for m in messages)  # what ChatMemoryBuffer counts


def test_the_tokenizer_hook_is_the_vocabulary_and_works_as_settings_tokenizer(emulator: Any) -> None:
    llm = llm_with(emulator)
    assert llm.tokenizer(TEXT) == ENC.encode_ordinary(TEXT)
    assert llm.count_tokens(TEXT) == real(TEXT)
    previous = get_tokenizer()
    try:
        Settings.tokenizer = llm.tokenizer
        assert get_tokenizer()(TEXT) == ENC.encode_ordinary(TEXT)
    finally:
        Settings.tokenizer = previous
    heuristic = llm_with(emulator, vocabularies=False)
    assert len(heuristic.tokenizer(TEXT)) == heuristic.count_tokens(TEXT) >= real(TEXT)


@pytest.mark.parametrize("vocabularies", [True, False], ids=["tokenizer", "heuristic"])
def test_chat_memory_buffer_cuts_to_the_token_limit(emulator: Any, vocabularies: bool) -> None:
    llm = llm_with(emulator, vocabularies=vocabularies)
    limit = 600
    full = chat_history()
    assert real(memory_text(full)) > 3 * limit
    memory = ChatMemoryBuffer.from_defaults(chat_history=full, llm=llm, token_limit=limit, tokenizer_fn=llm.tokenizer)
    kept = memory.get()
    assert 0 < len(kept) < len(full) and kept[-1] == full[-1]
    assert real(memory_text(kept)) <= limit  # never over: exact, or the high end
    if vocabularies:  # exact: one more message would not have fitted
        assert real(memory_text(full[len(full) - len(kept) - 1 :])) > limit


def test_the_message_count_is_the_servers(emulator: Any) -> None:
    llm = llm_with(emulator)
    messages = chat_history()[:5]
    counted = llm.count_message_tokens(messages)
    response = llm.chat(messages)
    assert response.raw is not None
    assert response.additional_kwargs["prompt_tokens"] == counted
