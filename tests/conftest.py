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
    """``CEREBRAS_PAYGO_REDIS_URL`` names the test Redis for the Redis suites; clients built without
    ``redis_url=`` must not pick it up, or every test would share state through Redis."""
    import cerebras_paygo._shared

    monkeypatch.setattr(cerebras_paygo._shared, "redis_url_from_env", lambda: None)


@pytest.fixture(autouse=True)
def _fresh_process_state() -> None:
    """The limiter, payment circuits, estimator and spend meter are process-wide by design; tests
    that share an emulator key must not inherit each other's buckets, outages or calibration."""
    shared_limiter().reset()
    reset_payment_circuits()
    shared_estimator().reset()
    shared_spend_meter().reset()
