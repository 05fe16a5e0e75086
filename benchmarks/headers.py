"""Parsing one response's headers: the ResponseMeta single pass against the code it replaced.

    python benchmarks/headers.py [--runs 7] [--number 20000] [--no-write]

"before" is a verbatim copy of the edge as it was (``RateLimitSnapshot.from_headers`` doing 18
``httpx.Headers.get`` calls, each a linear scan, plus ``request_id_of`` and ``dict(headers)``), not
counting ``_retry``'s second parse of retry-after and x-should-retry on errors. "after" is
``ResponseMeta.from_raw(status, response.headers.raw)``, which yields all of it and those two. Both run on the
same ``httpx.Response`` with realistic Cerebras headers. Best of ``--runs`` timings of
``--number`` calls each, with ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from _markdown import replace_section

from cerebras_paygo._http import meta_of
from cerebras_paygo._wire import RateLimitSnapshot

BEGIN, END = "<!-- headers -->", "<!-- /headers -->"
HEADERS = [
    ("date", "Mon, 24 Nov 2026 02:07:00 GMT"),
    ("content-type", "application/json"),
    ("content-length", "812"),
    ("connection", "keep-alive"),
    ("server", "cloudflare"),
    ("cf-ray", "8e0c1a2b3c4d5e6f-FRA"),
    ("x-request-id", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
    ("inference-id", "chatcmpl-6f0c1a2b"),
    ("x-ratelimit-limit-requests-day", "14400"),
    ("x-ratelimit-limit-tokens-minute", "60000"),
    ("x-ratelimit-remaining-requests-day", "14399"),
    ("x-ratelimit-remaining-tokens-minute", "59000"),
    ("x-ratelimit-reset-requests-day", "33011.382867097855"),
    ("x-ratelimit-reset-tokens-minute", "11.382867097854614"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("cf-cache-status", "DYNAMIC"),
    ("vary", "accept-encoding"),
    ("alt-svc", 'h3=":443"; ma=86400'),
]


def _put_number(target: dict[str, Any], key: str, raw: str | None, kind: type) -> None:
    if raw is None:
        return
    try:
        target[key] = kind(float(raw)) if kind is int else kind(raw)
    except ValueError:
        return


def before(response: httpx.Response) -> tuple[Any, ...]:
    """What the edge did per response before ResponseMeta (7c375f3), plus the retry layer's re-parse."""
    headers = response.headers
    limit: dict[str, int] = {}
    remaining: dict[str, int] = {}
    reset: dict[str, float] = {}
    for kind in ("requests", "tokens"):
        for window in ("minute", "hour", "day"):
            key = f"{kind}-{window}"
            _put_number(limit, key, headers.get(f"x-ratelimit-limit-{key}"), int)
            _put_number(remaining, key, headers.get(f"x-ratelimit-remaining-{key}"), int)
            _put_number(reset, key, headers.get(f"x-ratelimit-reset-{key}"), float)
    snapshot = RateLimitSnapshot(limit, remaining, reset, time.monotonic(), time.time())
    request_id = headers.get("x-request-id") or headers.get("cf-ray")
    plain: Mapping[str, str] = dict(headers)
    return snapshot, request_id, plain


def after(response: httpx.Response) -> Any:
    return meta_of(response)


def best(fn: Callable[[httpx.Response], Any], response: httpx.Response, runs: int, number: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(number):
            fn(response)
        timings.append((time.perf_counter() - start) / number)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    response = httpx.Response(200, headers=HEADERS, content=b"{}")
    meta = after(response)
    old = before(response)
    assert meta.rate_limits.limit == old[0].limit and meta.rate_limits.remaining == old[0].remaining
    assert meta.rate_limits.reset == old[0].reset and meta.request_id == old[1] and dict(meta.headers) == old[2]
    b = best(before, response, args.runs, args.number) * 1e6
    a = best(after, response, args.runs, args.number) * 1e6
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"""{BEGIN}
## Response headers: one `ResponseMeta` pass

`python benchmarks/headers.py` ({stamp}; Python {platform.python_version()}, {platform.system()} {platform.machine()}; \
best of {args.runs} runs of {args.number:,} calls; {len(HEADERS)} realistic Cerebras response headers).

| per response | µs | ratio |
|---|---:|---:|
| before: 18 `Headers.get` scans, `request_id_of`, `dict(headers)` | {b:.2f} | 1.00 |
| after: `ResponseMeta.from_raw(status, headers.raw)` (that + retry-after, x-should-retry) | {a:.2f} | {a / b:.2f} |
{END}"""
    print(section)
    if not args.no_write:
        replace_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md", BEGIN, END, section)


if __name__ == "__main__":
    main()
