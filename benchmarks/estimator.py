"""Benchmark of the token estimator: speed, and error against reference token counts.

Run ``python benchmarks/estimator.py`` (``--requests N``, ``--no-write``). It prints a report and
updates the ``<!-- estimator -->`` section of ``BENCHMARKS.md`` (other sections are left alone).

Speed: ``heuristic_tokens`` per short message, and ``TokenEstimator.estimate_request`` per request
of 10 messages, cold (text cache cleared before each call) and warm (a chat history sent again).

Error: a deterministic stream of chat requests (English prose from stdlib docstrings, Python code
from stdlib sources, JSON tool results, a few other languages, tools on some requests) is counted by
each reference available; the estimator sees the stream in order and ``observe``s each reference
count after estimating, as the gateway does with ``usage.prompt_tokens``. Reported: the
token-weighted mean absolute error, the median and 95th percentile of ``estimate / actual``, and how
often the estimate is below the real count, for the prior (no calibration) and the calibrated
estimator over the last half of the stream.

References:
- the emulator's tokenizer (``cerebras_paygo/emulator/tokens.py``, ``count_prompt``), when present;
- o200k (gpt-oss's vocabulary) through ``bpe-openai`` or a cached ``tiktoken`` file, when importable
  (optional; neither is a dependency). Only message texts are compared there, without a template.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import importlib
import inspect
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cerebras_paygo.context import TemplateProfile, TokenEstimator, heuristic_tokens
from cerebras_paygo.wire import ChatCompletionRequest, FunctionCall, Message, ToolCall

BEGIN = "<!-- estimator -->"
END = "<!-- /estimator -->"
ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-oss-120b"

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
            if isinstance(doc, str) and 60 < len(doc) < 2500 and not attr.startswith("_"):
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


def _per_call_us(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e6


def speed() -> dict[str, float]:
    short = "Can you summarize the main differences between TCP and UDP for a networking class? Keep it short."
    estimator = TokenEstimator()
    messages = [Message(role="system", content="You are a helpful assistant. Answer briefly.")]
    messages += [Message(role="user" if i % 2 else "assistant", content=f"{short} ({i})") for i in range(9)]
    request = ChatCompletionRequest(model=MODEL, messages=messages)
    long_text = " ".join(corpus()["prose"])[:100_000]

    def cold() -> None:
        estimator._text_cache.clear()  # measure the uncached path
        estimator.estimate_request(request)

    return {
        "message_heuristic": _per_call_us(lambda: heuristic_tokens(short), 20_000),
        "request_cold": _per_call_us(cold, 3_000),
        "request_warm": _per_call_us(lambda: estimator.estimate_request(request), 3_000),
        "ns_per_char_long": _per_call_us(lambda: heuristic_tokens(long_text), 20) * 1000 / len(long_text),
        "short_chars": float(len(short)),
    }


# --- error -----------------------------------------------------------------------------------


def _emulator_counter() -> Callable[[ChatCompletionRequest], int] | None:
    try:
        tokens = importlib.import_module("cerebras_paygo.emulator.tokens")
    except ImportError:
        return None
    count_prompt = tokens.count_prompt
    return lambda request: int(count_prompt(request.to_payload()))


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


def _stats(pairs: list[tuple[int, int]]) -> dict[str, float]:
    ratios = sorted(e / a for e, a in pairs)
    return {
        "mae": sum(abs(e - a) for e, a in pairs) / sum(a for _, a in pairs),
        "p50": statistics.median(ratios),
        "p95": ratios[min(len(ratios) - 1, int(0.95 * len(ratios)))],
        "under": sum(e < a for e, a in pairs) / len(pairs),
    }


def calibration_run(
    stream: list[ChatCompletionRequest], reference: Callable[[ChatCompletionRequest], int], **kwargs: Any
) -> dict[str, dict[str, float]]:
    estimator, prior = TokenEstimator(**kwargs), TokenEstimator(**kwargs)
    calibrated: list[tuple[int, int]] = []
    uncalibrated: list[tuple[int, int]] = []
    for request in stream:
        actual = reference(request)
        estimate = estimator.estimate_request(request)
        calibrated.append((estimate, actual))
        uncalibrated.append((prior.estimate_request(request), actual))
        estimator.observe(MODEL, estimate, actual)
    half = len(stream) // 2
    stats = estimator.calibration(MODEL)
    return {
        "prior": _stats(uncalibrated[half:]),
        "first10": _stats(calibrated[:10]),
        "calibrated": _stats(calibrated[half:]),
        "factor": {"factor": stats.factor, "mean": stats.mean_ratio, "sd": stats.sd_ratio},
    }


def text_errors(texts: dict[str, list[str]], count: Callable[[str], int]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind, items in texts.items():
        pairs = [(max(1, round(heuristic_tokens(t))), count(t)) for t in items[:400] if count(t) > 0]
        out[kind] = {**_stats(pairs), "n": float(len(pairs))}
    return out


# --- report ----------------------------------------------------------------------------------


def _row(label: str, s: dict[str, float]) -> str:
    return f"| {label} | {s['mae'] * 100:.1f}% | {s['p50']:.3f} | {s['p95']:.3f} | {s['under'] * 100:.0f}% |"


def render(n_requests: int) -> str:
    texts = corpus()
    stream = requests_stream(texts, n_requests)
    sp = speed()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## Token estimator: speed and error",
        "",
        f"`python benchmarks/estimator.py` ({now}; Python {platform.python_version()}, {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs; best of 5 runs).",
        "",
        "| what | time |",
        "|---|---:|",
        f"| `heuristic_tokens`, one short message ({int(sp['short_chars'])} chars) "
        f"| {sp['message_heuristic']:.2f} µs |",
        f"| `estimate_request`, 10 messages, cold (no cached text) | {sp['request_cold']:.1f} µs |",
        f"| `estimate_request`, 10 messages, warm (history sent again) | {sp['request_warm']:.1f} µs |",
        f"| long text (100,000 chars) | {sp['ns_per_char_long']:.2f} ns/char |",
        "",
        f"Error on a stream of {n_requests} chat requests (prose, code, JSON tool results, other languages; tools "
        "on one in four); the calibrated estimator `observe`s each reference count after estimating. "
        "`mae` is the token-weighted mean absolute error; `est/actual` the ratio's median and 95th percentile; "
        "`under` how often the estimate is below the real count. Prior and calibrated rows are over the last "
        "half of the stream.",
        "",
    ]
    emulator = _emulator_counter()
    header = ["| estimator | mae | est/actual p50 | est/actual p95 | under |", "|---|---:|---:|---:|---:|"]
    if emulator is not None:
        default = calibration_run(stream, emulator)
        matched_profile = TemplateProfile(
            request=3, message=4, name=1, tool_call=0, tool_result=0, tools=1, tool=0, response_format=0
        )
        matched = calibration_run(stream, emulator, profiles={"gpt-oss": matched_profile})
        lines += [
            "Against the emulator's tokenizer (`cerebras_paygo/emulator/tokens.py`, `count_prompt`):",
            "",
            *header,
            _row("prior (no calibration)", default["prior"]),
            _row("first 10 requests, calibrating", default["first10"]),
            _row("calibrated", default["calibrated"]),
            _row("calibrated, template profile matched to the emulator", matched["calibrated"]),
            "",
            f"Learned factor {default['factor']['factor']:.3f} (mean ratio {default['factor']['mean']:.3f}, "
            f"sd {default['factor']['sd']:.3f}). The emulator counts one token per 4 letters of a word, about "
            "1.4x what o200k does on English, so the prior under-counts it until the first responses arrive; "
            "its template (3 + 4 per message) is lighter than harmony's (~56 + 5 per message), which the "
            "default profile assumes.",
            "",
        ]
    else:
        lines += ["(The emulator's tokenizer is not present: no emulator figures.)", ""]
    o200k = _o200k_counter()
    if o200k is not None:
        name, count = o200k
        per_kind = text_errors(texts, count)
        lines += [
            f"Texts alone (no template) against o200k, gpt-oss's vocabulary ({name}; optional, not a dependency); "
            "the heuristic's best-fit count, before the estimator's 1.2 prior margin:",
            "",
            "| texts | n | mae | est/actual p50 | est/actual p95 | under |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for kind, s in per_kind.items():
            lines.append(
                f"| {kind} | {int(s['n'])} | {s['mae'] * 100:.1f}% | {s['p50']:.3f} | {s['p95']:.3f} | "
                f"{s['under'] * 100:.0f}% |"
            )

        def o200k_request(request: ChatCompletionRequest) -> int:
            total = 56 + 5 * len(request.messages) + (count(json.dumps(request.tools)) + 32 if request.tools else 0)
            for message in request.messages:
                total += count(message.text())
                for call in message.tool_calls or ():
                    total += 8 + count(call.function.name or "") + count(call.function.arguments or "")
            return total

        o200k_stream = calibration_run(stream, o200k_request)
        lines += [
            "",
            "Whole requests against o200k counts of the texts, tools and tool calls plus a harmony-like template "
            "(56 + 5 per message):",
            "",
            *header,
            _row("prior (no calibration)", o200k_stream["prior"]),
            _row("calibrated", o200k_stream["calibrated"]),
            "",
        ]
    else:
        lines += ["(No o200k tokenizer importable: `pip install bpe-openai` to add those figures.)", ""]
    lines.append(END)
    return "\n".join(lines)


def update_benchmarks_md(section: str, path: Path) -> None:
    """Replace our section between the markers (or append it); leave the rest of the file as it is."""
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    begin, end = text.find(BEGIN), text.find(END)
    if begin != -1 and end != -1 and end > begin:
        text = text[:begin] + section + text[end + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".BENCHMARKS.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=400, help="requests in the calibration stream")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    section = render(args.requests)
    print(section)
    if not args.no_write:
        update_benchmarks_md(section, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
