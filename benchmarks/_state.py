"""What the single-process benchmarks share about the package's process-wide state."""

from __future__ import annotations

import os


def in_process_state() -> None:
    """Keep the process-wide state (limiter, payment circuits, spend, estimator) in memory.

    A Redis URL in the environment (``cerebras-paygo bench`` sets one for its Redis suites) would put
    every call's limiter, circuit and spend step on Redis, and share that state between contenders.
    """
    os.environ.pop("CEREBRAS_PAYGO_REDIS_URL", None)
