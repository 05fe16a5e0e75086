"""``cerebras-paygo status``: the fleet's shared state in Redis, for an operator.

Every limiter scope's buckets (level / capacity / waiters) and 429 pause left, each key
fingerprint's 402 circuit and outage, and its spend (budget ledger and meter per model). Keys are
only ever shown as fingerprints.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cerebras_paygo._cli.common import EXIT_CONFIG, EXIT_CONNECTION, EXIT_OK, Column, Printer, format_usd, print_json
from cerebras_paygo.errors import BackendUnavailableError, ConfigurationError

__all__ = ["add_arguments", "collect", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url", metavar="URL", help="the fleet's Redis (default: $CEREBRAS_PAYGO_REDIS_URL); redis+cluster://"
    )
    parser.add_argument("--prefix", default="cerebras_paygo", help="the Redis key prefix (default: cerebras_paygo)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else round(now - at, 3)


def collect(redis_url: str, prefix: str = "cerebras_paygo") -> dict[str, Any]:
    """What ``status`` prints, as plain data (raises ``BackendUnavailableError`` when Redis fails)."""
    from cerebras_paygo._shared import shared_state

    state = shared_state(redis_url=redis_url, on_backend_error="raise", prefix=prefix)
    now = time.monotonic()
    buckets = [
        {
            "base_url": row.scope.base_url,
            "key_fingerprint": row.scope.key_fingerprint,
            "model": row.scope.model,
            "limit": row.limit,
            "level": round(row.level, 1),
            "capacity": row.capacity,
            "waiters": row.waiters,
            "pause_left_s": round(row.paused_s, 3),
        }
        for row in state.limiter.stats()
    ]
    circuits = []
    for fp, view in sorted(state.org.circuits(now).items()):
        circuits.append(
            {
                "key_fingerprint": fp,
                "state": view.state,
                "outage_for_s": _age(now, view.outage_started),
                "next_probe_in_s": None if view.next_probe_at is None else round(max(view.next_probe_at - now, 0), 3),
                "probe_in_flight": view.probe_in_flight,
                "outages": view.outages,
                "closed_ago_s": _age(now, view.closed_at),
            }
        )
    spend = []
    for fp, ledger in sorted(state.org.ledgers().items()):
        spend.append(
            {
                "key_fingerprint": fp,
                "spent_usd": ledger.spent_usd,
                "in_flight_usd": ledger.in_flight_usd,
                "holds": ledger.holds,
                "models": {
                    model: {
                        "requests": t.requests,
                        "input_tokens": t.input_tokens,
                        "output_tokens": t.output_tokens,
                        "cached_tokens": t.cached_tokens,
                        "cost_usd": t.cost_usd,
                    }
                    for model, t in sorted(ledger.models.items())
                },
            }
        )
    return {"backend": state.backend, "buckets": buckets, "circuits": circuits, "spend": spend}


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def _render(data: dict[str, Any]) -> None:
    out = Printer()
    out.line(f"Shared state in {data['backend']}")
    out.line()
    # One small table per scope, key and model above it: every table fits 80 columns with the
    # full fingerprints and model ids.
    scopes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for b in data["buckets"]:
        scopes.setdefault((b["key_fingerprint"], b["model"], b["base_url"]), []).append(b)
    if not scopes:
        out.line("Rate-limit buckets: none")
    for (fingerprint, model, base_url), rows in scopes.items():
        out.line(f"Rate-limit buckets: key {fingerprint}, {model}, {base_url}")
        out.table(
            [
                Column("LIMIT"),
                Column("LEVEL", right=True),
                Column("CAPACITY", right=True),
                Column("WAITERS", right=True),
                Column("PAUSE LEFT", right=True),
            ],
            [
                [
                    b["limit"],
                    f"{b['level']:,.0f}",
                    f"{b['capacity']:,}",
                    str(b["waiters"]),
                    _seconds(b["pause_left_s"]) if b["pause_left_s"] else "-",
                ]
                for b in rows
            ],
            indent=2,
        )
    out.line()
    if data["circuits"]:
        out.table(
            [
                Column("KEY"),
                Column("STATE"),
                Column("OUTAGE FOR", right=True),
                Column("NEXT PROBE", right=True),
                Column("PROBING"),
                Column("OUTAGES", right=True),
            ],
            [
                [
                    c["key_fingerprint"],
                    c["state"],
                    _seconds(c["outage_for_s"]),
                    _seconds(c["next_probe_in_s"]),
                    "yes" if c["probe_in_flight"] else "no",
                    str(c["outages"]),
                ]
                for c in data["circuits"]
            ],
            title="402 payment circuits",
        )
    else:
        out.line("402 payment circuits: none")
    out.line()
    if not data["spend"]:
        out.line("Spend and budget: none recorded")
    for s in data["spend"]:
        out.line(
            f"Spend: key {s['key_fingerprint']}: budget spent {format_usd(s['spent_usd'])}, "
            f"in flight {format_usd(s['in_flight_usd'])} ({s['holds']} hold(s))"
        )
        if s["models"]:
            out.table(
                [
                    Column("MODEL"),
                    Column("REQUESTS", right=True),
                    Column("TOKENS IN", right=True),
                    Column("TOKENS OUT", right=True),
                    Column("COST", right=True),
                ],
                [
                    [
                        model,
                        f"{t['requests']:,}",
                        f"{t['input_tokens']:,}",
                        f"{t['output_tokens']:,}",
                        format_usd(t["cost_usd"]),
                    ]
                    for model, t in s["models"].items()
                ],
                indent=2,
            )


def run(args: argparse.Namespace) -> int:
    from cerebras_paygo._settings import redis_url_from_env

    url = args.redis_url or redis_url_from_env()
    if not url or url.startswith("memory://"):
        print(
            "cerebras-paygo status: no Redis: pass --redis-url redis://host:6379/0 or set CEREBRAS_PAYGO_REDIS_URL "
            "(without Redis, state lives inside each process and there is no fleet to show)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        data = collect(url, args.prefix)
    except ConfigurationError as exc:
        print(f"cerebras-paygo status: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    except BackendUnavailableError as exc:
        print(f"cerebras-paygo status: cannot read Redis: {exc.message}", file=sys.stderr)
        return EXIT_CONNECTION
    if args.json:
        print_json(data)
    else:
        _render(data)
    return EXIT_OK
