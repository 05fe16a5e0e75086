"""``cerebras-paygo demo``: the embedded emulator, a batch under a small quota, 0 server 429s."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from cerebras_paygo._cli.main import main
from tests.cli._output import assert_fits, section


def assert_demo_output(out: str, requests: int) -> None:
    assert f"{requests} sent, {requests} answered, 0 failed" in out
    assert re.search(r"server 429s\s+0 \(emulator statuses: \d+ x 200\)", out), out
    assert re.search(r"limiter waits\s+\d+\.\d s in total", out)
    assert re.search(r"cost\s+\$0\.\d+", out)
    assert "tokens_per_minute" in out, "the limiter's buckets"
    assert "2. One answer, streamed token by token" in out
    assert "ContextWindowExceededError:" in out and "8,192" in out
    assert "The emulator counted 0 requests for it" in out
    assert_fits("\n".join(section(out, "Summary")))  # the summary and the buckets' tables fit 80 columns
    buckets = section(out, "Limiter buckets")
    assert_fits("\n".join(buckets))
    assert [line.split()[0] for line in buckets if "_per_" in line] == [
        "requests_per_minute",
        "tokens_per_minute",
        "requests_per_day",
    ]


def test_demo_on_the_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--requests", "8", "--tpm", "2000"]) == 0
    captured = capsys.readouterr()
    assert "embedded emulator" in captured.out
    assert "LangChain: ChatPromptTemplate | ChatCerebras | StrOutputParser, abatch" in captured.out
    assert "quota of 2,000 tokens per minute" in captured.out
    assert_demo_output(captured.out, 8)
    # the answers come from each question's context
    assert "A: Cerebras answers 402 Payment Required" in captured.out


def test_demo_holds_requests_back_when_the_batch_overbooks_the_quota(capsys: pytest.CaptureFixture[str]) -> None:
    # 12 requests book ~1,900 tokens at admission (prompt + max_completion_tokens) against 1,500
    # per minute: the limiter holds some back until the unused completion tokens of the first
    # answers come back, and the server answers no 429.
    assert main(["demo", "--requests", "12", "--tpm", "1500", "--max-tokens", "96"]) == 0
    out = capsys.readouterr().out
    assert_demo_output(out, 12)
    booked = re.search(r"([\d,]+) booked at admission", out)
    assert booked is not None and int(booked.group(1).replace(",", "")) > 1500, "more than the quota holds"
    held = re.search(r"over (\d+) held request", out)
    assert held is not None and int(held.group(1)) > 0


def test_demo_with_the_core_client(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--core", "--requests", "4"]) == 0
    out = capsys.readouterr().out
    assert "core CerebrasClient" in out and "langchain-core is not installed" not in out
    assert_demo_output(out, 4)


def test_demo_without_langchain_falls_back_to_the_core(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n.startswith(("langchain_core", "langchain_cerebras_paygo"))]:
        monkeypatch.setitem(sys.modules, name, None)  # importing LangChain now fails
    monkeypatch.setitem(sys.modules, "langchain_core", None)
    assert main(["demo", "--requests", "4"]) == 0
    out = capsys.readouterr().out
    assert "langchain-core is not installed, so the demo uses the core CerebrasClient" in out
    assert_demo_output(out, 4)


def test_demo_without_rich_prints_plain_progress(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n == "rich" or n.startswith("rich.")] or ["rich"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing rich (and its modules) now fails
    assert main(["demo", "--requests", "4"]) == 0
    captured = capsys.readouterr()
    assert "pip install 'cerebras-paygo[cli]'" in captured.err
    assert "4/4 done" in captured.err
    assert_demo_output(captured.out, 4)


def test_demo_no_emulator_uses_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emulator: Any
) -> None:
    monkeypatch.setenv("CEREBRAS_API_KEY", emulator.api_key)
    monkeypatch.setenv("CEREBRAS_BASE_URL", emulator.base_url)
    assert main(["demo", "--no-emulator", "--requests", "5"]) == 0
    out = capsys.readouterr().out
    assert emulator.base_url in out and emulator.api_key not in out
    assert "5 sent, 5 answered, 0 failed" in out
    assert "ContextWindowExceededError:" in out and "0 requests were answered for it" in out
    stats = emulator.stats()
    assert stats["rate_limited"] == 0
    assert stats["requests"] == 6, "the batch and the stream; the over-cap prompt was never sent"


def test_demo_no_emulator_needs_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-emulator"]) == 2
    err = capsys.readouterr().err
    assert "no API key" in err and "without --no-emulator" in err


def test_demo_refuses_a_retired_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", "llama3.1-8b", "--requests", "2"]) == 6
    err = capsys.readouterr().err
    assert "model 'llama3.1-8b' is retired" in err and "--model gpt-oss-120b" in err
