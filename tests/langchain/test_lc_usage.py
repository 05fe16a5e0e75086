"""ChatCerebras the way LangChain users write it: structured output without a schema,
serialization with ``dumps``/``loads``, ``init_chat_model``-style construction."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_cerebras_paygo import ChatCerebras
from tests.langchain.helpers import PATHS, fresh_key


def llm_for(emulator: Any, **kwargs: Any) -> ChatCerebras:
    kwargs.setdefault("max_tokens", 256)
    return ChatCerebras(base_url=emulator.base_url, api_key=fresh_key(emulator), **kwargs)


class Metadata(BaseCallbackHandler):
    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.metadata.append(dict(kwargs.get("options") or {}))


# --- with_structured_output(method="json_mode") without a schema ------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_json_mode_without_schema_returns_a_dict(emulator: Any, path: str) -> None:
    structured = llm_for(emulator).with_structured_output(method="json_mode")
    prompt = "Return a JSON object with the keys name and age for a person called Ada, aged 36."
    if path in ("invoke", "ainvoke"):
        result = structured.invoke(prompt) if path == "invoke" else await structured.ainvoke(prompt)
    else:
        chunks = list(structured.stream(prompt)) if path == "stream" else [c async for c in structured.astream(prompt)]
        result = chunks[-1]
    assert isinstance(result, dict) and result


def test_json_mode_without_schema_include_raw_and_tracing(emulator: Any) -> None:
    handler = Metadata()
    structured = llm_for(emulator).with_structured_output(method="json_mode", include_raw=True)
    result = structured.invoke("Give me a JSON object describing a cat.", config={"callbacks": [handler]})
    assert result["parsing_error"] is None and isinstance(result["parsed"], dict)
    assert handler.metadata and "ls_structured_output_format" not in handler.metadata[0]


def test_json_mode_with_schema_still_traces_the_schema(emulator: Any) -> None:
    handler = Metadata()
    schema = {"title": "Person", "type": "object", "properties": {"name": {"type": "string"}}}
    llm_for(emulator).with_structured_output(schema, method="json_mode").invoke(
        "A JSON object with a name.", config={"callbacks": [handler]}
    )
    traced = handler.metadata[0]["ls_structured_output_format"]
    assert traced["kwargs"]["method"] == "json_mode" and traced["schema"]["title"] == "Person"


# --- dumps / loads -----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_loads_dumps_the_documented_way(emulator: Any) -> None:
    """The README's call: an explicit allowlist plus our namespace; the key comes from secrets_map."""
    from langchain_core.load import dumps, loads

    key = fresh_key(emulator)
    llm = ChatCerebras(base_url=emulator.base_url, api_key=key, max_tokens=64, temperature=0.1, tier="paygo")
    text = dumps(llm)
    assert key not in text
    restored = loads(
        text,
        allowed_objects=[ChatCerebras],
        valid_namespaces=["langchain_cerebras_paygo"],
        secrets_map={"CEREBRAS_API_KEY": key},
    )
    assert isinstance(restored, ChatCerebras)
    assert (restored.max_tokens, restored.temperature, restored.base_url) == (64, 0.1, emulator.base_url)
    assert restored.invoke("hello").content, "the revived model calls the API"


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_import_patches_no_private_allowlist() -> None:
    """Importing the package leaves langchain-core's allowlists alone: the public call above is the way."""
    from langchain_core.load import dumps, loads

    with pytest.raises(ValueError, match="not allowed"):
        loads(
            dumps(ChatCerebras(api_key="csk-x")), allowed_objects="all", valid_namespaces=["langchain_cerebras_paygo"]
        )


# --- init_chat_model ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("cerebras:zai-glm-4.7", None),
        ("zai-glm-4.7", "cerebras"),
        ("zai-glm-4.7", None),
        ("CEREBRAS:zai-glm-4.7", None),
    ],
)
def test_init_chat_model_routes_to_cerebras(emulator: Any, model: str, provider: str | None) -> None:
    from langchain_cerebras_paygo import init_chat_model

    llm = init_chat_model(
        model, model_provider=provider, base_url=emulator.base_url, api_key=fresh_key(emulator), max_tokens=64
    )
    assert isinstance(llm, ChatCerebras) and llm.model_name == "zai-glm-4.7" and llm.max_tokens == 64
    assert llm.invoke("hi").response_metadata["model_name"] == "zai-glm-4.7"


def test_init_chat_model_hands_other_providers_to_langchain() -> None:
    pytest.importorskip("langchain.chat_models")
    import importlib.util

    from langchain_cerebras_paygo import init_chat_model

    if importlib.util.find_spec("langchain_anthropic") is not None:
        pytest.skip("langchain-anthropic is installed: its model would be built, not refused")
    # langchain's own init_chat_model answers (its message names the integration package it needs)
    with pytest.raises(ImportError, match=r"langchain[_-]anthropic"):
        init_chat_model("anthropic:claude-haiku-4-5")
    with pytest.raises(ValueError, match="configurable_alternatives"):
        init_chat_model("cerebras:gpt-oss-120b", configurable_fields=("temperature",))


def test_from_model_id(emulator: Any) -> None:
    llm = ChatCerebras.from_model_id("cerebras:gpt-oss-120b", base_url=emulator.base_url, api_key=fresh_key(emulator))
    assert llm.model_name == "gpt-oss-120b" and llm.invoke("hi").content
    assert ChatCerebras.from_model_id("zai-glm-4.7").model_name == "zai-glm-4.7"
    with pytest.raises(ValueError, match="provider"):
        ChatCerebras.from_model_id("openai:gpt-4o")


def test_configurable_alternatives_switch_provider_at_runtime(emulator: Any) -> None:
    """The README's pattern for init_chat_model's configurable models."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.runnables import ConfigurableField

    llm = ChatCerebras(base_url=emulator.base_url, api_key=fresh_key(emulator), max_tokens=64)
    switchable = llm.configurable_fields(model_name=ConfigurableField(id="model")).configurable_alternatives(
        ConfigurableField(id="provider"), default_key="cerebras", other=FakeListChatModel(responses=["other"])
    )
    assert switchable.invoke("hi", config={"configurable": {"provider": "other"}}).content == "other"
    answer = switchable.invoke("hi", config={"configurable": {"model": "zai-glm-4.7"}})
    assert answer.response_metadata["model_name"] == "zai-glm-4.7"
