"""The emulator keeps its own Cerebras facts, and they agree with the client's catalog.

The emulator stands in for the real server, so it must not read the client's catalog: a wrong
window in ``models.json`` would be copied and every end-to-end test would still pass. These tests
compare the two sources field by field (what the server enforces: windows after the tier cap,
output caps, the six limits per tier, prices, capabilities, retirements) and list every
disagreement; and check that the emulator neither imports the core nor follows its catalog.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from cerebras_paygo._catalog import TIERS, Catalog, default_catalog
from cerebras_paygo._ratelimit.limits import RateLimits
from cerebras_paygo.emulator import EmulatorConfig, ServerLimits
from cerebras_paygo.emulator.facts import LIMIT_WINDOWS, Facts, FactsError, default_facts
from cerebras_paygo.emulator.pytest_plugin import AsgiEmulatorHandle

EMULATOR_DIR = Path(__file__).resolve().parents[2] / "cerebras_paygo" / "emulator"
FACTS_FILE = EMULATOR_DIR / "data" / "cerebras_facts.json"
CAPABILITY_FIELDS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "json_schema",
    "json_mode",
    "reasoning",
    "reasoning_efforts",
    "default_reasoning_effort",
    "vision",
)


def disagreements(facts: Facts, catalog: Catalog) -> list[str]:
    """Every fact the emulator and the client's catalog state differently, one line each."""
    out: list[str] = []

    def differ(where: str, emulator: Any, client: Any) -> None:
        if emulator != client:
            out.append(f"{where}: emulator {emulator!r} != catalog {client!r}")

    client_caps = {t: v.get("context_cap") for t, v in catalog.as_dict().get("tiers", {}).items()}
    for tier in TIERS:
        differ(f"tier {tier} context cap", facts.tier_caps.get(tier), client_caps.get(tier))

    emulator_ids, client_ids = set(facts.ids()), set(catalog.ids())
    for model_id in sorted(client_ids - emulator_ids):
        out.append(f"{model_id}: in the catalog, not in the emulator's facts")
    for model_id in sorted(emulator_ids - client_ids):
        out.append(f"{model_id}: in the emulator's facts, not in the catalog")

    for model_id in sorted(emulator_ids & client_ids):
        ours = facts.get(model_id)
        assert ours is not None
        theirs = catalog.get(model_id, warn=False)
        differ(f"{model_id} owned_by", ours.owned_by, theirs.owned_by)
        differ(f"{model_id} aliases", sorted(ours.aliases), sorted(theirs.aliases))
        differ(f"{model_id} retired_on", ours.retired_on, theirs.retired_on)
        if ours.retired_on is None and theirs.retired_on is None:
            differ(f"{model_id} status", ours.status, theirs.status)
        # The server sends no replacement; compare one only where the facts source it.
        if ours.replacement is not None:
            differ(f"{model_id} replacement", ours.replacement, theirs.replacement)
        for day in _decisive_days(ours.retired_on, theirs.retired_on):
            differ(f"{model_id} retired on {day}", ours.is_retired(day), theirs.is_retired(day))
        for name in ("input", "output", "cached_input"):
            differ(f"{model_id} price {name}", getattr(ours.prices, name), getattr(theirs.prices, name))
        for name in CAPABILITY_FIELDS:
            mine, yours = getattr(ours.capabilities, name), getattr(theirs.capabilities, name)
            differ(f"{model_id} capability {name}", mine, yours)
        for tier in TIERS:
            differ(f"{model_id} {tier} context window", ours.window(tier), theirs.window(tier))
            differ(f"{model_id} {tier} max output", ours.output_cap(tier), theirs.output_cap(tier))
            for name in LIMIT_WINDOWS:
                mine, yours = getattr(ours.rate_limits(tier), name), getattr(theirs.rate_limits(tier), name)
                differ(f"{model_id} {tier} {name}", mine, yours)

    for model_id, day in sorted(facts.retired_earlier.items()):
        if model_id in client_ids:
            spec = catalog.get(model_id, warn=False)
            differ(f"{model_id} (retired earlier) retired on {day}", True, spec.is_retired(day))
    return out


def _decisive_days(*dates: dt.date | None) -> list[dt.date]:
    days = {dt.date(2026, 1, 1)}
    for day in dates:
        if day is not None:
            days.update({day - dt.timedelta(days=1), day})
    return sorted(days)


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """The packaged client catalog (no user override from the environment)."""
    monkeypatch.delenv("CEREBRAS_PAYGO_CATALOG", raising=False)
    return default_catalog()


def test_the_emulator_facts_agree_with_the_catalog(catalog: Catalog) -> None:
    problems = disagreements(default_facts(), catalog)
    assert not problems, "the emulator's facts and models.json disagree:\n" + "\n".join(problems)


def test_the_comparison_names_every_wrong_fact(catalog: Catalog) -> None:
    data = copy.deepcopy(dict(catalog.as_dict()))
    by_id = {m["id"]: m for m in data["models"]}
    by_id["gpt-oss-120b"]["context_window"]["paygo"] = 65536
    by_id["zai-glm-4.7"]["limits"]["free"]["tokens_per_minute"] = 60000
    by_id["zai-glm-4.7"]["limits"]["paygo"]["tokens_per_day"] = 10_000_000
    by_id["llama3.1-8b"]["retired_on"] = "2026-06-30"
    by_id["gpt-oss-120b"]["prices"]["output"] = 0.85
    data["models"] = [m for m in data["models"] if m["id"] != "qwen-3-235b-a22b-instruct-2507"]
    data["models"].append({**copy.deepcopy(by_id["gpt-oss-120b"]), "id": "gpt-oss-121b"})

    problems = "\n".join(disagreements(default_facts(), Catalog(data)))

    assert "gpt-oss-120b paygo context window: emulator 131072 != catalog 65536" in problems
    assert "zai-glm-4.7 free tokens_per_minute: emulator 100000 != catalog 60000" in problems
    assert "zai-glm-4.7 paygo tokens_per_day: emulator None != catalog 10000000" in problems
    assert "llama3.1-8b retired_on" in problems
    assert "llama3.1-8b retired on 2026-05-27: emulator True != catalog False" in problems
    assert "llama3.1-8b retired on 2026-06-29: emulator True != catalog False" in problems
    assert "gpt-oss-120b price output: emulator 0.75 != catalog 0.85" in problems
    assert "qwen-3-235b-a22b-instruct-2507: in the emulator's facts, not in the catalog" in problems
    assert "gpt-oss-121b: in the catalog, not in the emulator's facts" in problems
    assert problems.count("\n") + 1 == 9  # the seven wrong facts (the date thrice), nothing else


def test_every_fact_cites_its_source() -> None:
    raw = json.loads(FACTS_FILE.read_text("utf-8"))
    assert set(raw["_sources"]) >= {"FAQ", "D-RL", "D-OSS", "D-DEP"}
    needed = {
        "owned_by",
        "status",
        "context_window.paygo",
        "context_window.free",
        "max_output.paygo",
        "max_output.free",
        "prices",
        "limits.paygo",
        "limits.free",
        "capabilities",
        "aliases",
        "retired_on",
    }
    missing = {model_id: sorted(needed - set(entry["_sources"])) for model_id, entry in raw["models"].items()}
    assert not any(missing.values()), missing
    assert raw["tiers"]["free"]["_sources"]["context_cap"]
    assert raw["retired_earlier"]["_sources"]


def test_the_emulator_imports_nothing_from_the_core() -> None:
    offenders = []
    for path in sorted(EMULATOR_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] == "cerebras_paygo" and not name.startswith("cerebras_paygo.emulator"):
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert not offenders, offenders


def test_importing_the_emulator_loads_no_core_module() -> None:
    """Beyond what ``import cerebras_paygo`` (the parent package) loads itself."""

    def loaded(module: str) -> set[str]:
        code = f"import sys, {module}; print('\\n'.join(m for m in sys.modules if m.startswith('cerebras_paygo')))"
        result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        return set(result.stdout.split())

    extra = {m for m in loaded("cerebras_paygo.emulator") - loaded("cerebras_paygo") if ".emulator" not in m}
    assert not extra, extra


def test_the_emulator_does_not_follow_the_client_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A wrong window in the client's catalog (here via its override variable) changes nothing served."""
    data = copy.deepcopy(dict(default_catalog().as_dict()))
    for model in data["models"]:
        model["context_window"]["paygo"] = 4096
    wrong = tmp_path / "models.json"
    wrong.write_text(json.dumps(data))
    monkeypatch.setenv("CEREBRAS_PAYGO_CATALOG", str(wrong))
    handle = AsgiEmulatorHandle(EmulatorConfig(today=dt.date(2026, 5, 1)))

    async def ask(max_completion_tokens: int) -> httpx.Response:
        body = {
            "model": "gpt-oss-120b",
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": max_completion_tokens,
        }
        async with handle.async_client() as client:
            return await client.post("/chat/completions", json=body)

    import anyio

    assert anyio.run(ask, 8000).status_code == 200  # over the wrong 4,096 window, well inside 131,072
    refused = anyio.run(ask, 131072)
    assert refused.status_code == 400 and refused.json()["message"].endswith("while limit is 131072")


def test_a_catalog_shaped_override_merges_by_id(tmp_path: Path) -> None:
    """``--catalog FILE`` may be a ``models.json``-shaped file; client-only keys are dropped."""
    gpt = next(m for m in default_catalog().as_dict()["models"] if m["id"] == "gpt-oss-120b")
    override = tmp_path / "catalog.json"
    override.write_text(json.dumps({"models": [{**gpt, "id": "brand-new-model", "context_window": {"paygo": 50000}}]}))
    facts = Facts.load(override)
    new = facts.get("brand-new-model")
    assert new is not None and new.window("paygo") == 50000 and new.window("free") == 8192
    assert [s.id for s in facts.served(dt.date(2026, 12, 1))] == ["gpt-oss-120b", "zai-glm-4.7", "brand-new-model"]
    override.write_text(json.dumps({"models": {"gpt-oss-120b": {"context_window": {"paygo": "wide"}}}}))
    with pytest.raises(FactsError, match="context_window"):
        Facts.load(override)


def test_limits_take_the_emulator_type_a_dict_or_the_client_type() -> None:
    config = EmulatorConfig(
        limits={
            "*": ServerLimits(requests_per_minute=5),
            "free": {"tokens_per_minute": 1000},
            "paygo": RateLimits(tokens_per_day=7),  # duck-typed through as_dict(): no import of the core
        }
    )
    assert config.limits["*"].requests_per_minute == 5
    assert config.limits["free"].tokens_per_minute == 1000
    assert config.limits["paygo"] == ServerLimits(tokens_per_day=7)
    with pytest.raises(ValueError, match="tokens_per_fortnight"):
        EmulatorConfig(limits={"*": {"tokens_per_fortnight": 1}})
    with pytest.raises(ValueError, match="greater than 0"):
        EmulatorConfig(limits={"*": {"requests_per_minute": 0}})
