"""``cerebras-paygo``: the command line. One function per subcommand.

Subcommands register themselves in ``_SUBCOMMANDS`` as ``(name, add_parser)``; each ``add_parser``
adds its options and sets ``func`` (``args -> exit code``). ``emulate`` serves the local emulator,
``models`` prints the catalog, ``check`` tries a setup with one tiny request, ``status`` shows a
fleet's shared state in Redis; their bodies live in ``cerebras_paygo._cli``. More subcommands come
from the ``cerebras_paygo.commands`` entry point group: ``demo`` (the whole library on the
embedded emulator, package ``cerebras_paygo_demo``).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["build_parser", "main"]


# --- emulate ----------------------------------------------------------------------------------


def _limit_option(text: str) -> tuple[str, str, int]:
    """``[SCOPE:]NAME=VALUE`` -> ``(scope, name, value)``; scope ``*`` when omitted."""
    scope, _, assignment = text.rpartition(":") if ":" in text else ("*", "", text)
    name, sep, value = assignment.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected [SCOPE:]NAME=VALUE, not {text!r}")
    try:
        return scope or "*", name.strip().replace("-", "_"), int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"limit value must be an integer: {text!r}") from exc


def _key_option(text: str) -> tuple[str, str]:
    key, sep, org = text.partition("=")
    if not sep or not key or not org:
        raise argparse.ArgumentTypeError(f"expected KEY=ORG, not {text!r}")
    return key, org


def _org_option(text: str) -> dict[str, Any]:
    """``NAME:TIER[:BALANCE]``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[1] not in ("paygo", "free"):
        raise argparse.ArgumentTypeError(f"expected NAME:paygo|free[:BALANCE_USD], not {text!r}")
    org: dict[str, Any] = {"name": parts[0], "tier": parts[1]}
    if len(parts) == 3:
        org["balance_usd"] = float(parts[2])
    return org


def _recharge_option(text: str) -> dict[str, float]:
    """``THRESHOLD:AMOUNT[:DELAY]`` in USD and seconds."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"expected THRESHOLD:AMOUNT[:DELAY_S], not {text!r}")
    values = [float(p) for p in parts]
    return {"threshold_usd": values[0], "amount_usd": values[1], "delay_s": values[2] if len(values) == 3 else 0.0}


def _add_emulate(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulate",
        help="serve a local Cerebras API emulator",
        description=(
            "Serve a faithful local Cerebras API (rate limits, billing, tool calls, JSON output, reasoning, "
            "faults) on http://HOST:PORT/v1. Default keys: csk-emulator-paygo (paygo org, $100) and "
            "csk-emulator-free (free org). Controls: GET /_emulator/stats, POST /_emulator/reset, "
            "POST /_emulator/faults, POST /_emulator/config, POST /_emulator/orgs/ORG/balance."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port (default: 8080; 0: a free one, shown in the banner)"
    )
    parser.add_argument("--config", metavar="FILE", help="an EmulatorConfig as JSON; the options below override it")
    parser.add_argument("--seed", type=int, help="run seed for generated content and random faults")
    parser.add_argument("--catalog", metavar="FILE", help="catalog override file merged over the packaged one")
    parser.add_argument("--today", metavar="YYYY-MM-DD", help="date used to decide which models are retired")
    parser.add_argument("--no-done", action="store_true", help="end streams without 'data: [DONE]'")
    parser.add_argument(
        "--retry-after", action="store_true", help="send Retry-After on 429/503 (the real API does not)"
    )
    parser.add_argument(
        "--max-concurrency", type=int, metavar="N", help="429 queue_exceeded above N requests in flight"
    )
    parser.add_argument("--completion-tokens", type=int, metavar="N", help="natural length of text answers")
    parser.add_argument("--reasoning-tokens", type=int, metavar="N", help="reasoning length at medium effort")
    parser.add_argument("--no-prompt-cache", action="store_true", help="always report cached_tokens = 0")
    orgs = parser.add_argument_group("keys, orgs and billing")
    orgs.add_argument("--key", action="append", type=_key_option, metavar="KEY=ORG", help="add an API key")
    orgs.add_argument("--org", action="append", type=_org_option, metavar="NAME:TIER[:USD]", help="add an org")
    orgs.add_argument("--balance", type=float, metavar="USD", help="starting balance of the default paygo org")
    orgs.add_argument(
        "--auto-recharge",
        type=_recharge_option,
        metavar="THRESHOLD:AMOUNT[:DELAY]",
        help="auto-recharge of the default paygo org: credit AMOUNT, DELAY s after the balance falls to THRESHOLD",
    )
    orgs.add_argument(
        "--limit",
        action="append",
        type=_limit_option,
        metavar="[SCOPE:]NAME=VALUE",
        help=(
            "override a rate limit, e.g. tokens_per_minute=5000, free:requests_per_minute=5, "
            "paygo/gpt-oss-120b:tokens_per_day=100000 (SCOPE: *, tier, org, with optional /model)"
        ),
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--latency", type=float, metavar="S", help="delay before every response starts")
    faults.add_argument("--tokens-per-second", type=float, metavar="N", help="streaming pace")
    faults.add_argument("--slow-first-byte", type=float, metavar="S", help="extra delay before the first body byte")
    faults.add_argument("--error-rate", type=float, metavar="P", help="probability of a 5xx per request")
    faults.add_argument("--error-status", type=int, metavar="CODE", help="status of random errors (default 500)")
    faults.add_argument("--unavailable-next", type=int, metavar="N", help="the next N requests get 503")
    faults.add_argument("--drop-after-chunks", type=int, metavar="K", help="cut every stream after K events")
    faults.add_argument("--drop-next", type=int, metavar="N", help="only cut the next N streams")
    faults.add_argument(
        "--payment-required-for", type=float, metavar="S", help="402 window of S seconds ('inf': until a recharge)"
    )
    faults.add_argument("--rate-limit-next", type=int, metavar="N", help="the next N requests get 429")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--print-config", action="store_true", help="print the effective config as JSON and exit")
    parser.set_defaults(func=cmd_emulate)


def emulator_config_from_args(args: argparse.Namespace) -> Any:
    """The ``EmulatorConfig`` the ``emulate`` options describe."""
    from cerebras_paygo.emulator.config import PAYGO_ORG, EmulatorConfig

    config = EmulatorConfig.from_file(args.config) if args.config else EmulatorConfig()
    data = config.model_dump()
    simple = {
        "seed": args.seed,
        "catalog_path": args.catalog,
        "today": args.today,
        "max_concurrency": args.max_concurrency,
        "default_completion_tokens": args.completion_tokens,
        "reasoning_tokens": args.reasoning_tokens,
    }
    data.update({k: v for k, v in simple.items() if v is not None})
    if args.no_done:
        data["send_done"] = False
    if args.retry_after:
        data["retry_after"] = True
    if args.no_prompt_cache:
        data["prompt_cache"] = False
    for org in args.org or []:
        data["orgs"] = [o for o in data["orgs"] if o["name"] != org["name"]] + [org]
    for key, org in args.key or []:
        data["keys"][key] = org
    for org in data["orgs"]:
        if org["name"] == PAYGO_ORG:
            if args.balance is not None:
                org["balance_usd"] = args.balance
            if args.auto_recharge is not None:
                org["auto_recharge"] = args.auto_recharge
    for scope, name, value in args.limit or []:
        data["limits"].setdefault(scope, {})[name] = value
    fault_options = {
        "latency_s": args.latency,
        "tokens_per_second": args.tokens_per_second,
        "slow_first_byte_s": args.slow_first_byte,
        "error_rate": args.error_rate,
        "error_status": args.error_status,
        "unavailable_next": args.unavailable_next,
        "drop_after_chunks": args.drop_after_chunks,
        "drop_next": args.drop_next,
        "payment_required_s": args.payment_required_for,
        "rate_limit_next": args.rate_limit_next,
    }
    data["faults"].update({k: v for k, v in fault_options.items() if v is not None})
    return EmulatorConfig.model_validate(data)


def cmd_emulate(args: argparse.Namespace) -> int:
    try:
        from cerebras_paygo.emulator.server import listening_socket, run
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        print(
            f"the emulator needs the 'emulator' extra: pip install 'cerebras-paygo[emulator]' ({exc})", file=sys.stderr
        )
        return 2
    from pydantic import ValidationError

    try:
        config = emulator_config_from_args(args)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"cerebras-paygo emulate: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(config.model_dump(mode="json"), indent=2))
        return 0
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as exc:
        why = "the port is already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        print(
            f"cerebras-paygo emulate: cannot listen on {args.host}:{args.port}: {why} "
            "(pick another with --port, or --port 0 for a free one)",
            file=sys.stderr,
        )
        return 2
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    keys = ", ".join(f"{key} ({org})" for key, org in config.keys.items())

    def banner() -> None:  # once uvicorn serves: the URL answers from the moment it is printed
        print(f"Cerebras emulator on http://{host}:{port}/v1 - keys: {keys}", file=sys.stderr, flush=True)

    try:
        run(config, sock=sock, on_ready=banner, log_level=args.log_level)
    finally:
        sock.close()
    return 0


# --- models ---------------------------------------------------------------------------------


def _add_models(subparsers: Any) -> None:
    from cerebras_paygo._cli import models

    parser = subparsers.add_parser(
        "models",
        help="list the models: windows, output caps, prices, limits, capabilities, retirements",
        description=(
            "The model catalog for one tier: status (with the retirement date and replacement), context window, "
            "max output, default max_completion_tokens, USD per million input/output tokens, rate limits and "
            "capabilities. --live also asks GET /v1/models which models your key can use."
        ),
    )
    models.add_arguments(parser)
    parser.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from cerebras_paygo._cli import models

    return models.run(args)


# --- check ----------------------------------------------------------------------------------


def _add_check(subparsers: Any) -> None:
    from cerebras_paygo._cli import check
    from cerebras_paygo._cli.common import EXIT_CODES_HELP

    parser = subparsers.add_parser(
        "check",
        help="verify a setup end to end with one tiny request",
        description=(
            "Check the settings (key present, URL safe; the key is shown only as its fingerprint), send one "
            f"request with max_completion_tokens={check.PROBE_TOKENS}, and print the latency, the rate-limit "
            "headers, the cost and the tier's context window."
        ),
        epilog=EXIT_CODES_HELP,
    )
    check.add_arguments(parser)
    parser.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from cerebras_paygo._cli import check

    return check.run(args)


# --- status ---------------------------------------------------------------------------------


def _add_status(subparsers: Any) -> None:
    from cerebras_paygo._cli import status

    parser = subparsers.add_parser(
        "status",
        help="show the fleet's shared quota, 402 circuits and spend from Redis",
        description=(
            "Read the state every process on a Redis shares: each limiter scope's buckets (level, capacity, "
            "waiters) and 429 pause, each key fingerprint's 402 payment circuit and outage, and spend and budget."
        ),
    )
    status.add_arguments(parser)
    parser.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from cerebras_paygo._cli import status

    return status.run(args)


# --- the parser -------------------------------------------------------------------------------


def _add_bench(subparsers: Any) -> None:
    from cerebras_paygo._cli import bench

    bench.add_parser(subparsers)


_SUBCOMMANDS: list[tuple[str, Callable[[Any], None]]] = [
    ("emulate", _add_emulate),
    ("models", _add_models),
    ("check", _add_check),
    ("status", _add_status),
    ("bench", _add_bench),
]

#: Entry point group of plug-in subcommands: each entry point names a ``register(subparsers)``
#: callable that adds one sub-parser and sets its ``func``. ``demo`` (package
#: ``cerebras_paygo_demo``) comes this way, so the core never imports the LangChain it drives.
COMMANDS_GROUP = "cerebras_paygo.commands"


def _plugin_commands() -> list[tuple[str, Callable[[Any], None]]]:
    """The installed plug-in subcommands, by name; one that fails to load is reported and skipped."""
    from importlib.metadata import entry_points

    builtin = {name for name, _ in _SUBCOMMANDS}
    found: list[tuple[str, Callable[[Any], None]]] = []
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        if entry.name in builtin or entry.name in {name for name, _ in found}:
            continue
        try:
            register = entry.load()
        except Exception as exc:  # a broken plug-in must not take the other commands down with it
            print(f"cerebras-paygo: command {entry.name!r} ({entry.value}) failed to load: {exc!r}", file=sys.stderr)
            continue
        found.append((entry.name, register))
    return found


def build_parser() -> argparse.ArgumentParser:
    from cerebras_paygo._version import __version__

    parser = argparse.ArgumentParser(prog="cerebras-paygo", description="Cerebras PayGo tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, add in _SUBCOMMANDS:
        add(subparsers)
    for name, register in _plugin_commands():
        try:
            register(subparsers)
        except Exception as exc:  # as above: report the broken plug-in, keep the rest
            print(f"cerebras-paygo: command {name!r} failed to register: {exc!r}", file=sys.stderr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except BrokenPipeError:  # e.g. ``cerebras-paygo models --json | head``: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
