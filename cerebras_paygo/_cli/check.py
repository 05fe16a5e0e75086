"""``cerebras-paygo check``: settings, one tiny request, and what the server said about it."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

from cerebras_paygo._catalog import ModelSpec, Tier, UnknownModelWarning, default_catalog
from cerebras_paygo._cli.common import (
    EXIT_OK,
    Column,
    Failure,
    Printer,
    add_connection_arguments,
    describe_failure,
    failure_record,
    format_int,
    format_usd,
    key_source,
    non_negative_float,
    positive_float,
    print_json,
    quiet_library_logs,
    settings_from_args,
)
from cerebras_paygo._settings import Settings
from cerebras_paygo._tier import tier_from_headers
from cerebras_paygo._wire import ChatCompletionRequest, Message, RateLimitSnapshot
from cerebras_paygo.errors import CerebrasError

__all__ = ["PROBE_TOKENS", "add_arguments", "run"]

#: ``max_completion_tokens`` of the check's one request.
PROBE_TOKENS = 16
_PROMPT = "Reply with the single word OK."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="gpt-oss-120b", help="the model to try (default: gpt-oss-120b)")
    add_connection_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document (ok, settings, request, ...)")
    parser.add_argument(
        "--max-wait",
        type=non_negative_float,
        default=0.0,
        metavar="S",
        help="on 402, wait up to S seconds for credit to come back (auto-recharge); default 0: report at once",
    )
    parser.add_argument("--timeout", type=positive_float, default=30.0, metavar="S", help="HTTP timeout (default: 30)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the library's log messages")


#: Width of the label column of the check's ``label  value`` lines.
_LABEL_WIDTH = 10


class _Report:
    """What ``check`` found: printed as it goes (text), or gathered into one ``--json`` document."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.out = None if as_json else Printer()
        self.document: dict[str, Any] = {
            "ok": False,
            "exit_code": None,
            "settings": None,
            "model": None,
            "request": None,
            "rate_limits": None,
            "error": None,
        }

    def line(self, text: str = "", *, indent: int = 0) -> None:
        if self.out is not None:
            self.out.line(text, indent=indent)

    def fields(self, rows: list[tuple[str, str]]) -> None:
        if self.out is not None:
            self.out.fields(rows, label_width=_LABEL_WIDTH)

    def table(self, columns: list[Column], rows: list[list[str]], title: str) -> None:
        if self.out is not None:
            self.out.line(title)
            self.out.table(columns, rows, indent=2)

    def finish(self, exit_code: int) -> int:
        self.document["ok"] = exit_code == EXIT_OK
        self.document["exit_code"] = exit_code
        if self.as_json:
            print_json(self.document)
        else:
            sys.stdout.flush()
        return exit_code

    def fail(self, failure: Failure) -> int:
        self.document["error"] = failure_record(failure)
        if self.out is not None:
            self.out.line(f"FAILED: {failure.headline}")
            for detail in failure.details:
                self.out.line(detail, indent=2)
        return self.finish(failure.exit_code)


def _url_note(settings: Settings) -> str:
    if settings.base_url.startswith("https://"):
        return "https"
    return "plain http: allowed only because the host is loopback, as for the local emulator"


def _model_line(spec: ModelSpec, settings: Settings) -> str:
    if settings.tier == "auto":  # the window line after the request says the learned tier's
        return f"{spec.id} ({spec.status})" if spec.known else f"{spec.id} (not in the catalog: conservative defaults)"
    tier = settings.tier
    if not spec.known:
        return f"{spec.id} (not in the catalog: conservative defaults, {format_int(spec.window(tier))}-token window)"
    return (
        f"{spec.id} ({spec.status}): context window {format_int(spec.window(tier))} tokens, "
        f"max output {format_int(spec.output_cap(tier))}, on the {tier} tier"
    )


def _rate_limit_rows(snapshot: RateLimitSnapshot) -> list[list[str]]:
    rows = []
    for name, record in _rate_limit_records(snapshot).items():
        reset = record["reset_s"]
        rows.append(
            [
                name,
                format_int(record["limit"]),
                format_int(record["remaining"]),
                "-" if reset is None else f"{reset:,.1f} s",
            ]
        )
    return rows


def _rate_limit_records(snapshot: RateLimitSnapshot) -> dict[str, dict[str, float | None]]:
    """``{series: {"limit", "remaining", "reset_s"}}``, by window then kind."""
    series = sorted(
        set(snapshot.limit) | set(snapshot.remaining) | set(snapshot.reset), key=lambda s: s.split("-")[::-1]
    )
    return {
        name: {
            "limit": snapshot.limit.get(name),
            "remaining": snapshot.remaining.get(name),
            "reset_s": snapshot.reset.get(name),
        }
        for name in series
    }


def _model_record(spec: ModelSpec, tier: Tier) -> dict[str, Any]:
    return {
        "id": spec.id,
        "known": spec.known,
        "status": spec.status if spec.known else None,
        "tier": tier,
        "context_window": spec.window(tier),
        "max_output": spec.output_cap(tier),
        "default_max_completion_tokens": spec.default_completion(tier),
    }


def run(args: argparse.Namespace) -> int:
    from cerebras_paygo._client import CerebrasClient
    from cerebras_paygo._payment import PaymentPolicy

    report = _Report(args.json)
    doc = report.document
    report.line("cerebras-paygo check")
    report.line()
    report.line("Settings")
    settings: Settings | None = None
    try:
        settings = settings_from_args(args)
        settings.require_key()
    except CerebrasError as exc:
        return report.fail(describe_failure(exc, settings))
    spec = default_catalog().get(args.model, warn=False)
    doc["settings"] = {
        "key_source": key_source(args),
        "key_fingerprint": settings.fingerprint,
        "base_url": settings.base_url,
        "tier": settings.tier,
    }
    doc["model"] = _model_record(spec, "paygo" if settings.tier == "auto" else settings.tier)
    report.fields(
        [
            (
                "API key",
                f"set (from {key_source(args)}), fingerprint {settings.fingerprint} "
                "(sha256 prefix; the key itself is never printed)",
            ),
            ("base URL", f"{settings.base_url} ({_url_note(settings)})"),
            ("tier", f"{settings.tier}{' (learned from the answer below)' if settings.tier == 'auto' else ''}"),
            ("model", _model_line(spec, settings)),
        ]
    )
    try:
        spec.check_available()
    except CerebrasError as exc:
        return report.fail(describe_failure(exc, settings, args.model))

    report.line()
    report.line(f"Request (one chat completion, max_completion_tokens={PROBE_TOKENS})")
    request = ChatCompletionRequest(
        model=spec.id,
        messages=[Message(role="user", content=_PROMPT)],
        max_completion_tokens=PROBE_TOKENS,
        # the least thinking the model allows, so the few tokens go to the answer where possible
        reasoning_effort="low" if "low" in spec.capabilities.reasoning_efforts else None,
    )
    started = time.perf_counter()
    try:
        with (
            quiet_library_logs(args.verbose),
            warnings.catch_warnings(),
            CerebrasClient(
                api_key=settings.api_key,
                base_url=settings.base_url,
                tier=settings.tier,
                timeout=args.timeout,
                max_retries=1,
                payment_policy=PaymentPolicy(
                    max_wait=args.max_wait, probe_interval=max(min(args.max_wait / 10, 2.0), 0.25)
                ),
                integration="cerebras-paygo-cli",
            ) as client,
        ):
            warnings.simplefilter("ignore", UnknownModelWarning)  # the model line above says so
            result = client.chat(request)
    except CerebrasError as exc:
        elapsed = time.perf_counter() - started
        doc["request"] = {"max_completion_tokens": PROBE_TOKENS, "failed_after_s": round(elapsed, 3)}
        report.line(f"failed after {elapsed:.3f} s", indent=2)
        return report.fail(describe_failure(exc, settings, spec.id))
    latency = time.perf_counter() - started
    completion, info = result.completion, result.info
    choice = completion.choices[0] if completion.choices else None
    text = (choice.message.content or "").strip() if choice else ""
    finish = choice.finish_reason if choice else None
    server_time = completion.time_info.total_time if completion.time_info else None
    usage = completion.usage
    doc["request"] = {
        "max_completion_tokens": PROBE_TOKENS,
        "answer": text,
        "finish_reason": finish,
        "latency_s": round(latency, 3),
        "server_time_s": server_time,
        "waited_s": round(info.waited_s, 3),
        "prompt_tokens": usage.prompt_tokens if usage is not None else None,
        "completion_tokens": usage.completion_tokens if usage is not None else None,
        "cost_usd": info.cost_usd,
        "request_id": info.request_id,
    }
    rows: list[tuple[str, str]] = []
    if text:
        rows.append(("answer", f"{text[:80]!r} (finish_reason={finish})"))
    else:
        rows.append(("answer", f"(no text within {PROBE_TOKENS} tokens; finish_reason={finish}) - fine for a check"))
    timing = f"{latency:.3f} s"
    if server_time is not None:
        timing += f" (server time {server_time:.3f} s)"
    if info.waited_s:
        timing += f", {info.waited_s:.3f} s of it waiting before sending (limiter, payment circuit)"
    rows.append(("latency", timing))
    if usage is not None:
        rows.append(("tokens", f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion"))
    cost_note = "estimated from list prices" if info.tier == "paygo" else "free tier"
    rows.append(("cost", f"{format_usd(info.cost_usd)} ({cost_note})"))
    if info.request_id:
        rows.append(("request id", info.request_id))
    report.fields(rows)
    report.line()
    snapshot = info.rate_limits
    doc["rate_limits"] = {} if snapshot is None else _rate_limit_records(snapshot)
    if snapshot is None or snapshot.empty:
        report.line("Rate limits: the response carried no x-ratelimit-* headers")
    else:
        report.table(
            [
                Column("SERIES"),
                Column("LIMIT", right=True),
                Column("REMAINING", right=True),
                Column("RESETS IN", right=True),
            ],
            _rate_limit_rows(snapshot),
            title="Rate limits (the response's x-ratelimit-* headers)",
        )
    report.line()
    tier = client.tier
    shown = tier_from_headers(snapshot)
    doc["tier"] = {"configured": settings.tier, "in_force": tier, "headers_show": shown}
    doc["model"] = _model_record(spec, tier)
    if settings.tier == "auto":
        how = "learned from the rate-limit headers" if client.key_tier.known else "not shown by the answer: assumed"
        report.line(f"Tier: {tier} ({how})")
    elif shown is not None and shown != settings.tier:
        report.line(
            f"WARNING: tier={settings.tier!r} is configured but the rate-limit headers show the {shown} tier; "
            f"windows, limits and prices are {settings.tier}'s (set tier='auto' or tier={shown!r})"
        )
    report.line(
        f"Context window for the {tier} tier: {format_int(spec.window(tier))} tokens "
        f"(prompt + max_completion_tokens); cerebras-paygo sends max_completion_tokens="
        f"{format_int(spec.default_completion(tier))} when you set none."
    )
    report.line()
    report.line(f"OK: {settings.base_url} answered {spec.id} with key {settings.fingerprint}.")
    return report.finish(EXIT_OK)
