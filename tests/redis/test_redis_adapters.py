"""Both adapters pass ``redis_url`` (and the fallback options) through to the core: instances in one
process share the same Redis-backed state as a ``CerebrasClient`` on that URL, and calls go through it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_index.core.llms import ChatMessage

from cerebras_paygo import CerebrasClient
from cerebras_paygo._shared import reset_shared_states
from cerebras_paygo.errors import ConfigurationError
from langchain_cerebras_paygo import ChatCerebras
from llama_index_cerebras import Cerebras

from .conftest import redis_url

pytestmark = pytest.mark.redis


@pytest.fixture
def url() -> Iterator[str]:
    import redis

    reset_shared_states()
    target = redis_url("standalone")
    yield target
    reset_shared_states()
    client = redis.Redis.from_url(target)
    for key in client.scan_iter("cerebras_paygo:*"):  # the default prefix: this test's keys only
        client.delete(key)


def test_both_adapters_share_the_redis_state_of_the_url(emulator, url: str) -> None:
    core = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url, redis_url=url)
    lc = ChatCerebras(api_key=emulator.api_key, base_url=emulator.base_url, redis_url=url, max_tokens=16)
    li = Cerebras(api_key=emulator.api_key, base_url=emulator.base_url, redis_url=url, max_tokens=16)
    assert core.shared.backend != "memory"
    assert lc.cerebras_client.shared is core.shared is li.cerebras_client.shared
    assert lc.invoke("hi").content is not None
    assert li.chat([ChatMessage(role="user", content="hi")]).message is not None
    assert emulator.stats()["statuses"] == {"200": 2}
    scopes = {s.scope.model for s in core.shared.limiter.stats()}
    assert "gpt-oss-120b" in scopes  # the calls booked on the Redis buckets
    fleet = ChatCerebras(api_key=emulator.api_key, redis_url=url, workers=4, on_backend_error="raise")
    assert fleet.cerebras_client.shared.backend != "memory"


@pytest.mark.parametrize(
    "kwargs",
    [{"redis_url": "http://127.0.0.1:6379"}, {"on_backend_error": "ignore"}, {"workers": 0}],
    ids=["not-a-redis-url", "bad-policy", "no-workers"],
)
def test_bad_shared_options_are_configuration_errors(kwargs: dict[str, object]) -> None:
    for make in (ChatCerebras, Cerebras):
        with pytest.raises(ConfigurationError):
            make(api_key="k", **kwargs)
