"""How each shell sleeps and reads the clock: the only things sync and async do differently."""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar, cast

import anyio

__all__ = [
    "AsyncShield",
    "Shield",
    "asleep",
    "await_shielded",
    "close_at_loop_exit",
    "monotonic",
    "sleep",
    "wait_shielded",
]

monotonic = time.monotonic

T = TypeVar("T")


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


async def await_shielded(awaitable: Coroutine[Any, Any, T]) -> T:
    """``await awaitable`` to its end even when the task is cancelled meanwhile; the cancellation is
    raised once it is done. Costs nothing for a coroutine that never suspends.

    A coroutine that finishes without suspending (a shared-state step on the in-process backends)
    cannot be cancelled midway: cancellation reaches a task only where it suspends, so it is run to
    its end here directly. One that suspends (a Redis round trip) goes on under anyio's shield
    (anyio's cancel scopes, trio) and, on asyncio, as a task of its own, which a native
    ``task.cancel()`` (``asyncio.wait_for``, ``asyncio.timeout``, a ``TaskGroup``) does not reach:
    anyio's shield alone does not hold those off.
    """
    try:
        pending = awaitable.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    async with AsyncShield():
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): its cancellation is anyio's, which the shield holds
            return await _resume(awaitable, pending)
        task = loop.create_task(_finish(awaitable, pending))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await _outlast(task)
            raise


async def _finish(coroutine: Coroutine[Any, Any, T], pending: Any) -> T:
    return await _resume(coroutine, pending)


async def _outlast(task: asyncio.Task[Any]) -> None:
    """Wait for ``task`` to be done, whatever cancellations arrive meanwhile."""
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            continue


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, T], pending: Any) -> Generator[Any, Any, T]:
    """Go on driving ``coroutine`` from where it suspended on ``pending`` (what it yielded)."""
    while True:
        try:
            sent = yield pending
        except BaseException as exc:  # thrown into the task: into the coroutine it is
            try:
                pending = coroutine.throw(exc)
            except StopIteration as done:
                return cast(T, done.value)
        else:
            try:
                pending = coroutine.send(sent)
            except StopIteration as done:
                return cast(T, done.value)


def wait_shielded(value: T) -> T:
    """The sync twin of ``await_shielded``: threads are not cancelled, the value is already there."""
    return value


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
