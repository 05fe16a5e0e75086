"""Helpers of the reliability tests (issue 13): what a call may leave behind, read from the real state."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cerebras_paygo._ratelimit import Limiter, shared_limiter


def open_fds() -> int:
    """Open file descriptors of this process (sockets included)."""
    return len(os.listdir("/proc/self/fd"))


def waiters(limiter: Limiter | None = None) -> int:
    """Reservations granted but not started, over every scope of the limiter."""
    rows = (limiter or shared_limiter()).stats()
    return sum(row.waiters for row in rows if row.limit == "tokens_per_minute")


def redis_url() -> str:
    url = os.environ.get("CEREBRAS_PAYGO_REDIS_URL")
    if not url:
        pytest.skip("CEREBRAS_PAYGO_REDIS_URL is not set (e.g. CEREBRAS_PAYGO_REDIS_URL=redis://127.0.0.1:6379/15)")
    return url


@pytest.fixture
def redis_limiter() -> Iterator[Limiter]:
    """A Redis limiter under a unique prefix, its keys deleted afterwards."""
    import uuid

    limiter = Limiter.from_url(redis_url(), prefix=f"cprel:{uuid.uuid4().hex[:12]}")
    yield limiter
    limiter.reset()
