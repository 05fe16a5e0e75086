"""Redis fixtures: CEREBRAS_PAYGO_REDIS_URL (standalone, DB 15) and CEREBRAS_PAYGO_REDIS_CLUSTER_URL (a cluster).

Every test gets a unique key prefix and deletes its keys afterwards; a target whose variable is
unset is skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

TARGETS = {
    "standalone": "CEREBRAS_PAYGO_REDIS_URL",
    "cluster": "CEREBRAS_PAYGO_REDIS_CLUSTER_URL",
}


def redis_url(target: str) -> str:
    """The URL for ``target`` (skips the test when its variable is unset)."""
    var = TARGETS[target]
    url = os.environ.get(var)
    if not url:
        pytest.skip(f"{var} is not set (e.g. {var}=redis://127.0.0.1:6379/15)")
    return url if target == "standalone" else url.replace("redis://", "redis+cluster://", 1)


@pytest.fixture(params=list(TARGETS), ids=list(TARGETS))
def target_url(request: pytest.FixtureRequest) -> str:
    return redis_url(request.param)


@pytest.fixture
def prefix(target_url: str) -> Iterator[str]:
    from cerebras_paygo._ratelimit import Limiter

    name = f"cptest:{uuid.uuid4().hex[:12]}"
    yield name
    Limiter.from_url(target_url, prefix=name).reset()
