"""Issue 14 end to end: on the free tier, prompts that fit are sent and answered; prompts that don't are refused.

Fresh process state (the conftest resets the shared estimator), through ``CerebrasClient`` against
the emulator, which counts with the same vocabulary (o200k_harmony) when the tokenizer extra is installed.
"""

from __future__ import annotations

import pytest

from cerebras_paygo import errors
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._context.templates import render_prompt
from cerebras_paygo._wire import ChatCompletionRequest, Message
from tests.context.corpus import KINDS, sized_text

quicktok = pytest.importorskip("quicktok", reason="needs the [tokenizer] extra (quicktok-v1)")
ENC = quicktok.get_encoding("o200k_harmony")


def _request(text: str) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-oss-120b", messages=[Message(role="user", content=text)], max_completion_tokens=512
    )


def true_prompt(request: ChatCompletionRequest) -> int:
    return len(ENC.encode_with_special(render_prompt(request)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [5_000, 6_500, 7_000])
def test_a_prompt_that_fits_is_sent_and_answered(emulator, kind: str, size: int) -> None:
    client = CerebrasClient(api_key=emulator.free_api_key, base_url=emulator.base_url, tier="free")
    request = _request(sized_text(kind, size, lambda t: len(ENC.encode_ordinary(t))))
    truth = true_prompt(request)
    assert truth + 512 <= 8192
    result = client.chat(request)
    assert result.completion.usage is not None
    assert result.completion.usage.prompt_tokens == truth  # the emulator counts as the estimator does
    assert emulator.stats()["requests"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_prompt_of_9000_tokens_is_refused_before_sending(emulator, kind: str) -> None:
    client = CerebrasClient(api_key=emulator.free_api_key, base_url=emulator.base_url, tier="free")
    request = _request(sized_text(kind, 9_000, lambda t: len(ENC.encode_ordinary(t))))
    with pytest.raises(errors.ContextWindowExceededError) as info:
        client.chat(request)
    assert info.value.local
    assert info.value.current_length == true_prompt(request) + 512
    assert emulator.stats()["requests"] == 0
    # and the emulator agrees: sent anyway (PayGo window lowered to the free one), it refuses too
    paygo = CerebrasClient(api_key=emulator.free_api_key, base_url=emulator.base_url, tier="paygo")
    with pytest.raises(errors.ContextWindowExceededError) as server:
        paygo.chat(request)
    assert not server.value.local
    assert server.value.current_length == true_prompt(request) + 512
