"""A faithful local Cerebras API: limits, billing, tool calls, JSON output, reasoning and faults.

Needs the ``emulator`` extra (starlette, uvicorn)::

    from cerebras_paygo.emulator import EmulatorServer

    with EmulatorServer() as server:          # http://127.0.0.1:<free port>/v1
        ...  # point any OpenAI-compatible client at server.base_url with server.api_key

or ``cerebras-paygo emulate --port 8080``, or the pytest fixtures in
``cerebras_paygo.emulator.pytest_plugin``.
"""

from cerebras_paygo.emulator.app import create_app
from cerebras_paygo.emulator.clock import Clock, ControllableClock, ManualClock
from cerebras_paygo.emulator.config import (
    FREE_KEY,
    FREE_ORG,
    PAYGO_KEY,
    PAYGO_ORG,
    AutoRecharge,
    EmulatorConfig,
    FaultConfig,
    OrgConfig,
    default_config,
)
from cerebras_paygo.emulator.facts import Facts, ModelFacts, ServerLimits, default_facts
from cerebras_paygo.emulator.faults import EmulatedConnectionDrop
from cerebras_paygo.emulator.server import EmulatorServer, run
from cerebras_paygo.emulator.state import EmulatorState
from cerebras_paygo.emulator.tokens import count_prompt, count_text

__all__ = [
    "FREE_KEY",
    "FREE_ORG",
    "PAYGO_KEY",
    "PAYGO_ORG",
    "AutoRecharge",
    "Clock",
    "ControllableClock",
    "EmulatedConnectionDrop",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "Facts",
    "FaultConfig",
    "ManualClock",
    "ModelFacts",
    "OrgConfig",
    "ServerLimits",
    "count_prompt",
    "count_text",
    "create_app",
    "default_config",
    "default_facts",
    "run",
]
