"""langchain-tests' standard integration suite, over real HTTP against the local Cerebras emulator."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_cerebras_paygo import ChatCerebras
from tests.langchain.helpers import fresh_key


class TestChatCerebrasIntegration(ChatModelIntegrationTests):
    _emulator: Any = None
    _api_key: str = ""

    @pytest.fixture(autouse=True)
    def _use_emulator(self, emulator: Any) -> None:
        # ``chat_model_params`` is a property, so the fixture hands the server over through the class,
        # with a key of this test's own (limiter buckets and 402 circuits are process-wide per key).
        type(self)._emulator = emulator
        type(self)._api_key = fresh_key(emulator)

    @property
    def chat_model_class(self) -> type[ChatCerebras]:
        return ChatCerebras

    @property
    def chat_model_params(self) -> dict[str, Any]:
        emulator = type(self)._emulator
        return {
            "model": "gpt-oss-120b",
            "base_url": emulator.base_url,
            "api_key": type(self)._api_key,
            "max_tokens": 1024,
        }

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        # Another catalog model; the emulator answers as the requested model.
        return "zai-glm-4.7"

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": ["reasoning_output", "cache_read_input"], "stream": ["reasoning_output", "cache_read_input"]}

    def _model(self, **extra: Any) -> ChatCerebras:
        return ChatCerebras(**{**self.chat_model_params, **extra})

    @staticmethod
    def _run(llm: ChatCerebras, messages: list[Any], *, stream: bool) -> AIMessage:
        if not stream:
            return llm.invoke(messages)
        full: Any = None
        for chunk in llm.stream(messages):
            full = chunk if full is None else full + chunk
        assert full is not None
        return full  # type: ignore[no-any-return]

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        llm = self._model(reasoning_effort="high")
        message = self._run(llm, [HumanMessage("Think it through: what is 17 * 23?")], stream=stream)
        assert message.additional_kwargs.get("reasoning_content")
        return message

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        # The same long prefix twice: the second call reads it from the prompt cache.
        prefix = SystemMessage("You are a meticulous assistant. " + "Reference text: lorem ipsum dolor sit amet. " * 80)
        llm = self._model()
        self._run(llm, [prefix, HumanMessage("First question: hello?")], stream=stream)
        return self._run(llm, [prefix, HumanMessage("Second question: goodbye?")], stream=stream)
