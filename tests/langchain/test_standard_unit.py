"""langchain-tests' standard unit suite (no network)."""

from __future__ import annotations

import os
from unittest import mock

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumpd, load
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

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

    @pytest.mark.xfail(
        reason="loads with allowed_objects='all', langchain-core's table of the integrations it ships; "
        "a third-party class gets in only by patching langchain-core's private globals, which this "
        "package does not do (test_serdes_named_class below is the same check with the class named)",
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)

    @pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
    def test_serdes_named_class(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        """The standard check, except that ``load`` names the class (the README's way)."""
        env_params, _model_params, _expected_attrs = self.init_from_env_params
        with mock.patch.dict(os.environ, env_params):
            ser = dumpd(model)
            assert ser == snapshot(name="serialized")
            restored = load(
                dumpd(model),
                allowed_objects=[ChatCerebras],
                valid_namespaces=model.get_lc_namespace()[:1],
                secrets_from_env=True,
            )
            assert model.dict() == restored.dict()
