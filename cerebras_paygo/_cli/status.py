"""``cerebras-paygo status``: the fleet's shared state in Redis, for an operator.

Every limiter scope's buckets (level / capacity / waiters) and 429 pause left, each key
fingerprint's 402 circuit and outage, and its spend (budget ledger and meter per model). Keys are
only ever shown as fingerprints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from cerebras_paygo._cli.common import EXIT_CONFIG, EXIT_CONNECTION, EXIT_OK, format_usd
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


def _render(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or captured: never truncate a fingerprint
        console = Console(width=200)
    console.print(f"[bold]shared state[/bold] in {data['backend']}")
    buckets = Table(title="rate-limit buckets", title_justify="left")
    for name in ("key", "model", "limit", "level", "capacity", "waiters", "pause left"):
        buckets.add_column(name, justify="right" if name in ("level", "capacity", "waiters", "pause left") else "left")
    for b in data["buckets"]:
        buckets.add_row(
            b["key_fingerprint"],
            b["model"],
            b["limit"],
            f"{b['level']:,.0f}",
            f"{b['capacity']:,}",
            str(b["waiters"]),
            f"{b['pause_left_s']:.1f} s" if b["pause_left_s"] else "-",
        )
    console.print(buckets if data["buckets"] else "no rate-limit buckets")
    circuits = Table(title="402 payment circuits", title_justify="left")
    for name in ("key", "state", "outage for", "next probe in", "probe in flight", "outages"):
        circuits.add_column(name)
    for c in data["circuits"]:
        circuits.add_row(
            c["key_fingerprint"],
            c["state"],
            "-" if c["outage_for_s"] is None else f"{c['outage_for_s']:.1f} s",
            "-" if c["next_probe_in_s"] is None else f"{c['next_probe_in_s']:.1f} s",
            "yes" if c["probe_in_flight"] else "no",
            str(c["outages"]),
        )
    console.print(circuits if data["circuits"] else "no payment circuits")
    spend = Table(title="spend and budget", title_justify="left")
    for name in ("key", "model", "requests", "tokens in/out", "cost", "budget spent", "in flight"):
        spend.add_column(name, justify="left" if name in ("key", "model") else "right")
    for s in data["spend"]:
        models = s["models"] or {"-": None}
        for i, (model, t) in enumerate(models.items()):
            spend.add_row(
                s["key_fingerprint"] if i == 0 else "",
                model,
                "-" if t is None else f"{t['requests']:,}",
                "-" if t is None else f"{t['input_tokens']:,} / {t['output_tokens']:,}",
                "-" if t is None else format_usd(t["cost_usd"]),
                format_usd(s["spent_usd"]) if i == 0 else "",
                format_usd(s["in_flight_usd"]) if i == 0 else "",
            )
    console.print(spend if data["spend"] else "no spend recorded")


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
        print(json.dumps(data, indent=2))
    else:
        _render(data)
    return EXIT_OK
