"""How each shell sleeps and reads the clock: the only things sync and async do differently."""

from __future__ import annotations

import time

import anyio

__all__ = ["AsyncShield", "Shield", "asleep", "monotonic", "sleep"]

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
