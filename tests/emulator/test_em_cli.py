"""``cerebras-paygo emulate``: options -> EmulatorConfig, and a real server process."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time

import httpx
import pytest

from cerebras_paygo._cli.main import build_parser, emulator_config_from_args, main
from cerebras_paygo.emulator.config import PAYGO_KEY, PAYGO_ORG
from tests.emulator._helpers import MODEL, sse_events


def _config(*argv: str):
    return emulator_config_from_args(build_parser().parse_args(["emulate", *argv]))


def test_options_map_to_the_config():
    config = _config(
        "--seed=7",
        "--no-done",
        "--retry-after",
        "--max-concurrency=3",
        "--completion-tokens=50",
        "--balance=2.5",
        "--auto-recharge=1:10:30",
        "--limit=tokens_per_minute=5000",
        "--limit=free:requests_per_minute=5",
        "--limit=paygo/gpt-oss-120b:tokens_per_day=100000",
        "--org=team:paygo:20",
        "--key=csk-team=team",
        "--latency=0.1",
        "--tokens-per-second=100",
        "--unavailable-next=2",
        "--drop-after-chunks=4",
        "--payment-required-for=inf",
        "--rate-limit-next=1",
        "--error-rate=0.1",
        "--today=2026-01-01",
    )
    assert config.seed == 7 and config.send_done is False and config.retry_after is True
    assert config.max_concurrency == 3 and config.default_completion_tokens == 50
    paygo = config.org(PAYGO_ORG)
    assert paygo.balance_usd == 2.5
    assert (paygo.auto_recharge.threshold_usd, paygo.auto_recharge.amount_usd, paygo.auto_recharge.delay_s) == (
        1,
        10,
        30,
    )
    assert config.limits["*"].tokens_per_minute == 5000
    assert config.limits["free"].requests_per_minute == 5
    assert config.limits["paygo/gpt-oss-120b"].tokens_per_day == 100000
    assert config.org("team").balance_usd == 20 and config.keys["csk-team"] == "team"
    faults = config.faults
    assert (faults.latency_s, faults.tokens_per_second, faults.unavailable_next) == (0.1, 100, 2)
    assert faults.drop_after_chunks == 4 and math.isinf(faults.payment_required_s) and faults.rate_limit_next == 1
    assert str(config.today) == "2026-01-01"


def test_config_file_and_print_config(tmp_path, capsys):
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps({"seed": 3, "limits": {"*": {"requests_per_minute": 9}}}))
    assert main(["emulate", "--config", str(path), "--seed=4", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["seed"] == 4
    assert printed["limits"]["*"]["requests_per_minute"] == 9
    assert main(["emulate", "--limit", "nonsense=1", "--print-config"]) == 2


def test_bad_options_are_refused():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulate", "--limit", "tokens_per_minute"])
    assert main([]) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_emulate_serves_until_stopped():
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cerebras_paygo._cli.main",
            "emulate",
            f"--port={port}",
            "--no-done",
            "--rate-limit-next=1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/tcp_warming", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.05)
        headers = {"Authorization": f"Bearer {PAYGO_KEY}"}
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        assert httpx.post(f"{base}/chat/completions", json=body, headers=headers).status_code == 429
        events = sse_events(httpx.post(f"{base}/chat/completions", json=body, headers=headers).text)
        assert events[-1]["choices"][0]["finish_reason"] == "stop"  # --no-done
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def _serve(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cerebras_paygo._cli.main", "emulate", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_banner_comes_once_the_server_answers():
    process = _serve("--port=0", "--log-level=warning")  # 0: a free port, which only the banner names
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()  # blocks until the first line: the banner, nothing before it
        assert banner.startswith("Cerebras emulator on http://127.0.0.1:"), banner
        base = banner.split()[3]
        assert base.endswith("/v1") and ":0/" not in base
        assert "csk-emulator-paygo (emulator-paygo)" in banner
        # no retry: the printed URL answers at once
        assert httpx.get(f"{base}/tcp_warming", timeout=5).status_code == 200
        headers = {"Authorization": f"Bearer {PAYGO_KEY}"}
        assert httpx.get(f"{base}/models", headers=headers, timeout=5).json()["data"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def test_a_taken_port_is_a_clear_error_and_no_banner(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["emulate", f"--port={port}"]) == 2
        err = capsys.readouterr().err
        assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in err
        assert "Cerebras emulator on" not in err
        process = _serve(f"--port={port}")  # the real process too: exits at once, no banner
        _, err = process.communicate(timeout=30)
        assert process.returncode == 2 and "already in use" in err and "Cerebras emulator on" not in err
