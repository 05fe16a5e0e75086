"""redis.asyncio clients per event loop, shared by the limiter's and the org state's async stores.

A ``redis.asyncio`` connection belongs to the event loop that opened it, so a store built from a
factory keeps one client (with its registered Lua scripts) per loop, and closes it on that loop when
the loop ends (``asyncio.run`` after ``asyncio.run`` leaves no socket behind). A store given a ready
client uses that one everywhere.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from cerebras_paygo._backends import close_at_loop_exit

__all__ = ["LoopClients"]

Bound = tuple[Any, dict[str, Any]]


class LoopClients:
    """``get()``: this loop's client and its scripts (``register(client) -> {step: script}``)."""

    def __init__(self, client: Any, factory: Callable[[], Any] | None, register: Callable[[Any], dict[str, Any]]):
        self._factory = factory
        self._register = register
        self._fixed: Bound | None = None if client is None else (client, register(client))
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Bound] = weakref.WeakKeyDictionary()

    def get(self) -> Bound:
        if self._fixed is not None:
            return self._fixed
        loop = asyncio.get_running_loop()
        bound = self._per_loop.get(loop)
        if bound is None:
            assert self._factory is not None
            client = self._factory()
            bound = self._per_loop[loop] = (client, self._register(client))

            async def close() -> None:
                self._per_loop.pop(loop, None)
                await client.aclose()

            close_at_loop_exit(loop, close)
        return bound
