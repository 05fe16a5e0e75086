"""The command line runs in-process (``cli.main([...])``) with a clean ``CEREBRAS_*`` environment, on
an 80-column terminal (``COLUMNS=80``: rich's width when the output is not a terminal)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL", "CEREBRAS_API_BASE", "CEREBRAS_TIER", "CEREBRAS_PAYGO_CATALOG")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "80")
