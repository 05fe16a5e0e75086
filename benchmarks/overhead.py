"""Per-call cost of every layer, side by side: raw httpx, the frameworks' floors, our core, our adapters
and the official integrations (issue 15).

    python benchmarks/overhead.py [--rounds R] [--calls K] [--quick] [--no-write]

Every contender sends the same chat request and reads the same answer, through the same kind of
transport, with no limit binding:

- ``mock``: CPU only. Every contender's ``httpx`` client runs over ``httpx.MockTransport`` answering a
  canned completion (or SSE stream) at once, so the figures are the Python cost of each layer.
- ``loopback``: the Cerebras emulator in a process of its own on 127.0.0.1 (real HTTP), as a user's
  process would see the API (a server thread in the measured process would share its GIL).

Contenders (sync ``invoke``/``complete`` unless named async; ``stream``: reading the whole stream;
``time to first chunk``: the same streams, timed from the call to their first chunk):

- ``raw httpx``: ``client.post`` + ``response.json()`` (for streams: the SSE lines read).
- ``LangChain floor``: a ``BaseChatModel`` whose ``_generate``/``_stream`` do exactly the raw httpx call
  and build the ``AIMessage`` (the least any LangChain chat model can do).
- ``LlamaIndex floor``: a ``CustomLLM`` doing the same in ``complete``/``stream_complete``.
- ``our core``: ``CerebrasClient.chat`` / ``.stream``.
- ``ChatCerebras``: ours; ``Cerebras (LlamaIndex)``: ours.
- ``langchain-cerebras``, ``llama-index-llms-cerebras``: the official integrations (``bench`` extra),
  over the same mock transport (``http_client=``).

Rounds are interleaved: each round runs every contender once for K calls, in a shuffled order, and
records the mean per call; the table gives the median over rounds with a 95% interval (order
statistics of the rounds), the ratio to raw httpx and to the framework's floor, and what is added
over the floor. Also measured: the cost of each extra message in the conversation, requests per
second at concurrency 32 (async, mock), and each adapter's import time next to its framework's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _markdown import replace_section
from _state import in_process_state

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- overhead -->"
END = "<!-- /overhead -->"
MODEL = "gpt-oss-120b"
KEY = "csk-bench-0000"
BASE = "http://127.0.0.1:9/v1"  # the mock transport answers; nothing listens here

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": MODEL,
    "system_fingerprint": "fp_1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
    "time_info": {"queue_time": 0.0001, "prompt_time": 0.001, "completion_time": 0.002, "total_time": 0.003},
}
HEADERS = {
    "content-type": "application/json",
    "x-request-id": "req-1",
    "x-ratelimit-limit-requests-day": "10000000",
    "x-ratelimit-limit-tokens-minute": "100000000",
    "x-ratelimit-remaining-requests-day": "9999999",
    "x-ratelimit-remaining-tokens-minute": "99999000",
    "x-ratelimit-reset-requests-day": "33011.4",
    "x-ratelimit-reset-tokens-minute": "11.4",
}


def _sse_body() -> bytes:
    chunks: list[dict[str, Any]] = [{"delta": {"role": "assistant"}}]
    chunks += [{"delta": {"content": word}} for word in ("Hello", " there", ", friend", "!")]
    lines = []
    for i, choice in enumerate(chunks):
        body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL}
        body["choices"] = [{"index": 0, **choice, "finish_reason": None}]
        lines.append(f"data: {json.dumps(body)}\n\n")
        del i
    final = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": COMPLETION["usage"],
        "time_info": COMPLETION["time_info"],
    }
    lines.append(f"data: {json.dumps(final)}\n\n")
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


SSE = _sse_body()
PLAIN = json.dumps(COMPLETION).encode()


def _answer(request: httpx.Request) -> httpx.Response:
    stream = b'"stream":true' in request.content or b'"stream": true' in request.content
    if stream:
        return httpx.Response(200, headers={**HEADERS, "content-type": "text/event-stream"}, content=SSE)
    return httpx.Response(200, headers=HEADERS, content=PLAIN)


async def _aanswer(request: httpx.Request) -> httpx.Response:
    await request.aread()
    return _answer(request)


def mock_clients() -> tuple[httpx.Client, httpx.AsyncClient]:
    return httpx.Client(transport=httpx.MockTransport(_answer)), httpx.AsyncClient(
        transport=httpx.MockTransport(_aanswer)
    )


def payload(messages: list[dict[str, str]], *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": messages, "max_completion_tokens": 64}
    if stream:
        body["stream"] = True
    return body


def conversation(n: int) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": "You are terse."}]
    for i in range(n - 1):
        turns.append({"role": "user" if i % 2 == 0 else "assistant", "content": f"Message number {i}, hello."})
    turns.append({"role": "user", "content": "Say hello."})
    return turns


# --- the framework floors: the least a LangChain or LlamaIndex integration can do ------------------


def langchain_floor(client: httpx.Client, base: str) -> Any:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    def wire(messages: list[BaseMessage]) -> list[dict[str, str]]:
        roles = {"human": "user", "ai": "assistant", "system": "system"}
        return [{"role": roles.get(m.type, m.type), "content": str(m.content)} for m in messages]

    class FloorChat(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "floor"

        def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
            data = client.post(f"{base}/chat/completions", json=payload(wire(messages))).json()
            text = data["choices"][0]["message"]["content"]
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

        def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
            body = payload(wire(messages), stream=True)
            with client.stream("POST", f"{base}/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        delta = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                        yield ChatGenerationChunk(message=AIMessageChunk(content=delta))

    return FloorChat()


def llama_index_floor(client: httpx.Client, base: str) -> Any:
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback

    class FloorLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name=MODEL)

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kw: Any) -> CompletionResponse:
            data = client.post(f"{base}/chat/completions", json=payload([{"role": "user", "content": prompt}])).json()
            return CompletionResponse(text=data["choices"][0]["message"]["content"])

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kw: Any) -> Any:
            body = payload([{"role": "user", "content": prompt}], stream=True)

            def gen() -> Iterator[CompletionResponse]:
                text = ""
                with client.stream("POST", f"{base}/chat/completions", json=body) as response:
                    for line in response.iter_lines():
                        if line.startswith("data: {"):
                            delta = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                            text += delta
                            yield CompletionResponse(text=text, delta=delta)

            return gen()

    return FloorLLM()


# --- contenders ----------------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    group: str  # "raw", "langchain", "llama-index", "core"
    call: Callable[[], Any]
    samples: list[float] = field(default_factory=list)


def until_first(start: Callable[[], Any]) -> float:
    """Seconds from calling ``start`` to the first chunk of the stream it returns; the rest is read,
    untimed (closing early is not what is measured, and llama-index-llms-cerebras' abandoned openai
    stream deadlocks httpcore's pool when the garbage collector closes it mid-request)."""
    began = time.perf_counter()
    iterator = iter(start())
    next(iterator)
    elapsed = time.perf_counter() - began
    for _ in iterator:
        pass
    return elapsed


def drain_all(start: Callable[[], Any]) -> None:
    list(start())


def build(mode: str, base: str, *, stream: bool, key: str = KEY, first: bool = False) -> list[Contender]:
    """The contenders; ``first``: streams timed to their first chunk (then closed), not to the end."""
    from cerebras_paygo import CerebrasClient, ChatCompletionRequest, Message, RateLimits
    from langchain_cerebras_paygo import ChatCerebras
    from llama_index_cerebras import Cerebras

    if mode == "mock":
        sync_client, _ = mock_clients()
        extra: dict[str, Any] = {"http_client": sync_client}
    else:
        sync_client = httpx.Client()
        extra = {}
    roomy = RateLimits(requests_per_minute=10**9, tokens_per_minute=10**12, requests_per_day=10**12)
    messages = [{"role": "user", "content": "Say hello."}]
    headers = {"Authorization": f"Bearer {key}"}
    sync_client.headers.update(headers)
    core = CerebrasClient(api_key=key, base_url=base, rate_limits=roomy, **extra)
    request = ChatCompletionRequest(
        model=MODEL, messages=[Message(role="user", content="Say hello.")], max_completion_tokens=64
    )
    ours_lc = ChatCerebras(model=MODEL, api_key=key, base_url=base, max_tokens=64, rate_limits=roomy, **extra)
    llama_extra = {"http_client": sync_client} if mode == "mock" else {}
    ours_li = Cerebras(model=MODEL, api_key=key, base_url=base, max_tokens=64, rate_limits=roomy, **llama_extra)
    lc_floor = langchain_floor(sync_client, base)
    li_floor = llama_index_floor(sync_client, base)
    contenders: list[Contender] = []
    if not stream:
        contenders += [
            Contender(
                "raw httpx", "raw", lambda: sync_client.post(f"{base}/chat/completions", json=payload(messages)).json()
            ),
            Contender("LangChain floor", "langchain", lambda: lc_floor.invoke("Say hello.")),
            Contender("ChatCerebras.invoke (ours)", "langchain", lambda: ours_lc.invoke("Say hello.")),
            Contender("LlamaIndex floor", "llama-index", lambda: li_floor.complete("Say hello.")),
            Contender("Cerebras.complete (ours, LlamaIndex)", "llama-index", lambda: ours_li.complete("Say hello.")),
            Contender("CerebrasClient.chat (our core)", "core", lambda: core.chat(request)),
        ]
    else:

        def raw_stream() -> float | None:
            began = time.perf_counter()
            seen: float | None = None
            with sync_client.stream("POST", f"{base}/chat/completions", json=payload(messages, stream=True)) as r:
                for line in r.iter_lines():
                    if first and seen is None and line.startswith("data:"):
                        seen = time.perf_counter() - began
            return seen

        def core_stream() -> float | None:
            began = time.perf_counter()
            seen: float | None = None
            with core.stream(request) as chunks:
                for _ in chunks:
                    if first and seen is None:
                        seen = time.perf_counter() - began
            return seen

        drain: Callable[[Callable[[], Any]], Any] = until_first if first else drain_all

        contenders += [
            Contender("raw httpx", "raw", raw_stream),
            Contender("LangChain floor", "langchain", lambda: drain(lambda: lc_floor.stream("Say hello."))),
            Contender("ChatCerebras.stream (ours)", "langchain", lambda: drain(lambda: ours_lc.stream("Say hello."))),
            Contender("LlamaIndex floor", "llama-index", lambda: drain(lambda: li_floor.stream_complete("Say hello."))),
            Contender(
                "Cerebras.stream_complete (ours, LlamaIndex)",
                "llama-index",
                lambda: drain(lambda: ours_li.stream_complete("Say hello.")),
            ),
            Contender("CerebrasClient.stream (our core)", "core", core_stream),
        ]
    contenders += official(mode, base, sync_client, stream=stream, key=key, first=first)
    return contenders


def official(
    mode: str, base: str, sync_client: httpx.Client, *, stream: bool, key: str = KEY, first: bool = False
) -> list[Contender]:
    """The official integrations (``pip install "cerebras-paygo[bench]"``), when installed."""
    found: list[Contender] = []
    drain: Callable[[Callable[[], Any]], Any] = until_first if first else drain_all
    try:
        from langchain_cerebras import ChatCerebras as OfficialChat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lc = OfficialChat(model=MODEL, api_key=key, base_url=base, max_tokens=64, http_client=sync_client)
        name = "langchain-cerebras " + ("stream" if stream else "invoke")
        found.append(
            Contender(
                name,
                "langchain",
                (lambda: drain(lambda: lc.stream("Say hello."))) if stream else (lambda: lc.invoke("Say hello.")),
            )
        )
    except ImportError:
        pass
    try:
        from llama_index.llms.cerebras import Cerebras as OfficialLLM

        li = OfficialLLM(model=MODEL, api_key=key, api_base=base, max_tokens=64, http_client=sync_client)
        name = "llama-index-llms-cerebras " + ("stream_complete" if stream else "complete")
        found.append(
            Contender(
                name,
                "llama-index",
                (lambda: drain(lambda: li.stream_complete("Say hello.")))
                if stream
                else (lambda: li.complete("Say hello.")),
            )
        )
    except ImportError:
        pass
    del mode
    return found


# --- measuring ------------------------------------------------------------------------------------


def run_rounds(contenders: list[Contender], rounds: int, calls: int, rng: random.Random) -> None:
    for contender in contenders:  # warm up: imports, caches, connection pools
        for _ in range(max(3, calls // 4)):
            contender.call()
    clock = time.perf_counter
    for _ in range(rounds):
        order = contenders[:]
        rng.shuffle(order)
        for contender in order:
            start = clock()
            timed = 0.0  # a call that returns seconds timed a part of itself (to the first chunk)
            for _ in range(calls):
                part = contender.call()
                if isinstance(part, float):
                    timed += part
            contender.samples.append((timed or (clock() - start)) / calls * 1e6)


def interval(samples: list[float]) -> tuple[float, float, float]:
    """Median and a 95% distribution-free interval of the median (order statistics)."""
    ordered = sorted(samples)
    n = len(ordered)
    half = 1.96 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half))
    high = min(n - 1, math.ceil(n / 2 + half) - 1)
    return statistics.median(ordered), ordered[low], ordered[high]


def table(contenders: list[Contender], title: str) -> list[str]:
    raw = statistics.median(next(c for c in contenders if c.group == "raw").samples)
    floors = {c.group: statistics.median(c.samples) for c in contenders if c.name.endswith("floor")}
    rows = [
        f"**{title}**",
        "",
        "| contender | µs per call (median, 95% interval) | × raw httpx | × framework floor | added over floor |",
        "|---|---:|---:|---:|---:|",
    ]
    for c in contenders:
        median, low, high = interval(c.samples)
        floor = floors.get(c.group)
        vs_floor = f"{median / floor:.2f}" if floor and not c.name.endswith("floor") else ("1.00" if floor else "")
        added = f"+{median - floor:.0f} µs" if floor and not c.name.endswith("floor") else ""
        rows.append(f"| {c.name} | {median:.0f} ({low:.0f}–{high:.0f}) | {median / raw:.2f} | {vs_floor} | {added} |")
    return rows


def per_message_cost(base: str, rounds: int) -> list[str]:
    from langchain_cerebras_paygo import ChatCerebras

    sync_client, _ = mock_clients()
    from cerebras_paygo import RateLimits

    roomy = RateLimits(requests_per_minute=10**9, tokens_per_minute=10**12, requests_per_day=10**12)
    llm = ChatCerebras(model=MODEL, api_key=KEY, base_url=base, rate_limits=roomy, http_client=sync_client)
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    def messages(n: int) -> list[Any]:
        out: list[Any] = [SystemMessage("You are terse.")]
        for i in range(n - 1):
            out.append(HumanMessage(f"Message number {i}, hello.") if i % 2 == 0 else AIMessage(f"Reply {i}."))
        out.append(HumanMessage("Say hello."))
        return out

    short, long_ = messages(2), messages(42)
    cs = [
        Contender("2 messages", "x", lambda: llm.invoke(short)),
        Contender("42 messages", "x", lambda: llm.invoke(long_)),
    ]
    run_rounds(cs, rounds, 20, random.Random(1))
    a, b = (statistics.median(c.samples) for c in cs)
    return [
        f"- Each extra message in the conversation adds **{(b - a) / 40:.1f} µs** per `ChatCerebras.invoke` "
        f"(2 messages: {a:.0f} µs, 42 messages: {b:.0f} µs; mock transport)."
    ]


def throughput(base: str, seconds: float) -> list[str]:
    """Requests per second at concurrency 32 (async, mock transport), ours vs the LangChain floor."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    from cerebras_paygo import RateLimits
    from langchain_cerebras_paygo import ChatCerebras

    _, async_client = mock_clients()
    async_client.headers["Authorization"] = f"Bearer {KEY}"

    class AsyncFloor(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "floor"

        def _generate(self, *a: Any, **k: Any) -> Any:
            raise NotImplementedError

        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
            body = payload([{"role": "user", "content": str(messages[-1].content)}])
            data = (await async_client.post(f"{base}/chat/completions", json=body)).json()
            text = data["choices"][0]["message"]["content"]
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    roomy = RateLimits(requests_per_minute=10**9, tokens_per_minute=10**12, requests_per_day=10**12)
    ours = ChatCerebras(model=MODEL, api_key=KEY, base_url=base, rate_limits=roomy, http_async_client=async_client)
    floor = AsyncFloor()

    async def rate(model: Any) -> float:
        done = 0
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                await model.ainvoke("Say hello.")
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(32)))
        return done / (time.perf_counter() - start)

    async def main() -> tuple[float, float]:
        for model in (floor, ours):  # warm-up: caches, the pool, our vocabulary (loaded at the first call)
            for _ in range(50):
                await model.ainvoke("Say hello.")
        return await rate(floor), await rate(ours)

    floor_rps, ours_rps = asyncio.run(main())
    return [
        f"- Throughput at concurrency 32 (async `ainvoke`, mock transport, {seconds:g} s each): LangChain floor "
        f"{floor_rps:.0f} req/s, ChatCerebras {ours_rps:.0f} req/s (**{ours_rps / floor_rps:.0%} of the floor**)."
    ]


_IMPORT_PROBE = """
import json, sys, time
framework, adapter, construct = sys.argv[1:4]
began = time.perf_counter(); exec(framework); framework_s = time.perf_counter() - began
began = time.perf_counter(); exec(adapter); adapter_s = time.perf_counter() - began
began = time.perf_counter(); exec(construct); construct_s = time.perf_counter() - began
print(json.dumps([framework_s, adapter_s, construct_s]))
"""


def import_times(repeats: int) -> list[str]:
    """Per adapter, in fresh interpreters: the framework's import, then (in the same interpreter)
    what importing the adapter adds, then its first instance; the best of ``repeats`` runs each."""
    key = "import os; os.environ['CEREBRAS_API_KEY'] = 'csk-bench'"
    rows_in = [
        # What an integration needs of its framework: the base class it subclasses.
        (
            "LangChain",
            "ChatCerebras (ours)",
            "from langchain_core.language_models import BaseChatModel",
            "from langchain_cerebras_paygo import ChatCerebras",
            f"{key}; ChatCerebras(model='gpt-oss-120b')",
        ),
        (
            "LangChain",
            "langchain-cerebras",
            "from langchain_core.language_models import BaseChatModel",
            "from langchain_cerebras import ChatCerebras",
            f"{key}; ChatCerebras(model='gpt-oss-120b')",
        ),
        (
            "LlamaIndex",
            "Cerebras (ours)",
            "from llama_index.core.llms.function_calling import FunctionCallingLLM",
            "from llama_index_cerebras import Cerebras",
            f"{key}; Cerebras(model='gpt-oss-120b')",
        ),
        (
            "LlamaIndex",
            "llama-index-llms-cerebras",
            "from llama_index.core.llms.function_calling import FunctionCallingLLM",
            "from llama_index.llms.cerebras import Cerebras",
            f"{key}; Cerebras(model='gpt-oss-120b')",
        ),
    ]
    rows = [
        "| framework | adapter | framework import (ms) | adapter import on top (ms) | first instance (ms) |",
        "|---|---|---:|---:|---:|",
    ]
    for framework_name, adapter_name, framework, adapter, construct in rows_in:
        runs = []
        for _ in range(repeats):
            done = subprocess.run(
                [sys.executable, "-c", _IMPORT_PROBE, framework, adapter, construct],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                break
            runs.append(json.loads(done.stdout))
        if not runs:
            rows.append(f"| {framework_name} | {adapter_name} | not installed | | |")
            continue
        best = [min(run[i] for run in runs) * 1000 for i in range(3)]
        rows.append(f"| {framework_name} | {adapter_name} | {best[0]:.0f} | +{best[1]:.0f} | {best[2]:.0f} |")
    return rows


class LoopbackServer:
    """The emulator in a process of its own on 127.0.0.1 (``cerebras-paygo emulate --port 0``), as a
    user's process sees the API: its CPU time and its GIL are not the measured process's (an
    in-process server thread would share both, and charge every contender for the other's work)."""

    def __init__(self) -> None:
        from cerebras_paygo.emulator.config import PAYGO_KEY

        roomy = ("tokens_per_minute=1000000000000", "requests_per_minute=1000000000", "requests_per_day=1000000000000")
        command = [sys.executable, "-c", "import sys; from cerebras_paygo._cli.main import main; sys.exit(main())"]
        command += ["emulate", "--port", "0", "--log-level", "warning"]
        for limit in roomy:
            command += ["--limit", limit]
        self._process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        assert self._process.stderr is not None
        banner = self._process.stderr.readline()  # "Cerebras emulator on http://127.0.0.1:PORT/v1 - keys: ..."
        if "http://" not in banner:
            self._process.kill()
            raise RuntimeError(f"the emulator did not start: {banner!r}")
        self.base_url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        self.api_key = PAYGO_KEY  # the emulator's default paygo key

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def loopback_base() -> tuple[str, LoopbackServer]:
    server = LoopbackServer()
    return server.base_url, server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute), not written")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--modes", default="mock,loopback")
    args = parser.parse_args()
    in_process_state()
    if args.quick:
        args.rounds, args.calls, args.no_write = 7, 15, True
    rng = random.Random(20261201)
    lines: list[str] = []
    servers = []
    for mode in args.modes.split(","):
        base, key = BASE, KEY
        if mode == "loopback":
            base, server = loopback_base()
            key = server.api_key
            servers.append(server)
        for stream, first in ((False, False), (True, False), (True, True)):
            contenders = build(mode, base, stream=stream, key=key, first=first)
            run_rounds(contenders, args.rounds, args.calls if mode == "mock" else max(5, args.calls // 4), rng)
            title = f"{mode}, {'time to first chunk' if first else 'stream' if stream else 'call'}"
            rows = table(contenders, title)
            print("\n".join(rows), "\n")
            lines += [*rows, ""]
    extra = per_message_cost(BASE, max(5, args.rounds // 2))
    extra += throughput(BASE, 1.0 if args.quick else 3.0)
    imports = import_times(3 if args.quick else 7)
    print("\n".join([*extra, "", *imports]))
    for server in servers:
        server.stop()
    if args.no_write:
        return 0
    versions = " ".join(
        f"{name} {version}"
        for name, version in _versions(
            "httpx", "langchain-core", "llama-index-core", "langchain-cerebras", "llama-index-llms-cerebras"
        )
    )
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpus = os.cpu_count()
    section = [
        BEGIN,
        "## Per-call overhead: raw httpx, the framework floors, ours, the official integrations (issue 15)",
        "",
        f"`python benchmarks/overhead.py --rounds {args.rounds} --calls {args.calls}` ({when}; Python "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}, {cpus} CPUs; {versions}). "
        "Rounds interleaved in a shuffled order; median of the per-round means with a 95% interval.",
        "",
        *lines,
        *extra,
        "",
        "Import time: in a fresh interpreter, the framework's base class is imported, then the adapter (what it",
        "adds on top), then its first instance is built (ours imports the core there, not at import: see",
        "`cerebras_paygo/_adapters.py`); best of several interpreters for each figure:",
        "",
        *imports,
        END,
    ]
    replace_section(ROOT / "BENCHMARKS.md", BEGIN, END, "\n".join(section))
    return 0


def _versions(*names: str) -> Iterator[tuple[str, str]]:
    from importlib.metadata import PackageNotFoundError, version

    for name in names:
        try:
            yield name, version(name)
        except PackageNotFoundError:
            continue


if __name__ == "__main__":
    sys.exit(main())
