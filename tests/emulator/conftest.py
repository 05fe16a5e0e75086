"""Every emulator test also checks that the emulator logged no error (a generator bug falls back silently)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _no_emulator_errors(caplog):
    caplog.set_level(logging.WARNING, logger="cerebras_paygo.emulator")
    yield
    errors = [r for r in caplog.records if r.name == "cerebras_paygo.emulator" and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
