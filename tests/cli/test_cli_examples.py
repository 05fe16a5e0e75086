"""The examples run as they are: without CEREBRAS_API_KEY they start the embedded emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cerebras_paygo._cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBRAS_")}
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
        ("llama_index_rag.py", "llama_index.core", ["Auto-recharge tops the balance up", "sunny in Oslo"]),
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
