"""``cerebras-paygo demo``: one command that shows what the library does, on the embedded emulator.

It starts the emulator on a free loopback port with a small tokens-per-minute quota, answers a
batch of questions through a LangChain chain (``prompt | ChatCerebras | StrOutputParser``, via
``abatch``) that books more tokens than the quota holds, and shows that the shared limiter kept
the server from answering a single 429. Then one answer streams token by token, and a prompt over
the free tier's window fails before anything is sent. On the emulator, the org's credit then runs
out (402) while a few questions are in flight and auto-recharge tops it up a second later: the calls
wait it out behind one probe at a time. With LlamaIndex installed, a query engine answers over the
same documents through the same key and limiter. ``--no-emulator`` does the same against the real
API named by the ``CEREBRAS_*`` environment variables (without the staged outage).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

from cerebras_paygo._billing import shared_spend_meter
from cerebras_paygo._catalog import ModelSpec, default_catalog
from cerebras_paygo._cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    Column,
    Printer,
    add_connection_arguments,
    describe_failure,
    format_int,
    format_usd,
    non_negative_float,
    positive_int,
    quiet_library_logs,
    settings_from_args,
)
from cerebras_paygo._payment import PaymentPolicy
from cerebras_paygo._settings import Settings
from cerebras_paygo.errors import CerebrasError, ContextWindowExceededError

__all__ = ["CARDS", "add_arguments", "run"]

DEFAULT_REQUESTS = 40
DEFAULT_TPM = 5000
#: ``max_completion_tokens`` per answer: enough for the emulator's one-sentence answers, and for a
#: real reasoning model's short answers (reasoning counts against it).
EMULATOR_MAX_TOKENS = 96
#: The staged 402 outage: auto-recharge lands this long after the credit runs out.
RECHARGE_DELAY_S = 1.0
REAL_API_MAX_TOKENS = 384

PROMPT = "Answer in one line from the context.\nContext: {context}\nQuestion: {question}"

#: (question, context) cards: a tiny RAG set. The emulator answers from the context, as a model would.
CARDS: tuple[tuple[str, str], ...] = (
    (
        "What does HTTP 402 mean on Cerebras?",
        "Cerebras answers 402 Payment Required when the Team org has no credit balance and no subscription.",
    ),
    ("How does auto-recharge help?", "Auto-recharge tops the credit balance up when it falls below a threshold."),
    (
        "What do Cerebras rate limits count?",
        "Cerebras counts requests and tokens per minute, hour and day; whichever limit trips first applies.",
    ),
    (
        "How much of max_completion_tokens is reserved?",
        "The whole max_completion_tokens of a request is reserved against the tokens per minute when it starts.",
    ),
    (
        "What happens to unused completion tokens?",
        "Completion tokens that a short answer did not use are given back to the minute's quota.",
    ),
    ("How large is the free tier context window?", "The free tier caps the context window at 8,192 tokens."),
    (
        "What is the context window of gpt-oss-120b on PayGo?",
        "On PayGo, gpt-oss-120b has a context window of 131,072 tokens.",
    ),
    ("What replaced llama3.1-8b?", "The llama3.1-8b model was retired in May 2026 and gpt-oss-120b replaced it."),
    (
        "Which header shows the tokens left this minute?",
        "The x-ratelimit-remaining-tokens-minute header shows the tokens left in the current minute.",
    ),
    ("How is PayGo billed?", "PayGo bills prepaid credit per token, at list prices per million tokens."),
    (
        "Why share one limiter per process?",
        "One shared limiter per key and model keeps every thread and event loop inside the same quota.",
    ),
    ("What is a token bucket?", "A token bucket refills at a steady rate and lets a burst spend what accumulated."),
    ("What does a 429 response mean?", "A 429 response means a request or token quota tripped and was refused."),
    ("How are server errors retried?", "Server errors are retried with exponential backoff and jitter."),
    ("What does cached_tokens report?", "The cached_tokens field reports prompt tokens served from the prefix cache."),
    ("Are reasoning tokens billed?", "Reasoning tokens are part of the completion tokens and are billed as output."),
    (
        "What does the payment circuit do?",
        "While an org has no credit, the payment circuit lets one probe request through at a time.",
    ),
    ("Where do you add credit?", "Credit is added in the Cerebras Console under Billing, Pay as you go."),
    (
        "What does the local emulator do?",
        "The local emulator serves a Cerebras-like API with rate limits, billing and faults for tests.",
    ),
    (
        "What does max_completion_tokens limit?",
        "The max_completion_tokens field limits the generated tokens, reasoning included.",
    ),
)

#: Asked of the LlamaIndex query engine, which retrieves from all the cards' contexts.
LLAMA_INDEX_QUESTIONS = ("How does auto-recharge help?", "How large is the free tier context window?")

_STREAM_CARD = (
    "Why does the demo never see a 429?",
    "The shared limiter books every request's tokens before sending, so the quota is never overrun.",
)
#: Far over the free tier's 8,192-token window, whatever the estimator has learned.
_OVER_CAP_PROMPT = "Summarize this: " + "lorem ipsum dolor sit amet " * 9000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--requests", type=positive_int, default=DEFAULT_REQUESTS, metavar="N", help="questions to answer (default: 40)"
    )
    parser.add_argument(
        "--tpm",
        type=positive_int,
        metavar="N",
        help=(
            f"tokens-per-minute quota: the emulator enforces it and the limiter is told it "
            f"(default: {DEFAULT_TPM} on the emulator; with --no-emulator, your org's limits)"
        ),
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=16, metavar="N", help="requests in flight at once (default: 16)"
    )
    parser.add_argument("--model", default="gpt-oss-120b", help="model (default: gpt-oss-120b)")
    parser.add_argument(
        "--max-tokens",
        type=positive_int,
        metavar="N",
        help=(
            f"max_completion_tokens per answer (default: {EMULATOR_MAX_TOKENS}; "
            f"{REAL_API_MAX_TOKENS} on the real API, where reasoning needs room)"
        ),
    )
    parser.add_argument(
        "--no-emulator",
        action="store_true",
        help="use the real API from CEREBRAS_API_KEY / CEREBRAS_BASE_URL / CEREBRAS_TIER (costs a little)",
    )
    parser.add_argument(
        "--max-spend",
        type=non_negative_float,
        default=0.10,
        metavar="USD",
        help="refuse requests that could take the demo's spend past this (default: 0.10)",
    )
    parser.add_argument(
        "--core", action="store_true", help="use the core CerebrasClient instead of LangChain (no langchain-core)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the library's log messages")
    add_connection_arguments(parser)


# --- what both backends report ------------------------------------------------------------------


@dataclass
class Tally:
    """What the batch saw, request by request."""

    done: int = 0
    answered: int = 0
    failed: int = 0
    waited_s: float = 0.0
    waited_requests: int = 0
    longest_wait_s: float = 0.0
    extra_attempts: int = 0
    booked_tokens: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def success(self, waited_s: float, attempts: int, booked: int) -> None:
        self.done += 1
        self.answered += 1
        self.booked_tokens += booked
        self.waited_s += waited_s
        if waited_s > 0.001:
            self.waited_requests += 1
        self.longest_wait_s = max(self.longest_wait_s, waited_s)
        self.extra_attempts += max(attempts - 1, 0)

    def failure(self, error: BaseException) -> None:
        self.done += 1
        self.failed += 1
        self.errors[type(error).__name__] += 1


class Backend(Protocol):
    label: str

    async def answer_all(
        self, cards: Sequence[tuple[str, str]], tally: Tally, on_done: Callable[[], None]
    ) -> list[str | BaseException]: ...

    def stream(self, card: tuple[str, str]) -> AsyncIterator[str]: ...

    async def over_cap(self, prompt: str) -> None: ...


def _info_numbers(metadata: dict[str, Any]) -> tuple[float, int, int]:
    """``(waited_s, attempts, booked tokens)`` from a response's metadata (``CallInfo.as_metadata``)."""
    booked = int(metadata.get("prompt_estimate") or 0) + int(metadata.get("max_completion_tokens") or 0)
    return float(metadata.get("waited_s") or 0.0), int(metadata.get("attempts") or 1), booked


# --- LangChain ---------------------------------------------------------------------------------


class LangChainBackend:
    """``ChatPromptTemplate | ChatCerebras | StrOutputParser`` with ``abatch`` and ``astream``."""

    label = "LangChain: ChatPromptTemplate | ChatCerebras | StrOutputParser, abatch"

    def __init__(self, client: Any, free_client: Any, *, model: str, max_tokens: int, concurrency: int, **kw: Any):
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate

        from langchain_cerebras_paygo import ChatCerebras

        prompt = ChatPromptTemplate.from_messages([("human", PROMPT)])
        llm = ChatCerebras(client=client, model=model, max_completion_tokens=max_tokens, **kw)
        self.chain: Any = prompt | llm | StrOutputParser()
        self.free_llm: Any = ChatCerebras(client=free_client, model=model, max_completion_tokens=1024)
        self.concurrency = concurrency

    async def answer_all(
        self, cards: Sequence[tuple[str, str]], tally: Tally, on_done: Callable[[], None]
    ) -> list[str | BaseException]:
        from langchain_core.callbacks import BaseCallbackHandler

        class Progress(BaseCallbackHandler):
            run_inline = True  # called on the event loop, not in a thread pool

            def on_llm_end(self, response: Any, **kwargs: Any) -> None:
                generation = response.generations[0][0]
                message = getattr(generation, "message", None)
                metadata = getattr(message, "response_metadata", None) or {}
                tally.success(*_info_numbers(metadata))
                on_done()

            def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
                tally.failure(error)
                on_done()

        inputs = [{"question": question, "context": context} for question, context in cards]
        results: list[str | BaseException] = await self.chain.abatch(
            inputs,
            config={"max_concurrency": self.concurrency, "callbacks": [Progress()]},
            return_exceptions=True,
        )
        return results

    async def stream(self, card: tuple[str, str]) -> AsyncIterator[str]:
        async for piece in self.chain.astream({"question": card[0], "context": card[1]}):
            yield str(piece)

    async def over_cap(self, prompt: str) -> None:
        await self.free_llm.ainvoke(prompt)


# --- the core client (no LangChain) -----------------------------------------------------------


class CoreBackend:
    """The same work through ``CerebrasClient.achat`` / ``astream`` directly."""

    label = "core CerebrasClient.achat (asyncio.gather)"

    def __init__(self, client: Any, free_client: Any, *, model: str, max_tokens: int, concurrency: int, **kw: Any):
        self.client = client
        self.free_client = free_client
        self.model = model
        self.max_tokens = max_tokens
        self.concurrency = concurrency
        self.extra = kw

    def _request(self, card: tuple[str, str], *, stream: bool = False) -> Any:
        from cerebras_paygo._wire import ChatCompletionRequest, Message

        question, context = card
        return ChatCompletionRequest(
            model=self.model,
            messages=[Message(role="user", content=PROMPT.format(context=context, question=question))],
            max_completion_tokens=self.max_tokens,
            stream=True if stream else None,
            **self.extra,
        )

    async def answer_all(
        self, cards: Sequence[tuple[str, str]], tally: Tally, on_done: Callable[[], None]
    ) -> list[str | BaseException]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(card: tuple[str, str]) -> str:
            async with gate:
                try:
                    result = await self.client.achat(self._request(card))
                except CerebrasError as error:
                    tally.failure(error)
                    on_done()
                    raise
            tally.success(*_info_numbers(result.info.as_metadata()))
            on_done()
            choices = result.completion.choices
            return (choices[0].message.content or "") if choices else ""

        gathered = await asyncio.gather(*(one(card) for card in cards), return_exceptions=True)
        return list(gathered)

    async def stream(self, card: tuple[str, str]) -> AsyncIterator[str]:
        from cerebras_paygo._wire import ChatCompletionChunk

        async for item in self.client.astream(self._request(card, stream=True)):
            if isinstance(item, ChatCompletionChunk):
                for choice in item.choices:
                    if choice.delta.content:
                        yield choice.delta.content

    async def over_cap(self, prompt: str) -> None:
        from cerebras_paygo._wire import ChatCompletionRequest, Message

        await self.free_client.achat(
            ChatCompletionRequest(
                model=self.model, messages=[Message(role="user", content=prompt)], max_completion_tokens=1024
            )
        )


# --- progress ----------------------------------------------------------------------------------


class _Bar(Protocol):
    def advance(self, tally: Tally) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


class _RichBar:
    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task("answering", total=total, note="")

    def advance(self, tally: Tally) -> None:
        note = f"held {tally.waited_requests} request(s), {tally.waited_s:.1f} s in all"
        if tally.failed:
            note += f"; {tally.failed} failed"
        self.progress.update(self.task, completed=tally.done, note=note)

    def __enter__(self) -> _RichBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


class _PlainBar:
    """Without rich: a line every tenth of the way."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.step = max(total // 10, 1)

    def advance(self, tally: Tally) -> None:
        if tally.done % self.step == 0 or tally.done == self.total:
            print(f"  {tally.done}/{self.total} done", file=sys.stderr, flush=True)

    def __enter__(self) -> _PlainBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _progress_bar(total: int) -> _Bar:
    try:
        return _RichBar(total)
    except ImportError:
        print(
            "note: the live progress bar needs rich: pip install 'cerebras-paygo[cli]' (plain progress lines instead)",
            file=sys.stderr,
        )
        return _PlainBar(total)


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Target:
    """Where the demo sends: the emulator it started, or the real API."""

    settings: Settings
    free_key: str | None
    emulator: Any | None
    tpm: int | None
    max_tokens: int

    def server_requests(self) -> int | None:
        return None if self.emulator is None else int(self.emulator.state.stats()["requests"])


def _langchain_available() -> bool:
    try:
        import langchain_core.prompts  # noqa: F401

        import langchain_cerebras_paygo  # noqa: F401
    except ImportError:
        return False
    return True


def _llama_index_available() -> bool:
    try:
        import llama_index.core  # noqa: F401

        import llama_index_cerebras  # noqa: F401
    except ImportError:
        return False
    return True


def _start_emulator(stack: ExitStack, args: argparse.Namespace) -> Target | int:
    try:
        from cerebras_paygo.emulator import (
            FREE_ORG,
            PAYGO_ORG,
            AutoRecharge,
            EmulatorConfig,
            EmulatorServer,
            FaultConfig,
            OrgConfig,
            ServerLimits,
        )
    except ImportError as exc:
        print(
            "cerebras-paygo demo: the embedded emulator needs starlette and uvicorn, which come with "
            "pip install 'cerebras-paygo[langchain]', '[llama-index]' or '[emulator]' "
            f"({exc}); or run with --no-emulator and CEREBRAS_API_KEY set",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    tpm = args.tpm or DEFAULT_TPM
    config = EmulatorConfig(
        orgs=[
            # Auto-recharge on: when the staged 402 outage opens, credit lands RECHARGE_DELAY_S later.
            OrgConfig(
                name=PAYGO_ORG, balance_usd=100.0, auto_recharge=AutoRecharge(amount_usd=20.0, delay_s=RECHARGE_DELAY_S)
            ),
            OrgConfig(name=FREE_ORG, tier="free", balance_usd=0.0),
        ],
        limits={"*": ServerLimits(tokens_per_minute=tpm)},
        reasoning_tokens=8,  # short thoughts (4 at reasoning_effort="low"): the answers come from the context
        # A little latency so the batch looks like a network call, and a visible streaming pace.
        faults=FaultConfig(latency_s=0.05, tokens_per_second=40.0),
    )
    server: Any = stack.enter_context(EmulatorServer(config))
    settings = Settings(api_key=server.api_key, base_url=server.base_url, tier="paygo")
    return Target(settings, server.free_api_key, server, tpm, args.max_tokens or EMULATOR_MAX_TOKENS)


def _real_api(args: argparse.Namespace) -> Target | int:
    settings: Settings | None = None
    try:
        settings = settings_from_args(args)
        settings.require_key()
    except CerebrasError as exc:
        failure = describe_failure(exc, settings)
        print(f"cerebras-paygo demo --no-emulator: {failure.headline}", file=sys.stderr)
        for detail in failure.details:
            print(f"  {detail}", file=sys.stderr)
        print("  (without --no-emulator the demo runs on the embedded emulator and needs no key)", file=sys.stderr)
        return failure.exit_code
    return Target(settings, None, None, args.tpm, args.max_tokens or REAL_API_MAX_TOKENS)


def _bucket_rows(client: Any, spec: ModelSpec) -> list[list[str]]:
    rows = []
    for stat in client.limiter.stats():
        scope = stat.scope
        if scope.key_fingerprint != client.settings.fingerprint or scope.base_url != client.settings.base_url:
            continue
        if scope.model != spec.id:
            continue
        rows.append(
            [
                stat.limit,
                format_int(max(stat.level, 0.0)),
                format_int(stat.capacity),
                str(stat.waiters),
                "yes" if stat.last_sync is not None else "no",
                f"{stat.paused_s:.1f} s",
            ]
        )
    return rows


async def _demo(args: argparse.Namespace, target: Target, use_langchain: bool) -> int:
    from cerebras_paygo._client import CerebrasClient

    settings = target.settings
    spec = default_catalog().get(args.model, warn=False)
    try:
        spec.check_available()
    except CerebrasError as exc:
        failure = describe_failure(exc, settings, spec.id)
        print(f"cerebras-paygo demo: {failure.headline}", file=sys.stderr)
        for detail in failure.details:
            print(f"  {detail}", file=sys.stderr)
        return failure.exit_code
    extra: dict[str, Any] = {}
    if "low" in spec.capabilities.reasoning_efforts:
        extra["reasoning_effort"] = "low"
    rate_limits = {"tokens_per_minute": target.tpm} if target.tpm else None
    outages: list[dict[str, Any]] = []
    client = CerebrasClient(
        api_key=settings.api_key,
        base_url=settings.base_url,
        tier=settings.tier,
        rate_limits=rate_limits,
        max_spend_usd=args.max_spend if target.emulator is None else None,
        # On 402: wait for auto-recharge (one probe at a time), and hear of each outage once.
        payment_policy=PaymentPolicy(max_wait=30.0, probe_interval=0.25, on_payment_required=outages.append),
        integration="cerebras-paygo-demo",
    )
    free_client = CerebrasClient(
        api_key=target.free_key or settings.api_key,
        base_url=settings.base_url,
        tier="free",
        integration="cerebras-paygo-demo",
    )
    backend_cls: Any = LangChainBackend if use_langchain else CoreBackend
    backend: Backend = backend_cls(
        client,
        free_client,
        model=spec.id,
        max_tokens=target.max_tokens,
        concurrency=args.concurrency,
        **extra,
    )
    cards = [CARDS[i % len(CARDS)] for i in range(args.requests)]
    try:
        code = await _run_steps(args, target, spec, client, backend, cards, outages)
        if code == EXIT_OK:
            code = await _llama_index_step(client, spec, target.max_tokens, extra)
        print("Done. Next: cerebras-paygo check (your own key), cerebras-paygo models, examples/*.py")
        return code
    finally:
        await client.aclose()
        await free_client.aclose()


@dataclass
class _Outage:
    """A 402 outage staged on the emulator at the batch's first answer: the org's credit runs out,
    and auto-recharge tops it up ``RECHARGE_DELAY_S`` later. The requests beyond ``--concurrency``
    are sent after the first answer, so they meet it."""

    emulator: Any
    hook_calls: list[dict[str, Any]]
    before: dict[str, Any] | None = None

    def advance(self, tally: Tally) -> None:
        if self.emulator is not None and self.before is None and tally.done >= 1:
            self.before = self.emulator.state.stats()
            self.emulator.state.set_faults(payment_required_s=math.inf)  # no credit until the recharge lands

    def summary(self, failed: int) -> str:
        if self.emulator is None:
            return (
                f"none staged (only the emulator stages one); {len(self.hook_calls)} seen. On a real one the calls "
                "wait for auto-recharge (PaymentPolicy(max_wait=30.0))"
            )
        if self.before is None:
            return "none staged (no answer came back)"
        after = self.emulator.state.stats()
        refused = after["payment_required"] - self.before["payment_required"]
        recharges = sum(o["recharges"] for o in after["orgs"].values()) - sum(
            o["recharges"] for o in self.before["orgs"].values()
        )
        if not refused:
            return (
                "credit ran out at the first answer, but every request had been sent already "
                "(send more --requests than --concurrency to meet it)"
            )
        return (
            f"credit ran out at the first answer; {recharges} auto-recharge landed {RECHARGE_DELAY_S:.0f} s "
            f"later. Meanwhile {refused} x 402, {failed} request(s) lost: the calls waited behind one "
            f"probe at a time. on_payment_required ran {len(self.hook_calls)} time(s)"
        )


async def _run_steps(
    args: argparse.Namespace,
    target: Target,
    spec: ModelSpec,
    client: Any,
    backend: Backend,
    cards: list[Any],
    hook_calls: list[dict[str, Any]],
) -> int:
    settings = target.settings
    fingerprint = settings.fingerprint
    quota = f"a quota of {format_int(target.tpm)} tokens per minute" if target.tpm else "your org's limits"
    reserve = f"up to {target.max_tokens} completion tokens each"
    print(f"1. A batch of {len(cards)} questions ({reserve}) under {quota}")
    print(f"   via {backend.label}, {args.concurrency} at a time")
    outage = _Outage(target.emulator, hook_calls)
    if target.emulator is not None:
        print(
            f"   At the first answer the org's credit runs out (402); auto-recharge tops it up "
            f"{RECHARGE_DELAY_S:.0f} s later"
        )
    print()
    tally = Tally()
    bar = _progress_bar(len(cards))

    def on_done() -> None:
        bar.advance(tally)
        outage.advance(tally)

    started = time.monotonic()
    with bar:
        results = await backend.answer_all(cards, tally, on_done)
    wall = time.monotonic() - started
    answers = [(card, r) for card, r in zip(cards, results, strict=True) if isinstance(r, str)]
    failures = [r for r in results if isinstance(r, BaseException)]
    for (question, _), answer in answers[:3]:
        print(f"   Q: {question}")
        print(f"   A: {' '.join(answer.split()) or '(empty)'}")
    if failures:
        print(f"   first failure: {type(failures[0]).__name__}: {failures[0]}")
    print()

    totals = shared_spend_meter().totals(fingerprint=fingerprint)
    print("Summary")
    rows = [["requests", f"{len(cards)} sent, {len(answers)} answered, {len(failures)} failed"]]
    if target.emulator is not None:
        stats = target.emulator.state.stats()
        statuses = ", ".join(f"{n} x {code}" for code, n in stats["statuses"].items()) or "none"
        rows.append(["server 429s", f"{stats['rate_limited']} (emulator statuses: {statuses})"])
    else:
        rows.append(
            ["server 429s", f"only the emulator can count them; {tally.extra_attempts} attempt(s) were retried"]
        )
    rows.append(
        [
            "waits",
            f"{tally.waited_s:.1f} s in total (limiter and 402 circuit), over {tally.waited_requests} held request(s) "
            f"(longest {tally.longest_wait_s:.1f} s); the batch took {wall:.1f} s",
        ]
    )
    tokens = totals.input_tokens + totals.output_tokens
    quota = f" against a quota of {format_int(target.tpm)} per minute" if target.tpm else ""
    rows.append(
        [
            "tokens",
            f"{format_int(tally.booked_tokens)} booked at admission (prompt + max_completion_tokens, as Cerebras "
            f"counts them){quota}",
        ]
    )
    rows.append(
        [
            "",
            f"{format_int(totals.input_tokens)} prompt + {format_int(totals.output_tokens)} completion "
            f"= {format_int(tokens)} used; the unused completion tokens went back to the quota",
        ]
    )
    # The tier in force: configured, or learned from the first answer (tier="auto").
    cost_note = "estimated from list prices" if client.tier == "paygo" else "free tier"
    rows.append(["cost", f"{format_usd(totals.cost_usd)} ({cost_note})"])
    rows.append(["402 outage", outage.summary(len(failures))])
    out = Printer()
    out.fields([(label, value) for label, value in rows])
    print()
    bucket_rows = _bucket_rows(client, spec)
    if bucket_rows:
        out.line(
            f"Limiter buckets (key {fingerprint}, {spec.id}; shared by every client in this process; "
            "SYNCED: corrected from the x-ratelimit-* headers)"
        )
        out.table(
            [
                Column("LIMIT"),
                Column("AVAILABLE", right=True),
                Column("CAPACITY", right=True),
                Column("WAITING", right=True),
                Column("SYNCED"),
                Column("PAUSED", right=True),
            ],
            bucket_rows,
            indent=2,
        )
        print()

    print("2. One answer, streamed token by token")
    question, _ = _STREAM_CARD
    print(f"   Q: {question}")
    sys.stdout.write("   A: ")
    sys.stdout.flush()
    pieces = 0
    stream_started = time.monotonic()
    try:
        async for piece in backend.stream(_STREAM_CARD):
            pieces += 1
            sys.stdout.write(piece)
            sys.stdout.flush()
    except CerebrasError as exc:
        print(f"\n   stream failed: {exc}")
    print()
    print(f"   ({pieces} chunks in {time.monotonic() - stream_started:.1f} s)")
    print()

    window = spec.window("free")
    who = "the free key" if target.free_key else "your key with tier='free' (checked locally)"
    print(f"3. A prompt over the free tier's {format_int(window)}-token window, with {who}")
    before = target.server_requests()
    meter_before = shared_spend_meter().totals().requests
    try:
        await backend.over_cap(_OVER_CAP_PROMPT)
    except ContextWindowExceededError as exc:
        print(f"   ContextWindowExceededError: {exc.message}")
    except CerebrasError as exc:
        print(f"   unexpected {type(exc).__name__}: {exc}")
        return 1
    else:
        print("   unexpected: the request went through")
        return 1
    after = target.server_requests()
    if before is not None and after is not None:
        print(f"   The emulator counted {after - before} requests for it: raised before anything was sent.")
    else:
        sent = shared_spend_meter().totals().requests - meter_before
        print(f"   {sent} requests were answered for it: raised before sending.")
    print()
    return EXIT_OK if not failures else 1


async def _llama_index_step(client: Any, spec: ModelSpec, max_tokens: int, extra: dict[str, Any]) -> int:
    """LlamaIndex over the same documents: a keyword-table query engine (no embedding model needed)."""
    if not _llama_index_available():
        print("4. LlamaIndex: not installed; pip install 'cerebras-paygo[llama-index]' adds a query engine")
        print("   over the same documents to this demo")
        print()
        return EXIT_OK
    from llama_index.core import Document, SimpleKeywordTableIndex

    from llama_index_cerebras import Cerebras

    print("4. LlamaIndex: a query engine over the same documents, on the same key and limiter")
    print("   SimpleKeywordTableIndex.from_documents(docs).as_query_engine(llm=Cerebras(client=client))")
    llm = Cerebras(client=client, model=spec.id, max_tokens=max_tokens, **extra)
    documents = [Document(text=context) for _, context in CARDS]
    engine = SimpleKeywordTableIndex.from_documents(documents, llm=llm).as_query_engine(llm=llm)
    started = time.monotonic()
    for question in LLAMA_INDEX_QUESTIONS:
        try:
            response = await engine.aquery(question)
        except CerebrasError as exc:
            print(f"   {type(exc).__name__}: {exc}")
            return 1
        print(f"   Q: {question}")
        print(f"   A: {' '.join(str(response).split())}")
        print(f"      (from {len(response.source_nodes)} of {len(documents)} documents)")
    print(f"   ({len(LLAMA_INDEX_QUESTIONS)} queries in {time.monotonic() - started:.1f} s)")
    print()
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    use_langchain = not args.core and _langchain_available()
    with ExitStack() as stack:
        target = _real_api(args) if args.no_emulator else _start_emulator(stack, args)
        if isinstance(target, int):
            return target
        settings = target.settings
        where = (
            f"the embedded emulator at {settings.base_url}"
            if target.emulator is not None
            else f"{settings.base_url} (key {settings.fingerprint}, tier {settings.tier}; this spends credit)"
        )
        print(f"cerebras-paygo demo on {where}")
        if not use_langchain and not args.core:
            print("note: langchain-core is not installed, so the demo uses the core CerebrasClient")
            print("      (pip install 'cerebras-paygo[langchain]' for the LangChain chain)")
        print()
        try:
            with quiet_library_logs(args.verbose):
                return asyncio.run(_demo(args, target, use_langchain))
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
