"""``Cerebras`` without the network: the LlamaIndex contract (MRO, metadata, class name), fields
and environment, the key kept out of everything, copies and pickles, and the pure converters."""

from __future__ import annotations

import copy
import json
import pickle
import warnings
from typing import Any

import pytest
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM
from pydantic import BaseModel

from cerebras_paygo import CallInfo, MissingAPIKeyError
from cerebras_paygo._catalog import UnknownModelWarning
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._payment import PaymentPolicy
from cerebras_paygo._wire import ChatCompletionChunk
from llama_index_cerebras import Cerebras
from llama_index_cerebras._convert import StreamFolder, message_to_wire, tool_selections
from llama_index_cerebras._schema import parse_output, response_format_for, strict_schema, strip_added_nulls


@pytest.fixture(autouse=True)
def _no_cerebras_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL", "CEREBRAS_TIER", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# --- the LlamaIndex contract -------------------------------------------------------------------


def test_mro_and_class_name() -> None:
    names = [base.__name__ for base in Cerebras.__mro__]
    for base in (BaseLLM, LLM, FunctionCallingLLM):
        assert base.__name__ in names
    assert Cerebras.class_name() == "Cerebras"


@pytest.mark.parametrize(
    ("kwargs", "window", "output"),
    [
        ({}, 131072, 8192),
        ({"tier": "free"}, 8192, 2048),
        ({"tier": "FREE", "max_tokens": 512}, 8192, 512),
        ({"model": "zai-glm-4.7", "max_tokens": 1000}, 131072, 1000),
        ({"context_window": 32000}, 32000, 8192),
    ],
)
def test_metadata_comes_from_the_catalog(kwargs: dict[str, Any], window: int, output: int) -> None:
    metadata = Cerebras(**kwargs).metadata
    assert metadata.context_window == window
    assert metadata.num_output == output
    assert metadata.is_chat_model is True
    assert metadata.is_function_calling_model is True
    assert metadata.model_name == kwargs.get("model", "gpt-oss-120b")
    assert metadata.system_role == MessageRole.SYSTEM


def test_tier_from_the_environment_and_from_a_shared_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREBRAS_TIER", "free")
    assert Cerebras().metadata.context_window == 8192
    client = CerebrasClient(api_key="csk-x", tier="paygo", context_window=50_000)
    assert Cerebras(client=client).metadata.context_window == 50_000


def test_unknown_model_warns_once_at_construction() -> None:
    with pytest.warns(UnknownModelWarning):
        llm = Cerebras(model="some-new-model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert llm.metadata.context_window == 8192


# --- fields and environment --------------------------------------------------------------------


def test_construction_needs_no_key_and_the_first_call_raises_the_core_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-not-be-used")
    llm = Cerebras(base_url="http://127.0.0.1:1/v1")
    assert llm.api_key is None
    with pytest.raises(MissingAPIKeyError):
        llm.complete("hello")
    with pytest.raises(MissingAPIKeyError):
        list(llm.stream_chat([ChatMessage(content="hello")]))
    # the key is read at call time: set it now and the same instance picks it up
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-from-env")
    assert llm.cerebras_client.settings.api_key is not None
    assert llm.cerebras_client.settings.api_key.get_secret_value() == "csk-from-env"
    assert llm.cerebras_client is llm.cerebras_client, "a client with a key is built once"


def test_base_url_is_read_at_construction_not_import(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Cerebras().base_url == "https://api.cerebras.ai/v1"
    monkeypatch.setenv("CEREBRAS_BASE_URL", "http://localhost:8123")
    llm = Cerebras()
    assert llm.base_url == "http://localhost:8123/v1"
    monkeypatch.setenv("CEREBRAS_BASE_URL", "http://localhost:9999")
    assert llm.base_url == "http://localhost:8123/v1"
    assert Cerebras(base_url="https://example.test").base_url == "https://example.test/v1"
    assert Cerebras(api_base="http://127.0.0.1:5/v1").base_url == "http://127.0.0.1:5/v1"


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        Cerebras(base_url="http://api.example.com/v1")


def test_fields_reach_the_core_client() -> None:
    policy = PaymentPolicy(max_wait=3.0)
    llm = Cerebras(
        api_key="csk-abc",
        tier="free",
        timeout=7.5,
        max_retries=0,
        rate_limits={"tokens_per_minute": 1000},
        payment_policy=policy,
        context_overflow="trim_history",
        max_spend_usd=1.5,
    )
    client = llm.cerebras_client
    assert client.settings.tier == "free"
    assert client.settings.timeout.read == 7.5
    assert client.retry_policy.max_retries == 0
    assert client.user_limits.tokens_per_minute == 1000
    assert client.payment_policy is policy
    assert client.context_overflow == "trim_history"
    assert client.budget_guard is not None
    assert client.settings.integration == "llama-index-cerebras-paygo"


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="rate limit"):
        Cerebras(rate_limits={"tokens_per_fortnight": 5})
    with pytest.raises(ValueError):
        Cerebras(context_overflow="truncate")
    with pytest.raises(ValueError):
        Cerebras(max_tokens=0)
    with pytest.raises(ValueError):
        Cerebras(reasoning_effort="extreme")


def test_unknown_arguments_become_request_fields_and_catalog_switches_are_ignored() -> None:
    with pytest.warns(UserWarning, match="top_p"):
        llm = Cerebras(top_p=0.5)
    assert llm.additional_kwargs == {"top_p": 0.5}
    with pytest.warns(UserWarning, match="catalog"):
        llm = Cerebras(is_function_calling_model=False)
    assert llm.metadata.is_function_calling_model is True
    assert llm.additional_kwargs == {}


def test_the_key_never_shows_in_repr_or_serialization() -> None:
    secret = "csk-very-secret-123"
    llm = Cerebras(api_key=secret, payment_policy=PaymentPolicy(fallback_api_key="csk-fallback-456"))
    texts = [
        repr(llm),
        str(llm),
        llm.to_json(),
        json.dumps(llm.to_dict()),
        json.dumps(llm.model_dump(exclude_none=True)),
    ]
    texts.append(repr(llm.cerebras_client))
    for text in texts:
        assert secret not in text
        assert "csk-fallback-456" not in text
    assert "api_key" not in llm.to_dict()
    revived = Cerebras.from_json(llm.to_json())
    assert revived.model == llm.model and revived.api_key is None


def test_copies_and_pickles_rebuild_their_client_and_share_an_explicit_one() -> None:
    llm = Cerebras(api_key="csk-abc", max_tokens=5)
    built = llm.cerebras_client
    assert llm.model_copy().cerebras_client is not built
    assert copy.deepcopy(llm).cerebras_client is not built
    revived = pickle.loads(pickle.dumps(llm))
    assert revived.max_tokens == 5 and revived.cerebras_client is not built
    shared = CerebrasClient(api_key="csk-shared")
    with_client = Cerebras(client=shared)
    assert copy.deepcopy(with_client).cerebras_client is shared
    assert with_client.model_copy(update={"max_tokens": 9}).cerebras_client is shared


# --- converters --------------------------------------------------------------------------------


def test_message_conversion_covers_the_roles_and_blocks() -> None:
    assert message_to_wire(ChatMessage(role=MessageRole.SYSTEM, content="s")).model_dump(exclude_none=True) == {
        "role": "system",
        "content": "s",
    }
    image = ChatMessage(
        role=MessageRole.USER,
        blocks=[TextBlock(text="look"), ImageBlock(url="https://example.test/cat.png")],
    )
    assert message_to_wire(image).model_dump(exclude_none=True)["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
    ]
    thinking_only = ChatMessage(role=MessageRole.ASSISTANT, blocks=[ThinkingBlock(content="hmm")])
    # The core's rule for both adapters: a turn that is not tool calls only sends content, "" if none.
    assert message_to_wire(thinking_only).model_dump(exclude_none=True) == {
        "role": "assistant",
        "content": "",
        "reasoning": "hmm",
    }
    empty = ChatMessage(role=MessageRole.ASSISTANT, content="")
    assert message_to_wire(empty).model_dump(exclude_none=True) == {"role": "assistant", "content": ""}
    named_tool = ChatMessage(
        role=MessageRole.TOOL, content="6", additional_kwargs={"tool_call_id": "x1", "name": "multiply"}
    )
    assert message_to_wire(named_tool).model_dump(exclude_none=True) == {
        "role": "tool",
        "content": "6",
        "tool_call_id": "x1",
        "name": "multiply",
    }
    from_kwargs = ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"reasoning_content": "r"})
    assert message_to_wire(from_kwargs).model_dump(exclude_none=True) == {
        "role": "assistant",
        "content": "",
        "reasoning": "r",
    }


def test_tool_selections_parse_arguments_and_default_to_an_empty_dict() -> None:
    message = ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[
            ToolCallBlock(tool_call_id="a", tool_name="f", tool_kwargs='{"x": 1'),
            ToolCallBlock(tool_call_id="b", tool_name="g", tool_kwargs=""),
            ToolCallBlock(tool_call_id="c", tool_name="h", tool_kwargs="not json"),
            ToolCallBlock(tool_call_id="d", tool_name="i", tool_kwargs={"y": 2}),
        ],
    )
    got = [(s.tool_id, s.tool_name, s.tool_kwargs) for s in tool_selections(message)]
    assert got == [("a", "f", {"x": 1}), ("b", "g", {}), ("c", "h", {}), ("d", "i", {"y": 2})]

    class _Function:
        name = "k"
        arguments = '{"z": 3}'

    class _Call:
        id = "e"
        function = _Function()

    legacy = ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": [_Call()]})
    assert [(s.tool_id, s.tool_kwargs) for s in tool_selections(legacy)] == [("e", {"z": 3})]
    assert Cerebras().get_tool_calls_from_response(ChatResponse(message=legacy))[0].tool_name == "k"


def _chunk(**fields: Any) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate({"id": "c1", "model": "gpt-oss-120b", **fields})


INFO = CallInfo(
    model="gpt-oss-120b",
    tier="paygo",
    rate_limits=None,
    cost_usd=0.00042,
    request_id="req-1",
    attempts=1,
    waited_s=0.0,
    prompt_estimate=3,
    max_completion_tokens=64,
    dropped_messages=0,
)


def test_stream_folder_assembles_split_tool_call_arguments_and_the_last_chunk_carries_the_call() -> None:
    folder = StreamFolder()
    out = [
        folder.feed(_chunk(choices=[{"index": 0, "delta": {"role": "assistant"}}]), None),
        folder.feed(_chunk(choices=[{"index": 0, "delta": {"reasoning": "think"}}]), None),
        folder.feed(
            _chunk(
                choices=[
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "t1",
                                    "type": "function",
                                    "function": {"name": "f", "arguments": '{"a"'},
                                }
                            ]
                        },
                    }
                ]
            ),
            None,
        ),
        folder.feed(
            _chunk(choices=[{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]),
            None,
        ),
        folder.feed(
            _chunk(
                choices=[{"index": 0, "delta": {"content": "!"}, "finish_reason": "tool_calls"}],
                usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            ),
            INFO,  # the core hands the last chunk over with the call's info set
        ),
    ]
    assert out[0] is None, "the role chunk says nothing"
    assert out[1] is not None and out[1].additional_kwargs == {"thinking_delta": "think"}
    assert out[2] is not None and out[2].delta == ""
    partial = [b for b in out[2].message.blocks if isinstance(b, ToolCallBlock)]
    assert [(b.tool_name, b.tool_kwargs) for b in partial] == [("f", '{"a"')], "unfinished arguments stay a string"
    assert tool_selections(out[2].message)[0].tool_kwargs == {}, "and select as {} until they parse"
    final = out[4]
    assert final is not None
    assert final.additional_kwargs["cost_usd"] == INFO.cost_usd
    assert final.delta == "!" and final.message.content == "!"
    assert final.additional_kwargs["total_tokens"] == 7 and final.additional_kwargs["finish_reason"] == "tool_calls"
    assert [(s.tool_id, s.tool_kwargs) for s in tool_selections(final.message)] == [("t1", {"a": 1})]
    assert final.message.additional_kwargs["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'
    assert folder.finish(INFO) is None, "the call's info is carried once"


def _mixed_stream() -> list[tuple[ChatCompletionChunk, CallInfo | None]]:
    """Role, reasoning, text, a split tool call, and a last chunk with usage and the call's info."""
    call = {"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}
    return [
        (_chunk(choices=[{"index": 0, "delta": {"role": "assistant"}}]), None),
        (_chunk(choices=[{"index": 0, "delta": {"reasoning": "think"}}]), None),
        (_chunk(choices=[{"index": 0, "delta": {"reasoning": " more", "content": "Hel"}}]), None),
        (_chunk(choices=[{"index": 0, "delta": {"content": "lo"}}]), None),
        (_chunk(choices=[{"index": 0, "delta": {"tool_calls": [call]}}]), None),
        (
            _chunk(choices=[{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]),
            None,
        ),
        (
            _chunk(
                choices=[{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}],
                usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            ),
            INFO,
        ),
    ]


def test_completion_folding_gives_what_chat_folding_turned_into_completions_gives() -> None:
    """``stream_complete`` folds straight into ``CompletionResponse``s (no message per chunk):
    field for field what each chat response turned into a completion was."""
    from llama_index_cerebras.base import _to_completion

    chat, completion = StreamFolder(), StreamFolder(completion=True)
    pairs = [(chat.feed(chunk, info), completion.feed(chunk, info)) for chunk, info in _mixed_stream()]
    pairs.append((chat.finish(INFO), completion.finish(INFO)))
    assert (
        [b is None for _, b in pairs]
        == [a is None for a, _ in pairs]
        == [True, False, False, False, False, False, False, True]
    )
    for from_chat, direct in pairs:
        if from_chat is None or direct is None:
            continue
        assert isinstance(direct, CompletionResponse)
        assert direct.model_dump() == _to_completion(from_chat).model_dump()
    last = pairs[-2][1]
    assert last is not None and last.text == "Hello!" and last.additional_kwargs["reasoning_content"] == "think more"
    assert last.additional_kwargs["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'
    assert last.additional_kwargs["cost_usd"] == INFO.cost_usd and last.additional_kwargs["total_tokens"] == 7


class _Inner(BaseModel):
    label: str
    score: float | None = None


class _Outer(BaseModel):
    """Outer."""

    items: list[_Inner]
    count: int = 3
    note: str | None = None


class _FreeForm(BaseModel):
    tags: dict[str, int]


def test_strict_schema_closes_objects_and_parse_drops_the_added_nulls() -> None:
    response_format = response_format_for(_Outer)
    spec = response_format["json_schema"]
    assert spec["strict"] is True and spec["name"] == "_Outer"
    schema = spec["schema"]
    assert schema["required"] == ["items", "count", "note"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["count"]["anyOf"][1] == {"type": "null"}
    inner = schema["$defs"]["_Inner"]
    assert inner["required"] == ["label", "score"] and inner["additionalProperties"] is False
    parsed = parse_output(_Outer, '{"items": [{"label": "a", "score": null}], "count": null, "note": null}')
    assert parsed == _Outer(items=[_Inner(label="a")], count=3, note=None)
    assert parse_output(_Outer, 'Here: {"items": []} done').count == 3


def test_schemas_strict_mode_cannot_express_are_sent_non_strict() -> None:
    assert strict_schema(_FreeForm.model_json_schema()) is None
    spec = response_format_for(_FreeForm)["json_schema"]
    assert spec["strict"] is False and spec["schema"] == _FreeForm.model_json_schema()
    assert strip_added_nulls({"a": None}, {"type": "object"}) == {"a": None}
    with pytest.raises(ValueError):
        parse_output(_FreeForm, "no json here")


def test_a_str_api_key_is_stored_as_a_secret() -> None:
    """``api_key="csk-..."`` type-checks (tests/typing/user_script.py) and is kept as a SecretStr."""
    from pydantic import SecretStr

    llm = Cerebras(model="gpt-oss-120b", api_key="csk-typed-as-str")
    assert isinstance(llm.api_key, SecretStr) and llm.api_key.get_secret_value() == "csk-typed-as-str"
    assert "csk-typed-as-str" not in repr(llm) + str(llm.model_dump()) + llm.to_json()
