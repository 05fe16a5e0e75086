"""The pytest fixtures our users get: ``emulator``, ``emulator_server`` and ``emulator_asgi``."""

from __future__ import annotations

from typing import Any

import pytest

from cerebras_paygo.emulator import EmulatorServer, FaultConfig, ServerLimits, count_prompt
from cerebras_paygo.emulator.pytest_plugin import AsgiEmulatorHandle, EmulatorHandle
from tests.emulator._helpers import MODEL, chat


def test_emulator_handle_api(emulator, emulator_server):
    assert isinstance(emulator, EmulatorHandle)
    assert isinstance(emulator_server, EmulatorServer)
    assert emulator.base_url == emulator_server.base_url
    assert emulator.base_url.startswith("http://127.0.0.1:") and emulator.base_url.endswith("/v1")
    assert emulator.api_key == "csk-emulator-paygo"
    assert emulator.free_api_key == "csk-emulator-free"
    assert emulator.app is emulator_server.app
    assert emulator.stats()["requests"] == 0


def test_configure_changes_this_test_only_part_1(emulator):
    emulator.configure(limits={"*": ServerLimits(requests_per_minute=1)}, faults=FaultConfig(unavailable_next=1))
    with emulator.client() as client:
        assert chat(client).status_code == 503
        assert chat(client).status_code == 200
        assert chat(client).status_code == 429
    stats = emulator.stats()
    assert stats["statuses"] == {"200": 1, "429": 1, "503": 1}


def test_configure_changes_this_test_only_part_2(emulator):
    with emulator.client() as client:
        assert [chat(client).status_code for _ in range(3)] == [200, 200, 200]
    assert emulator.stats()["requests"] == 3


async def test_emulator_asgi_in_process(emulator_asgi):
    assert isinstance(emulator_asgi, AsgiEmulatorHandle)
    emulator_asgi.configure(limits={"*": {"tokens_per_minute": 1000}})
    async with emulator_asgi.async_client() as client:
        body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        # a reservation of 1000 - 20 tokens: the prompt as the emulator counts it, plus the completion
        body["max_completion_tokens"] = 980 - count_prompt(body)
        first = await client.post("/chat/completions", json=body)
        assert first.status_code == 200
        used = first.json()["usage"]["total_tokens"]
        assert first.headers["x-ratelimit-remaining-tokens-minute"] == str(1000 - used)  # frozen clock: exact
        assert (await client.post("/chat/completions", json=body)).status_code == 429
        emulator_asgi.advance(60)
        assert (await client.post("/chat/completions", json=body)).status_code == 200
        emulator_asgi.advance(60)
        stream = await client.post("/chat/completions", json={**body, "stream": True})
        assert stream.text.rstrip().endswith("data: [DONE]")
    assert emulator_asgi.stats()["statuses"] == {"200": 3, "429": 1}


@pytest.mark.parametrize("run", [1, 2])
async def test_emulator_asgi_is_fresh_each_test(emulator_asgi, run):
    assert emulator_asgi.stats()["requests"] == 0
    async with emulator_asgi.async_client(free=True) as client:
        response = await client.get("/models")
    assert response.status_code == 200


def test_emulator_server_standalone():
    with EmulatorServer(port=0) as server:
        assert server.port and server.root_url.endswith(str(server.port))
        with EmulatorHandle(server).client() as client:
            assert chat(client).status_code == 200
    assert "not running" in repr(server)
