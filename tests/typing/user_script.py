"""Both adapters used the way the README shows; ``tests/typing/test_typing.py`` runs ``mypy --strict``
on this file, so a parameter the README passes that a type checker refuses fails the suite.

It is only type-checked, never run (it would need a key)."""

from __future__ import annotations

import httpx
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from llama_index.core.llms import ChatMessage
from pydantic import BaseModel, SecretStr

from cerebras_paygo import PaymentPolicy
from langchain_cerebras_paygo import ChatCerebras
from llama_index_cerebras import Cerebras


class Joke(BaseModel):
    setup: str
    punchline: str


def langchain_usage() -> str:
    llm = ChatCerebras(model="gpt-oss-120b", max_tokens=512)
    chain = ChatPromptTemplate.from_template("Explain {topic} in one sentence.") | llm | StrOutputParser()
    text: str = chain.invoke({"topic": "token buckets"})
    also = ChatCerebras(
        model="zai-glm-4.7",
        api_key=SecretStr("csk-..."),
        base_url="https://api.cerebras.ai/v1",
        temperature=0.2,
        max_completion_tokens=256,
        timeout=30.0,
        max_retries=3,
        streaming=True,
        reasoning_effort="low",
        stop=["\n\n"],
        tier="free",
        rate_limits={"tokens_per_minute": 60_000},
        payment_policy=PaymentPolicy(max_wait=120),
        context_overflow="trim_history",
        max_spend_usd=5.0,
        http_client=httpx.Client(),
    )
    message = also.invoke("Say hi in Portuguese")
    assert isinstance(message, AIMessage)
    stopped = ChatCerebras(model="gpt-oss-120b", stop="END", timeout=httpx.Timeout(10.0), api_key="csk-...")
    stopped.with_structured_output(Joke).invoke("Tell me a joke")
    stopped.with_structured_output(method="json_mode").invoke("A JSON object, please")
    return text + message.text


def llama_index_usage() -> str:
    llm = Cerebras(model="gpt-oss-120b", max_tokens=1024, api_key="csk-...")
    legacy = Cerebras(
        model="gpt-oss-120b",
        api_key=SecretStr("csk-..."),
        api_base="https://api.cerebras.ai/v1",
        temperature=0.0,
        timeout=30.0,
        max_retries=2,
        tier="paygo",
        context_overflow="shrink_completion",
    )
    direct = Cerebras(base_url="http://127.0.0.1:8080/v1", api_key=SecretStr("csk-emulator-paygo"), request_timeout=5.0)
    response = llm.chat([ChatMessage(role="user", content="Hi")])
    completion = legacy.complete("Say hi")
    content: str | None = response.message.content
    text: str = completion.text  # llama-index-core types CompletionResponse.text loosely
    return (content or "") + text + direct.model + (legacy.api_base or "")
