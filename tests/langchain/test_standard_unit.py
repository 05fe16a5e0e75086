"""langchain-tests' standard unit suite (no network)."""

from __future__ import annotations

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_cerebras_paygo import ChatCerebras


class TestChatCerebrasUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatCerebras]:
        return ChatCerebras

    @property
    def chat_model_params(self) -> dict[str, str]:
        return {"model": "gpt-oss-120b"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        return (
            {"CEREBRAS_API_KEY": "csk-from-env", "CEREBRAS_BASE_URL": "http://127.0.0.1:8000"},
            {"model": "gpt-oss-120b"},
            {"api_key": "csk-from-env"},
        )
