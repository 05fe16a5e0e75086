"""A deterministic corpus of six kinds of text, built from what Python installs or generated here.

No download: prose is the standard library's docstrings, code its sources, the other kinds are
generated from a seeded ``random.Random`` (JSON tool results, READMEs full of badge URLs and HTML,
hex dumps and number tables) or assembled from the sentences below (CJK). ``corpus(split)``
returns samples by kind; ``"fit"`` and ``"held"`` are disjoint (the heuristic's coefficients
were fitted on ``"fit"``; the tests check the band on ``"held"``).

Used by ``tests/context`` and ``benchmarks/estimator.py``.
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import importlib
import inspect
import io
import json
import os
import random
import string
from pathlib import Path
from typing import Any, Literal

Split = Literal["fit", "held"]
KINDS = ("prose", "code", "json", "markup", "numbers", "cjk")


_CJK_SENTENCES = [
    "客户端在发送下一个请求之前会等待每分钟的令牌配额恢复。",
    "服务器拒绝了这个请求，因为提示和回答的长度超过了上下文窗口。",
    "我们在本地估计令牌数量，并在收到响应后用真实的用量进行校准。",
    "免费版的上下文窗口只有八千多个令牌，所以精确计数非常重要。",
    "如果估计过高，用户的突发容量会减半，直到退款到达为止。",
    "这个库为每个模型维护一个独立的校准状态，并且是线程安全的。",
    "请用简短的中文回答下面的问题，并列出三个要点。",
    "北京今天天气晴朗，最高气温二十五度，适合户外活动。",
    "クライアントは次のリクエストを送る前に、一分あたりのトークン枠が回復するのを待ちます。",
    "サーバーはコンテキストウィンドウを超えるリクエストを拒否します。",
    "この見積もりは実際の使用量で毎回補正されるので、時間とともに正確になります。",
    "東京の天気は曇りのち雨で、夕方から風が強くなる見込みです。",
    "日本語の文章は漢字とひらがなとカタカナが混ざっています。",
    "클라이언트는 다음 요청을 보내기 전에 분당 토큰 한도가 회복될 때까지 기다립니다.",
    "서버는 컨텍스트 창을 초과하는 요청을 거부합니다.",
    "무료 등급의 컨텍스트 창은 팔천 개 정도의 토큰으로 제한됩니다.",
    "오늘 서울의 날씨는 맑고 기온은 이십 도입니다.",
    "模型的回答必须使用 JSON 格式，字段包括 name、age 和 city。",
    "错误代码 429 表示请求过多，请在 Retry-After 秒之后重试。",
    "ファイル config.yaml の timeout を 30 秒に設定してください。",
]


@functools.lru_cache(maxsize=1)
def _docstrings() -> tuple[str, ...]:
    out: list[str] = []
    for name in ("os", "json", "re", "asyncio", "collections", "pathlib", "argparse", "logging", "threading",
                 "subprocess", "functools", "itertools", "datetime", "decimal", "statistics", "random",
                 "email.message", "http.client", "urllib.request", "unittest", "dataclasses", "textwrap",
                 "difflib", "inspect", "shutil", "tempfile", "zipfile", "csv", "socket"):  # fmt: skip
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, obj in sorted(vars(module).items()):
            doc = getattr(obj, "__doc__", None)
            own = getattr(obj, "__module__", None) == module.__name__
            if own and isinstance(doc, str) and len(doc) > 80 and not attr.startswith("_"):
                out.append(inspect.cleandoc(doc))
    return tuple(sorted(set(out)))


def _segment(lines: list[str], node: ast.stmt) -> str:
    """``ast.get_source_segment`` with the source split once (it splits the file per node: minutes)."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset :].decode()
    tail = lines[last].encode()[: node.end_col_offset].decode()
    return head + "".join(lines[first + 1 : last]) + tail


@functools.lru_cache(maxsize=1)
def _code() -> tuple[str, ...]:
    out: list[str] = []
    folder = Path(os.__file__).parent
    for path in sorted(folder.glob("*.py"))[:120]:
        try:
            source = path.read_text("utf-8")
            tree = ast.parse(source)
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        lines = io.StringIO(source, newline="").readlines()  # the lines ast numbers (no split at \f)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                segment = _segment(lines, node)
                if segment and 120 < len(segment) < 12000:
                    out.append(segment)
    return tuple(out)


def _words(rng: random.Random) -> list[str]:
    words = sorted({w.strip(".,:;()`'\"").lower() for d in _docstrings()[:300] for w in d.split() if w.isalpha()})
    return words or ["value"]


def _json_sample(rng: random.Random, words: list[str]) -> str:
    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 3 or roll < 0.45:
            return rng.choice(
                [
                    rng.randint(0, 10**7),
                    round(rng.random() * 1000, rng.randint(1, 4)),
                    " ".join(rng.choices(words, k=rng.randint(1, 8))),
                    rng.choice(words),
                    True,
                    None,
                    f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
                ]
            )
        if roll < 0.75:
            return {
                rng.choice(words) + rng.choice(["", "_id", "Name", "_at"]): value(depth + 1)
                for _ in range(rng.randint(1, 6))
            }
        return [value(depth + 1) for _ in range(rng.randint(1, 6))]

    doc = {rng.choice(words): value(0) for _ in range(rng.randint(2, 12))}
    return json.dumps(doc, indent=rng.choice([None, None, 2]), ensure_ascii=False)


def _badge(rng: random.Random, words: list[str]) -> str:
    label, message = rng.choice(words), rng.choice(words) + "-" + rng.choice(["brightgreen", "blue", "red", "orange"])
    style = rng.choice(["flat", "flat-square", "for-the-badge"])
    logo = base64.b64encode(rng.randbytes(rng.randint(12, 60))).decode()
    host = rng.choice(["img.shields.io", "github.com", "codecov.io", "badge.fury.io", "pypi.org"])
    url = f"https://{host}/badge/{label}-{message}?style={style}&logo=data:image/svg%2bxml;base64,{logo}"
    link = f"https://github.com/{rng.choice(words)}/{rng.choice(words)}-{rng.choice(words)}/actions?query=branch%3Amain"
    return f"[![{label}]({url})]({link})"


def _markup_sample(rng: random.Random, words: list[str]) -> str:
    lines = [f"# {rng.choice(words).title()}-{rng.choice(words)}", ""]
    lines += [_badge(rng, words) for _ in range(rng.randint(2, 12))]
    for _ in range(rng.randint(1, 6)):
        lines.append("")
        roll = rng.random()
        if roll < 0.3:
            lines.append(
                f'<p align="center"><img src="https://raw.githubusercontent.com/{rng.choice(words)}/'
                f'{rng.choice(words)}/main/assets/{rng.choice(words)}.png" width="{rng.randint(80, 640)}"></p>'
            )
        elif roll < 0.6:
            lines.append(" ".join(rng.choices(words, k=rng.randint(8, 40))) + ".")
        elif roll < 0.8:
            sha = hashlib.sha1(rng.randbytes(8)).hexdigest()
            lines.append(
                f"- [{rng.choice(words)}](https://example.org/{rng.choice(words)}/{sha}#L{rng.randint(1, 999)})"
            )
        else:
            lines.append(
                f'<a href="https://{rng.choice(words)}.readthedocs.io/en/latest/?badge=latest">'
                f'<img alt="docs" src="https://readthedocs.org/projects/{rng.choice(words)}/badge/"/></a>'
            )
    return "\n".join(lines)


def _numbers_sample(rng: random.Random) -> str:
    roll = rng.random()
    rows = rng.randint(4, 80)
    if roll < 0.35:  # a hex dump
        out = []
        for row in range(rows):
            data = rng.randbytes(16)
            hexes = " ".join(f"{b:02x}" for b in data)
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in data)
            out.append(f"{row * 16:08x}  {hexes}  |{text}|")
        return "\n".join(out)
    if roll < 0.55:  # hashes and ids
        return "\n".join(
            f"{hashlib.sha256(rng.randbytes(8)).hexdigest()[: rng.choice([7, 12, 40, 64])]} "
            f"{rng.choice(['0x', ''])}{rng.getrandbits(64):x} {rng.randint(0, 10**9)}"
            for _ in range(rows)
        )
    if roll < 0.8:  # a numeric CSV
        cols = rng.randint(3, 9)
        head = ",".join(f"col{i}" for i in range(cols))
        body = [",".join(f"{rng.uniform(-1e4, 1e4):.{rng.randint(0, 6)}f}" for _ in range(cols)) for _ in range(rows)]
        return "\n".join([head, *body])
    # a markdown table of integers and percentages
    out = ["| id | count | share | delta |", "|---:|---:|---:|---:|"]
    out += [f"| {rng.randint(1, 99999)} | {rng.randint(0, 10**6):,} | {rng.random() * 100:.2f}% | "
            f"{rng.choice('+-')}{rng.random():.3f} |" for _ in range(rows)]  # fmt: skip
    return "\n".join(out)


def _cjk_sample(rng: random.Random) -> str:
    count = rng.randint(2, 40)
    return "".join(rng.choice(_CJK_SENTENCES) + rng.choice(["", "", "\n", " "]) for _ in range(count))


def _prose_sample(rng: random.Random, docs: tuple[str, ...]) -> str:
    return "\n\n".join(rng.choice(docs) for _ in range(rng.choice([1, 1, 2, 4, 8])))


def _code_sample(rng: random.Random, code: tuple[str, ...]) -> str:
    return "\n\n\n".join(rng.choice(code) for _ in range(rng.choice([1, 1, 2, 4])))


@functools.lru_cache(maxsize=4)
def corpus(split: Split = "held", per_kind: int = 40) -> dict[str, tuple[str, ...]]:
    """``per_kind`` samples of each kind in ``KINDS``; ``"fit"`` and ``"held"`` share no source text or seed."""
    parity = 0 if split == "fit" else 1
    docs = tuple(d for i, d in enumerate(_docstrings()) if i % 2 == parity)
    code = tuple(c for i, c in enumerate(_code()) if i % 2 == parity)
    rng = random.Random(f"corpus-{split}")
    words = _words(rng)
    out: dict[str, tuple[str, ...]] = {
        "prose": tuple(_prose_sample(rng, docs) for _ in range(per_kind)),
        "code": tuple(_code_sample(rng, code) for _ in range(per_kind)),
        "json": tuple(_json_sample(rng, words) for _ in range(per_kind)),
        "markup": tuple(_markup_sample(rng, words) for _ in range(per_kind)),
        "numbers": tuple(_numbers_sample(rng) for _ in range(per_kind)),
        "cjk": tuple(_cjk_sample(rng) for _ in range(per_kind)),
    }
    return out


def tiny_texts() -> tuple[str, ...]:
    """Short chat messages (a few tokens): where relative errors are largest."""
    return (
        "hi", "ok", "Thanks!", "What is 2+2?", "Say hello.", "Name a color.", "yes", "No, thanks.",
        "Translate 'cat' to French.", "你好", "ありがとう", "42", "0xdeadbeef", "https://example.com",
        "{}", '{"a": 1}', "Reply with one word: yes or no?", string.ascii_letters, "  indented\n\tline",
    )  # fmt: skip


def sized_text(kind: str, target_tokens: int, count: Any, seed: int = 0) -> str:
    """A text of ``kind`` about ``target_tokens`` long by ``count`` (a ``str -> int``), from the held corpus."""
    rng = random.Random(f"sized-{kind}-{seed}")
    pool = corpus("held")[kind]
    parts: list[str] = []
    total = 0
    while total < target_tokens:
        text = rng.choice(pool)
        parts.append(text)
        total = count("\n\n".join(parts))
    text = "\n\n".join(parts)
    # trim to the target: drop characters from the end (bisect on length)
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= target_tokens:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]
