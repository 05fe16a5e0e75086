"""Connection pools and their TLS context: what each pool the package builds costs, against httpx's own.

    python benchmarks/tls_context.py [--pools 50] [--no-write]

httpx builds a TLS context per client (the CA bundle parsed again). The package's transports share
one (``shared_ssl_context``). Each side runs in its own fresh subprocess: ``--pools`` pools built
after a first one (the shared context, the imports), RSS growth from ``/proc/self/statm`` divided by
the number of pools, and the median build time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
from pathlib import Path

from _markdown import replace_section

BEGIN, END = "<!-- tls -->", "<!-- /tls -->"

PROBE = """
import gc, json, statistics, sys, time
import httpx
from cerebras_paygo._settings import Settings
from cerebras_paygo._sync.transport import Transport

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

ours = sys.argv[1] == "ours"
make = (lambda i: Transport(Settings(api_key=f"csk-{i}"))) if ours else (lambda i: httpx.Client())
make(-1)
gc.collect()
before = rss()
keep, times = [], []
for i in range(int(sys.argv[2])):
    start = time.perf_counter()
    keep.append(make(i))
    times.append(time.perf_counter() - start)
gc.collect()
print(json.dumps({"kib": (rss() - before) / len(keep) / 1024, "ms": statistics.median(times) * 1000}))
"""


def measure(which: str, pools: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", PROBE, which, str(pools)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    plain, ours = measure("plain", args.pools), measure("ours", args.pools)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"""{BEGIN}
## Connection pools: one shared TLS context (issue 15)

`python benchmarks/tls_context.py` ({stamp}; Python {platform.python_version()}, {platform.system()} \
{platform.machine()}; {args.pools} pools per side, each side in a fresh process).

| per pool | RSS (KiB) | build (ms, median) |
|---|---:|---:|
| `httpx.Client()` (a TLS context each) | {plain["kib"]:.0f} | {plain["ms"]:.2f} |
| the package's `Transport` (`shared_ssl_context()`) | {ours["kib"]:.0f} | {ours["ms"]:.2f} |
{END}"""
    print(section)
    if not args.no_write:
        replace_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md", BEGIN, END, section)


if __name__ == "__main__":
    main()
