"""``BackendGuard``: the ``on_backend_error`` policy of a front over a shared backend.

The same policy as ``Limiter``: with ``"local"`` the first failure is logged once as a warning and
the front works on in-process state until the backend answers again (tried at most every
``probe_interval`` seconds); with ``"raise"`` every failure raises ``BackendUnavailableError``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from cerebras_paygo.errors import BackendUnavailableError, ConfigurationError

__all__ = ["AsyncOnly", "BackendErrorPolicy", "BackendGuard", "check_policy"]

BackendErrorPolicy = Literal["local", "raise"]


def check_policy(on_backend_error: str, workers: int) -> None:
    """Raise ``ConfigurationError`` for an unknown policy or a worker count below 1."""
    if on_backend_error not in ("local", "raise"):
        raise ConfigurationError(f"on_backend_error must be 'local' or 'raise', not {on_backend_error!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigurationError(f"workers must be an integer >= 1, not {workers!r}")


class BackendGuard:
    """Whether to call the shared backend now, and what a failure means.

    Args:
        what: what the backend keeps, for the log lines ("payment circuit", "spend").
        logger: where the warnings go.
        on_backend_error: ``"local"`` or ``"raise"``.
        probe_interval: seconds between attempts to return to a failed backend.
        clock: a monotonic clock.
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        on_backend_error: BackendErrorPolicy = "local",
        *,
        probe_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_policy(on_backend_error, 1)
        self.what = what
        self.on_backend_error: BackendErrorPolicy = on_backend_error
        self._logger = logger
        self._probe_interval = probe_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._down = False
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        """True while the front works on local state."""
        return self._down

    def use_backend(self) -> bool:
        """True: call the backend (healthy, or time to try it again); False: use local state."""
        if not self._down:
            return True
        now = self._clock()
        with self._lock:
            if now >= self._next_try:
                self._next_try = now + self._probe_interval
                return True
        return False

    def failed(self, exc: BackendUnavailableError) -> None:
        """The backend failed: raise ``exc`` (``"raise"``), or switch to local state (warned once)."""
        if self.on_backend_error == "raise":
            raise exc
        with self._lock:
            first = not self._down
            self._down = True
            self._next_try = self._clock() + self._probe_interval
        if first:
            self._logger.warning("%s backend unavailable (%s); using local state until it is back", self.what, exc)

    def recovered(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                self._logger.warning("%s backend is back; shared state again", self.what)


class AsyncOnly:
    """The sync side of a backend reached only through a ``redis.asyncio`` client: every sync call
    raises ``ConfigurationError`` (use the ``a*`` methods, or give a sync client too)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"AsyncOnly({self.what!r})"

    def __getattr__(self, name: str) -> Callable[..., object]:
        def refuse(*args: object, **kwargs: object) -> object:
            raise ConfigurationError(
                f"the {self.what} has only an asyncio Redis client: use the async methods (or pass a sync client)"
            )

        return refuse
