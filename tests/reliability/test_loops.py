"""Defect 1 of issue 13: one event loop, pool and sockets leaked per ``asyncio.run()``.

Before (the original 7c375f3), 200 ``asyncio.run()`` calls on one object: ``CerebrasClient`` open
files 12 -> 393, event loops alive 2 -> 202, RSS 53 -> 220 MB; ``ChatCerebras`` 12 -> 407 files,
81 -> 248 MB; LlamaIndex ``Cerebras`` 12 -> 383 files, 120 -> 287 MB (the issue: 10 -> 651 files
over 400 runs, and with a 256-file limit the 123rd run failed with a bare ``OSError``).

main at 7abec95 dropped the pools of closed loops on the next lookup: no growth, but every run's
sockets were left open until then and closed by the garbage collector (one ``unclosed transport``
ResourceWarning per run), and the last closed loop stayed alive.

Fix (``CerebrasClient._close_at_loop_exit``): a generator parked on each loop is closed by
``asyncio.run``'s ``shutdown_asyncgens`` while the loop still runs; it closes that loop's pool and
forgets the loop. After: 200 runs under a 64-file limit, files and loops exactly back, no warning.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cerebras_paygo import CerebrasClient
from cerebras_paygo._wire import ChatCompletionRequest, Message

RUNS = 200
FILE_LIMIT = 64  # a leak of one socket per run fails long before 250


@pytest.mark.parametrize("which", ["core", "langchain", "llama_index"])
def test_many_asyncio_runs_leak_nothing(emulator, which: str) -> None:
    script = Path(__file__).with_name("_loop_runs.py")
    # In-process state, as in every test not about Redis (a Redis client keeps a pooled
    # connection open, and the calibration feed's thread opens one: not a leak, but not this test).
    env = {name: value for name, value in os.environ.items() if name != "CEREBRAS_PAYGO_REDIS_URL"}
    done = subprocess.run(
        [sys.executable, str(script), which, emulator.base_url, emulator.api_key, str(RUNS), str(FILE_LIMIT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] is None
    fds0, fds1 = result["fds"]
    loops0, loops1 = result["loops"]
    assert fds1 <= fds0, result
    assert loops1 <= loops0, result  # no closed loop kept alive
    assert result["unclosed"] == []  # every socket closed on its loop, not by the GC
    assert emulator.stats()["statuses"] == {"200": RUNS}


def test_pool_is_closed_when_its_loop_ends_and_reopened_on_the_next(emulator) -> None:
    client = CerebrasClient(api_key=emulator.api_key, base_url=emulator.base_url)
    request = ChatCompletionRequest(
        model="gpt-oss-120b", messages=[Message(role="user", content="hi")], max_completion_tokens=8
    )
    seen: list[object] = []

    async def call() -> None:
        await client.achat(request)
        seen.append(next(iter(client._loop_transports().values())))

    asyncio.run(call())
    assert client._async_transports == {} and client._loop_sentinels == {}
    first = seen[0]
    assert first._client.is_closed  # type: ignore[attr-defined]
    asyncio.run(call())
    assert seen[1] is not first
    # A loop closed without shutdown_asyncgens: dropped (unawaited) at the next loop's first call.
    loop = asyncio.new_event_loop()
    loop.run_until_complete(call())
    loop.close()
    assert len(client._async_transports) == 1
    asyncio.run(call())
    assert client._async_transports == {}
    assert emulator.stats()["requests"] == 4
