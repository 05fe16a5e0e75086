"""ChatCerebras fields, compatibility names, secrets, profile, request building, client sharing."""

from __future__ import annotations

import copy
import json
import pickle
import warnings

import pytest
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.load import dumpd, dumps, load
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from cerebras_paygo import MissingAPIKeyError, RateLimits
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo.errors import ConfigurationError
from langchain_cerebras_paygo import ChatCerebras, __version__

SECRET = "csk-super-secret-value-123"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL", "CEREBRAS_API_BASE", "CEREBRAS_TIER", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_exports() -> None:
    assert isinstance(__version__, str) and __version__


def test_constructs_without_a_key_and_the_first_call_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-never-be-sent")
    llm = ChatCerebras()
    assert llm.api_key is None
    assert llm.model_name == "gpt-oss-120b"
    with pytest.raises(MissingAPIKeyError):
        llm.invoke("hi")


def test_key_from_env_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREBRAS_API_KEY", SECRET)
    llm = ChatCerebras(model="zai-glm-4.7")
    assert llm.api_key is not None and llm.api_key.get_secret_value() == SECRET
    for text in (repr(llm), str(llm), dumps(llm), json.dumps(dumpd(llm)), repr(llm.cerebras_client)):
        assert SECRET not in text
    assert dumpd(llm)["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["CEREBRAS_API_KEY"]}
    assert llm.lc_secrets == {"api_key": "CEREBRAS_API_KEY"}


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_serialization_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREBRAS_API_KEY", SECRET)
    llm = ChatCerebras(
        model="zai-glm-4.7", temperature=0.2, max_tokens=64, tier="free", rate_limits={"tokens_per_minute": 5000}
    )
    restored = load(
        dumpd(llm), allowed_objects=[ChatCerebras], valid_namespaces=["langchain_cerebras_paygo"], secrets_from_env=True
    )
    assert isinstance(restored, ChatCerebras)
    assert restored.model_name == "zai-glm-4.7"
    assert restored.max_tokens == 64
    assert restored.tier == "free"
    assert restored.rate_limits == {"tokens_per_minute": 5000}
    assert restored.api_key is not None and restored.api_key.get_secret_value() == SECRET


def test_langchain_cerebras_constructor_names() -> None:
    llm = ChatCerebras(
        model_name="gpt-oss-120b",
        cerebras_api_key=SECRET,
        cerebras_api_base="http://127.0.0.1:9/v1",
        max_completion_tokens=77,
        timeout=12,
        stop_sequences=["END"],
        max_retries=None,
        default_headers={"x-team": "a"},
    )
    assert llm.api_key is not None and llm.api_key.get_secret_value() == SECRET
    assert llm.base_url == "http://127.0.0.1:9/v1"
    assert llm.max_tokens == 77
    assert llm.request_timeout == 12
    assert llm.stop == ["END"]
    client = llm.cerebras_client
    assert client.retry_policy.max_retries == 2
    assert client.settings.timeout.read == 12
    assert client.settings.default_headers == {"x-team": "a"}
    assert client.settings.integration == "langchain-cerebras-paygo"


def test_base_url_env_and_plain_http_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREBRAS_API_BASE", "http://localhost:8080")
    assert ChatCerebras(api_key="k").cerebras_client.settings.base_url == "http://localhost:8080/v1"
    with pytest.raises(ConfigurationError, match="unencrypted"):
        ChatCerebras(base_url="http://api.example.com/v1")


def test_unknown_kwargs_go_to_model_kwargs_and_the_request() -> None:
    with pytest.warns(UserWarning, match="prompt_cache_key"):
        llm = ChatCerebras(api_key="k", prompt_cache_key="conv-1")
    assert llm.model_kwargs == {"prompt_cache_key": "conv-1"}
    payload = llm._build_request([HumanMessage("hi")]).to_payload()
    assert payload["prompt_cache_key"] == "conv-1"
    with pytest.raises(ConfigurationError, match="constructor arguments"):
        ChatCerebras(model_kwargs={"temperature": 0.1})


def test_request_building_order_and_stream_options() -> None:
    llm = ChatCerebras(
        api_key="k",
        temperature=0.3,
        max_tokens=50,
        stop=["x"],
        seed=7,
        top_p=0.9,
        reasoning_effort="low",
        reasoning_format="parsed",
        clear_thinking=False,
        service_tier="flex",
        model_kwargs={"user": "u1"},
        extra_body={"queue_threshold": 100},
    )
    payload = llm._build_request([SystemMessage("s"), HumanMessage("hi")]).to_payload()
    assert payload == {
        "model": "gpt-oss-120b",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        "max_completion_tokens": 50,
        "temperature": 0.3,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["x"],
        "reasoning_effort": "low",
        "reasoning_format": "parsed",
        "clear_thinking": False,
        "service_tier": "flex",
        "user": "u1",
        "queue_threshold": 100,
    }
    call = llm._build_request(
        [HumanMessage("hi")], ["y"], stream=True, model="zai-glm-4.7", max_tokens=9, extra_body={"user": "u2"}
    ).to_payload()
    assert call["model"] == "zai-glm-4.7"
    assert call["stop"] == ["y"]
    assert call["max_completion_tokens"] == 9
    assert call["user"] == "u2"
    assert call["stream"] is True
    # The core asks every stream for its usage (it settles the quota and the spend with it), whatever
    # stream_usage says; stream_usage=False only keeps usage_metadata out of LangChain's chunks.
    streamed = llm.cerebras_client._flow(
        llm._build_request([HumanMessage("hi")], stream=True, stream_usage=False), stream=True
    )
    assert streamed.plan_for(streamed.config.primary).request.stream_options == {"include_usage": True}


def test_ls_params() -> None:
    llm = ChatCerebras(api_key="k", temperature=0, max_tokens=10, stop="END")
    assert llm._get_ls_params() == {
        "ls_provider": "cerebras",
        "ls_model_name": "gpt-oss-120b",
        "ls_model_type": "chat",
        "ls_temperature": 0,
        "ls_max_tokens": 10,
        "ls_stop": ["END"],
    }
    assert llm._get_ls_params(model="zai-glm-4.7", stop=["a"])["ls_model_name"] == "zai-glm-4.7"
    assert llm._llm_type == "cerebras-chat"


def test_profile_from_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    paygo = ChatCerebras(model="gpt-oss-120b").profile
    assert paygo is not None
    assert paygo["max_input_tokens"] == 131072
    assert paygo["max_output_tokens"] == 40960
    assert paygo["tool_calling"] and paygo["structured_output"] and paygo["reasoning_output"]
    if "reasoning_effort_levels" in ModelProfile.__annotations__:  # a key of newer langchain-core releases
        assert paygo["reasoning_effort_levels"] == ["low", "medium", "high"]
    free = ChatCerebras(model="gpt-oss-120b", tier="free").profile
    assert free is not None and free["max_input_tokens"] == 8192
    monkeypatch.setenv("CEREBRAS_TIER", "free")
    env_free = ChatCerebras(model="zai-glm-4.7").profile
    assert env_free is not None and env_free["max_input_tokens"] == 8192
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ChatCerebras(model="some-future-model").profile is None
    shared = CerebrasClient(api_key="k", tier="paygo")
    assert ChatCerebras(client=shared).profile["max_input_tokens"] == 131072  # type: ignore[index]


def test_rate_limits_accept_the_core_type() -> None:
    llm = ChatCerebras(api_key="k", rate_limits=RateLimits(tokens_per_minute=1000, requests_per_minute=10))
    assert llm.rate_limits == {"requests_per_minute": 10, "tokens_per_minute": 1000}
    assert llm.cerebras_client.user_limits == RateLimits(tokens_per_minute=1000, requests_per_minute=10)
    with pytest.raises(ConfigurationError):
        ChatCerebras(rate_limits={"tokens_per_fortnight": 1})


def test_client_built_once_lazily_and_shareable() -> None:
    llm = ChatCerebras(api_key="k")
    assert llm._client is None
    first = llm.cerebras_client
    assert llm.cerebras_client is first
    shared = CerebrasClient(api_key="k2")
    a = ChatCerebras(client=shared)
    b = ChatCerebras(client=shared, model="zai-glm-4.7")
    assert a.cerebras_client is shared and b.cerebras_client is shared
    assert "client" not in dumpd(a)["kwargs"]


def test_token_counting_uses_the_core_estimator() -> None:
    llm = ChatCerebras(api_key="k")
    short = llm.get_num_tokens_from_messages([HumanMessage("hi")])
    long = llm.get_num_tokens_from_messages([HumanMessage("hi " * 500)])
    assert 0 < short < long
    # the text alone (LangChain's meaning), without the chat template around a message
    assert llm.get_num_tokens("hi " * 500) == llm.cerebras_client.estimator.text_tokens("hi " * 500, llm.model_name)
    assert llm.get_num_tokens("hi " * 500) < long

    def weather(city: str) -> str:
        """Get the weather for a city."""
        return city

    with_tools = llm.get_num_tokens_from_messages([HumanMessage("hi")], tools=[weather])
    assert with_tools > short
    request = llm._build_request([HumanMessage("hi"), AIMessage("hello")])
    assert llm.get_num_tokens_from_messages([HumanMessage("hi"), AIMessage("hello")]) == (
        llm.cerebras_client.estimate_tokens(request)
    )


def test_copies_and_pickles_do_not_share_a_built_client() -> None:
    llm = ChatCerebras(api_key=SECRET)
    built = llm.cerebras_client
    updated = llm.model_copy(update={"base_url": "http://127.0.0.1:9"})
    assert updated.cerebras_client is not built
    assert updated.cerebras_client.settings.base_url == "http://127.0.0.1:9/v1"
    deep = copy.deepcopy(llm)
    assert deep.cerebras_client is not built and deep.api_key == llm.api_key
    pickled = pickle.dumps(llm)
    assert SECRET.encode() not in pickled  # a pickle carries no key: it is read from the env again
    restored = pickle.loads(pickled)
    assert restored._client is None
    assert restored.api_key is None
    shared = CerebrasClient(api_key="k")
    assert copy.deepcopy(ChatCerebras(client=shared)).cerebras_client is shared


def test_proxy_clients_keep_the_timeout() -> None:
    llm = ChatCerebras(api_key="k", cerebras_proxy="http://127.0.0.1:3128", timeout=7)
    client = llm.cerebras_client
    assert client._http_client is not None and client._http_client.timeout.read == 7
    assert client._async_http_client is not None and client._async_http_client.timeout.read == 7


def test_openai_settings_are_refused_not_forwarded() -> None:
    with pytest.raises(ConfigurationError, match="CEREBRAS_API_KEY"):
        ChatCerebras(openai_api_key="sk-openai")


def test_a_str_api_key_is_stored_as_a_secret() -> None:
    """``api_key="csk-..."`` type-checks (tests/typing/user_script.py) and is kept as a SecretStr."""
    from pydantic import SecretStr

    llm = ChatCerebras(model="gpt-oss-120b", api_key="csk-typed-as-str")
    assert isinstance(llm.api_key, SecretStr) and llm.api_key.get_secret_value() == "csk-typed-as-str"
    assert "csk-typed-as-str" not in repr(llm) + str(llm.model_dump()) + llm.model_dump_json()
