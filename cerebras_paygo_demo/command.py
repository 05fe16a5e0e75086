"""The ``demo`` subcommand's registration, loaded by the core CLI from the ``cerebras_paygo.commands``
entry point group. Kept light: the demo itself (``cerebras_paygo_demo.demo``) loads when it runs.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``cerebras-paygo`` sub-parsers (the ``cerebras_paygo.commands`` hook)."""
    from cerebras_paygo_demo import demo

    parser = subparsers.add_parser(
        "demo",
        help="see it work: a LangChain batch over a small quota and a 402 outage on the embedded emulator, 0 429s",
        description=(
            "Start the embedded emulator with a small tokens-per-minute quota, answer a batch of questions "
            "through prompt | ChatCerebras | StrOutputParser (abatch) with a live progress bar, and summarize: "
            "server 429s (0), time held by the limiter, tokens, cost and the limiter's buckets; on the emulator the "
            "org's credit runs out (402) at the first answer and auto-recharge tops it up 1 s later, and no request "
            "is lost. Then stream one answer, show a prompt over the free tier's window failing before any request, "
            "and, when LlamaIndex is installed, answer from the same documents with a LlamaIndex query engine. "
            "--no-emulator runs it on the real API from CEREBRAS_API_KEY."
        ),
    )
    demo.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cerebras_paygo_demo import demo

    return demo.run(args)
