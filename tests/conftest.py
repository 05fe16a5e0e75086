"""Shared test setup: the emulator fixtures (also usable by our users) and process-wide state resets."""

from __future__ import annotations

import pytest

from cerebras_paygo._billing import shared_spend_meter
from cerebras_paygo._context import shared_estimator
from cerebras_paygo._payment import reset_payment_circuits
from cerebras_paygo._ratelimit import shared_limiter

pytest_plugins = ["cerebras_paygo.emulator.pytest_plugin"]


@pytest.fixture(autouse=True)
def _no_implicit_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CEREBRAS_PAYGO_REDIS_URL`` names the test Redis (tests/redis, tests/multiprocess read it at
    import); clients must not pick it up implicitly, or every test would share state through Redis."""
    monkeypatch.delenv("CEREBRAS_PAYGO_REDIS_URL", raising=False)


@pytest.fixture(autouse=True)
def _fresh_process_state() -> None:
    """The limiter, payment circuits, estimator and spend meter are process-wide by design; tests
    that share an emulator key must not inherit each other's buckets, outages or calibration."""
    shared_limiter().reset()
    reset_payment_circuits()
    shared_estimator().reset()
    shared_spend_meter().reset()
