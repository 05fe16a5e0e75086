"""``cerebras-paygo bench``: run the benchmark suites of a source checkout, print their tables.

The suites are the scripts in ``benchmarks/`` (they are not part of the wheel: clone the repository
and ``pip install -e ".[all,dev,bench]"``). Each runs in its own interpreter, as its docstring says;
its Markdown output is rendered with rich. Without ``--quick`` each suite also writes its section of
``BENCHMARKS.md`` and the quota run its plot (``docs/img/quota.png``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cerebras_paygo._cli.common import CLI_EXTRA_NOTE, Column, Printer, print_json

__all__ = ["SUITES", "add_parser", "cmd_bench"]


@dataclass(frozen=True)
class Suite:
    script: str
    quick: tuple[str, ...]
    full: tuple[str, ...]
    about: str
    in_quick: bool = True


SUITES: dict[str, Suite] = {
    "overhead": Suite(
        "overhead.py",
        ("--quick", "--modes", "mock"),
        (),
        "per-call cost: raw httpx, framework floors, ours, the official integrations",
    ),
    "limiter": Suite(
        "limiter_scaling.py",
        ("--reps", "20", "--no-write"),
        (),
        "limiter µs per operation at 1 to 10,000 waiters, memory and Redis",
    ),
    "headers": Suite(
        "headers.py", ("--runs", "3", "--number", "5000", "--no-write"), (), "header parsing per response"
    ),
    "tls": Suite(
        "tls_context.py", ("--pools", "10", "--no-write"), (), "memory per connection pool, one shared TLS context"
    ),
    "limiter-overhead": Suite(
        "limiter_overhead.py",
        ("--pairs", "20000", "--no-write"),
        (),
        "in-memory acquire + settle, alone, saturated, with header sync, async, 4 threads",
        in_quick=False,
    ),
    "estimator": Suite(
        "estimator.py", ("--no-write",), (), "token counts against the true count, per kind", in_quick=False
    ),
    "quota": Suite(
        "quota.py",
        ("--quick", "--contenders", "1,3,6"),
        ("--scenario", "all", "--plot", "docs/img/quota.png"),
        "requests under a tokens-per-minute quota and through a 402 outage, ours vs the peers",
        in_quick=False,
    ),
    "multiprocess": Suite(
        "multiprocess.py", ("--no-write",), (), "4 processes on one key, Redis vs memory", in_quick=False
    ),
}


def benchmarks_dir() -> Path | None:
    here = Path(__file__).resolve().parents[2] / "benchmarks"
    return here if (here / "overhead.py").exists() else None


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the benchmark suites (source checkout) and print their tables",
        description=__doc__,
    )
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute); writes nothing")
    parser.add_argument(
        "--suite",
        action="append",
        choices=sorted(SUITES),
        help="run only these suites (repeatable); default: all (--quick: overhead, limiter, headers)",
    )
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead: the suites (with --list), or each run's command, exit code, time and output",
    )
    parser.set_defaults(func=cmd_bench)


def _suite_record(name: str, suite: Suite) -> dict[str, Any]:
    return {
        "name": name,
        "script": suite.script,
        "about": suite.about,
        "in_quick": suite.in_quick,
        "quick_args": list(suite.quick),
        "full_args": list(suite.full),
    }


def cmd_bench(args: argparse.Namespace) -> int:
    if args.list:
        if args.json:
            print_json({"suites": [_suite_record(name, suite) for name, suite in SUITES.items()]})
        else:
            Printer().table(
                [Column("SUITE"), Column("SCRIPT"), Column("WHAT IT MEASURES", wrap=True)],
                [[name, suite.script, suite.about] for name, suite in SUITES.items()],
            )
        return 0
    folder = benchmarks_dir()
    if folder is None:
        print(
            "cerebras-paygo bench runs the scripts of a source checkout: git clone the repository, then "
            'pip install -e ".[all,dev,bench]" and run it there.',
            file=sys.stderr,
        )
        return 2
    console = None
    if not args.json:
        try:
            from rich.console import Console
        except ImportError:
            print(CLI_EXTRA_NOTE, file=sys.stderr)
        else:
            console = Console(highlight=False)
    names = args.suite or [name for name, suite in SUITES.items() if suite.in_quick or not args.quick]
    failed = 0
    runs: list[dict[str, Any]] = []
    for name in names:
        suite = SUITES[name]
        command = [sys.executable, suite.script, *(suite.quick if args.quick else suite.full)]
        shown = f"cd benchmarks && {' '.join(command[1:])}"
        if not args.json:
            _say(console, f"== {name}: {suite.about}", rule=True)
            _say(console, f"$ {shown}", style="dim")
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        runs.append(
            {
                "suite": name,
                "command": shown,
                "exit_code": done.returncode,
                "elapsed_s": round(elapsed, 1),
                "markdown": done.stdout,
                "stderr_tail": done.stderr[-2000:] if done.returncode else "",
            }
        )
        if done.returncode:
            failed += 1
        if args.json:
            continue
        if console is not None:
            from rich.markdown import Markdown

            console.print(Markdown(done.stdout or "(no output)"))
        else:
            print(done.stdout or "(no output)")
        if done.returncode:
            _say(console, f"{name} failed (exit {done.returncode}):\n{done.stderr[-2000:]}", style="red")
        _say(console, f"{name}: {elapsed:.0f} s", style="dim")
    if args.json:
        print_json({"quick": args.quick, "runs": runs, "failed": failed})
    return 1 if failed else 0


def _say(console: Any, text: str, *, style: str = "", rule: bool = False) -> None:
    if console is None:
        print(text)
    elif rule:
        console.rule(text.removeprefix("== "))
    else:
        console.print(text, style=style or None, markup=False)
