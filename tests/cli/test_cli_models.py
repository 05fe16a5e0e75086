"""``cerebras-paygo models``: the catalog tables (80 columns), ``--json`` and ``--live`` against the emulator."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import pytest

from cerebras_paygo._catalog import default_catalog
from cerebras_paygo._cli.common import Printer
from cerebras_paygo._cli.main import main
from cerebras_paygo._settings import key_fingerprint
from tests.cli._output import assert_fits, row, section

STATUS, PRICES, LIMITS, CAPABILITIES = "Models", "Windows and prices", "Rate limits", "Capabilities"


def _row(out: str, title: str, model_id: str) -> str:
    return row(section(out, title), model_id)


def test_tables_list_every_catalog_model_with_retirements(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert_fits(out)
    catalog = default_catalog()
    assert catalog.ids(), "the packaged catalog is not empty"
    for model_id in catalog.ids():
        spec = catalog.get(model_id)
        prices = _row(out, PRICES, model_id)  # the full id, on one line, in every table
        assert f"{spec.window('paygo'):,}" in prices
        assert f"{spec.output_cap('paygo'):,}" in prices and f"{spec.default_completion('paygo'):,}" in prices
        assert f"{spec.prices.input:.2f}" in prices and f"{spec.prices.output:.2f}" in prices
        limits = spec.rate_limits("paygo").as_dict()
        assert _row(out, LIMITS, model_id).split()[1:] == [f"{limits[n]:,}" for n in limits]
        status = _row(out, STATUS, model_id)
        if spec.retired_on is not None:
            assert spec.retired_on.isoformat() in status
            assert spec.replacement is not None and f"-> {spec.replacement}" in status
            marker = "RETIRED" if spec.is_retired() else "retiring"
            assert marker in status
        _row(out, CAPABILITIES, model_id)
    llama = _row(out, STATUS, "llama3.1-8b")
    assert "2026-05-27" in llama and "-> gpt-oss-120b" in llama
    assert section(out, LIMITS)[0].split() == ["MODEL", "RPM", "TPM"]
    assert "reasoning[low,medium,high]" in "\n".join(section(out, CAPABILITIES))
    # current models come before retired ones
    ids = [line.split()[0] for line in section(out, STATUS)[1:]]
    assert sorted(ids) == sorted(catalog.ids())
    retired = [default_catalog().get(i).is_retired() for i in ids]
    assert retired == sorted(retired)


def test_without_rich_the_tables_are_plain_text_and_name_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # import rich -> ImportError, as when it is not installed
    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.setattr(Printer, "_noted", False)
    assert main(["models", "--tier", "free"]) == 0
    captured = capsys.readouterr()
    assert "pip install 'cerebras-paygo[cli]'" in captured.err
    assert "14,400" in _row(captured.out, LIMITS, "gpt-oss-120b")
    for model_id in default_catalog().ids():
        assert "8,192" in _row(captured.out, PRICES, model_id)


def test_free_tier_shows_the_cap_and_daily_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--tier", "free"]) == 0
    out = capsys.readouterr().out
    assert_fits(out)  # six limit columns and a 30-character model id
    assert "free tier" in out
    prices = _row(out, PRICES, "gpt-oss-120b")
    assert "8,192" in prices and "131,072" not in prices
    assert "14,400" in _row(out, LIMITS, "gpt-oss-120b"), "requests per day of the free tier"
    assert section(out, LIMITS)[0].split() == ["MODEL", "RPM", "TPM", "RPH", "TPH", "RPD", "TPD"]
    assert _row(out, LIMITS, "qwen-3-235b-a22b-instruct-2507").split()[1:] == [
        "30",
        "60,000",
        "900",
        "1,000,000",
        "14,400",
        "1,000,000",
    ]


def test_tier_comes_from_the_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREBRAS_TIER", "free")
    assert main(["models"]) == 0
    assert "free tier" in capsys.readouterr().out


def test_json_parses_and_carries_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json", "--tier", "free"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tier"] == "free"
    by_id = {m["id"]: m for m in document["models"]}
    assert set(by_id) == set(default_catalog().ids())
    gpt = by_id["gpt-oss-120b"]
    assert gpt["context_window"] == 8192
    assert gpt["rate_limits"]["requests_per_day"] == 14400
    assert gpt["prices_usd_per_million"] == {"input": 0.35, "output": 0.75, "cached_input": None}
    assert gpt["capabilities"]["reasoning_efforts"] == ["low", "medium", "high"]
    llama = by_id["llama3.1-8b"]
    assert llama["retired_on"] == "2026-05-27" and llama["replacement"] == "gpt-oss-120b"
    assert llama["retired"] is (dt.date.today() >= dt.date(2026, 5, 27))
    assert "listed_by_server" not in gpt and "live" not in document


def test_live_marks_listed_and_unlisted_models(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    argv = ["models", "--live", "--api-key", emulator.api_key, "--base-url", emulator.base_url]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert_fits(out)
    assert _row(out, STATUS, "gpt-oss-120b").split()[-1] == "listed"
    for spec in map(default_catalog().get, default_catalog().ids()):
        if spec.is_retired():
            assert _row(out, STATUS, spec.id).endswith("NOT LISTED"), "the emulator serves no retired model"
    assert "Every model the server lists is in the catalog." in out
    # the key's fingerprint says which key was asked; the key itself is never shown
    assert key_fingerprint(emulator.api_key) in out.splitlines()[1]
    assert emulator.api_key not in out + captured.err


def test_live_names_server_models_the_catalog_lacks(
    capsys: pytest.CaptureFixture[str], emulator: Any, tmp_path: Any
) -> None:
    gpt = next(m for m in default_catalog().as_dict()["models"] if m["id"] == "gpt-oss-120b")
    override = tmp_path / "catalog.json"
    override.write_text(json.dumps({"models": [{**gpt, "id": "brand-new-model"}]}))
    emulator.configure(catalog_path=str(override))
    argv = ["models", "--live", "--api-key", emulator.api_key, "--base-url", emulator.base_url]

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "catalog lacks: brand-new-model" in out

    assert main([*argv, "--json"]) == 0
    text = capsys.readouterr().out
    document = json.loads(text)
    assert document["live"]["not_in_catalog"] == ["brand-new-model"]
    assert document["live"]["base_url"] == emulator.base_url
    assert document["live"]["key_fingerprint"] == key_fingerprint(emulator.api_key)
    assert "brand-new-model" in document["live"]["listed"] and emulator.api_key not in text
    listed = {m["id"]: m["listed_by_server"] for m in document["models"]}
    assert listed["gpt-oss-120b"] is True and listed["llama3.1-8b"] is False


def test_live_with_a_wrong_key_or_none(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert main(["models", "--live", "--api-key", "csk-wrong-key-123", "--base-url", emulator.base_url]) == 3
    captured = capsys.readouterr()
    assert "wrong key" in captured.err and "csk-wrong-key-123" not in captured.out + captured.err
    assert main(["models", "--live", "--base-url", emulator.base_url]) == 2
    assert "no API key" in capsys.readouterr().err
