"""Defect 7 of issue 13: every bad argument is a ``ConfigurationError`` (a ``ValueError``), from both
adapters and the core, and a call refused locally sends nothing (the emulator counts 0 requests).

Before (main at 7abec95), what still escaped: ``CerebrasClient(rate_limits={"requests_per_minute":
"x"})`` -> bare ``ValueError``; ``CerebrasClient(rate_limits="abc")``, ``base_url=""``,
``deadline=0`` accepted; per-call ``timeout=inf`` sent (a server 400, one request counted) and
``timeout=httpx.Timeout(0)`` -> ``PydanticSerializationError``, in both adapters; a LlamaIndex tool
message without an id -> bare ``ValueError``; ``chat_with_tools([42])`` -> ``AttributeError``.
Also fixed since: ``ChatCerebras.invoke(..., stop=5)`` (a ``TypeError`` in the tracing parameters) and
``ChatCerebras(model="")`` (accepted until its first call) now raise ``ConfigurationError`` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from llama_index.core.llms import ChatMessage

from cerebras_paygo import CerebrasClient
from cerebras_paygo.errors import ConfigurationError
from langchain_cerebras_paygo import ChatCerebras
from llama_index_cerebras import Cerebras

MODEL = "gpt-oss-120b"
KEY = "csk-emulator-paygo"

#: (option, bad value); every one is refused by both adapters' constructors.
CONSTRUCTOR_CASES: list[tuple[str, Any]] = [
    ("tier", "gold"),
    ("reasoning_effort", "extreme"),
    ("max_tokens", "abc"),
    ("max_tokens", 1.5),
    ("max_tokens", 0),
    ("temperature", "hot"),
    ("temperature", -1),
    ("temperature", 5),
    ("temperature", math.nan),
    ("rate_limits", {"requests_per_minute": -1}),
    ("rate_limits", {"requests_per_minute": "x"}),
    ("rate_limits", {"bogus": 1}),
    ("rate_limits", "abc"),
    ("context_overflow", "bogus"),
    ("base_url", ""),
    ("base_url", "not a url"),
    ("base_url", "ftp://example.com/v1"),
    ("base_url", "http://"),
    ("base_url", 5),
    ("timeout", 0),
    ("timeout", -1),
    ("timeout", math.inf),
    ("timeout", httpx.Timeout(0)),
    ("max_retries", -1),
    ("max_spend_usd", -1),
    ("max_spend_usd", math.nan),
    ("deadline", 0),
    ("deadline", -1),
    ("model", ""),
]
#: The options the core client takes (the rest are request fields there).
CORE_OPTIONS = {
    "tier",
    "rate_limits",
    "context_overflow",
    "base_url",
    "timeout",
    "max_retries",
    "max_spend_usd",
    "deadline",
}


def _refused(make: Callable[[], Any]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        make()
    assert isinstance(info.value, ValueError)
    return info.value


def _case_id(case: tuple[str, Any]) -> str:
    return f"{case[0]}={case[1]!r}"


@pytest.mark.parametrize(
    "case",
    CONSTRUCTOR_CASES,
    ids=_case_id,
)
def test_langchain_constructor_refuses(case: tuple[str, Any]) -> None:
    name, value = case
    _refused(lambda: ChatCerebras(**{"model": MODEL, "api_key": KEY, name: value}))


@pytest.mark.parametrize("case", CONSTRUCTOR_CASES, ids=_case_id)
def test_llama_index_constructor_refuses(case: tuple[str, Any]) -> None:
    name, value = case
    _refused(lambda: Cerebras(**{"model": MODEL, "api_key": KEY, name: value}))


@pytest.mark.parametrize("case", [c for c in CONSTRUCTOR_CASES if c[0] in CORE_OPTIONS], ids=_case_id)
def test_core_constructor_refuses(case: tuple[str, Any]) -> None:
    name, value = case
    _refused(lambda: CerebrasClient(**{"api_key": KEY, name: value}))


# -- at call time, against the emulator: refused and never sent -------------------------------

BAD_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": "a string"}}
USER = [ChatMessage(role="user", content="hi")]

#: (name, what the call passes); ``None`` marks the adapter-specific cases handled below.
CALL_CASES: list[tuple[str, dict[str, Any]]] = [
    ("stop=5", {"stop": 5}),
    ("temperature=nan", {"temperature": math.nan}),
    ("temperature=-1", {"temperature": -1}),
    ("temperature=5", {"temperature": 5}),
    ("timeout=inf", {"timeout": math.inf}),
    ("timeout=Timeout(0)", {"timeout": httpx.Timeout(0)}),
    ("timeout=5", {"timeout": 5}),  # valid, but not a request field: Cerebras answers 400
    ("tool with string parameters", {"tools": [BAD_TOOL]}),
]


def _langchain(emulator) -> ChatCerebras:
    return ChatCerebras(model=MODEL, api_key=emulator.api_key, base_url=emulator.base_url)


def _llama_index(emulator) -> Cerebras:
    return Cerebras(model=MODEL, api_key=emulator.api_key, base_url=emulator.base_url)


def _never_sent(emulator, make: Callable[[], Any]) -> None:
    _refused(make)
    assert emulator.stats()["requests"] == 0


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    # stop=5: ChatCerebras._get_ls_params does list(5), a TypeError before our checks run.
    CALL_CASES,
    ids=[c[0] for c in CALL_CASES],
)
def test_langchain_call_refuses_locally(emulator, name: str, kwargs: dict[str, Any], stream: bool) -> None:
    model = _langchain(emulator)
    if stream:
        _never_sent(emulator, lambda: list(model.stream("hi", **kwargs)))
    else:
        _never_sent(emulator, lambda: model.invoke("hi", **kwargs))


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream_chat"])
@pytest.mark.parametrize(("name", "kwargs"), CALL_CASES, ids=[c[0] for c in CALL_CASES])
def test_llama_index_call_refuses_locally(emulator, name: str, kwargs: dict[str, Any], stream: bool) -> None:
    llm = _llama_index(emulator)
    if stream:
        _never_sent(emulator, lambda: list(llm.stream_chat(USER, **kwargs)))
    else:
        _never_sent(emulator, lambda: llm.chat(USER, **kwargs))


def test_empty_conversations_are_refused_locally(emulator) -> None:
    _never_sent(emulator, lambda: _langchain(emulator).invoke([]))
    _never_sent(emulator, lambda: _llama_index(emulator).chat([]))


async def test_async_calls_refuse_locally(emulator) -> None:
    with pytest.raises(ConfigurationError):
        await _langchain(emulator).ainvoke("hi", temperature=5)
    with pytest.raises(ConfigurationError):
        await _llama_index(emulator).achat(USER, timeout=math.inf)
    assert emulator.stats()["requests"] == 0


def test_llama_index_tool_message_without_id(emulator) -> None:
    llm = _llama_index(emulator)
    history = [*USER, ChatMessage(role="tool", content="42")]
    error = _refused(lambda: llm.chat(history))
    assert "tool_call_id" in str(error)
    assert emulator.stats()["requests"] == 0


@pytest.mark.parametrize("tools", [[42], ["a tool"], 42, "lookup"], ids=repr)
def test_llama_index_chat_with_tools_refuses_what_is_not_a_tool(emulator, tools: Any) -> None:
    llm = _llama_index(emulator)
    _never_sent(emulator, lambda: llm.chat_with_tools(tools, user_msg="hi"))


def test_core_request_checks_send_nothing(emulator) -> None:
    from cerebras_paygo._options import build_request
    from cerebras_paygo._wire import Message

    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url)
    for params in ({"temperature": 5}, {"temperature": -1}, {"stop": 5}, {"timeout": math.inf}, {"tools": [BAD_TOOL]}):
        _refused(
            lambda params=params: client.chat(
                build_request([Message(role="user", content="hi")], {"model": MODEL, **params})
            )
        )
    _refused(lambda: build_request([], {"model": MODEL}))
    assert emulator.stats()["requests"] == 0
