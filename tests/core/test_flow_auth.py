"""A 401 opens the key's circuit: the callers queued behind the first request, and later ones,
fail with the same AuthenticationError without sending (driven step by step, no sockets)."""

from __future__ import annotations

import pytest

from cerebras_paygo import errors
from cerebras_paygo._flow import CallFlow
from cerebras_paygo._payment import REJECTED_FOR
from cerebras_paygo._steps import CheckCircuit, Send
from tests.core.test_flow import Harness, make


def _wrong_key() -> errors.AuthenticationError:
    return errors.AuthenticationError("Wrong API Key", status_code=401, code="wrong_api_key", headers={})


def _next_flow(first: Harness) -> Harness:
    flow = CallFlow(first.flow.config, first.flow.plan_for(first.flow.config.primary).request)
    return Harness(flow, first.clock, first.limiter, first.circuit, first.budget, first.meter)


def test_a_401_rejects_the_key_for_every_later_caller() -> None:
    first = make(known_key=False)
    waiting = _next_flow(first)  # queued behind the first request, waiting for the key's first answer
    first.until(Send)
    waiting.until(CheckCircuit)
    assert waiting.step.run().kind == "wait"
    with pytest.raises(errors.AuthenticationError) as info:
        first.throw(_wrong_key())
        first.finish()

    gate = first.circuit.gate(first.clock())
    assert gate.kind == "rejected" and isinstance(gate.error, errors.AuthenticationError)
    with pytest.raises(errors.AuthenticationError) as again:
        waiting.finish()
    assert again.value is not info.value, "a copy: one error object is never raised from two calls"
    assert (again.value.message, again.value.code, again.value.status_code) == ("Wrong API Key", "wrong_api_key", 401)
    assert not any(isinstance(step, Send) for step in waiting.log), "nothing sent"


def test_the_rejection_expires() -> None:
    first = make(known_key=False)
    first.until(Send)
    with pytest.raises(errors.AuthenticationError):
        first.throw(_wrong_key())
        first.finish()
    first.clock.now += REJECTED_FOR
    later = _next_flow(first)
    later.until(Send)  # one request may try the key again
    assert first.circuit.probe_in_flight
