"""The examples run as they are: without CEREBRAS_API_KEY they start the embedded emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cerebras_paygo._cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]


REDIS_URL = os.environ.get("CEREBRAS_PAYGO_REDIS_URL")


def run_example(name: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBRAS_")} | extra_env
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_core_client_example() -> None:
    result = run_example("core_client.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator" in out
    for step in ("1. A sync call", "2. Five async calls", "3. A stream", "4. PaymentPolicy"):
        assert step in out
    assert "the hook ran 1 time(s)" in out
    assert "used_fallback_key=True" in out
    assert "PaymentRequiredError: 402 Payment Required" in out
    assert out.rstrip().endswith("Done.")
    assert "csk-emulator" not in out + result.stderr


def test_langchain_chain_example() -> None:
    result = run_example("langchain_chain.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator" in out
    assert "the model asked for: [('get_weather', {'city': 'Lisbon'})]" in out
    assert "final answer: According to the get_weather tool" in out
    assert "Movie(title='Spirited Away', year=2001, director='Hayao Miyazaki')" in out
    assert out.rstrip().endswith("Done.")


@pytest.mark.parametrize("command", ["emulate", "models", "check", "demo"])
def test_every_subcommand_is_registered(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    assert f"cerebras-paygo {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "needs", "expected"),
    [
        ("langchain_agent.py", "langchain.agents", ["ToolMessage: It is 21 degrees", "WeatherReport: WeatherReport("]),
        ("langgraph_agent.py", "langgraph.prebuilt", ["tools: It is 21 degrees and sunny in Paris."]),
        (
            "llama_index_rag.py",
            "llama_index.core",
            [
                "Auto-recharge tops the balance up when it falls below a threshold. (from 2 documents)",
                "2. A chat engine",
            ],
        ),
        (
            "llama_index_agent.py",
            "llama_index.core",
            [
                "tool call:   get_weather({'city': 'Oslo'})",
                "tool result: It is 21 degrees celsius and sunny in Oslo.",
                "get_weather: It is 21 degrees celsius and sunny in Lisbon.",
            ],
        ),
    ],
)
def test_framework_examples(name: str, needs: str, expected: list[str]) -> None:
    pytest.importorskip(needs)
    result = run_example(name)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator" in out
    for text in expected:
        assert text in out, out
    assert out.rstrip().endswith("Done.")


def test_shared_quota_workers_example_without_redis_explains() -> None:
    result = run_example("shared_quota_workers.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1. 4 processes x 8 requests, each process with its own limiter" in out
    assert "the server refused" in out
    assert "CEREBRAS_PAYGO_REDIS_URL is not set, so this part is skipped" in out
    assert out.rstrip().endswith("Done.")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="CEREBRAS_PAYGO_REDIS_URL is not set")
def test_shared_quota_workers_example_through_redis() -> None:
    assert REDIS_URL is not None
    result = run_example("shared_quota_workers.py", CEREBRAS_PAYGO_REDIS_URL=REDIS_URL)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    alone, shared = out.split("2. The same 4 processes, sharing one limiter through Redis")
    refused_alone = re.search(r"the server refused (\d+) request\(s\) with 429", alone)
    assert refused_alone is not None and int(refused_alone.group(1)) > 0, "each process alone overruns the quota"
    assert "32 of 32 answered" in shared and "the server refused 0 request(s) with 429" in shared
