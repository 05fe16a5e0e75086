"""Fault injection and the /_emulator control endpoints, over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.emulator._helpers import GLM, assert_rate_headers, chat, sse_events


@pytest.fixture
def client(emulator):
    with emulator.client() as client:
        yield client


def test_503_burst_then_recovery(emulator, client):
    emulator.set_faults(unavailable_next=2)
    statuses = [chat(client).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    response = chat(client)
    assert response.status_code == 200
    emulator.set_faults(unavailable_next=1)
    refused = chat(client)
    assert refused.json()["type"] == "service_unavailable_error"
    assert_rate_headers(refused)
    assert "retry-after" not in refused.headers
    assert emulator.stats()["statuses"]["503"] == 3


def test_random_5xx_rate(emulator, client):
    emulator.set_faults(error_rate=1.0, error_status=502)
    response = chat(client)
    assert response.status_code == 502
    assert set(response.json()) == {"message", "type", "param", "code"}
    emulator.set_faults(error_rate=0.5)
    statuses = {chat(client).status_code for _ in range(20)}
    assert statuses == {200, 502}


def test_429_storm(emulator, client):
    emulator.set_faults(rate_limit_next=3)
    responses = [chat(client) for _ in range(4)]
    assert [r.status_code for r in responses] == [429, 429, 429, 200]
    assert responses[0].json()["code"] == "token_quota_exceeded"
    assert responses[0].json()["message"] == "Tokens per minute limit exceeded - too many tokens processed."
    for response in responses:
        assert_rate_headers(response)
    assert emulator.stats()["rate_limited"] == 3


def test_stream_dropped_after_k_chunks(emulator, client):
    emulator.set_faults(drop_after_chunks=3, drop_next=1)
    received: list[str] = []
    body = {"model": GLM, "messages": [{"role": "user", "content": "Tell me about rivers"}], "stream": True}

    def read_stream() -> None:
        with client.stream("POST", "/chat/completions", json=body) as response:
            assert response.status_code == 200
            received.extend(line for line in response.iter_lines() if line.startswith("data: "))

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        read_stream()
    assert len(received) == 3
    stats = emulator.stats()
    assert stats["streams_dropped"] == 1
    assert stats["in_flight"] == 0
    # only the next stream was cut
    events = sse_events(chat(client, "Tell me about rivers", model=GLM, stream=True).text)
    assert events[-1] == "[DONE]"


def test_latency_before_the_response(emulator, client):
    emulator.set_faults(latency_s=0.25)
    started = time.monotonic()
    assert chat(client).status_code == 200
    assert time.monotonic() - started >= 0.25
    assert chat(client).json()["time_info"]["queue_time"] >= 0.25


def test_slow_first_byte_trips_a_read_timeout(emulator, client):
    emulator.set_faults(slow_first_byte_s=0.6, slow_first_byte_next=1)
    body = {"model": GLM, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    timeout = httpx.Timeout(5.0, read=0.2)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json=body, timeout=timeout)
    started = time.monotonic()
    assert client.post("/chat/completions", json=body, timeout=timeout).status_code == 200
    assert time.monotonic() - started < 0.5
    deadline = time.monotonic() + 2
    while emulator.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.stats()["in_flight"] == 0


def test_streaming_pace(emulator, client):
    emulator.set_faults(tokens_per_second=200)
    started = time.monotonic()
    response = chat(client, "Tell me about rivers", model=GLM, reasoning_effort="none", stream=True)
    elapsed = time.monotonic() - started
    tokens = [e for e in sse_events(response.text) if e != "[DONE]"][-1]["usage"]["completion_tokens"]
    assert elapsed >= tokens / 200 * 0.9


def test_control_endpoints_over_http(emulator, client):
    root = emulator.root_url
    faults = httpx.post(f"{root}/_emulator/faults", json={"unavailable_next": 1})
    assert faults.status_code == 200
    assert faults.json()["unavailable_next"] == 1
    assert httpx.get(f"{root}/_emulator/faults").json()["unavailable_next"] == 1
    assert chat(client).status_code == 503
    assert chat(client).status_code == 200
    stats = httpx.get(f"{root}/_emulator/stats").json()
    assert stats["requests"] == 2
    assert stats["statuses"] == {"200": 1, "503": 1}
    assert stats["models"]["gpt-oss-120b"]["requests"] == 2
    assert set(stats["balances"]) == {emulator.paygo_org, emulator.free_org}
    assert stats["tokens_admitted"] > stats["tokens_used"] > 0
    bad = httpx.post(f"{root}/_emulator/faults", json={"no_such_fault": 1})
    assert bad.status_code == 400
    config = httpx.post(f"{root}/_emulator/config", json={"send_done": False})
    assert config.json()["send_done"] is False
    assert sse_events(chat(client, stream=True).text)[-1] != "[DONE]"
    reset = httpx.post(f"{root}/_emulator/reset")
    assert reset.status_code == 200
    assert reset.json()["stats"]["requests"] == 0
    assert sse_events(chat(client, stream=True).text)[-1] == "[DONE]"
    advanced = httpx.post(f"{root}/_emulator/clock/advance", json={"seconds": 5})
    assert advanced.status_code == 200


def test_reset_with_a_config_body(emulator, client):
    response = httpx.post(f"{emulator.root_url}/_emulator/reset", json={"limits": {"*": {"requests_per_minute": 1}}})
    assert response.status_code == 200
    assert chat(client).status_code == 200
    assert chat(client).status_code == 429
    emulator.reset()
    assert chat(client).status_code == 200
    assert chat(client).status_code == 200
