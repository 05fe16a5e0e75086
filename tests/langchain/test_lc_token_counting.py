"""ChatCerebras token counting through LangChain's own ``trim_messages`` (issue 14): exact with the
``[tokenizer]`` extra and equal to the server's count, else the safe high end."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, trim_messages

from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._context import TokenEstimator
from cerebras_paygo.errors import ConfigurationError
from langchain_cerebras_paygo import ChatCerebras
from tests.langchain.helpers import fresh_key

quicktok = pytest.importorskip("quicktok", reason="needs the [tokenizer] extra (quicktok-v1)")
ENC = quicktok.get_encoding("o200k_harmony")
TEXT = "Trim the history so the prompt fits; résumé, naïve, 東京, 12345678901 and a_snake_case_name."


def llm_with(emulator: Any, *, vocabularies: bool = True) -> ChatCerebras:
    client = CerebrasClient(
        base_url=emulator.base_url, api_key=fresh_key(emulator), estimator=TokenEstimator(vocabularies=vocabularies)
    )
    return ChatCerebras(client=client, max_tokens=16)


def history() -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("You answer briefly.")]
    for i in range(12):
        messages += [HumanMessage(f"Question {i}: " + TEXT * (i + 1)), AIMessage(f"Answer {i}: " + TEXT)]
    return [*messages, HumanMessage("And the last question?")]


def test_get_num_tokens_counts_the_text_alone_and_token_ids_are_the_vocabularys(emulator: Any) -> None:
    llm, heuristic = llm_with(emulator), llm_with(emulator, vocabularies=False)
    assert llm.get_num_tokens(TEXT) == len(ENC.encode_ordinary(TEXT))  # no chat template around it
    assert llm.get_token_ids(TEXT) == ENC.encode_ordinary(TEXT)
    assert heuristic.get_num_tokens(TEXT) >= len(ENC.encode_ordinary(TEXT))  # the high end
    with pytest.raises(ConfigurationError, match=r"cerebras-paygo\[tokenizer\]"):
        heuristic.get_token_ids(TEXT)


def test_the_message_count_is_the_servers(emulator: Any) -> None:
    llm = llm_with(emulator)
    messages = history()[:5]
    counted = llm.get_num_tokens_from_messages(messages)
    assert llm.invoke(messages).usage_metadata["input_tokens"] == counted


@pytest.mark.parametrize("vocabularies", [True, False], ids=["tokenizer", "heuristic"])
def test_trim_messages_with_the_model_as_counter_cuts_to_fit(emulator: Any, vocabularies: bool) -> None:
    llm = llm_with(emulator, vocabularies=vocabularies)
    exact = llm_with(emulator)  # the server's count, to check against
    budget = 700
    full = history()
    assert exact.get_num_tokens_from_messages(full) > 3 * budget
    trimmed = trim_messages(
        full, max_tokens=budget, token_counter=llm, strategy="last", include_system=True, start_on="human"
    )
    assert trimmed[0] == full[0] and trimmed[-1] == full[-1] and len(trimmed) < len(full)
    real = exact.get_num_tokens_from_messages(trimmed)
    assert real <= budget  # never over the budget: exact, or the high end
    answer = llm.invoke(trimmed)
    assert answer.usage_metadata["input_tokens"] == real
    if vocabularies:
        # exact: the next older turn would not have fitted
        kept = len(trimmed) - 1
        one_more = [full[0], *full[len(full) - kept - 2 :]]
        assert exact.get_num_tokens_from_messages(one_more) > budget
