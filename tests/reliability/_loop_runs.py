"""Run by ``test_loops.py`` in a subprocess with a low RLIMIT_NOFILE: one object, many ``asyncio.run``.

Prints one JSON line: open files and event loops before and after, the run that failed (if any),
and the ``unclosed`` ResourceWarnings seen.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import warnings
from collections.abc import Callable, Coroutine
from typing import Any


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _loops() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop))


def _call(which: str, base_url: str, key: str) -> Callable[[], Coroutine[Any, Any, Any]]:
    if which == "core":
        from cerebras_paygo import CerebrasClient
        from cerebras_paygo._wire import ChatCompletionRequest, Message

        client = CerebrasClient(api_key=key, base_url=base_url)
        request = ChatCompletionRequest(
            model="gpt-oss-120b", messages=[Message(role="user", content="hi")], max_completion_tokens=8
        )
        return lambda: client.achat(request)
    if which == "langchain":
        from langchain_cerebras_paygo import ChatCerebras

        model = ChatCerebras(model="gpt-oss-120b", api_key=key, base_url=base_url, max_tokens=8)
        return lambda: model.ainvoke("hi")
    from llama_index.core.llms import ChatMessage

    from llama_index_cerebras import Cerebras

    llm = Cerebras(model="gpt-oss-120b", api_key=key, base_url=base_url, max_tokens=8)
    return lambda: llm.achat([ChatMessage(role="user", content="hi")])


def main() -> None:
    which, base_url, key, runs, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    call = _call(which, base_url, key)
    unclosed: list[str] = []
    warnings.simplefilter("always", ResourceWarning)
    original = warnings.showwarning

    def record(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, ResourceWarning) and "unclosed" in str(message):
            unclosed.append(str(message)[:80])
        else:
            original(message, category, *args, **kwargs)

    warnings.showwarning = record
    gc.collect()
    fds0, loops0 = _fds(), _loops()
    failed: str | None = None
    for i in range(runs):
        try:
            asyncio.run(call())
        except Exception as exc:
            failed = f"run {i}: {type(exc).__name__}: {exc}"
            break
    gc.collect()
    print(json.dumps({"fds": [fds0, _fds()], "loops": [loops0, _loops()], "failed": failed, "unclosed": unclosed}))


if __name__ == "__main__":
    main()
