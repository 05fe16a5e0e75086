"""``cerebras-paygo check``: settings, one tiny request, and what the server said about it."""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from cerebras_paygo._catalog import ModelSpec, UnknownModelWarning, default_catalog
from cerebras_paygo._cli.common import (
    EXIT_OK,
    Failure,
    add_connection_arguments,
    describe_failure,
    format_int,
    format_usd,
    key_source,
    non_negative_float,
    positive_float,
    quiet_library_logs,
    render_table,
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
    parser.add_argument(
        "--max-wait",
        type=non_negative_float,
        default=0.0,
        metavar="S",
        help="on 402, wait up to S seconds for credit to come back (auto-recharge); default 0: report at once",
    )
    parser.add_argument("--timeout", type=positive_float, default=30.0, metavar="S", help="HTTP timeout (default: 30)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the library's log messages")


def _print_failure(failure: Failure) -> int:
    print(f"FAILED: {failure.headline}")
    for detail in failure.details:
        print(f"  {detail}")
    return failure.exit_code


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
    series = sorted(
        set(snapshot.limit) | set(snapshot.remaining) | set(snapshot.reset), key=lambda s: s.split("-")[::-1]
    )
    rows = []
    for name in series:
        reset = snapshot.reset.get(name)
        rows.append(
            [
                name,
                format_int(snapshot.limit.get(name)),
                format_int(snapshot.remaining.get(name)),
                "-" if reset is None else f"{reset:,.1f} s",
            ]
        )
    return rows


def run(args: argparse.Namespace) -> int:
    from cerebras_paygo._client import CerebrasClient
    from cerebras_paygo._payment import PaymentPolicy

    print("cerebras-paygo check")
    print()
    print("Settings")
    settings: Settings | None = None
    try:
        settings = settings_from_args(args)
        settings.require_key()
    except CerebrasError as exc:
        return _print_failure(describe_failure(exc, settings))
    print(
        f"  API key    set (from {key_source(args)}), fingerprint {settings.fingerprint} "
        "(sha256 prefix; the key itself is never printed)"
    )
    print(f"  base URL   {settings.base_url} ({_url_note(settings)})")
    print(f"  tier       {settings.tier}{' (learned from the answer below)' if settings.tier == 'auto' else ''}")
    spec = default_catalog().get(args.model, warn=False)
    print(f"  model      {_model_line(spec, settings)}")
    try:
        spec.check_available()
    except CerebrasError as exc:
        return _print_failure(describe_failure(exc, settings, args.model))

    print()
    print(f"Request (one chat completion, max_completion_tokens={PROBE_TOKENS})")
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
        print(f"  failed after {time.perf_counter() - started:.3f} s")
        return _print_failure(describe_failure(exc, settings, spec.id))
    latency = time.perf_counter() - started
    completion, info = result.completion, result.info
    choice = completion.choices[0] if completion.choices else None
    text = (choice.message.content or "").strip() if choice else ""
    finish = choice.finish_reason if choice else None
    if text:
        print(f"  answer     {text[:80]!r} (finish_reason={finish})")
    else:
        print(f"  answer     (no text within {PROBE_TOKENS} tokens; finish_reason={finish}) - fine for a check")
    server_time = completion.time_info.total_time if completion.time_info else None
    timing = f"  latency    {latency:.3f} s"
    if server_time is not None:
        timing += f" (server time {server_time:.3f} s)"
    if info.waited_s:
        timing += f", {info.waited_s:.3f} s of it waiting before sending (limiter, payment circuit)"
    print(timing)
    usage = completion.usage
    if usage is not None:
        print(f"  tokens     {usage.prompt_tokens} prompt + {usage.completion_tokens} completion")
    cost_note = "estimated from list prices" if info.tier == "paygo" else "free tier"
    print(f"  cost       {format_usd(info.cost_usd)} ({cost_note})")
    if info.request_id:
        print(f"  request id {info.request_id}")
    print()
    snapshot = info.rate_limits
    if snapshot is None or snapshot.empty:
        print("Rate limits: the response carried no x-ratelimit-* headers")
    else:
        print("Rate limits (the response's x-ratelimit-* headers)")
        print(
            render_table(
                ["SERIES", "LIMIT", "REMAINING", "RESETS IN"],
                _rate_limit_rows(snapshot),
                indent="  ",
                right={"LIMIT", "REMAINING", "RESETS IN"},
            )
        )
    print()
    tier = client.tier
    shown = tier_from_headers(snapshot)
    if settings.tier == "auto":
        how = "learned from the rate-limit headers" if client.key_tier.known else "not shown by the answer: assumed"
        print(f"Tier: {tier} ({how})")
    elif shown is not None and shown != settings.tier:
        print(
            f"WARNING: tier={settings.tier!r} is configured but the rate-limit headers show the {shown} tier; "
            f"windows, limits and prices are {settings.tier}'s (set tier='auto' or tier={shown!r})"
        )
    print(
        f"Context window for the {tier} tier: {format_int(spec.window(tier))} tokens "
        f"(prompt + max_completion_tokens); cerebras-paygo sends max_completion_tokens="
        f"{format_int(spec.default_completion(tier))} when you set none."
    )
    print()
    print(f"OK: {settings.base_url} answered {spec.id} with key {settings.fingerprint}.")
    sys.stdout.flush()
    return EXIT_OK
