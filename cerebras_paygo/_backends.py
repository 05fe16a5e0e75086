"""How each shell sleeps and reads the clock: the only things sync and async do differently."""

from __future__ import annotations

import time

import anyio

__all__ = ["asleep", "monotonic", "sleep"]

monotonic = time.monotonic


async def asleep(seconds: float) -> None:
    if seconds > 0:
        await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
