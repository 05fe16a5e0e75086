"""The model catalog: packaged data, overrides, unknown and retired models."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from cerebras_paygo._catalog import CATALOG_ENV, Catalog, UnknownModelWarning
from cerebras_paygo.errors import ConfigurationError, ModelRetiredError


def test_packaged_models_and_tiers() -> None:
    catalog = Catalog.load()
    assert set(catalog.ids()) >= {"gpt-oss-120b", "zai-glm-4.7", "llama3.1-8b", "qwen-3-235b-a22b-instruct-2507"}
    gpt = catalog.get("gpt-oss-120b")
    assert gpt.window("paygo") == 131072
    assert gpt.window("free") == 8192
    assert gpt.output_cap("paygo") == 40960
    assert gpt.rate_limits("paygo").tokens_per_minute == 1_000_000
    assert gpt.rate_limits("paygo").requests_per_minute == 1000
    assert gpt.rate_limits("free").requests_per_minute == 30
    assert gpt.rate_limits("free").tokens_per_day == 1_000_000
    assert gpt.prices.cost(1_000_000, 1_000_000) == pytest.approx(0.35 + 0.75)
    assert gpt.capabilities.reasoning
    assert gpt.default_completion("paygo") < gpt.output_cap("paygo")
    assert catalog.get("zai-glm-4.7").rate_limits("paygo").tokens_per_minute == 500_000


def test_retired_models_raise_with_replacement() -> None:
    catalog = Catalog.load()
    llama = catalog.get("llama3.1-8b")
    assert llama.is_retired(dt.date(2026, 5, 27))
    assert not llama.is_retired(dt.date(2026, 5, 26))
    with pytest.raises(ModelRetiredError) as info:
        llama.check_available(dt.date(2026, 11, 24))
    assert info.value.replacement == "gpt-oss-120b"
    assert info.value.retired_on == "2026-05-27"
    assert "gpt-oss-120b" in str(info.value)
    catalog.get("gpt-oss-120b").check_available()


def test_unknown_model_warns_with_conservative_defaults() -> None:
    with pytest.warns(UnknownModelWarning, match="not in the cerebras-paygo catalog"):
        spec = Catalog.load().get("brand-new-model")
    assert not spec.known
    assert spec.window("paygo") == 8192
    assert spec.rate_limits("paygo").requests_per_minute == 30


def test_override_file_merges_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = {
        "models": [
            {"id": "gpt-oss-120b", "prices": {"input": 0.5}},
            {
                "id": "new-model",
                "context_window": {"paygo": 65536},
                "max_output": {"paygo": 8192},
                "default_max_completion_tokens": {"paygo": 1024},
                "prices": {"input": 1, "output": 2},
                "limits": {"paygo": {"requests_per_minute": 10}},
            },
        ]
    }
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(override))
    catalog = Catalog.load(path)
    assert catalog.get("gpt-oss-120b").prices.input == 0.5
    assert catalog.get("gpt-oss-120b").prices.output == 0.75
    new = catalog.get("new-model")
    assert new.window("paygo") == 65536
    assert new.window("free") == 8192  # the free tier's cap applies to every model
    monkeypatch.setenv(CATALOG_ENV, str(path))
    assert "new-model" in Catalog.load()


def test_bad_override_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"models": [{"id": "x", "prices": {}}]}')
    with pytest.raises(ConfigurationError, match="catalog entry 'x' is invalid"):
        Catalog.load(path)
    with pytest.raises(ConfigurationError, match="cannot read catalog override"):
        Catalog.load(tmp_path / "missing.json")
