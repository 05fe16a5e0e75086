"""Plain completions, streams, models endpoints: shapes, ids, headers, lengths, determinism."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from cerebras_paygo.emulator.tokens import count_text
from tests.emulator._helpers import GLM, MODEL, assert_rate_headers, chat, sse_events


@pytest.fixture
def client(emulator):
    with emulator.client() as client:
        yield client


def test_plain_completion_shape(client):
    response = chat(client, "Explain token buckets briefly", max_completion_tokens=200)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert_rate_headers(response)
    body = response.json()
    assert list(body)[:6] == ["id", "choices", "created", "model", "system_fingerprint", "object"]
    assert body["object"] == "chat.completion"
    assert re.fullmatch(r"chatcmpl-[0-9a-f-]{36}", body["id"])
    uuid.UUID(body["id"].removeprefix("chatcmpl-"))
    assert re.fullmatch(r"fp_[0-9a-f]+", body["system_fingerprint"])
    assert body["service_tier"] is None
    assert body["model"] == MODEL
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert "token buckets" in choice["message"]["content"]
    assert choice["message"]["reasoning"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0
    timing = body["time_info"]
    assert set(timing) == {"queue_time", "prompt_time", "completion_time", "total_time", "created"}
    assert isinstance(timing["created"], float)


def test_max_completion_tokens_cuts_with_length(client):
    body = chat(client, "Tell me about rivers", model=GLM, reasoning_effort="none", max_completion_tokens=5).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    long = chat(client, "Tell me about rivers", model=GLM, reasoning_effort="none", max_tokens=400).json()
    assert long["choices"][0]["finish_reason"] == "stop"
    assert long["choices"][0]["message"]["content"].startswith(body["choices"][0]["message"]["content"])


def test_default_length_is_configurable(emulator, client):
    short = chat(client, "Tell me about rivers", model=GLM, reasoning_effort="none").json()
    emulator.configure(default_completion_tokens=120)
    longer = chat(client, "Tell me about rivers", model=GLM, reasoning_effort="none").json()
    assert 32 <= short["usage"]["completion_tokens"] < 60
    assert longer["usage"]["completion_tokens"] >= 120
    assert longer["choices"][0]["finish_reason"] == "stop"


def test_min_completion_tokens_lengthens(client):
    body = chat(client, "Tell me about rivers", model=GLM, reasoning_effort="none", min_completion_tokens=90).json()
    assert body["usage"]["completion_tokens"] >= 90


def test_same_request_same_answer_and_seed_changes_it(emulator, client):
    first = chat(client, "Describe a lighthouse", max_completion_tokens=300).json()
    second = chat(client, "Describe a lighthouse", max_completion_tokens=300).json()
    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    assert first["id"] != second["id"]
    emulator.configure(seed=1)
    third = chat(client, "Describe a lighthouse", max_completion_tokens=300).json()
    assert third["choices"][0]["message"] != first["choices"][0]["message"]


def test_stop_string_cuts_content(client):
    plain = chat(client, "Tell me about rivers", model=GLM, reasoning_effort="none").json()
    content = plain["choices"][0]["message"]["content"]
    stop = content.split()[3]
    cut = chat(client, "Tell me about rivers", model=GLM, reasoning_effort="none", stop=[stop]).json()
    assert cut["choices"][0]["message"]["content"] == content[: content.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert stop not in cut["choices"][0]["message"]["content"]


def test_n_choices(client):
    body = chat(client, "Name a color", model=GLM, reasoning_effort="none", n=2, max_completion_tokens=50).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    contents = [c["message"]["content"] for c in body["choices"]]
    assert body["usage"]["completion_tokens"] == sum(count_text(c) for c in contents)


def test_logprobs_when_asked(client):
    body = chat(client, "Say hi", model=GLM, reasoning_effort="none", logprobs=True, top_logprobs=2).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert "".join(item["token"] for item in content) == body["choices"][0]["message"]["content"]
    assert all(len(item["top_logprobs"]) == 2 for item in content)
    assert "logprobs" not in chat(client, "Say hi", model=GLM).json()["choices"][0]


def test_stream_chunk_order_and_done(client):
    response = chat(client, "Tell me about rivers", model=GLM, stream=True, max_completion_tokens=200)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert_rate_headers(response)
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-2]]
    kinds = [next(iter(d)) for d in deltas]
    assert kinds == sorted(kinds, key=lambda k: k != "reasoning")  # reasoning first, then content
    assert kinds.count("content") > 3  # several deltas, one token each
    assert chunks[-2]["choices"][0] == {"delta": {}, "index": 0}
    final = chunks[-1]
    assert final["choices"][0]["delta"] == {}
    assert final["choices"][0]["finish_reason"] == "stop"
    assert set(final) >= {"usage", "time_info"}
    assert isinstance(final["time_info"]["created"], float)
    assert all("usage" not in c for c in chunks[:-1])
    plain = chat(client, "Tell me about rivers", model=GLM, max_completion_tokens=200).json()
    assert "".join(d.get("content", "") for d in deltas) == plain["choices"][0]["message"]["content"]
    assert "".join(d.get("reasoning", "") for d in deltas) == plain["choices"][0]["message"]["reasoning"]
    assert final["usage"]["completion_tokens"] == plain["usage"]["completion_tokens"]
    assert kinds.count("content") + kinds.count("reasoning") == plain["usage"]["completion_tokens"]


def test_stream_without_done(emulator, client):
    emulator.configure(send_done=False)
    events = sse_events(chat(client, "Hi", stream=True).text)
    assert events[-1] != "[DONE]"
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_include_usage_is_accepted(client):
    events = sse_events(chat(client, "Hi", stream=True, stream_options={"include_usage": True}).text)
    assert "usage" in events[-2]


def test_models_endpoints(emulator, client):
    response = client.get("/models")
    assert response.status_code == 200
    assert_rate_headers(response)
    data = response.json()
    assert data["object"] == "list"
    ids = [m["id"] for m in data["data"]]
    assert ids == ["gpt-oss-120b", "zai-glm-4.7"]  # retired models are not listed
    assert all(set(m) == {"id", "object", "created", "owned_by"} for m in data["data"])
    one = client.get("/models/gpt-oss-120b").json()
    assert one["id"] == "gpt-oss-120b" and one["object"] == "model" and one["owned_by"] == "OpenAI"
    missing = client.get("/models/llama3.1-8b")
    assert missing.status_code == 404
    assert missing.json()["code"] == "model_not_found"
    assert httpx.get(f"{emulator.base_url}/models").status_code == 401


def test_tcp_warming(emulator):
    response = httpx.get(f"{emulator.base_url}/tcp_warming")
    assert response.status_code == 200
    assert_rate_headers(response)


def test_gzip_request_body(client):
    import gzip
    import json

    payload = gzip.compress(json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode())
    response = client.post(
        "/chat/completions", content=payload, headers={"content-encoding": "gzip", "content-type": "application/json"}
    )
    assert response.status_code == 200
