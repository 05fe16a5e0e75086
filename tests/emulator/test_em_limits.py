"""Rate limits: token buckets per org and model, admission and refund, 429 bodies and headers, queue."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from cerebras_paygo.emulator import ServerLimits
from cerebras_paygo.emulator.tokens import count_prompt
from tests.emulator._helpers import GLM, MODEL, assert_rate_headers, chat

TOKENS_BODY = {
    "message": "Tokens per minute limit exceeded - too many tokens processed.",
    "type": "too_many_tokens_error",
    "param": "quota",
    "code": "token_quota_exceeded",
}
REQUESTS_BODY = {
    "message": "Requests per minute limit exceeded - too many requests sent.",
    "type": "too_many_requests_error",
    "param": "quota",
    "code": "request_quota_exceeded",
}


@pytest.fixture
def client(emulator):
    emulator.freeze_time()
    with emulator.client() as client:
        yield client


def _prompt(content: str, model: str = MODEL) -> int:
    return count_prompt({"model": model, "messages": [{"role": "user", "content": content}]})


def test_admission_reserves_then_refunds(emulator, client):
    emulator.configure(limits={"*": ServerLimits(tokens_per_minute=1000)})
    prompt = _prompt("Hello there")
    stream = chat(client, "Hello there", stream=True, max_completion_tokens=500)
    # a stream's headers are sent at admission: the whole reservation is out
    assert int(stream.headers["x-ratelimit-remaining-tokens-minute"]) == 1000 - (prompt + 500)
    used = stream.text and emulator.stats()["tokens_used"]
    after = chat(client, "Hello there", max_completion_tokens=10)
    # a plain response's headers are computed after its own refund
    usage = after.json()["usage"]
    assert int(after.headers["x-ratelimit-remaining-tokens-minute"]) == 1000 - used - usage["total_tokens"]
    stats = emulator.stats()
    assert stats["tokens_admitted"] == (prompt + 500) + (prompt + 10)
    assert stats["tokens_used"] == used + usage["total_tokens"]
    assert stats["tokens_refunded"] == stats["tokens_admitted"] - stats["tokens_used"]
    assert int(after.headers["x-ratelimit-limit-tokens-minute"]) == 1000


def test_token_limit_trips_with_headers_and_no_retry_after(emulator, client):
    emulator.configure(limits={"*": ServerLimits(tokens_per_minute=1000)})
    # A reservation that fits a full bucket but not what the first request left (the prompt is
    # the emulator's own count: the real gpt-oss template with the [tokenizer] extra, ~70 tokens).
    most = 1000 - _prompt("Hello there") - 10
    assert chat(client, max_completion_tokens=400).status_code == 200
    refused = chat(client, max_completion_tokens=most)
    assert refused.status_code == 429
    assert refused.json() == TOKENS_BODY
    assert_rate_headers(refused)
    assert "retry-after" not in refused.headers
    remaining = int(refused.headers["x-ratelimit-remaining-tokens-minute"])
    assert 0 < remaining < 1000
    reset = float(refused.headers["x-ratelimit-reset-tokens-minute"])
    assert 0 < reset <= 60
    assert emulator.stats()["rate_limited"] == 1
    # the bucket refills continuously: after the advertised reset it is full again
    emulator.advance(reset)
    assert chat(client, max_completion_tokens=most).status_code == 200


def test_request_bigger_than_the_bucket_is_refused(emulator, client):
    emulator.configure(limits={"*": ServerLimits(tokens_per_minute=300)})
    assert chat(client, max_completion_tokens=400).json()["code"] == "token_quota_exceeded"


def test_retry_after_toggle(emulator, client):
    emulator.configure(limits={"*": ServerLimits(requests_per_minute=1)}, retry_after=True)
    assert chat(client).status_code == 200
    refused = chat(client)
    assert refused.status_code == 429
    assert refused.json() == REQUESTS_BODY
    assert refused.headers["retry-after"] == "60"


@pytest.mark.parametrize(
    ("limits", "message", "code"),
    [
        (
            {"requests_per_hour": 2},
            "Requests per hour limit exceeded - too many requests sent.",
            "request_quota_exceeded",
        ),
        (
            {"requests_per_day": 2},
            "Requests per day limit exceeded - too many requests sent.",
            "request_quota_exceeded",
        ),
        (
            {"tokens_per_hour": 250},
            "Tokens per hour limit exceeded - too many tokens processed.",
            "token_quota_exceeded",
        ),
        ({"tokens_per_day": 250}, "Tokens per day limit exceeded - too many tokens processed.", "token_quota_exceeded"),
    ],
)
def test_hour_and_day_variants(emulator, client, limits, message, code):
    emulator.configure(limits={"*": limits})
    statuses = []
    for _ in range(4):
        statuses.append(chat(client, max_completion_tokens=100))
        if statuses[-1].status_code != 200:
            break
    refused = statuses[-1]
    assert len(statuses) > 1
    assert refused.status_code == 429
    assert refused.json()["message"] == message
    assert refused.json()["code"] == code
    assert refused.json()["param"] == "quota"
    assert_rate_headers(refused)


def test_daily_request_headers(emulator, client):
    paygo = chat(client)
    assert paygo.headers["x-ratelimit-limit-requests-day"] == "1000000000"  # paygo: no daily limit
    assert chat(client).headers["x-ratelimit-remaining-requests-day"] == "999999998"
    with emulator.client(free=True) as free:
        first = chat(free, max_completion_tokens=50)
        assert first.headers["x-ratelimit-limit-requests-day"] == "14400"
        assert first.headers["x-ratelimit-remaining-requests-day"] == "14399"
        assert first.headers["x-ratelimit-limit-tokens-minute"] == "60000"
        assert float(first.headers["x-ratelimit-reset-requests-day"]) > 0


def test_limits_are_per_org_and_model(emulator, client):
    emulator.configure(limits={"*": ServerLimits(requests_per_minute=1)})
    assert chat(client).status_code == 200
    assert chat(client).status_code == 429
    assert chat(client, model=GLM).status_code == 200  # another model, other buckets
    with emulator.client(free=True) as free:
        assert chat(free, max_completion_tokens=50).status_code == 200  # another org


def test_scoped_overrides(emulator, client):
    emulator.configure(
        limits={
            "*": {"requests_per_minute": 5},
            "free": {"requests_per_minute": 1},
            f"{emulator.paygo_org}/{GLM}": {"tokens_per_minute": 2000},
        }
    )
    assert emulator.state.limits_for(emulator.paygo_org, MODEL).requests_per_minute == 5
    assert emulator.state.limits_for(emulator.free_org, MODEL).requests_per_minute == 1
    glm = emulator.state.limits_for(emulator.paygo_org, GLM)
    assert (glm.requests_per_minute, glm.tokens_per_minute) == (5, 2000)
    assert chat(client, model=GLM).headers["x-ratelimit-limit-tokens-minute"] == "2000"


def test_limit_change_keeps_usage(emulator, client):
    emulator.configure(limits={"*": ServerLimits(tokens_per_minute=10_000)})
    used = chat(client, max_completion_tokens=100).json()["usage"]["total_tokens"]
    emulator.configure(limits={"*": ServerLimits(tokens_per_minute=5_000)})
    response = chat(client, max_completion_tokens=100)
    assert (
        int(response.headers["x-ratelimit-remaining-tokens-minute"])
        == 5_000 - used - response.json()["usage"]["total_tokens"]
    )


def test_queue_exceeded_over_the_concurrency_cap(emulator):
    emulator.configure(max_concurrency=1)
    emulator.set_faults(latency_s=0.4)
    results: dict[str, httpx.Response] = {}

    def slow() -> None:
        with emulator.client() as client:
            results["slow"] = chat(client)

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 2
    while emulator.stats()["in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with emulator.client() as client:
        refused = chat(client)
    thread.join()
    assert results["slow"].status_code == 200
    assert refused.status_code == 429
    assert refused.json() == {
        "message": "We're experiencing high traffic right now! Please try again soon.",
        "type": "too_many_requests_error",
        "param": "queue",
        "code": "queue_exceeded",
    }
    assert_rate_headers(refused)
    assert emulator.stats()["in_flight"] == 0
