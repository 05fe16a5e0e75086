"""The ``emulator_asgi`` fixture as documented: both adapters, sync and async, no socket."""

from __future__ import annotations

from typing import Any

import pytest


def test_langchain_on_emulator_asgi(emulator_asgi: Any) -> None:
    pytest.importorskip("langchain_core")
    from langchain_cerebras_paygo import ChatCerebras

    llm = ChatCerebras(
        base_url=emulator_asgi.base_url,
        api_key=emulator_asgi.api_key,
        max_tokens=64,
        http_client=emulator_asgi.http_client(),
        http_async_client=emulator_asgi.async_http_client(),
    )
    assert llm.invoke("hello").content
    streamed = "".join(str(chunk.content) for chunk in llm.stream("hello"))
    assert streamed
    assert emulator_asgi.stats()["statuses"] == {"200": 2}


async def test_langchain_async_on_emulator_asgi(emulator_asgi: Any) -> None:
    pytest.importorskip("langchain_core")
    from langchain_cerebras_paygo import ChatCerebras

    llm = ChatCerebras(
        base_url=emulator_asgi.base_url,
        api_key=emulator_asgi.api_key,
        max_tokens=64,
        http_async_client=emulator_asgi.async_http_client(),
    )
    assert (await llm.ainvoke("hello")).content
    assert [c async for c in llm.astream("hi")]
    assert emulator_asgi.stats()["statuses"] == {"200": 2}


async def test_llama_index_on_emulator_asgi(emulator_asgi: Any) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.llms import ChatMessage
    from pydantic import SecretStr

    from llama_index_cerebras import Cerebras

    llm = Cerebras(
        base_url=emulator_asgi.base_url,
        api_key=SecretStr(emulator_asgi.api_key),
        max_tokens=64,
        http_client=emulator_asgi.http_client(),
        async_http_client=emulator_asgi.async_http_client(),
    )
    assert llm.complete("hello").text
    assert (await llm.achat([ChatMessage(role="user", content="hi")])).message.content
    assert emulator_asgi.stats()["statuses"] == {"200": 2}


def test_the_base_url_is_accepted_by_the_plain_http_rule(emulator_asgi: Any) -> None:
    from cerebras_paygo._settings import normalize_base_url

    assert normalize_base_url(emulator_asgi.base_url) == emulator_asgi.base_url
