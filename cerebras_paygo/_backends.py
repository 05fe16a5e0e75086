"""How each shell sleeps and reads the clock: the only things sync and async do differently."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

import anyio

__all__ = ["AsyncShield", "Shield", "asleep", "close_at_loop_exit", "monotonic", "sleep"]

monotonic = time.monotonic


async def asleep(seconds: float) -> None:
    if seconds > 0:
        await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


class AsyncShield:
    """Lets clean-up finish when the task is being cancelled (an anyio shielded cancel scope)."""

    __slots__ = ("_scope",)

    def __init__(self) -> None:
        self._scope = anyio.CancelScope(shield=True)

    async def __aenter__(self) -> None:
        self._scope.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self._scope.__exit__(*exc)  # type: ignore[arg-type]


class Shield:
    """The sync twin of ``AsyncShield``: threads are not cancelled, so there is nothing to shield."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


#: Sentinels parked on running loops (a loop holds its async generators weakly: we keep them alive).
_PARKED: set[AsyncGenerator[None, None]] = set()


def close_at_loop_exit(loop: asyncio.AbstractEventLoop, close: Callable[[], Awaitable[None]]) -> None:
    """Run ``close()`` on ``loop`` while it still runs, when ``asyncio.run`` (or any
    ``loop.shutdown_asyncgens()``) ends it: connections opened on a loop must be closed on it.

    ``asyncio.run`` closes the async generators first iterated on the loop before closing it; a
    generator parked at its ``yield`` here is one, and its ``finally`` awaits ``close``.
    """

    async def sentinel() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            _PARKED.discard(parked)
            if not loop.is_closed():
                try:
                    await close()
                except Exception:  # closing must never fail the loop's exit
                    logging.getLogger("cerebras_paygo").debug("closing at the loop's exit failed", exc_info=True)

    parked = sentinel()
    try:
        parked.__anext__().send(None)  # run to the yield now: the loop's firstiter hook registers it
    except StopIteration:
        _PARKED.add(parked)
