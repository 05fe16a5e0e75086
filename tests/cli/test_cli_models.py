"""``cerebras-paygo models``: the catalog table, ``--json`` and ``--live`` against the emulator."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from cerebras_paygo._catalog import default_catalog
from cerebras_paygo._cli.main import main


def _row(out: str, model_id: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"{model_id} "))


def test_table_lists_every_catalog_model_with_retirements(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    catalog = default_catalog()
    assert catalog.ids(), "the packaged catalog is not empty"
    for model_id in catalog.ids():
        spec = catalog.get(model_id)
        row = _row(out, model_id)
        assert f"{spec.window('paygo'):,}" in row
        assert f"{spec.prices.input:.2f}" in row and f"{spec.prices.output:.2f}" in row
        if spec.retired_on is not None:
            assert spec.retired_on.isoformat() in row
            assert spec.replacement is not None and f"-> {spec.replacement}" in row
            marker = "RETIRED" if spec.is_retired() else "retiring"
            assert marker in row
    llama = _row(out, "llama3.1-8b")
    assert "2026-05-27" in llama and "-> gpt-oss-120b" in llama
    assert "RPM" in out and "TPM" in out
    assert "reasoning[low,medium,high]" in _row(out, "gpt-oss-120b")
    # current models come before retired ones
    ids = [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in catalog]
    retired = [default_catalog().get(i).is_retired() for i in ids]
    assert retired == sorted(retired)


def test_free_tier_shows_the_cap_and_daily_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--tier", "free"]) == 0
    out = capsys.readouterr().out
    assert "free tier" in out
    row = _row(out, "gpt-oss-120b")
    assert "8,192" in row and "131,072" not in row
    assert "14,400" in row, "requests per day of the free tier"
    for column in ("RPH", "TPH", "RPD", "TPD"):
        assert column in out


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
    out = capsys.readouterr().out
    assert _row(out, "gpt-oss-120b").split()[-4] != "NOT"  # a listed model
    assert " listed " in _row(out, "gpt-oss-120b")
    for spec in map(default_catalog().get, default_catalog().ids()):
        if spec.is_retired():
            assert "NOT LISTED" in _row(out, spec.id), "the emulator serves no retired model"
    assert "Every model the server lists is in the catalog." in out
    assert emulator.api_key not in out


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
    document = json.loads(capsys.readouterr().out)
    assert document["live"]["not_in_catalog"] == ["brand-new-model"]
    listed = {m["id"]: m["listed_by_server"] for m in document["models"]}
    assert listed["gpt-oss-120b"] is True and listed["llama3.1-8b"] is False


def test_live_with_a_wrong_key_or_none(capsys: pytest.CaptureFixture[str], emulator: Any) -> None:
    assert main(["models", "--live", "--api-key", "csk-wrong-key-123", "--base-url", emulator.base_url]) == 3
    captured = capsys.readouterr()
    assert "wrong key" in captured.err and "csk-wrong-key-123" not in captured.out + captured.err
    assert main(["models", "--live", "--base-url", emulator.base_url]) == 2
    assert "no API key" in capsys.readouterr().err
