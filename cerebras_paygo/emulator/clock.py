"""Injectable clocks: every timed decision of the emulator (buckets, recharges, 402 windows) reads one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "ControllableClock", "ManualClock"]

Clock = Callable[[], float]


class ControllableClock:
    """``time.monotonic()`` plus an offset; tests can ``advance`` it or ``freeze`` it.

    A frozen clock stands still until advanced, so bucket arithmetic is exact in tests.
    """

    def __init__(self, base: Clock = time.monotonic, *, frozen: bool = False) -> None:
        self._base = base
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen_at: float | None = None
        if frozen:
            self.freeze()

    def __call__(self) -> float:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return self._base() + self._offset

    def advance(self, seconds: float) -> None:
        """Jump ``seconds`` ahead (frozen or not)."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds

    def freeze(self) -> None:
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = self._base() + self._offset

    def unfreeze(self) -> None:
        """Run again from where the frozen clock stood."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - self._base()
                self._frozen_at = None

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


class ManualClock(ControllableClock):
    """A clock that starts at ``start`` and only moves when advanced."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(lambda: start, frozen=True)
