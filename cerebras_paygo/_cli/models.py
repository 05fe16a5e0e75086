"""``cerebras-paygo models``: the catalog for one tier, optionally checked against ``GET /v1/models``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

from cerebras_paygo._catalog import CATALOG_ENV, Catalog, ModelSpec, Tier, default_catalog
from cerebras_paygo._cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    Column,
    Printer,
    describe_failure,
    format_int,
    print_json,
    settings_from_args,
)
from cerebras_paygo._ratelimit.limits import LIMIT_WINDOWS
from cerebras_paygo._settings import Settings, env_tier
from cerebras_paygo.errors import CerebrasError

__all__ = ["add_arguments", "run"]

#: Short column names of the rate limits, in the order they are shown.
_LIMIT_COLUMNS = {
    "requests_per_minute": "RPM",
    "tokens_per_minute": "TPM",
    "requests_per_hour": "RPH",
    "tokens_per_hour": "TPH",
    "requests_per_day": "RPD",
    "tokens_per_day": "TPD",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tier",
        type=str.lower,
        choices=["paygo", "free"],
        help="show windows and limits for this tier (default: $CEREBRAS_TIER; paygo for auto or unset)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--live",
        action="store_true",
        help="also call GET /v1/models and mark which models the server lists (needs a key)",
    )
    group = parser.add_argument_group("--live connection (default: the CEREBRAS_* environment variables)")
    group.add_argument("--api-key", metavar="KEY", help="Cerebras API key (default: $CEREBRAS_API_KEY)")
    group.add_argument("--base-url", metavar="URL", help="API root (default: $CEREBRAS_BASE_URL, else the real API)")


def _tier(args: argparse.Namespace) -> Tier:
    tier = (args.tier or env_tier()).lower()
    return "free" if tier == "free" else "paygo"


def _ordered(catalog: Catalog, today: dt.date) -> list[ModelSpec]:
    specs = [catalog.get(model_id, warn=False) for model_id in catalog.ids()]
    return sorted(specs, key=lambda spec: spec.is_retired(today))  # stable: catalog order, retired last


def status_text(spec: ModelSpec, today: dt.date) -> str:
    """``production``, ``preview``, ``retired 2026-05-27 -> gpt-oss-120b`` or ``retiring ... -> ...``."""
    replacement = f" -> {spec.replacement}" if spec.replacement else ""
    if spec.is_retired(today):
        when = f" {spec.retired_on.isoformat()}" if spec.retired_on else ""
        return f"RETIRED{when}{replacement}"
    if spec.retired_on is not None:
        return f"{spec.status}, retiring {spec.retired_on.isoformat()}{replacement}"
    return spec.status


def capabilities_text(spec: ModelSpec) -> str:
    caps = spec.capabilities
    parts: list[str] = []
    if caps.tools:
        parts.append("tools(parallel)" if caps.parallel_tool_calls else "tools")
    if caps.json_schema:
        parts.append("json_schema")
    if caps.json_mode:
        parts.append("json_mode")
    if caps.reasoning:
        efforts = ",".join(caps.reasoning_efforts)
        parts.append(f"reasoning[{efforts}]" if efforts else "reasoning")
    if caps.vision:
        parts.append("vision")
    return " ".join(parts) or "-"


def model_record(spec: ModelSpec, tier: Tier, today: dt.date) -> dict[str, Any]:
    """One model for ``--json``."""
    caps = spec.capabilities
    return {
        "id": spec.id,
        "owned_by": spec.owned_by,
        "status": spec.status,
        "retired": spec.is_retired(today),
        "retired_on": spec.retired_on.isoformat() if spec.retired_on else None,
        "replacement": spec.replacement,
        "aliases": list(spec.aliases),
        "context_window": spec.window(tier),
        "max_output": spec.output_cap(tier),
        "default_max_completion_tokens": spec.default_completion(tier),
        "prices_usd_per_million": {
            "input": spec.prices.input,
            "output": spec.prices.output,
            "cached_input": spec.prices.cached_input,
        },
        "rate_limits": spec.rate_limits(tier).as_dict(),
        "capabilities": {
            "tools": caps.tools,
            "tool_choice": caps.tool_choice,
            "parallel_tool_calls": caps.parallel_tool_calls,
            "json_schema": caps.json_schema,
            "json_mode": caps.json_mode,
            "reasoning": caps.reasoning,
            "reasoning_efforts": list(caps.reasoning_efforts),
            "default_reasoning_effort": caps.default_reasoning_effort,
            "vision": caps.vision,
        },
    }


def _is_listed(spec: ModelSpec, listed: list[str]) -> bool:
    return spec.id in listed or any(alias in listed for alias in spec.aliases)


def _fetch_live(args: argparse.Namespace) -> tuple[Settings, list[str]]:
    """The model ids ``GET /v1/models`` lists (raises ``CerebrasError``)."""
    from cerebras_paygo._client import CerebrasClient

    settings = settings_from_args(args)
    with CerebrasClient(api_key=settings.api_key, base_url=settings.base_url, tier=settings.tier) as client:
        listed = client.list_models()
    return settings, [model.id for model in listed.data]


def run(args: argparse.Namespace) -> int:
    tier = _tier(args)
    today = dt.date.today()
    try:
        catalog = default_catalog()
    except CerebrasError as exc:
        print(f"cerebras-paygo models: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    specs = _ordered(catalog, today)
    listed: list[str] | None = None
    base_url = None
    settings: Settings | None = None
    if args.live:
        try:
            settings, listed = _fetch_live(args)
        except CerebrasError as exc:
            failure = describe_failure(exc, settings)
            print(f"cerebras-paygo models --live: {failure.headline}", file=sys.stderr)
            for detail in failure.details:
                print(f"  {detail}", file=sys.stderr)
            return failure.exit_code
        base_url = settings.base_url
    server_only = [] if listed is None else [m for m in listed if m not in catalog]

    if args.json:
        records = []
        for spec in specs:
            record = model_record(spec, tier, today)
            if listed is not None:
                record["listed_by_server"] = _is_listed(spec, listed)
            records.append(record)
        document: dict[str, Any] = {"tier": tier, "today": today.isoformat(), "models": records}
        if listed is not None:
            document["live"] = {
                "base_url": base_url,
                "key_fingerprint": settings.fingerprint if settings is not None else None,
                "listed": listed,
                "not_in_catalog": server_only,
            }
        print_json(document)
        return EXIT_OK

    out = Printer()
    source = f"packaged catalog + ${CATALOG_ENV}" if os.environ.get(CATALOG_ENV) else "packaged catalog"
    out.line(f"Cerebras models, {tier} tier ({source})")
    if listed is not None and settings is not None:
        out.line(f"GET {base_url}/models with key {settings.fingerprint}: {len(listed)} model(s) listed")
    out.line()

    def listed_text(spec: ModelSpec) -> str:
        return "listed" if listed is not None and _is_listed(spec, listed) else "NOT LISTED"

    # Four narrow tables rather than one wide one: each fits 80 columns with the full model ids.
    status_columns = [Column("MODEL"), Column("STATUS", wrap=True)]
    if listed is not None:
        status_columns.append(Column("SERVER"))
    out.table(
        status_columns,
        [[spec.id, status_text(spec, today), *([listed_text(spec)] if listed is not None else [])] for spec in specs],
        title="Models",
    )
    out.line()
    out.table(
        [
            Column("MODEL"),
            Column("WINDOW", right=True),
            Column("MAX OUT", right=True),
            Column("DEFAULT OUT", right=True),
            Column("$/M IN", right=True),
            Column("$/M OUT", right=True),
        ],
        [
            [
                spec.id,
                format_int(spec.window(tier)),
                format_int(spec.output_cap(tier)),
                format_int(spec.default_completion(tier)),
                f"{spec.prices.input:.2f}",
                f"{spec.prices.output:.2f}",
            ]
            for spec in specs
        ],
        title="Windows and prices (USD per million tokens)",
    )
    out.line(
        "WINDOW: prompt + completion tokens; MAX OUT: the most max_completion_tokens may ask; DEFAULT OUT: what "
        "cerebras-paygo sends when you set none (the whole of it is reserved against TPM)."
    )
    out.line()
    limit_names = [name for name in LIMIT_WINDOWS if any(name in spec.rate_limits(tier).as_dict() for spec in specs)]
    out.table(
        [Column("MODEL"), *(Column(_LIMIT_COLUMNS[name], right=True) for name in limit_names)],
        [
            [spec.id, *(format_int(spec.rate_limits(tier).as_dict().get(name)) for name in limit_names)]
            for spec in specs
        ],
        title=f"Rate limits, {tier} tier",
    )
    out.line("RPM: requests per minute, TPM: tokens per minute; H: per hour, D: per day.")
    out.line()
    out.table(
        [Column("MODEL"), Column("CAPABILITIES", wrap=True)],
        [[spec.id, capabilities_text(spec)] for spec in specs],
        title="Capabilities",
    )
    if listed is not None:
        out.line()
        if server_only:
            out.line(f"The server lists model(s) the catalog lacks: {', '.join(server_only)}")
            out.line(
                f"(they work with conservative defaults; describe them in a file named by ${CATALOG_ENV})", indent=2
            )
        else:
            out.line("Every model the server lists is in the catalog.")
    return EXIT_OK
