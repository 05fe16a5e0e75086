"""``await_shielded``: shared-state steps finish even when the task is cancelled meanwhile, and the
shield is paid for only by steps that suspend (the in-process backends never do)."""

from __future__ import annotations

import asyncio

import pytest

from cerebras_paygo import _backends
from cerebras_paygo._backends import await_shielded, wait_shielded


async def _immediate(value: int) -> int:
    return value


async def _suspending(done: list[str], seconds: float) -> str:
    await asyncio.sleep(seconds)
    done.append("finished")
    return "value"


async def _failing() -> None:
    await asyncio.sleep(0)
    raise KeyError("from the step")


def test_a_step_that_never_suspends_takes_no_shield(monkeypatch: pytest.MonkeyPatch) -> None:
    entered: list[object] = []
    original = _backends.AsyncShield.__aenter__

    async def spy(self: object) -> None:
        entered.append(self)
        await original(self)  # type: ignore[arg-type]

    monkeypatch.setattr(_backends.AsyncShield, "__aenter__", spy)
    assert asyncio.run(await_shielded(_immediate(7))) == 7
    assert entered == []
    done: list[str] = []
    assert asyncio.run(await_shielded(_suspending(done, 0))) == "value"
    assert len(entered) == 1 and done == ["finished"]


def test_cancelling_the_task_waits_for_a_suspended_step_to_finish() -> None:
    done: list[str] = []

    async def main() -> None:
        task = asyncio.ensure_future(await_shielded(_suspending(done, 0.05)))
        await asyncio.sleep(0.01)  # the step is suspended in its sleep
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done == ["finished"]  # it ran to its end first

    asyncio.run(main())


def test_an_error_of_the_step_is_raised() -> None:
    with pytest.raises(KeyError, match="from the step"):
        asyncio.run(await_shielded(_failing()))
    assert wait_shielded(3) == 3


@pytest.mark.parametrize("how", ["wait_for", "anyio scope"])
def test_a_timeout_around_the_call_waits_for_the_step_too(how: str) -> None:
    import anyio

    done: list[str] = []

    async def main() -> None:
        if how == "wait_for":
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(await_shielded(_suspending(done, 0.05)), 0.01)
        else:
            with anyio.move_on_after(0.01):
                await await_shielded(_suspending(done, 0.05))
        assert done == ["finished"]

    asyncio.run(main())
