"""Token counts a user can trust (issue 14): the band against the true o200k_harmony count, per kind of text.

    python benchmarks/estimator.py [--runs 5] [--no-write]

The corpus is ``tests/context/corpus.py`` (deterministic, no download): prose, code, JSON, markup
with URLs, hex/number tables, CJK; its ``"held"`` half is measured, its ``"fit"`` half calibrates.
Each sample is one gpt-oss request (a system message, the sample as the user turn); its true
prompt count is the harmony rendering encoded with o200k_harmony (quicktok-v1, the ``[tokenizer]``
extra, which this benchmark needs).

Reported per kind: with the tokenizer, ``band.high / true`` (exact: 1.000); without it
(``TokenEstimator(vocabularies=False)``), the high end's and low end's ratio to the true count
before calibration (a fresh estimator) and after calibration (the ``fit`` half of the kind
``observe``d with its true counts first), and how often the band misses the true count (``high <
true``: a reservation too small; ``low > true``: a refusal that was not certain). Then the cost
per call of each counter (best of ``--runs``, ``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _markdown import replace_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cerebras_paygo._context import TokenEstimator  # noqa: E402
from cerebras_paygo._context.heuristic import heuristic_band  # noqa: E402
from cerebras_paygo._context.templates import render_prompt  # noqa: E402
from cerebras_paygo._wire import ChatCompletionRequest, Message  # noqa: E402
from tests.context.corpus import KINDS, corpus  # noqa: E402

BEGIN, END = "<!-- estimator -->", "<!-- /estimator -->"
MODEL = "gpt-oss-120b"
SYSTEM = Message(role="system", content="You are a careful assistant.")


def encoding() -> Any:
    try:
        import quicktok
    except ImportError:
        sys.exit("this benchmark needs the [tokenizer] extra: pip install 'cerebras-paygo[tokenizer]'")
    return quicktok.get_encoding("o200k_harmony")


def requests_of(texts: list[str]) -> list[ChatCompletionRequest]:
    return [ChatCompletionRequest(model=MODEL, messages=[SYSTEM, Message(role="user", content=t)]) for t in texts]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def accuracy(enc: Any) -> list[dict[str, Any]]:
    rows = []
    held, fit = corpus("held"), corpus("fit")
    for kind in KINDS:
        requests = requests_of(held[kind])
        truth = [len(enc.encode_with_special(render_prompt(r))) for r in requests]
        exact = TokenEstimator()
        exact_ratios = [exact.band(r).high / t for r, t in zip(requests, truth, strict=True)]
        fresh = TokenEstimator(vocabularies=False)
        before = [fresh.band(r) for r in requests]
        calibrated = TokenEstimator(vocabularies=False)
        for request in requests_of(fit[kind]):
            estimate = calibrated.band(request).high
            calibrated.observe(MODEL, estimate, len(enc.encode_with_special(render_prompt(request))))
        after = [calibrated.band(r) for r in requests]
        rows.append(
            {
                "kind": kind,
                "n": len(requests),
                "true_median": statistics.median(truth),
                "exact": (min(exact_ratios), max(exact_ratios)),
                "before": summary(before, truth),
                "after": summary(after, truth),
            }
        )
    return rows


def summary(bands: list[Any], truth: list[int]) -> dict[str, float]:
    high = [b.high / t for b, t in zip(bands, truth, strict=True)]
    low = [b.low / t for b, t in zip(bands, truth, strict=True)]
    return {
        "high_p50": statistics.median(high),
        "high_p95": quantile(high, 0.95),
        "high_min": min(high),
        "low_p50": statistics.median(low),
        "low_max": max(low),
        "under": sum(h < 1.0 for h in high) / len(high),
        "over": sum(lo > 1.0 for lo in low) / len(low),
    }


def best_us(fn: Callable[[], object], number: int, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def costs(enc: Any, runs: int) -> list[tuple[str, float, float]]:
    """(what, µs with the tokenizer, µs with the heuristic)."""
    texts = corpus("held")["prose"][:10]
    history = [SYSTEM] + [Message(role="user" if i % 2 else "assistant", content=t) for i, t in enumerate(texts)]
    request = ChatCompletionRequest(model=MODEL, messages=history)
    chars = sum(len(t) for t in texts)
    exact, heuristic = TokenEstimator(), TokenEstimator(vocabularies=False)
    out = []

    def cold(estimator: TokenEstimator) -> Callable[[], object]:
        def run() -> object:
            estimator._text_cache.clear()
            return estimator.band(request)

        return run

    out.append((f"`band`, 10 messages ({chars:,} chars), cold", best_us(cold(exact), 50, runs),
                best_us(cold(heuristic), 50, runs)))  # fmt: skip
    out.append(("`band`, same 10 messages again (warm text cache)", best_us(lambda: exact.band(request), 200, runs),
                best_us(lambda: heuristic.band(request), 200, runs)))  # fmt: skip
    text = texts[0]
    label = f"one text alone, {len(text)} chars (o200k `encode_ordinary` / `heuristic_band`)"
    out.append((label, best_us(lambda: enc.encode_ordinary(text), 500, runs),
                best_us(lambda: heuristic_band(text), 500, runs)))  # fmt: skip
    remembered = TokenEstimator(vocabularies=False)
    remembered.remember_server_count(MODEL, request, 4000)
    out.append(("`band` of a prompt the server counted (digest + LRU hit)", float("nan"),
                best_us(lambda: remembered.band(request), 200, runs)))  # fmt: skip
    return out


def render(rows: list[dict[str, Any]], cost_rows: list[tuple[str, float, float]], runs: int) -> str:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    env = f"Python {platform.python_version()}, {platform.system()} {platform.machine()}"
    lines = [
        BEGIN,
        "## Token counts: the band against the true count (issue 14)",
        "",
        f"`python benchmarks/estimator.py` ({when}; {env}; quicktok-v1 o200k_harmony as the truth). One gpt-oss "
        "request per sample of `tests/context/corpus.py` (its `held` half; a system message plus the sample), true "
        'count = the harmony rendering encoded with o200k_harmony. "after" = calibrated on the kind\'s `fit` half '
        "first (`observe` with its true counts). `under` = high end below the true count (a reservation too "
        "small); `low>true` = low end above it (a refusal that would not be certain).",
        "",
        "| kind | n | true p50 | with tokenizer: high/true | no tokenizer, before: high p50 / p95 / min | "
        "low p50 / max | under | low>true | after calibration: high p50 / p95 / min | low max | under |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        b, a = row["before"], row["after"]
        lo, hi = row["exact"]
        exact = f"{lo:.3f}" if lo == hi else f"{lo:.3f}-{hi:.3f}"
        lines.append(
            f"| {row['kind']} | {row['n']} | {row['true_median']:,.0f} | {exact} | "
            f"{b['high_p50']:.3f} / {b['high_p95']:.3f} / {b['high_min']:.3f} | {b['low_p50']:.3f} / "
            f"{b['low_max']:.3f} | {b['under']:.0%} | {b['over']:.0%} | {a['high_p50']:.3f} / {a['high_p95']:.3f} / "
            f"{a['high_min']:.3f} | {a['low_max']:.3f} | {a['under']:.0%} |"
        )
    lines += [
        "",
        f"Cost per call (best of {runs} runs):",
        "",
        "| what | with the tokenizer (µs) | heuristic (µs) |",
        "|---|---:|---:|",
    ]
    for what, with_tok, heur in cost_rows:
        first = "—" if with_tok != with_tok else f"{with_tok:.1f}"
        lines.append(f"| {what} | {first} | {heur:.1f} |")
    lines += [
        "",
        "A prompt the server answered with `context_length_exceeded` is remembered with the server's count "
        "(per model, an LRU of 256 prompt digests): the same prompt is then counted exactly with either counter.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    enc = encoding()
    section = render(accuracy(enc), costs(enc, args.runs), args.runs)
    print(section)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", BEGIN, END, section)


if __name__ == "__main__":
    main()
