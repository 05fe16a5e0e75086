"""``cerebras-paygo check`` against the emulator: success, and each failure's message and exit code."""

from __future__ import annotations

import json
import math
import re
import socket
from typing import Any

import pytest

from cerebras_paygo._cli.common import EXIT_AUTH, EXIT_CONFIG, EXIT_CONNECTION, EXIT_MODEL, EXIT_PAYMENT
from cerebras_paygo._cli.main import main
from cerebras_paygo._settings import key_fingerprint
from tests.cli._output import assert_fits, flat, row, section


def check(emulator: Any, *extra: str, key: str | None = None) -> int:
    return main(["check", "--api-key", key or emulator.api_key, "--base-url", emulator.base_url, *extra])


def test_success_prints_latency_headers_cost_and_window(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert check(emulator) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert_fits(out)
    assert emulator.api_key not in out + captured.err, "the key is never printed"
    assert f"fingerprint {key_fingerprint(emulator.api_key)}" in out
    assert "plain http: allowed only because the host is loopback" in flat(out)
    assert re.search(r"latency\s+\d+\.\d+ s", out)
    headers = section(out, "Rate limits (the response's x-ratelimit-* headers)")
    assert headers[0].split() == ["SERIES", "LIMIT", "REMAINING", "RESETS", "IN"]
    assert row(headers, "tokens-minute").split()[1] == "1,000,000", "the emulator's paygo TPM, in full"
    assert row(headers, "requests-day").split()[1:3] == ["1,000,000,000", "999,999,999"]
    assert re.search(r"cost\s+\$0\.\d+", out)
    assert "131,072" in out, "the paygo window"
    assert out.rstrip().splitlines()[-1].startswith("OK:")
    stats = emulator.stats()
    assert stats["statuses"] == {"200": 1}
    assert stats["models"]["gpt-oss-120b"]["completion_tokens"] <= 16


def test_settings_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEREBRAS_API_KEY", emulator.free_api_key)
    monkeypatch.setenv("CEREBRAS_BASE_URL", emulator.base_url)
    monkeypatch.setenv("CEREBRAS_TIER", "free")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "from $CEREBRAS_API_KEY" in out and emulator.free_api_key not in out
    assert "tier       free" in out
    assert "Context window for the free tier: 8,192 tokens" in flat(out)
    assert re.search(r"cost\s+\$0 \(free tier\)", out)


def test_wrong_key(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert check(emulator, key="csk-this-key-is-wrong") == EXIT_AUTH
    captured = capsys.readouterr()
    assert "wrong key" in captured.out
    assert "csk-this-key-is-wrong" not in captured.out + captured.err
    assert key_fingerprint("csk-this-key-is-wrong") in captured.out


def test_payment_required(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    emulator.set_faults(payment_required_s=math.inf)
    assert check(emulator, "--max-wait", "0") == EXIT_PAYMENT
    out = flat(capsys.readouterr().out)
    assert "payment required (402)" in out
    # the PaymentRequiredError's own message, with its advice
    assert "402 Payment Required: the Cerebras org of API key" in out
    assert "Not waiting for credit (PaymentPolicy.max_wait=0)" in out
    assert "Billing -> Pay as you go" in out
    assert emulator.api_key not in out
    assert emulator.stats()["payment_required"] == 1, "one request, no retry storm"


def test_payment_required_waits_for_a_recharge_within_max_wait(
    capsys: pytest.CaptureFixture[str], emulator: Any
) -> None:
    emulator.set_faults(payment_required_s=0.5)
    assert check(emulator, "--max-wait", "10") == 0
    assert "OK:" in capsys.readouterr().out


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(["check", "--api-key", "csk-anything", "--base-url", f"http://127.0.0.1:{port}", "--timeout", "2"])
    assert code == EXIT_CONNECTION
    assert f"cannot reach http://127.0.0.1:{port}/v1" in flat(capsys.readouterr().out)


def test_retired_model_names_its_replacement(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert check(emulator, "--model", "llama3.1-8b") == EXIT_MODEL
    out = flat(capsys.readouterr().out)
    assert "model 'llama3.1-8b' is retired" in out
    assert "--model gpt-oss-120b" in out
    assert emulator.stats()["requests"] == 0, "refused before any request"


def test_unknown_model(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert check(emulator, "--model", "no-such-model") == EXIT_MODEL
    out = flat(capsys.readouterr().out)
    assert "not in the catalog" in out
    assert "model 'no-such-model' not found" in out and "cerebras-paygo models --live" in out


def test_missing_key_and_unsafe_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == EXIT_CONFIG
    assert "no API key" in capsys.readouterr().out
    assert main(["check", "--api-key", "csk-secret-value", "--base-url", "http://api.example.com"]) == EXIT_CONFIG
    out = flat(capsys.readouterr().out)
    assert "refusing plain http://" in out and "csk-secret-value" not in out


def test_bad_flag_values_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["check", "--max-wait", "-1"])
    with pytest.raises(SystemExit):
        main(["check", "--timeout", "0"])


def test_json_reports_the_check_as_one_document(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert check(emulator, "--json") == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # stdout is the document and nothing else
    assert emulator.api_key not in captured.out + captured.err
    assert document["ok"] is True and document["exit_code"] == 0 and document["error"] is None
    assert document["settings"] == {
        "key_source": "--api-key",
        "key_fingerprint": key_fingerprint(emulator.api_key),
        "base_url": emulator.base_url,
        "tier": "auto",
    }
    assert document["tier"] == {"configured": "auto", "in_force": "paygo", "headers_show": "paygo"}
    assert document["model"]["id"] == "gpt-oss-120b" and document["model"]["context_window"] == 131072
    request = document["request"]
    assert request["max_completion_tokens"] == 16 and 0 < request["completion_tokens"] <= 16
    assert request["latency_s"] > 0 and request["cost_usd"] > 0 and request["request_id"]
    tpm = document["rate_limits"]["tokens-minute"]
    assert tpm["limit"] == 1_000_000 and tpm["remaining"] < 1_000_000
    assert emulator.stats()["statuses"] == {"200": 1}


def test_json_failures_carry_the_message_and_exit_code(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert check(emulator, "--json", key="csk-this-key-is-wrong") == EXIT_AUTH
    text = capsys.readouterr().out
    document = json.loads(text)
    assert document["ok"] is False and document["exit_code"] == EXIT_AUTH
    assert document["error"]["exit_code"] == EXIT_AUTH and "wrong key" in document["error"]["headline"]
    assert document["settings"]["key_fingerprint"] == key_fingerprint("csk-this-key-is-wrong")
    assert "csk-this-key-is-wrong" not in text
    assert main(["check", "--json"]) == EXIT_CONFIG
    document = json.loads(capsys.readouterr().out)
    assert document["error"]["headline"] == "no API key" and document["settings"] is None


def test_a_free_key_is_reported_on_the_free_tier(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    """tier=auto (the default): the headers of the one request show the free tier, and the window
    and cost lines say the free tier's (not PayGo's 131k window at PayGo prices)."""
    assert check(emulator, key=emulator.free_api_key) == 0
    out = flat(capsys.readouterr().out)
    assert "Tier: free (learned from the rate-limit headers)" in out
    assert "Context window for the free tier: 8,192 tokens" in out
    assert "(free tier)" in out and "estimated from list prices" not in out
    assert check(emulator, "--json", key=emulator.free_api_key) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tier"] == {"configured": "auto", "in_force": "free", "headers_show": "free"}
    assert document["model"]["context_window"] == 8192 and document["request"]["cost_usd"] == 0


def test_tier_auto_can_be_asked_for(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert check(emulator, "--tier", "auto", "--json", key=emulator.free_api_key) == 0
    assert json.loads(capsys.readouterr().out)["tier"]["in_force"] == "free"


def test_a_configured_tier_the_headers_contradict_is_warned(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert check(emulator, "--tier", "paygo", key=emulator.free_api_key) == 0
    out = flat(capsys.readouterr().out)
    assert "WARNING: tier='paygo' is configured but the rate-limit headers show the free tier" in out
