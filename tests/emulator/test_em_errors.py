"""Auth, request validation, context window and model availability errors (flat bodies, headers)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from tests.emulator._helpers import GLM, MODEL, assert_rate_headers, chat

WRONG_KEY = {"message": "Wrong API Key", "type": "invalid_request_error", "param": "api_key", "code": "wrong_api_key"}


@pytest.fixture
def client(emulator):
    with emulator.client() as client:
        yield client


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer csk-nope"}, {"Authorization": "Basic abc"}])
def test_wrong_or_missing_key_is_401(emulator, headers):
    with httpx.Client(base_url=emulator.base_url, headers=headers) as client:
        response = chat(client)
    assert response.status_code == 401
    assert response.json() == WRONG_KEY
    assert_rate_headers(response)
    assert emulator.stats()["statuses"] == {"401": 1}


def test_bad_json_is_wrong_api_format(client):
    response = client.post("/chat/completions", content=b'{"model": "gpt-oss-120b", "messages": [', headers={})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "wrong_api_format"
    assert body["type"] == "invalid_request_error"
    assert body["param"] == "validation_error"
    assert body["message"].startswith(": Invalid JSON:")
    assert_rate_headers(response)


def test_unknown_field_is_refused(client):
    response = chat(client, min_p=0.1)
    assert response.status_code == 400
    assert response.json() == {
        "message": "body.min_p: property 'body.min_p' is unsupported",
        "type": "invalid_request_error",
        "param": "validation_error",
        "code": "wrong_api_format",
    }


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"temperature": "hot"}, "body.temperature: Input should be a valid number"),
        ({"max_completion_tokens": 0}, "greater than or equal to 1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 items"),
        ({"reasoning_effort": "extreme"}, "body.reasoning_effort"),
        ({"tool_choice": "required"}, "needs at least one tool"),
        ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, "json_schema.name"),
        ({"messages": []}, "at least 1 item"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"model": None}, "body.model: Field required"),
    ],
)
def test_invalid_values_are_wrong_api_format(client, fields, fragment):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}
    response = client.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "wrong_api_format"
    assert fragment in response.json()["message"]


def test_every_documented_field_is_accepted(client):
    tools = [{"type": "function", "function": {"name": "noop", "description": "Do nothing", "parameters": {}}}]
    response = chat(
        client,
        "Hello",
        model=GLM,
        max_tokens=100,
        max_completion_tokens=100,
        stream=False,
        stream_options={"include_usage": True},
        tools=tools,
        tool_choice="auto",
        parallel_tool_calls=False,
        response_format={"type": "text"},
        reasoning_effort="low",
        reasoning_format="parsed",
        clear_thinking=False,
        disable_reasoning=False,
        logprobs=False,
        top_logprobs=0,
        seed=7,
        stop="\n\n",
        n=1,
        user="user-1",
        service_tier="auto",
        prompt_cache_key="k",
        prediction={"type": "content", "content": "Hello"},
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        logit_bias={"42": 1},
        min_tokens=0,
        min_completion_tokens=0,
        temperature=0.7,
        top_p=0.9,
        model_parameters={},
    )
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens_details"]["rejected_prediction_tokens"] >= 0


def test_reasoning_content_on_input_is_refused_but_reasoning_is_accepted(client):
    history = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4", "reasoning": "Simple addition."},
        {"role": "user", "content": "And 3+3?"},
    ]
    ok = client.post("/chat/completions", json={"model": MODEL, "messages": history})
    assert ok.status_code == 200
    history[1] = {"role": "assistant", "content": "4", "reasoning_content": "Simple addition."}
    bad = client.post("/chat/completions", json={"model": MODEL, "messages": history})
    assert bad.status_code == 400
    assert bad.json()["code"] == "wrong_api_format"
    assert "reasoning_content" in bad.json()["message"]
    assert "is unsupported" in bad.json()["message"]


def test_tool_conversation_messages_are_accepted(client):
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a1b2c3d4e", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "a1b2c3d4e", "content": "3 C and snow"},
    ]
    response = client.post("/chat/completions", json={"model": GLM, "messages": messages})
    assert response.status_code == 200, response.text
    assert "3 C and snow" in response.json()["choices"][0]["message"]["content"]


def test_context_length_exceeded_on_free_tier_window(emulator):
    with emulator.client(free=True) as client:
        response = chat(client, "word " * 9000, max_completion_tokens=100)
        assert response.status_code == 400
        body = response.json()
        prompt = int(body["message"].split("Current length is ")[1].split()[0]) - 100
        assert body == {
            "message": "Please reduce the length of the messages or completion. "
            f"Current length is {prompt + 100} while limit is 8192",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
        assert_rate_headers(response)
        # prompt + max_completion_tokens is what counts: a small prompt with a large budget also fails
        too_much = chat(client, "hi", max_completion_tokens=8190)
        assert too_much.status_code == 400
        assert "while limit is 8192" in too_much.json()["message"]
    with emulator.client() as client:
        assert chat(client, "hi", max_completion_tokens=8190).status_code == 200  # paygo: 131,072


def test_default_reservation_is_window_minus_prompt(emulator):
    with emulator.client(free=True) as client:
        response = chat(client, "hi")
        assert response.status_code == 200
    assert emulator.stats()["tokens_admitted"] == 8192
    with emulator.client(free=True) as client:
        assert chat(client, "word " * 8300).json()["code"] == "context_length_exceeded"


@pytest.mark.parametrize("model", ["llama3.1-8b", "qwen-3-235b-a22b-instruct-2507", "no-such-model"])
def test_retired_and_unknown_models_are_404(client, model):
    response = chat(client, model=model)
    assert response.status_code == 404
    assert response.json() == {
        "message": f"Model {model} does not exist or you do not have access to it.",
        "type": "not_found_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert_rate_headers(response)


def test_retirement_follows_the_configured_date(emulator, client):
    emulator.configure(today=dt.date(2026, 5, 1))
    assert chat(client, model="llama3.1-8b").status_code == 200
    assert "llama3.1-8b" in [m["id"] for m in client.get("/models").json()["data"]]
    emulator.configure(today=dt.date(2026, 5, 27))
    assert chat(client, model="llama3.1-8b").status_code == 404
