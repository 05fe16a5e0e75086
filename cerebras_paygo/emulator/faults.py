"""Fault injection: the live counters behind a ``FaultConfig``.

Not thread-safe: the state's lock guards it. Random faults draw from a generator seeded by the run
seed, so a run is reproducible.
"""

from __future__ import annotations

import random
from typing import Literal

from cerebras_paygo.emulator.config import FaultConfig

__all__ = ["EmulatedConnectionDrop", "FaultState"]

Injected = Literal["unavailable", "error", "rate_limit"]


class EmulatedConnectionDrop(ConnectionError):
    """Raised inside the app to cut a stream: the server closes the connection mid-body."""


class FaultState:
    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config
        self._rng = random.Random(f"faults:{seed}")
        self.unavailable_left = config.unavailable_next
        self.storm_left = config.rate_limit_next
        self.drop_left = config.drop_next
        self.slow_left = config.slow_first_byte_next

    def before_admission(self) -> Injected | None:
        """Consume one injected failure, if any: a 503 burst, then random 5xx, then a 429 storm."""
        if self.unavailable_left > 0:
            self.unavailable_left -= 1
            return "unavailable"
        if self.config.error_rate > 0 and self._rng.random() < self.config.error_rate:
            return "error"
        if self.storm_left > 0:
            self.storm_left -= 1
            return "rate_limit"
        return None

    def latency(self) -> float:
        return self.config.latency_s

    def first_byte_delay(self) -> float:
        """The slow-first-byte delay for this request (consumes the counter)."""
        if self.config.slow_first_byte_s <= 0:
            return 0.0
        if self.slow_left is None:
            return self.config.slow_first_byte_s
        if self.slow_left > 0:
            self.slow_left -= 1
            return self.config.slow_first_byte_s
        return 0.0

    def drop_after(self) -> int | None:
        """After how many events this stream is cut (``None``: not cut); consumes the counter."""
        if self.config.drop_after_chunks is None:
            return None
        if self.drop_left is None:
            return self.config.drop_after_chunks
        if self.drop_left > 0:
            self.drop_left -= 1
            return self.config.drop_after_chunks
        return None

    def token_delay(self) -> float:
        pace = self.config.tokens_per_second
        return 0.0 if not pace else 1.0 / pace

    def snapshot(self) -> dict[str, object]:
        data: dict[str, object] = self.config.model_dump()
        data.update(
            unavailable_next=self.unavailable_left,
            rate_limit_next=self.storm_left,
            drop_next=self.drop_left,
            slow_first_byte_next=self.slow_left,
        )
        return data
