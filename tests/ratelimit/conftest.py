"""Fixtures of the rate-limiter tests: an injected clock (no sleeping) and a scope."""

from __future__ import annotations

import random

import pytest

from cerebras_paygo._ratelimit import MemoryLimiter, Scope


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> MemoryLimiter:
    return MemoryLimiter(clock=clock, rng=random.Random(1234))


@pytest.fixture
def scope() -> Scope:
    return Scope("https://api.cerebras.ai/v1", "0123456789abcdef", "gpt-oss-120b")
