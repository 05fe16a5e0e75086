"""``cerebras-paygo demo``: the embedded emulator, a batch under a small quota (0 server 429s) that rides
out a 402 outage, and the LlamaIndex half over the same documents."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from cerebras_paygo._cli.main import main
from tests.cli._output import assert_fits, flat, section


def assert_demo_output(out: str, requests: int) -> None:
    assert f"{requests} sent, {requests} answered, 0 failed" in out
    assert re.search(r"server 429s\s+0 \(emulator statuses: \d+ x 200(, \d+ x 402)?\)", out), out
    assert re.search(r"waits\s+\d+\.\d s in total \(limiter and 402 circuit\)", out)
    assert re.search(r"cost\s+\$0\.\d+", out)
    assert "tokens_per_minute" in out, "the limiter's buckets"
    assert "2. One answer, streamed token by token" in out
    assert "ContextWindowExceededError:" in out and "8,192" in out
    assert "The emulator counted 0 requests for it" in out
    assert out.rstrip().endswith("examples/*.py"), "the demo ran to its end"
    assert_fits("\n".join(section(out, "Summary")))  # the summary and the buckets' tables fit 80 columns
    buckets = section(out, "Limiter buckets")
    assert_fits("\n".join(buckets))
    assert [line.split()[0] for line in buckets if "_per_" in line] == [
        "requests_per_minute",
        "tokens_per_minute",
        "requests_per_day",
    ]


@pytest.fixture
def without_llama_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if llama-index-core were not installed: importing it fails (the demo then skips its LlamaIndex half)."""
    for name in [n for n in sys.modules if n.startswith(("llama_index", "llama_index_cerebras"))]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "llama_index.core", None)


def assert_outage_ridden_out(out: str) -> None:
    """The 402 outage staged at the first answer: some 402s, no request lost, the hook once."""
    summary = flat("\n".join(section(out, "Summary")))
    found = re.search(
        r"402 outage credit ran out at the first answer; 1 auto-recharge landed 1 s later\. "
        r"Meanwhile (\d+) x 402, 0 request\(s\) lost",
        summary,
    )
    assert found is not None and int(found.group(1)) >= 1, summary
    assert "on_payment_required ran 1 time(s)" in summary
    statuses = re.search(r"emulator statuses: \d+ x 200, (\d+) x 402", out)
    assert statuses is not None and statuses.group(1) == found.group(1)


def assert_llama_index_half(out: str) -> None:
    assert "4. LlamaIndex: a query engine over the same documents, on the same key and limiter" in out
    assert "A: Auto-recharge tops the credit balance up when it falls below a threshold." in out
    assert "A: The free tier caps the context window at 8,192 tokens." in out
    retrieved = [int(n) for n in re.findall(r"\(from (\d+) of 20 documents\)", out)]
    assert len(retrieved) == 2 and all(1 <= n < 20 for n in retrieved), "retrieval, not the whole set"


def test_demo_on_the_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("llama_index.core")
    assert main(["demo", "--requests", "8", "--tpm", "2000", "--concurrency", "4"]) == 0
    captured = capsys.readouterr()
    assert "embedded emulator" in captured.out
    assert "LangChain: ChatPromptTemplate | ChatCerebras | StrOutputParser, abatch" in captured.out
    assert "quota of 2,000 tokens per minute" in captured.out
    assert_demo_output(captured.out, 8)
    # the answers come from each question's context
    assert "A: Cerebras answers 402 Payment Required" in captured.out
    assert_outage_ridden_out(captured.out)
    assert_llama_index_half(captured.out)


@pytest.mark.usefixtures("without_llama_index")
def test_demo_without_llama_index_names_the_extra(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--requests", "4"]) == 0
    out = capsys.readouterr().out
    assert_demo_output(out, 4)
    assert "4. LlamaIndex: not installed; pip install 'cerebras-paygo[llama-index]' adds a query engine" in out


def test_demo_without_the_emulator_names_the_extras(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cerebras_paygo.emulator", None)  # starlette/uvicorn missing
    assert main(["demo", "--requests", "2"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'cerebras-paygo[langchain]', '[llama-index]' or '[emulator]'" in err
    assert "--no-emulator" in err


@pytest.mark.usefixtures("without_llama_index")  # its queries would wait a long while in this small quota
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
    assert main(["demo", "--core", "--requests", "4", "--concurrency", "2"]) == 0
    out = capsys.readouterr().out
    assert "core CerebrasClient" in out and "langchain-core is not installed" not in out
    assert_demo_output(out, 4)
    assert_outage_ridden_out(out)


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
    assert "none staged (only the emulator stages one)" in flat(out)
    stats = emulator.stats()
    assert stats["rate_limited"] == 0 and stats["payment_required"] == 0
    llama_index_queries = 2 if "4. LlamaIndex: a query engine" in out else 0
    assert stats["requests"] == 6 + llama_index_queries, "the batch and the stream; the over-cap prompt was never sent"


def test_demo_no_emulator_needs_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-emulator"]) == 2
    err = capsys.readouterr().err
    assert "no API key" in err and "without --no-emulator" in err


def test_demo_refuses_a_retired_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", "llama3.1-8b", "--requests", "2"]) == 6
    err = capsys.readouterr().err
    assert "model 'llama3.1-8b' is retired" in err and "--model gpt-oss-120b" in err
