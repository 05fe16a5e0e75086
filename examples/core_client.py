"""The cerebras-paygo core client: a sync call, async calls, a stream, and what happens on 402.

Run it as is::

    python examples/core_client.py

With ``CEREBRAS_API_KEY`` set it talks to the real API (``CEREBRAS_BASE_URL`` and ``CEREBRAS_TIER``
are read too; a few short requests cost a fraction of a cent). Without it, it starts the embedded
emulator (``pip install "cerebras-paygo[emulator]"``), which can also stage a 402 outage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cerebras_paygo import PaymentRequiredError
from cerebras_paygo._billing import shared_spend_meter
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._payment import PaymentPolicy
from cerebras_paygo._wire import ChatCompletionRequest, Message

MODEL = os.environ.get("CEREBRAS_MODEL", "gpt-oss-120b")
HOOK_CALLS: list[dict[str, Any]] = []


def on_payment_required(info: dict[str, Any]) -> None:
    """Called once per outage (not once per waiting caller), e.g. to page someone or top up by API."""
    HOOK_CALLS.append(info)
    print(f"      hook: 402 on key {info['key_fingerprint']} for {info['model']}")


#: One policy for the key, used by every client below: on 402 wait up to 30 s for credit to come
#: back (auto-recharge), probing every 0.5 s, and call the hook once per outage.
POLICY = PaymentPolicy(max_wait=30.0, probe_interval=0.5, on_payment_required=on_payment_required)


@contextmanager
def connection() -> Iterator[tuple[dict[str, Any], Any]]:
    """``(client options, emulator or None)``: the real API when CEREBRAS_API_KEY is set, else the emulator."""
    if os.environ.get("CEREBRAS_API_KEY"):
        print(f"Using {os.environ.get('CEREBRAS_BASE_URL') or 'https://api.cerebras.ai/v1'} (CEREBRAS_API_KEY is set)")
        yield {}, None
        return
    from cerebras_paygo.emulator import FREE_ORG, PAYGO_ORG, AutoRecharge, EmulatorConfig, EmulatorServer, OrgConfig

    # The paygo org has auto-recharge: when a 402 window opens, $20 lands one second later.
    orgs = [
        OrgConfig(name=PAYGO_ORG, balance_usd=100.0, auto_recharge=AutoRecharge(amount_usd=20.0, delay_s=1.0)),
        OrgConfig(name=FREE_ORG, tier="free", balance_usd=0.0),
    ]
    with EmulatorServer(EmulatorConfig(orgs=orgs)) as server:
        print(f"CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator at {server.base_url}")
        yield {"api_key": server.api_key, "base_url": server.base_url}, server


def ask(text: str, *, max_tokens: int = 256) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model=MODEL, messages=[Message(role="user", content=text)], max_completion_tokens=max_tokens
    )


def sync_call(options: dict[str, Any]) -> None:
    print("\n1. A sync call: client.chat(request)")
    with CerebrasClient(payment_policy=POLICY, **options) as client:
        result = client.chat(ask("Say hi in Portuguese."))
    message = result.completion.choices[0].message
    usage = result.completion.usage
    print(f"   answer: {message.content!r}")
    if usage is not None:
        print(f"   tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion")
    print(f"   cost:   ${result.info.cost_usd:.7f} (list prices)")
    limits = result.info.rate_limits
    if limits is not None and "tokens-minute" in limits.remaining:
        remaining, limit = limits.remaining["tokens-minute"], limits.limit.get("tokens-minute")
        print(f"   tokens left this minute (x-ratelimit headers): {remaining:,} of {limit:,}")


async def async_calls(options: dict[str, Any]) -> None:
    print("\n2. Five async calls at once: await asyncio.gather(*(client.achat(...)))")
    topics = ["token buckets", "prompt caching", "exponential backoff", "context windows", "auto-recharge"]
    async with CerebrasClient(payment_policy=POLICY, **options) as client:
        results = await asyncio.gather(*(client.achat(ask(f"Explain {t} in one sentence.")) for t in topics))
    for topic, result in zip(topics, results, strict=True):
        text = " ".join((result.completion.choices[0].message.content or "").split())
        print(f"   {topic}: {text[:90]}{'...' if len(text) > 90 else ''}")
    totals = shared_spend_meter().totals()
    print(f"   spend so far in this process: {totals.requests} requests, ${totals.cost_usd:.7f}")


def streaming(options: dict[str, Any]) -> None:
    print("\n3. A stream: chunks as they arrive, then its CallInfo")
    print("   ", end="", flush=True)
    with (
        CerebrasClient(payment_policy=POLICY, **options) as client,
        client.stream(ask("One sentence on speed.")) as stream,
    ):
        for chunk in stream:
            for choice in chunk.choices:
                print(choice.delta.content or "", end="", flush=True)
        info = stream.info
        print(f"\n   (cost ${info.cost_usd:.7f}, {info.attempts} attempt(s), waited {info.waited_s:.2f} s)")


def payment_policy(options: dict[str, Any], emulator: Any) -> None:
    print("\n4. PaymentPolicy: what a 402 (no credit) does")
    print("   PaymentPolicy(max_wait=30.0, probe_interval=0.5, on_payment_required=on_payment_required)")
    if emulator is None:
        print("   (a 402 outage is staged only on the emulator; with your key the policy above simply applies)")
        return

    print("   a. The org runs out of credit; auto-recharge lands 1 s later. The call waits for it:")
    emulator.state.set_faults(payment_required_s=math.inf)
    with CerebrasClient(payment_policy=POLICY, **options) as client:
        result = client.chat(ask("Are you back?", max_tokens=64))
    info = result.info
    print(f"      answered after waiting {info.waited_s:.1f} s, {info.attempts} attempts;")
    print(f"      the hook ran {len(HOOK_CALLS)} time(s), with {sorted(HOOK_CALLS[0]) if HOOK_CALLS else []} (no key)")

    print("   b. No auto-recharge this time; max_wait=0 with a fallback key (here the free tier's):")
    emulator.state.update_config(orgs=[o.model_copy(update={"auto_recharge": None}) for o in emulator.config.orgs])
    emulator.state.set_faults(payment_required_s=math.inf)
    fallback = PaymentPolicy(max_wait=0.0, fallback_api_key=emulator.free_api_key, fallback_tier="free")
    with CerebrasClient(payment_policy=fallback, **options) as client:
        result = client.chat(ask("Still there?", max_tokens=64))
    print(f"      answered on the fallback key: used_fallback_key={result.info.used_fallback_key}")

    print("   c. max_wait=0 and no fallback: PaymentRequiredError at once")
    with CerebrasClient(payment_policy=PaymentPolicy(max_wait=0.0), **options) as client:
        try:
            client.chat(ask("Hello?", max_tokens=64))
        except PaymentRequiredError as exc:
            print(f"      PaymentRequiredError: {exc.message[:150]}...")
    emulator.state.set_balance(emulator.config.orgs[0].name, 100.0)  # credit is back


def main() -> None:
    logging.basicConfig(format="      log: %(name)s: %(message)s")  # the library's warnings, e.g. on 402
    with connection() as (options, emulator):
        sync_call(options)
        asyncio.run(async_calls(options))
        streaming(options)
        payment_policy(options, emulator)
    print("\nDone.")


if __name__ == "__main__":
    main()
