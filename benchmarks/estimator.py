"""Benchmark of the token estimator: speed, and error against reference token counts, before and after.

Run ``python benchmarks/estimator.py`` (``--requests N``, ``--baseline REV``, ``--no-write``). It
prints a report and updates the ``<!-- estimator -->`` section of ``BENCHMARKS.md`` (other sections
are left alone).

Speed: ``heuristic_tokens`` per short message, and ``TokenEstimator.estimate_request`` per request
of 10 messages, cold (text cache cleared before each call) and warm (a chat history sent again).

Error: each scenario is a deterministic stream of chat requests counted by a reference; the
estimator sees the stream in order and ``observe``s each reference count after estimating, as the
gateway does with ``usage.prompt_tokens``. Reported: the token-weighted mean absolute error, the
median, 95th percentile and minimum of ``estimate / actual``, and how often the estimate is below the
real count (``under``: what lets a request past the local window check and into a server 400).
Scenarios:

- chat stream: prose from stdlib docstrings, Python code from stdlib sources, JSON tool results, a
  few other languages, tools on one request in four: the prior (no calibration), the first 10 and 30
  requests while calibrating, and the calibrated estimator over the last half of the stream;
- mixed sizes: tiny one-line prompts (7-20 tokens) interleaved with large ones (300 to 20,000
  tokens), the last half of the stream, tiny and large apart;
- tiny calls, then large: 30 tiny calls, then prose, code and JSON prompts of about 21,000 tokens
  (the reported bug: the old single factor fell to its floor and let them through a 8,192 window);
- texts alone, fresh estimator (``estimate_text``) by kind of text.

References:
- the emulator's tokenizer (``cerebras_paygo/emulator/tokens.py``, ``count_prompt``/``count_text``);
- o200k (gpt-oss's vocabulary) through ``bpe-openai`` or a cached ``tiktoken`` file, when importable
  (optional; neither is a dependency). Texts, tools and tool calls, plus a harmony-like template.

Before/after: the same scenarios run with the estimator of ``--baseline`` (a git revision, read
with ``git show``; default: the last revision before the per-part calibration).
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import importlib
import importlib.util
import inspect
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from _markdown import replace_section

from cerebras_paygo._context import TokenEstimator, heuristic_tokens
from cerebras_paygo._wire import ChatCompletionRequest, FunctionCall, Message, ToolCall

BEGIN = "<!-- estimator -->"
END = "<!-- /estimator -->"
ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-oss-120b"
BASELINE = "fe97413"  # the estimator with one multiplicative factor per model

# --- corpus (deterministic, built from the standard library) --------------------------------

# ruff: noqa: RUF001 - the sample sentences are in other scripts on purpose
_OTHER_LANGUAGES = [
    "Der Ratenbegrenzer reserviert die gesamte Anzahl an Ausgabetoken, bevor die Anfrage gesendet wird.",
    "Le client attend que le quota de jetons par minute se reconstitue avant d'envoyer la requête suivante.",
    "El servidor rechaza la solicitud cuando el mensaje y la respuesta superan la ventana de contexto.",
    "Клиент ждёт, пока восстановится квота токенов в минуту, и только потом отправляет следующий запрос.",
    "客户端在发送下一个请求之前会等待每分钟的令牌配额恢复，并在响应后用真实用量校准估计。",
    "クライアントは次のリクエストを送る前に、一分あたりのトークン枠が回復するのを待ちます。",
    "클라이언트는 다음 요청을 보내기 전에 분당 토큰 한도가 회복될 때까지 기다립니다.",
    "Klient czeka, aż limit tokenów na minutę się odnowi, zanim wyśle następne żądanie do serwera.",
    "İstemci, bir sonraki isteği göndermeden önce dakika başına belirteç kotasının dolmasını bekler.",
    "العميل ينتظر حتى تتجدد حصة الرموز في الدقيقة قبل إرسال الطلب التالي إلى الخادم.",
]


def _docstrings() -> list[str]:
    """Docstrings of what the modules define themselves (so the corpus does not depend on import history)."""
    out: list[str] = []
    for name in ("os", "json", "re", "asyncio", "collections", "pathlib", "argparse", "logging", "threading",
                 "subprocess", "functools", "itertools", "datetime", "decimal", "statistics", "random",
                 "email.message", "http.client", "urllib.request", "unittest", "dataclasses", "textwrap",
                 "difflib", "inspect", "shutil", "tempfile", "zipfile", "csv", "sqlite3", "socket"):  # fmt: skip
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, obj in sorted(vars(module).items()):
            doc = getattr(obj, "__doc__", None)
            own = getattr(obj, "__module__", None) == module.__name__
            if own and isinstance(doc, str) and 60 < len(doc) < 2500 and not attr.startswith("_"):
                out.append(inspect.cleandoc(doc))
    return sorted(set(out))


def _code() -> list[str]:
    out: list[str] = []
    folder = Path(os.__file__).parent
    for path in sorted(folder.glob("*.py"))[:80]:
        try:
            source = path.read_text("utf-8")
            tree = ast.parse(source)
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                segment = ast.get_source_segment(source, node)
                if segment and 80 < len(segment) < 3000:
                    out.append(segment)
    return out


def _json_texts(rng: random.Random, words: list[str], n: int) -> list[str]:
    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 2 or roll < 0.4:
            return rng.choice([rng.randint(0, 10**6), round(rng.random() * 100, 2), rng.choice(words), True, None])
        if roll < 0.7:
            return {rng.choice(words): value(depth + 1) for _ in range(rng.randint(1, 4))}
        return [value(depth + 1) for _ in range(rng.randint(1, 4))]

    return [json.dumps({rng.choice(words): value(0) for _ in range(rng.randint(2, 6))}) for _ in range(n)]


def corpus(seed: int = 1) -> dict[str, list[str]]:
    rng = random.Random(seed)
    prose = _docstrings()
    words = sorted({w.strip(".,:;()`'\"").lower() for d in prose[:200] for w in d.split() if w.isalpha()})
    return {
        "prose": prose,
        "code": _code(),
        "json": _json_texts(rng, words or ["value"], 300),
        "other": _OTHER_LANGUAGES,
    }


TOOL = {
    "type": "function",
    "function": {
        "name": "search_documents",
        "description": "Search the knowledge base and return the best matching passages.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
            "required": ["query", "limit"],
            "additionalProperties": False,
        },
    },
}


def requests_stream(texts: dict[str, list[str]], n: int, seed: int = 2) -> list[ChatCompletionRequest]:
    rng = random.Random(seed)
    kinds, weights = ["prose", "code", "json", "other"], [0.55, 0.25, 0.15, 0.05]
    out: list[ChatCompletionRequest] = []
    for i in range(n):
        messages = [Message(role="system", content=rng.choice(texts["prose"])[:400])]
        for turn in range(rng.randint(1, 6)):
            kind = rng.choices(kinds, weights)[0]
            messages.append(Message(role="user", content=rng.choice(texts[kind])))
            if i % 4 == 0 and turn == 0:
                call = ToolCall(
                    id=f"call_{i}",
                    function=FunctionCall(name="search_documents", arguments='{"query": "x", "limit": 3}'),
                )
                messages.append(Message(role="assistant", content=None, tool_calls=[call]))
                messages.append(Message(role="tool", tool_call_id=f"call_{i}", content=rng.choice(texts["json"])))
            messages.append(Message(role="assistant", content=rng.choice(texts["prose"])))
        messages.append(Message(role="user", content=rng.choice(texts["prose"])[:300]))
        out.append(ChatCompletionRequest(model=MODEL, messages=messages, tools=[TOOL] if i % 4 == 0 else None))
    return out


# --- speed -----------------------------------------------------------------------------------

Estimators = Callable[..., Any]  # TokenEstimator, or the baseline's


def _per_call_us(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e6


def speed(make: Estimators = TokenEstimator, count: Callable[[str], float] = heuristic_tokens) -> dict[str, float]:
    short = "Can you summarize the main differences between TCP and UDP for a networking class? Keep it short."
    estimator = make()
    messages = [Message(role="system", content="You are a helpful assistant. Answer briefly.")]
    messages += [Message(role="user" if i % 2 else "assistant", content=f"{short} ({i})") for i in range(9)]
    request = ChatCompletionRequest(model=MODEL, messages=messages)
    long_text = " ".join(corpus()["prose"])[:100_000]

    def cold() -> None:
        estimator._text_cache.clear()  # measure the uncached path
        estimator.estimate_request(request)

    return {
        "message_heuristic": _per_call_us(lambda: count(short), 20_000),
        "request_cold": _per_call_us(cold, 3_000),
        "request_warm": _per_call_us(lambda: estimator.estimate_request(request), 3_000),
        "ns_per_char_long": _per_call_us(lambda: count(long_text), 20) * 1000 / len(long_text),
        "short_chars": float(len(short)),
    }


# --- references ------------------------------------------------------------------------------


def _emulator() -> ModuleType | None:
    try:
        return importlib.import_module("cerebras_paygo.emulator.tokens")
    except ImportError:
        return None


def _o200k_counter() -> tuple[str, Callable[[str], int]] | None:
    try:
        bpe = importlib.import_module("bpe_openai")
        encoding = bpe.get_encoding("o200k_base")
        return f"bpe-openai {getattr(bpe, '__version__', '?')}", lambda text: len(encoding.encode(text))
    except Exception:
        pass
    try:
        tiktoken = importlib.import_module("tiktoken")
        encoding = tiktoken.get_encoding("o200k_base")  # works only when the file is cached locally
        return f"tiktoken {tiktoken.__version__}", lambda text: len(encoding.encode(text, disallowed_special=()))
    except Exception:
        return None


def _baseline(rev: str) -> tuple[str, ModuleType] | None:
    """The estimator module at git revision ``rev`` (read with ``git show``), or None."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        source = subprocess.run(
            ["git", "show", f"{rev}:cerebras_paygo/_context/estimator.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    folder = Path(tempfile.mkdtemp(prefix="estimator-baseline-"))
    path = folder / "estimator_baseline.py"
    path.write_text(source, "utf-8")
    spec = importlib.util.spec_from_file_location("estimator_baseline", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["estimator_baseline"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return commit, module


# --- scenarios -------------------------------------------------------------------------------

Reference = Callable[[ChatCompletionRequest], int]
Pairs = list[tuple[int, int]]


def _stats(pairs: Pairs) -> dict[str, float]:
    ratios = sorted(e / a for e, a in pairs)
    return {
        "mae": sum(abs(e - a) for e, a in pairs) / sum(a for _, a in pairs),
        "p50": statistics.median(ratios),
        "p95": ratios[min(len(ratios) - 1, int(0.95 * len(ratios)))],
        "min": ratios[0],
        "under": sum(e < a for e, a in pairs) / len(pairs),
    }


def _run(make: Estimators, stream: list[ChatCompletionRequest], reference: Reference) -> tuple[Pairs, Pairs, Any]:
    """(calibrated pairs, prior pairs, the estimator) of a stream seen in order."""
    estimator, prior = make(), make()
    calibrated: Pairs = []
    uncalibrated: Pairs = []
    for request in stream:
        actual = reference(request)
        estimate = estimator.estimate_request(request)
        calibrated.append((estimate, actual))
        uncalibrated.append((prior.estimate_request(request), actual))
        estimator.observe(MODEL, estimate, actual)
    return calibrated, uncalibrated, estimator


def chat_stream_run(make: Estimators, stream: list[ChatCompletionRequest], reference: Reference) -> dict[str, Any]:
    calibrated, uncalibrated, estimator = _run(make, stream, reference)
    half = len(stream) // 2
    return {
        "prior": _stats(uncalibrated[half:]),
        "first10": _stats(calibrated[:10]),
        "first30": _stats(calibrated[:30]),
        "calibrated": _stats(calibrated[half:]),
        "stats": estimator.calibration(MODEL),
    }


TINY = [
    "hi",
    "ok",
    "What is 2+2?",
    "Say hello.",
    "Reply with one word: yes or no?",
    "Thanks!",
    "Translate 'cat' to French.",
    "Name a color.",
]


def _large_text(
    texts: dict[str, list[str]], kind: str, target: int, rng: random.Random, count: Callable[[str], int]
) -> str:
    parts: list[str] = []
    total = 0
    while total < target:
        text = rng.choice(texts[kind])
        parts.append(text)
        total += count(text) + 1
    return "\n\n".join(parts)


def mixed_stream(
    texts: dict[str, list[str]], n: int, count: Callable[[str], int], seed: int = 3
) -> list[ChatCompletionRequest]:
    """Tiny prompts interleaved with large ones (300 to 20,000 tokens of prose, code or JSON)."""
    rng = random.Random(seed)
    out: list[ChatCompletionRequest] = []
    for i in range(n):
        if i % 2 == 0:
            out.append(ChatCompletionRequest(model=MODEL, messages=[Message(role="user", content=rng.choice(TINY))]))
            continue
        kind = rng.choice(["prose", "prose", "code", "json"])
        body = _large_text(texts, kind, rng.choice([300, 1_500, 6_000, 20_000]), rng, count)
        system = Message(role="system", content=rng.choice(texts["prose"])[:300])
        out.append(ChatCompletionRequest(model=MODEL, messages=[system, Message(role="user", content=body)]))
    return out


def mixed_run(make: Estimators, stream: list[ChatCompletionRequest], reference: Reference) -> dict[str, Any]:
    calibrated, _, estimator = _run(make, stream, reference)
    half = len(stream) // 2
    tiny = [pair for i, pair in enumerate(calibrated) if i >= half and i % 2 == 0]
    large = [pair for i, pair in enumerate(calibrated) if i >= half and i % 2 == 1]
    return {"tiny": _stats(tiny), "large": _stats(large), "stats": estimator.calibration(MODEL)}


def tiny_then_large_run(
    make: Estimators, texts: dict[str, list[str]], reference: Reference, count: Callable[[str], int]
) -> dict[str, Any]:
    estimator = make()
    for i in range(30):
        tiny = ChatCompletionRequest(model=MODEL, messages=[Message(role="user", content=TINY[i % len(TINY)])])
        estimator.observe(MODEL, estimator.estimate_request(tiny), reference(tiny))
    rng = random.Random(5)
    pairs: Pairs = []
    for kind in ("prose", "code", "json"):
        for _ in range(3):
            body = _large_text(texts, kind, 21_000, rng, count)
            request = ChatCompletionRequest(model=MODEL, messages=[Message(role="user", content=body)])
            pairs.append((estimator.estimate_request(request), reference(request)))
    return {"large": _stats(pairs), "stats": estimator.calibration(MODEL), "pairs": pairs}


def fresh_text_run(make: Estimators, texts: dict[str, list[str]], count: Callable[[str], int]) -> dict[str, Any]:
    estimator = make()
    out: dict[str, Any] = {}
    for kind, items in texts.items():
        pairs = [(estimator.estimate_text(t), count(t)) for t in items[:400] if count(t) > 0]
        out[kind] = {**_stats(pairs), "n": float(len(pairs))}
    return out


def text_errors(texts: dict[str, list[str]], count: Callable[[str], int]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind, items in texts.items():
        pairs = [(max(1, round(heuristic_tokens(t))), count(t)) for t in items[:400] if count(t) > 0]
        out[kind] = {**_stats(pairs), "n": float(len(pairs))}
    return out


# --- report ----------------------------------------------------------------------------------

HEADER = [
    "| estimator | scenario | mae | est/actual p50 | p95 | min | under |",
    "|---|---|---:|---:|---:|---:|---:|",
]


def _row(who: str, label: str, s: dict[str, float]) -> str:
    return (
        f"| {who} | {label} | {s['mae'] * 100:.1f}% | {s['p50']:.3f} | {s['p95']:.3f} | {s['min']:.3f} | "
        f"{s['under'] * 100:.0f}% |"
    )


def render(n_requests: int, baseline_rev: str | None) -> str:
    texts = corpus()
    stream = requests_stream(texts, n_requests)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    baseline = _baseline(baseline_rev) if baseline_rev else None
    makers: list[tuple[str, Estimators]] = [("after", TokenEstimator)]
    if baseline is not None:
        makers.insert(0, (f"before ({baseline[0]})", baseline[1].TokenEstimator))
    sp = {
        who: speed(make, baseline[1].heuristic_tokens if baseline and who != "after" else heuristic_tokens)
        for who, make in makers
    }
    lines = [
        BEGIN,
        "## Token estimator: speed and error",
        "",
        f"`python benchmarks/estimator.py` ({now}; Python {platform.python_version()}, {platform.system()} "
        f'{platform.machine()}, {os.cpu_count()} CPUs; best of 7 runs). "before" is the estimator of '
        f'`--baseline` (one multiplicative factor per model), "after" the per-part calibration.',
        "",
        "| what | " + " | ".join(who for who, _ in makers) + " |",
        "|---|" + "---:|" * len(makers),
        f"| `heuristic_tokens`, one short message ({int(sp['after']['short_chars'])} chars) | "
        + " | ".join(f"{sp[who]['message_heuristic']:.2f} µs" for who, _ in makers)
        + " |",
        "| `estimate_request`, 10 messages, cold (no cached text) | "
        + " | ".join(f"{sp[who]['request_cold']:.1f} µs" for who, _ in makers)
        + " |",
        "| `estimate_request`, 10 messages, warm (history sent again) | "
        + " | ".join(f"{sp[who]['request_warm']:.1f} µs" for who, _ in makers)
        + " |",
        "| long text (100,000 chars) | "
        + " | ".join(f"{sp[who]['ns_per_char_long']:.2f} ns/char" for who, _ in makers)
        + " |",
        "",
        "The estimator `observe`s each reference count after estimating, as the gateway does. `mae` is the "
        "token-weighted mean absolute error; `est/actual` the ratio's median, 95th percentile and minimum; "
        "`under` how often the estimate is below the real count (what lets a request past the local window "
        "check and into a server 400).",
        "",
    ]
    tokens = _emulator()
    if tokens is not None:
        count_text, count_prompt = tokens.count_text, tokens.count_prompt

        def emulator(request: ChatCompletionRequest) -> int:
            return int(count_prompt(request.to_payload()))

        mixed = mixed_stream(texts, n_requests, count_text)
        chat = {who: chat_stream_run(make, stream, emulator) for who, make in makers}
        mix = {who: mixed_run(make, mixed, emulator) for who, make in makers}
        bug = {who: tiny_then_large_run(make, texts, emulator, count_text) for who, make in makers}
        fresh = {who: fresh_text_run(make, texts, count_text) for who, make in makers}
        lines += [
            "### Against the emulator's tokenizer",
            "",
            "`cerebras_paygo/emulator/tokens.py`: a token per 4 letters of a word and per symbol (1.3-1.6x o200k "
            "on English), and a light template (3 per request + 4 per message, against harmony's ~56 + 5 that "
            "the gpt-oss profile assumes).",
            "",
            *HEADER,
        ]
        for who, _ in makers:
            lines += [
                _row(who, f"chat stream ({n_requests}): prior, no calibration", chat[who]["prior"]),
                _row(who, "chat stream: first 10 requests, calibrating", chat[who]["first10"]),
                _row(who, "chat stream: first 30 requests, calibrating", chat[who]["first30"]),
                _row(who, "chat stream: calibrated (last half)", chat[who]["calibrated"]),
                _row(who, f"mixed sizes ({n_requests}): tiny prompts (last half)", mix[who]["tiny"]),
                _row(who, "mixed sizes: large prompts, 300-20,000 tokens (last half)", mix[who]["large"]),
                _row(who, "30 tiny calls, then 9 prompts of ~21,000 tokens", bug[who]["large"]),
            ]
        lines.append("")
        for who, _ in makers:
            b = bug[who]
            lines.append(
                f"- {who}: after the 30 tiny calls, factor {b['stats'].factor:.3f}; the ~21,000-token prompts "
                f"estimated at {min(e for e, _ in b['pairs']):,}-{max(e for e, _ in b['pairs']):,} "
                f"(emulator: {min(a for _, a in b['pairs']):,}-{max(a for _, a in b['pairs']):,}). "
                f"Chat stream: factor {chat[who]['stats'].factor:.3f}; "
                f"mixed sizes: factor {mix[who]['stats'].factor:.3f}."
            )
        after = mix["after"]["stats"]
        coefficients = ", ".join(f"{c:.2f}" for c in getattr(after, "coefficients", ()))
        lines += [
            f"- after, mixed sizes: coefficients (request template, message template, text, extra, other-script "
            f"text, other extra) = ({coefficients}); margins {after.small_margin:.3f} small, "
            f"{after.large_margin:.3f} large.",
            "",
            "Texts alone (no template), fresh estimator (`estimate_text`) against the emulator's `count_text`:",
            "",
            "| estimator | texts | n | mae | est/actual p50 | p95 | min | under |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for who, _ in makers:
            for kind, s in fresh[who].items():
                lines.append(
                    f"| {who} | {kind} | {int(s['n'])} | {s['mae'] * 100:.1f}% | {s['p50']:.3f} | {s['p95']:.3f} | "
                    f"{s['min']:.3f} | {s['under'] * 100:.0f}% |"
                )
        lines.append("")
    else:
        lines += ["(The emulator's tokenizer is not present: no emulator figures.)", ""]
    o200k = _o200k_counter()
    if o200k is not None:
        name, count = o200k
        per_kind = text_errors(texts, count)
        lines += [
            f"### Against o200k, gpt-oss's vocabulary ({name}; optional, not a dependency)",
            "",
            "Texts alone (no template): the heuristic's best fit (`heuristic_tokens`), and the fresh estimator's "
            "count (the ceiling):",
            "",
            "| texts | n | best fit mae | best fit p50 | best fit p95 | best fit under | fresh p50 | fresh under |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        fresh_o200k = fresh_text_run(TokenEstimator, texts, count)
        for kind, s in per_kind.items():
            f = fresh_o200k[kind]
            lines.append(
                f"| {kind} | {int(s['n'])} | {s['mae'] * 100:.1f}% | {s['p50']:.3f} | {s['p95']:.3f} | "
                f"{s['under'] * 100:.0f}% | {f['p50']:.3f} | {f['under'] * 100:.0f}% |"
            )

        def o200k_request(request: ChatCompletionRequest) -> int:
            total = 56 + 5 * len(request.messages) + (count(json.dumps(request.tools)) + 32 if request.tools else 0)
            for message in request.messages:
                total += count(message.text())
                for call in message.tool_calls or ():
                    total += 8 + count(call.function.name or "") + count(call.function.arguments or "")
            return total

        mixed_o200k = mixed_stream(texts, n_requests, count)
        chat_o200k = {who: chat_stream_run(make, stream, o200k_request) for who, make in makers}
        mix_o200k = {who: mixed_run(make, mixed_o200k, o200k_request) for who, make in makers}
        lines += [
            "",
            "Whole requests against o200k counts of the texts, tools and tool calls plus a harmony-like template "
            "(56 + 5 per message): what a real gpt-oss server would count. The fresh estimate is the ceiling, "
            "high on purpose; the first responses bring it down.",
            "",
            *HEADER,
        ]
        for who, _ in makers:
            lines += [
                _row(who, "chat stream: prior, no calibration", chat_o200k[who]["prior"]),
                _row(who, "chat stream: first 10 requests, calibrating", chat_o200k[who]["first10"]),
                _row(who, "chat stream: first 30 requests, calibrating", chat_o200k[who]["first30"]),
                _row(who, "chat stream: calibrated (last half)", chat_o200k[who]["calibrated"]),
                _row(who, "mixed sizes: tiny prompts (last half)", mix_o200k[who]["tiny"]),
                _row(who, "mixed sizes: large prompts (last half)", mix_o200k[who]["large"]),
            ]
        lines.append("")
    else:
        lines += ["(No o200k tokenizer importable: `pip install bpe-openai` to add those figures.)", ""]
    lines.append(END)
    return "\n".join(lines)


def update_benchmarks_md(section: str, path: Path) -> None:
    """Replace our section between the markers (or append it); leave the rest of the file as it is."""
    replace_section(path, BEGIN, END, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=400, help="requests per calibration stream")
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the 'before' estimator ('' for none)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    section = render(args.requests, args.baseline or None)
    print(section)
    if not args.no_write:
        update_benchmarks_md(section, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
