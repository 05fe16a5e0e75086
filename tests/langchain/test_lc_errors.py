"""ChatCerebras raises the core's errors as langchain-core's standard exceptions too, so LangChain's
own machinery (``with_fallbacks``, ``ModelRetryMiddleware``) reacts to them; tested with the real
framework against the emulator over HTTP."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from typing import Any

import pytest
from langchain_core import exceptions as lc
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage

from cerebras_paygo import errors as core
from langchain_cerebras_paygo import ChatCerebras
from langchain_cerebras_paygo.errors import bridge, bridged_class
from tests.langchain.helpers import PATHS, fresh_key, run_path

# The exact core class -> langchain-core's class it must also be, and whether retrying may help.
EXPECTED: list[tuple[type[core.CerebrasError], type[Exception], bool]] = [
    (core.LocalContextWindowExceededError, lc.ContextOverflowError, False),
    (core.APIContextWindowExceededError, lc.ContextOverflowError, False),
    (core.AuthenticationError, lc.ModelAuthenticationError, False),
    (core.MissingAPIKeyError, lc.ModelAuthenticationError, False),
    (core.ConfigurationError, lc.ModelInvalidRequestError, False),
    (core.PermissionDeniedError, lc.ModelPermissionDeniedError, False),
    (core.APIModelNotFoundError, lc.ModelNotFoundError, False),
    (core.ModelRetiredError, lc.ModelNotFoundError, False),
    (core.APIRateLimitError, lc.ModelRateLimitError, True),
    (core.LocalRateLimitError, lc.ModelRateLimitError, True),
    (core.APIPaymentRequiredError, lc.ModelError, False),
    (core.LocalPaymentRequiredError, lc.ModelError, False),
    (core.BadRequestError, lc.ModelInvalidRequestError, False),
    (core.UnprocessableEntityError, lc.ModelInvalidRequestError, False),
    (core.RequestTooLargeError, lc.ModelInvalidRequestError, False),
    (core.ServerError, lc.ModelAPIError, True),
    (core.ServiceUnavailableError, lc.ModelAPIError, True),
    (core.MalformedResponseError, lc.ModelAPIError, True),
    (core.APIConnectionError, lc.ModelConnectionError, True),
    (core.APITimeoutError, lc.ModelTimeoutError, True),
    (core.StreamInterruptedError, lc.ModelConnectionError, True),
    (core.StreamTimeoutError, lc.ModelTimeoutError, True),
    (core.BudgetExceededError, lc.ModelError, False),
    (core.BackendUnavailableError, lc.ModelError, True),
]


def llm_for(emulator: Any, *, free: bool = False, **kwargs: Any) -> ChatCerebras:
    kwargs.setdefault("max_tokens", 256)
    return ChatCerebras(base_url=emulator.base_url, api_key=fresh_key(emulator, free=free), **kwargs)


def statuses(emulator: Any) -> dict[str, int]:
    return dict(emulator.stats()["statuses"])


class CountStarts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.starts += 1


@pytest.mark.parametrize(("core_cls", "lc_cls", "retryable"), EXPECTED, ids=lambda v: getattr(v, "__name__", str(v)))
def test_every_core_class_is_bridged(core_cls: type[Exception], lc_cls: type[Exception], retryable: bool) -> None:
    bridged = bridged_class(core_cls)
    assert bridged is not None
    assert issubclass(bridged, core_cls) and issubclass(bridged, lc_cls)
    assert bridged.is_retryable is retryable  # type: ignore[attr-defined]
    assert bridged_class(core_cls) is bridged, "built once"


def test_bridged_error_keeps_message_attributes_and_cause() -> None:
    error = core.APIRateLimitError("Tokens per minute exceeded", quota="tokens", headers={"retry-after": "7"})
    bridged = bridge(error)
    assert isinstance(bridged, core.APIRateLimitError) and isinstance(bridged, lc.ModelRateLimitError)
    assert str(bridged) == str(error) and bridged.quota == "tokens" and bridged.retry_after == 7.0
    assert bridged.meta is error.meta and bridged.__cause__ is error
    assert bridge(bridged) is bridged, "an error bridged already is left alone"
    again = pickle.loads(pickle.dumps(bridged))
    assert type(again) is type(bridged) and str(again) == str(error) and again.quota == "tokens"
    too_large = bridge(core.RequestTooLargeError("too big", needed=10, capacity=5, limit_name="tokens_per_minute"))
    assert pickle.loads(pickle.dumps(too_large)).needed == 10


@pytest.mark.parametrize("path", PATHS)
async def test_fallback_on_local_context_overflow(emulator: Any, path: str) -> None:
    """A free-tier prompt over the 8,192-token window is refused before sending, as ContextOverflowError."""
    llm = llm_for(emulator, free=True, tier="free")
    backup = FakeListChatModel(responses=["from the backup"])
    chain = llm.with_fallbacks([backup], exceptions_to_handle=(lc.ContextOverflowError,))
    before = emulator.stats()["requests"]
    result = await run_path(chain, path, "word " * 9000)
    assert result.content == "from the backup"
    assert emulator.stats()["requests"] == before, "refused locally: nothing sent"


@pytest.mark.parametrize("path", PATHS)
async def test_fallback_on_server_context_overflow(emulator: Any, path: str) -> None:
    """A free key used as paygo: the server's 400 context_length_exceeded triggers the fallback."""
    llm = llm_for(emulator, free=True, tier="paygo")
    backup = FakeListChatModel(responses=["from the backup"])
    chain = llm.with_fallbacks([backup], exceptions_to_handle=(lc.ContextOverflowError,))
    result = await run_path(chain, path, "word " * 9000)
    assert result.content == "from the backup"
    assert statuses(emulator).get("400") == 1, "the server refused it once"


def test_server_context_error_is_still_the_core_class(emulator: Any) -> None:
    llm = llm_for(emulator, free=True, tier="paygo")
    with pytest.raises(core.APIContextWindowExceededError) as info:
        llm.invoke("word " * 9000)
    assert isinstance(info.value, lc.ContextOverflowError)
    assert isinstance(info.value, core.BadRequestError) and isinstance(info.value, core.APIStatusError)
    assert isinstance(info.value.__cause__, core.APIContextWindowExceededError)
    assert info.value.status_code == 400 and info.value.limit == 8192


@pytest.mark.parametrize("path", PATHS)
async def test_wrong_key_raises_model_authentication_error_on_every_path(emulator: Any, path: str) -> None:
    llm = ChatCerebras(base_url=emulator.base_url, api_key="csk-wrong-key-for-bridging", max_tokens=64)
    with pytest.raises(core.AuthenticationError) as info:
        await run_path(llm, path, "hello")
    assert isinstance(info.value, lc.ModelAuthenticationError)
    assert not info.value.is_retryable


async def test_stream_raises_bridged_rate_limit(emulator: Any) -> None:
    """A local limiter refusal mid-batch is a ModelRateLimitError (retryable) on astream too."""
    emulator.configure(limits={"*": {"requests_per_minute": 1}})
    llm = llm_for(emulator, rate_limits={"requests_per_minute": 1}, deadline=0.5)
    await run_path(llm, "ainvoke", "one")
    with pytest.raises(core.LocalRateLimitError) as info:
        await run_path(llm, "astream", "two")
    assert isinstance(info.value, lc.ModelRateLimitError) and info.value.is_retryable


def _agent(llm: ChatCerebras, retries: int) -> Any:
    agents = pytest.importorskip("langchain.agents")
    middleware = pytest.importorskip("langchain.agents.middleware")
    retry = getattr(middleware, "ModelRetryMiddleware", None)
    if retry is None:
        pytest.skip("this langchain has no ModelRetryMiddleware")
    return agents.create_agent(llm, tools=[], middleware=[retry(max_retries=retries, initial_delay=0.0, jitter=False)])


def test_model_retry_middleware_does_not_retry_a_401(emulator: Any) -> None:
    llm = ChatCerebras(base_url=emulator.base_url, api_key="csk-wrong-key-for-retries", max_tokens=64)
    counter = CountStarts()
    agent = _agent(llm, retries=3)
    with pytest.raises(core.AuthenticationError):
        agent.invoke({"messages": [("user", "hello")]}, config={"callbacks": [counter]})
    assert counter.starts == 1, "one model call, no retry of a wrong key"
    assert statuses(emulator).get("401") == 1


def test_model_retry_middleware_retries_a_server_error(emulator: Any) -> None:
    """The positive control: a 503 (the core's own retries off) is retried by the middleware."""
    llm = llm_for(emulator, max_retries=0)
    emulator.set_faults(unavailable_next=2)
    counter = CountStarts()
    agent = _agent(llm, retries=3)
    result = agent.invoke({"messages": [("user", "hello")]}, config={"callbacks": [counter]})
    assert isinstance(result["messages"][-1], AIMessage)
    assert counter.starts == 3 and statuses(emulator).get("503") == 2


def test_older_langchain_core_without_model_errors() -> None:
    """langchain-core < 1.8 has no ModelError family: ContextOverflowError is still bridged, the
    rest is raised as the core made it (simulated by removing the names before the import)."""
    script = """
import langchain_core.language_models.chat_models  # (it needs the names at import time)
import langchain_core.exceptions as lc
for name in [n for n in dir(lc) if n.startswith("Model")]:
    delattr(lc, name)
from cerebras_paygo import errors as core
from langchain_cerebras_paygo.errors import bridge, bridged_class
ctx = bridge(core.LocalContextWindowExceededError("too long"))
assert isinstance(ctx, lc.ContextOverflowError) and isinstance(ctx, core.LocalContextWindowExceededError)
auth = core.AuthenticationError("bad key", headers={})
assert bridge(auth) is auth and bridged_class(core.AuthenticationError) is None
import langchain_cerebras_paygo
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("mode", ["batch", "abatch"])
async def test_a_batch_with_a_wrong_key_costs_one_failed_request(emulator: Any, mode: str) -> None:
    """The README's promise: the first 401 rejects the key, the other nine fail without sending."""
    llm = ChatCerebras(base_url=emulator.base_url, api_key=f"csk-wrong-for-{mode}", max_tokens=32)
    inputs = [f"question {i}" for i in range(10)]
    if mode == "batch":
        results = llm.batch(inputs, return_exceptions=True)
    else:
        results = await llm.abatch(inputs, return_exceptions=True)
    assert len(results) == 10
    assert all(isinstance(r, core.AuthenticationError) and isinstance(r, lc.ModelAuthenticationError) for r in results)
    assert {str(r) for r in results} == {str(results[0])}, "the same error for every caller"
    assert statuses(emulator).get("401") == 1, statuses(emulator)
