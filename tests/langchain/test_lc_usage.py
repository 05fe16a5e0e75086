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
